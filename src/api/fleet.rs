//! `kvfleet simulate-fleet FLEET.json|FLEET.toml`: a multi-pool fleet from a
//! file, on the workload flags (or the file's per-pool workloads).

use std::path::PathBuf;

use super::output::OutputArgs;
use super::workload_args::WorkloadArgs;
use super::{Outcome, Report};
use crate::engine::EngineKind;
use crate::error::InputError;
use crate::fleet_file::load_fleet;
use crate::progress::Reporter;
use crate::scenario::{FLAG_SIM_NAMES, check_sim, check_sim_named};
use crate::simulate::{SimulateJob, run_job};

/// Run settings shared by the fleet-file commands.
#[derive(Debug, Clone, clap::Args)]
pub struct RunFlags {
    /// Root seed (default: the file's, else 42).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Independent replications (default: the file's, else 1).
    #[arg(long)]
    pub replications: Option<u32>,
    /// `fast` or `step`.
    #[arg(long, value_enum)]
    pub engine: Option<EngineKind>,
    /// TTFT SLO, ms (default: the file's, else 500).
    #[arg(long)]
    pub slo: Option<f64>,
    /// Warm-up fraction of requests (default: the file's, else 0.1).
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Omit wall-clock timing from the report.
    #[arg(long)]
    pub no_timing: bool,
}

/// Flags of `simulate-fleet`.
#[derive(Debug, clap::Args)]
pub struct SimulateFleetArgs {
    /// Fleet file: the reference JSON layout or a scenario TOML.
    pub fleet: PathBuf,
    /// Workload flags: the shared stream, or with per-pool workloads the total `--lam` and `--n-req`.
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Run settings.
    #[command(flatten)]
    pub run: RunFlags,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Load a fleet file and apply the workload and run flags.
pub fn resolve_fleet(
    fleet: &std::path::Path,
    workload: &WorkloadArgs,
    run: &RunFlags,
    quiet: bool,
) -> Result<SimulateJob, InputError> {
    let mut scenario = load_fleet(fleet)?;
    // Each workload flag overrides only its own field of the file's workload.
    scenario.workload = workload.apply_to(&scenario.workload)?;
    check_sim_named(
        run.warmup.unwrap_or(0.0),
        run.slo.unwrap_or(1.0),
        run.replications.unwrap_or(1),
        FLAG_SIM_NAMES,
    )?;
    if let Some(s) = run.seed {
        scenario.sim.seed = s;
    }
    if let Some(r) = run.replications {
        scenario.sim.replications = r;
    }
    if let Some(e) = run.engine {
        scenario.sim.engine = e;
    }
    if let Some(s) = run.slo {
        scenario.sim.slo_ttft_ms = s;
    }
    if let Some(w) = run.warmup {
        scenario.sim.warmup = w;
    }
    check_sim(
        scenario.sim.warmup,
        scenario.sim.slo_ttft_ms,
        scenario.sim.replications,
    )?;
    let mut job = scenario.into_job()?;
    job.timing = !run.no_timing;
    job.progress = !quiet;
    Ok(job)
}

/// Run `simulate-fleet`.
pub fn execute(args: SimulateFleetArgs, reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
    let job = resolve_fleet(&args.fleet, &args.workload, &args.run, args.output.quiet)?;
    Ok(Report::Simulate(Box::new(run_job(&job, reporter)?)).into())
}
