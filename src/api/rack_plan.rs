//! `kvfleet rack-plan FILE.toml`: split a rack's trays between the clients of
//! a deployment scenario (DESIGN §15) — analytic screen, simulated
//! verification, the Pareto set and the best plan, with the file's named
//! designs beside it. Also `kvfleet run` on such a file ([`run_deployments`]).

use std::path::{Path, PathBuf};

use super::output::OutputArgs;
use super::{Outcome, Report};
use crate::deployment::{self, search};

/// Flags of `rack-plan`.
#[derive(Debug, clap::Args)]
pub struct RackPlanArgs {
    /// The deployment scenario ([[clients]], [[deployments]], [rack_plan]).
    pub scenario: PathBuf,
    /// Multiply every client's rate or concurrency by this.
    #[arg(long, default_value_t = 1.0)]
    pub load_scale: f64,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write the verified candidates, Pareto plans and named designs as CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Plot throughput per GPU against interactivity, one panel per client (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Run `rack-plan`.
pub fn execute(args: RackPlanArgs) -> anyhow::Result<Outcome> {
    deployment::check_scale(args.load_scale)?;
    let mut scn = deployment::model::load(&args.scenario)?;
    if let Some(s) = args.seed {
        scn.seed = s;
    }
    let report = search::rack_plan(&scn, args.load_scale)?;
    Ok(Report::RackPlan(Box::new(report)).into())
}

/// `kvfleet run` on a deployment scenario: every named design simulated.
pub fn run_deployments(path: &Path, seed: Option<u64>) -> anyhow::Result<Outcome> {
    let r = deployment::run_file(path, 1.0, seed)?;
    Ok(Report::Deployment(Box::new(r)).into())
}
