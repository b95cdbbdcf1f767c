//! `kvfleet tok-per-watt`: energy efficiency of SLO-sized fleets.

use std::fmt::Write as _;

use super::optimize::PlanArgs;
use super::output::{HumanReport, OutputArgs, emit};
use crate::error::InputError;
use crate::planner::FleetPlan;
use crate::planner::tpw::{TpwFleet, TpwReport, tokens_per_watt};
use crate::profile::{ProfileOverrides, resolve_profile};

/// Flags of `tok-per-watt`.
#[derive(Debug, clap::Args)]
pub struct TpwArgs {
    /// Planner flags (`--max-ctx` is the homogeneous pools' context).
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Arrival rate, requests/s.
    #[arg(long)]
    pub lam: f64,
    /// GPU types compared as homogeneous fleets.
    #[arg(long, num_args = 1.., default_values_t = ["h100".to_string(), "a100".to_string(), "a10g".to_string()])]
    pub gpus: Vec<String>,
    /// Also measure each fleet at 20/40/60/80% of the λ it sustains within the SLO.
    #[arg(long)]
    pub rho_sweep: bool,
    /// Compare a routed two-pool fleet (--gpu-short up to B, --gpu-long above) with a homogeneous --gpu-long fleet.
    #[arg(long)]
    pub b_short: Option<u32>,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Run `tok-per-watt`.
pub fn run(args: TpwArgs) -> anyhow::Result<()> {
    let p = &args.plan;
    let prof = |f: &str, g: &str| resolve_profile(f, g, &ProfileOverrides::default());
    let plans: Vec<FleetPlan> = match args.b_short {
        Some(b) => {
            if b > p.long_max_ctx {
                return Err(InputError::field(
                    "--b-short",
                    format!(
                        "expected at most --long-max-ctx ({}; equal means homogeneous fleets), got {b}",
                        p.long_max_ctx
                    ),
                )
                .into());
            }
            let long = prof("--gpu-long", &p.gpu_long)?;
            let short = prof("--gpu-short", &p.gpu_short)?;
            if b == p.long_max_ctx {
                // Every request fits the short pool: homogeneous fleets only.
                let mut plans = vec![FleetPlan::homogeneous(long.clone(), p.long_max_ctx)];
                if short != long {
                    plans.push(FleetPlan::homogeneous(short, p.long_max_ctx));
                }
                plans
            } else {
                vec![
                    FleetPlan::homogeneous(long.clone(), p.long_max_ctx),
                    FleetPlan {
                        b_short: Some(b),
                        gamma: 1.0,
                        short,
                        long,
                        long_max_ctx: p.long_max_ctx,
                    },
                ]
            }
        }
        None => args
            .gpus
            .iter()
            .map(|g| prof("--gpus", g).map(|pr| FleetPlan::homogeneous(pr, p.long_max_ctx)))
            .collect::<Result<_, _>>()?,
    };
    let rhos: Vec<f64> = if args.rho_sweep {
        vec![0.2, 0.4, 0.6, 0.8]
    } else {
        Vec::new()
    };
    let report = tokens_per_watt(
        &plans,
        &p.workload(args.lam)?,
        &p.sizing()?,
        args.lam,
        &rhos,
    )?;
    emit(&report, &args.output)
}

fn cells(f: &TpwFleet) -> Vec<String> {
    let o = |v: Option<f64>, d: usize| v.map(|x| format!("{x:.d$}")).unwrap_or_else(|| "—".into());
    vec![
        f.fleet.clone(),
        f.counts
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" + "),
        f.gpus.to_string(),
        format!("{:.1}", f.lam),
        o(f.rho, 2),
        o(f.output_tok_per_j, 2),
        o(f.output_tok_per_j_analytic, 2),
        format!("{:.0}", f.power_per_gpu_w),
        o(f.cost_per_million_output_tok_usd, 3),
        match f.p99_ttft_ms {
            Some(p) if p.is_infinite() => "∞".into(),
            p => o(p, 0),
        },
        if f.slo_met { "✓" } else { "✗" }.into(),
    ]
}

impl HumanReport for TpwReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let header = vec![
            "fleet",
            "instances",
            "GPUs",
            "λ",
            "ρ",
            "out tok/J (DES)",
            "tok/J (analytic)",
            "W/GPU",
            "$/M out tok",
            "P99 TTFT ms",
            "SLO",
        ];
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header(header.clone());
        for f in &self.fleets {
            t.add_row(cells(f));
        }
        let _ = writeln!(
            s,
            "SLO-sized fleets (P99 TTFT ≤ {} ms over all arrivals, DES-verified; ρ = λ / the λ the fleet sustains):\n{t}",
            self.slo_ttft_ms
        );
        for f in self.fleets.iter().filter(|f| !f.slo_met) {
            let _ = writeln!(
                s,
                "  {}: misses the SLO{}",
                f.fleet,
                f.reason
                    .as_ref()
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default()
            );
        }
        if !self.rho_sweep.is_empty() {
            let mut t = comfy_table::Table::new();
            t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
            t.set_header(header);
            for f in &self.rho_sweep {
                t.add_row(cells(f));
            }
            let _ = writeln!(s, "Utilisation sweep (same fleets, lower λ):\n{t}");
        }
        let mut curves: Vec<&String> = self.fleets.iter().flat_map(|f| &f.power_curve).collect();
        curves.sort();
        curves.dedup();
        let _ = writeln!(
            s,
            "Power curves: {}",
            curves
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
        s
    }
}
