//! `kvfleet pareto`: short-pool threshold sweep, frontier and recommendation.

use std::path::PathBuf;

use super::optimize::{PlanArgs, breakpoints};
use super::output::OutputArgs;
use super::{Outcome, Report};
use crate::planner::FleetPlan;
use crate::planner::pareto::pareto;
use crate::profile::{ProfileOverrides, resolve_profile};
use crate::progress::Reporter;
use crate::workload::cdf::LengthCdf;

/// Flags of `pareto`.
#[derive(Debug, clap::Args)]
pub struct ParetoArgs {
    /// Planner flags.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Arrival rate, requests/s.
    #[arg(long)]
    pub lam: f64,
    /// Also try the midpoints between CDF breakpoints.
    #[arg(long)]
    pub fine: bool,
    /// Write the points as CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Write an SVG chart of cost vs worst-pool P99 TTFT.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Sharding (`--shard I/N`).
    #[command(flatten)]
    pub sweep: super::merge::SweepArgs,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Run `pareto`.
pub fn execute(args: ParetoArgs, reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
    let p = &args.plan;
    let cdf = LengthCdf::load(&p.cdf)?;
    let mut thresholds = breakpoints(&cdf, p.long_max_ctx);
    if args.fine {
        let mids: Vec<u32> = thresholds.windows(2).map(|w| (w[0] + w[1]) / 2).collect();
        thresholds.extend(mids);
        thresholds.sort_unstable();
        thresholds.dedup();
    }
    let base = FleetPlan {
        b_short: None,
        gamma: 1.0,
        short: resolve_profile("--gpu-short", &p.gpu_short, &ProfileOverrides::default())?,
        long: resolve_profile("--gpu-long", &p.gpu_long, &ProfileOverrides::default())?,
        long_max_ctx: p.long_max_ctx,
    };
    let share = |b: u32| cdf.fraction_at_or_below(b);
    let sweep = args.sweep.sweep();
    let report = pareto(
        &base,
        &thresholds,
        &p.workload(args.lam)?,
        &p.sizing()?,
        &share,
        super::progress_for(reporter, &args.output),
        &sweep,
    );
    super::merge::finish_sweep(report, &sweep, "pareto", |r| Report::Pareto(Box::new(r)))
}
