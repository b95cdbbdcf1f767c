//! `kvfleet tok-per-watt`: energy efficiency of SLO-sized fleets.

use super::optimize::PlanArgs;
use super::output::OutputArgs;
use super::{Outcome, Report};
use crate::error::InputError;
use crate::planner::FleetPlan;
use crate::planner::tpw::tokens_per_watt;
use crate::profile::{ProfileOverrides, resolve_profile};
use crate::progress::Reporter;

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
    /// Sharding (`--shard I/N`).
    #[command(flatten)]
    pub sweep: super::merge::SweepArgs,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Run `tok-per-watt`.
pub fn execute(args: TpwArgs, _reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
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
    let sweep = args.sweep.sweep();
    let report = tokens_per_watt(
        &plans,
        &p.workload(args.lam)?,
        &p.sizing()?,
        args.lam,
        &rhos,
        &sweep,
    );
    super::merge::finish_sweep(report, &sweep, "tok-per-watt", |r| {
        Report::TokPerWatt(Box::new(r))
    })
}
