//! Planner scenarios: a TOML file with a `[plan]` table runs `optimize`,
//! `pareto`, `whatif` or `disagg` with the flags written in the file (paths
//! relative to the file), so a planning question is one reproducible file:
//!
//! ```toml
//! description = "Puzzle 4: when do I need to add GPUs?"
//! [plan]
//! kind = "whatif"
//! cdf = "azure"
//! slo = 500
//! gpu_short = "h100"
//! gpu_long = "h100"
//! long_max_ctx = 8192
//! lam_range = [25, 50, 100]
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Command;
use super::disagg::DisaggArgs;
use super::optimize::{OptimizeArgs, PlanArgs};
use super::output::OutputArgs;
use super::pareto::ParetoArgs;
use super::whatif::WhatifArgs;
use super::workload_args::WorkloadArgs;
use crate::error::InputError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    plan: PlanToml,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanToml {
    kind: String,
    cdf: PathBuf,
    #[serde(default)]
    lam: Option<f64>,
    #[serde(default)]
    lam_range: Vec<f64>,
    #[serde(default = "d_slo")]
    slo: f64,
    #[serde(default = "d_ctx")]
    long_max_ctx: u32,
    #[serde(default = "d_gpu")]
    gpu_short: String,
    #[serde(default = "d_gpu")]
    gpu_long: String,
    #[serde(default)]
    gpu_compare: Vec<String>,
    #[serde(default)]
    b_short: Option<u32>,
    #[serde(default = "d_gamma")]
    gamma_max: f64,
    #[serde(default = "d_verify")]
    verify_top: usize,
    #[serde(default)]
    fine: bool,
    #[serde(default = "d_n")]
    n_sim_req: u64,
    #[serde(default = "d_seed")]
    seed: u64,
    #[serde(default)]
    node_avail: Option<f64>,
    // `disagg` only.
    #[serde(default)]
    gpu_prefill: Option<String>,
    #[serde(default)]
    gpu_decode: Option<String>,
    #[serde(default)]
    slo_tpot: Option<f64>,
    #[serde(default)]
    max_ctx: Option<u32>,
    #[serde(default)]
    max_prefill: Option<u32>,
    #[serde(default)]
    max_decode: Option<u32>,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    aggregated_gpus: Vec<String>,
}

fn d_slo() -> f64 {
    500.0
}
fn d_ctx() -> u32 {
    65536
}
fn d_gpu() -> String {
    "a100".into()
}
fn d_gamma() -> f64 {
    1.0
}
fn d_verify() -> usize {
    3
}
fn d_n() -> u64 {
    20_000
}
fn d_seed() -> u64 {
    42
}

/// True when the TOML text has a top-level `[plan]` table.
pub fn is_plan_scenario(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("plan"))
}

/// The command a planner scenario file stands for: the same arguments the
/// CLI's flags would give, so the file resolves and validates exactly as
/// those flags do.
pub fn command(path: &Path, text: &str, output: OutputArgs) -> Result<Command, InputError> {
    let f: PlanFile = toml::from_str(text).map_err(|e| InputError::File {
        path: path.to_path_buf(),
        reason: e.to_string().trim().replace('\n', " "),
    })?;
    let p = f.plan;
    let base = path.parent().unwrap_or(Path::new("."));
    let cdf = if p.cdf.is_absolute() {
        p.cdf.clone()
    } else {
        base.join(&p.cdf)
    };
    if p.kind == "disagg" {
        return disagg_command(p, cdf, output);
    }
    let plan = PlanArgs {
        cdf,
        slo: p.slo,
        long_max_ctx: p.long_max_ctx,
        gpu_short: p.gpu_short,
        gpu_long: p.gpu_long,
        n_sim_req: p.n_sim_req,
        seed: p.seed,
        node_avail: p.node_avail,
        failure_rate_per_day: None,
        mttr_hours: None,
    };
    let need_lam = || {
        p.lam
            .ok_or_else(|| InputError::field("plan.lam", "this kind needs `lam`"))
    };
    match p.kind.as_str() {
        "optimize" => Ok(Command::Optimize(Box::new(OptimizeArgs {
            plan,
            lam: need_lam()?,
            b_short: p.b_short,
            gamma_max: p.gamma_max,
            verify_top: p.verify_top,
            output,
        }))),
        "pareto" => Ok(Command::Pareto(Box::new(ParetoArgs {
            plan,
            lam: need_lam()?,
            fine: p.fine,
            csv: None,
            plot: None,
            sweep: Default::default(),
            output,
        }))),
        "whatif" => {
            if p.lam_range.is_empty() {
                return Err(InputError::field(
                    "plan.lam_range",
                    "whatif needs a non-empty `lam_range`",
                ));
            }
            Ok(Command::Whatif(Box::new(WhatifArgs {
                plan,
                lam_range: p.lam_range,
                gpu_compare: p.gpu_compare,
                b_short: p.b_short.unwrap_or(4096),
                csv: None,
                plot: None,
                sweep: Default::default(),
                output,
            })))
        }
        other => Err(InputError::field(
            "plan.kind",
            format!("unknown planner `{other}`; expected optimize, pareto, whatif or disagg"),
        )),
    }
}

fn disagg_command(p: PlanToml, cdf: PathBuf, output: OutputArgs) -> Result<Command, InputError> {
    let lam = p
        .lam
        .ok_or_else(|| InputError::field("plan.lam", "disagg needs `lam`"))?;
    let slo_tpot = p
        .slo_tpot
        .ok_or_else(|| InputError::field("plan.slo_tpot", "disagg needs `slo_tpot`"))?;
    Ok(Command::Disagg(Box::new(DisaggArgs {
        workload: WorkloadArgs {
            cdf: Some(cdf),
            lam: Some(lam),
            ..WorkloadArgs::default()
        },
        slo_ttft: p.slo,
        slo_tpot,
        gpu_prefill: p.gpu_prefill.unwrap_or_else(d_gpu),
        gpu_decode: p.gpu_decode.unwrap_or_else(d_gpu),
        max_ctx: p.max_ctx.unwrap_or(8192),
        max_prefill: p.max_prefill.unwrap_or(16),
        max_decode: p.max_decode.unwrap_or(64),
        link: p.link.unwrap_or_else(|| "ib".into()),
        kv_bytes_per_token: None,
        aggregated_gpus: p.aggregated_gpus,
        n_sim_req: p.n_sim_req,
        replications: 3,
        seed: p.seed,
        csv: None,
        output,
    })))
}
