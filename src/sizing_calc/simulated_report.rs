//! The report of `sizing-calc --simulate`: the simulated sweep's NAT-style
//! analysis, optionally a measured sweep's beside it (`--compare`), and the
//! DES's direct answer.

use std::fmt::Write as _;

use serde::Serialize;

use super::SizingReport;
use super::simulate::{DirectAnswer, LevelP95};
use crate::report_format::HumanReport;

/// How the sweep was simulated.
#[derive(Debug, Clone, Serialize)]
pub struct SimSettings {
    /// Profile name.
    pub gpu: String,
    /// GPUs per instance.
    pub gpus_per_instance: u32,
    /// Pool max context, tokens.
    pub max_ctx: u32,
    /// GPUs of the simulated test fleet.
    pub test_gpu_count: u32,
    /// Concurrency levels.
    pub concurrencies: Vec<u32>,
    /// Workflows per level (at least 2 per user).
    pub workflows_per_level: u32,
    /// LLM calls per workflow.
    pub calls_per_workflow: u32,
    /// Mean think time between calls, s.
    pub think_time_s: f64,
    /// Call lengths.
    pub lengths: String,
    /// Root seed.
    pub seed: u64,
}

/// Simulated sizing, with an optional measured comparison.
#[derive(Debug, Clone, Serialize)]
pub struct SimulatedSizing {
    /// Simulation settings.
    pub settings: SimSettings,
    /// The simulated sweep, in NAT's output schema.
    pub simulated: SizingReport,
    /// A measured sweep, in NAT's output schema (`--compare`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<SizingReport>,
    /// The DES's direct answer at the target users.
    pub des_direct: DirectAnswer,
}

fn secs(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3} s")).unwrap_or_else(|| "—".into())
}

fn level(l: &Option<LevelP95>) -> String {
    match l {
        Some(l) => format!(
            "p95 LLM latency {}, p95 workflow runtime {}",
            secs(l.llm_latency_p95_s),
            secs(l.workflow_runtime_p95_s)
        ),
        None => "—".into(),
    }
}

fn estimate(r: &SizingReport) -> String {
    match (r.recommendation.gpu_count, &r.recommendation.reason) {
        (Some(g), _) => format!("{g:.1} GPUs"),
        (None, Some(why)) => format!("none ({why})"),
        (None, None) => "none".into(),
    }
}

impl HumanReport for SimulatedSizing {
    fn human(&self) -> String {
        let s_ = &self.settings;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Simulated sweep: {} ({} GPU/instance) × {} GPUs, max ctx {}, {} calls per workflow, think {} s, lengths {}, seed {}",
            s_.gpu,
            s_.gpus_per_instance,
            s_.test_gpu_count,
            s_.max_ctx,
            s_.calls_per_workflow,
            s_.think_time_s,
            s_.lengths,
            s_.seed
        );
        s.push_str(&self.simulated.human());
        if let Some(m) = &self.measured {
            let _ = writeln!(s, "\nMeasured sweep:");
            s.push_str(&m.human());
        }
        let _ = writeln!(
            s,
            "\nGPU estimates for {} users:",
            self.simulated.config.target_users
        );
        let _ = writeln!(
            s,
            "  linear fit of the simulated sweep: {}",
            estimate(&self.simulated)
        );
        if let Some(m) = &self.measured {
            let _ = writeln!(s, "  linear fit of the measured sweep:  {}", estimate(m));
        }
        let d = &self.des_direct;
        match d.gpus {
            Some(g) => {
                let _ = writeln!(
                    s,
                    "  DES direct search:                 {g} GPUs ({} instances): {}",
                    d.instances.unwrap_or(0),
                    level(&d.at_answer)
                );
                let _ = writeln!(
                    s,
                    "    one instance fewer:              {}",
                    level(&d.one_instance_fewer)
                );
                if let Some(lin) = self.simulated.recommendation.gpu_count {
                    let verdict = if lin > g as f64 {
                        "over-sizes"
                    } else {
                        "under-sizes"
                    };
                    let _ = writeln!(
                        s,
                        "  the linear extrapolation {verdict} by {:+.1} GPUs against the simulator's direct answer",
                        lin - g as f64
                    );
                }
            }
            None => {
                let _ = writeln!(
                    s,
                    "  DES direct search: {}",
                    d.reason.as_deref().unwrap_or("no answer")
                );
            }
        }
        let _ = writeln!(
            s,
            "  ({} fleet sizes simulated in the search)",
            d.evaluations
        );
        s
    }
}
