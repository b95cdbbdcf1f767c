//! `kvfleet whatif`: fleet size and cost per arrival rate, and when to add GPUs.

use std::path::PathBuf;

use super::optimize::PlanArgs;
use super::output::OutputArgs;
use super::{Outcome, Report};
use crate::error::InputError;
use crate::planner::FleetPlan;
use crate::planner::whatif::whatif;
use crate::profile::{ProfileOverrides, resolve_profile};
use crate::progress::Reporter;

/// Flags of `whatif`.
#[derive(Debug, clap::Args)]
pub struct WhatifArgs {
    /// Planner flags.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Arrival rates to size for, requests/s.
    #[arg(long, num_args = 1.., required = true)]
    pub lam_range: Vec<f64>,
    /// Compare GPU types (each used for both pools); default: --gpu-short/--gpu-long.
    #[arg(long, num_args = 1..)]
    pub gpu_compare: Vec<String>,
    /// Short-pool threshold B (0: one homogeneous pool of --gpu-long; equal to
    /// --long-max-ctx: one homogeneous pool of --gpu-short, as every request fits it).
    #[arg(long, default_value_t = 4096)]
    pub b_short: u32,
    /// Write the points as CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Write an SVG chart of GPUs vs λ.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Sharding (`--shard I/N`).
    #[command(flatten)]
    pub sweep: super::merge::SweepArgs,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

fn plan_for(args: &WhatifArgs, short: &str, long: &str) -> Result<FleetPlan, InputError> {
    let p = &args.plan;
    let s = resolve_profile("--gpu-short", short, &ProfileOverrides::default())?;
    let l = resolve_profile("--gpu-long", long, &ProfileOverrides::default())?;
    if args.b_short == 0 {
        return Ok(FleetPlan::homogeneous(l, p.long_max_ctx));
    }
    if args.b_short == p.long_max_ctx {
        return Ok(FleetPlan::homogeneous(s, p.long_max_ctx));
    }
    if args.b_short > p.long_max_ctx {
        return Err(InputError::field(
            "--b-short",
            format!(
                "expected at most --long-max-ctx ({}; equal means one homogeneous pool), got {}",
                p.long_max_ctx, args.b_short
            ),
        ));
    }
    Ok(FleetPlan {
        b_short: Some(args.b_short),
        gamma: 1.0,
        short: s,
        long: l,
        long_max_ctx: p.long_max_ctx,
    })
}

/// Run `whatif`.
pub fn execute(args: WhatifArgs, reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
    let plans: Vec<FleetPlan> = if args.gpu_compare.is_empty() {
        vec![plan_for(&args, &args.plan.gpu_short, &args.plan.gpu_long)?]
    } else {
        args.gpu_compare
            .iter()
            .map(|g| plan_for(&args, g, g))
            .collect::<Result<_, _>>()?
    };
    if let Some(l) = args
        .lam_range
        .iter()
        .find(|l| !(l.is_finite() && **l > 0.0))
    {
        return Err(
            InputError::field("--lam-range", format!("expected positive rates, got {l}")).into(),
        );
    }
    let workload = args.plan.workload(args.lam_range[0])?;
    let sweep = args.sweep.sweep();
    let report = whatif(
        &plans,
        &args.lam_range,
        &workload,
        &args.plan.sizing()?,
        super::progress_for(reporter, &args.output),
        &sweep,
    );
    super::merge::finish_sweep(report, &sweep, "whatif", |r| Report::Whatif(Box::new(r)))
}
