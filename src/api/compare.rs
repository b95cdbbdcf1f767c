//! `kvfleet compare-routers`: one fleet, one arrival stream, several routers.

use std::path::PathBuf;

use kvfleet_routers::RouterSpec;

use super::simulate::SimulateArgs;
use super::{Outcome, Report};
use crate::compare::compare;
use crate::error::InputError;
use crate::progress::Reporter;

/// Flags of `compare-routers`: the fleet and workload flags of `simulate`
/// (its `--router` is ignored) plus the router list.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Routers to compare, comma-separated kinds.
    #[arg(long, default_value = "length,compress-and-route,random")]
    pub routers: String,
    /// γ of `compress-and-route`: requests up to γ·B may be compressed to fit B = --b-short.
    #[arg(long, default_value_t = 1.5)]
    pub gamma: f64,
    /// Also write the rows as CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Fleet, workload and run flags.
    #[command(flatten)]
    pub sim: SimulateArgs,
}

fn router_list(args: &CompareArgs) -> Result<Vec<RouterSpec>, InputError> {
    let mut specs = RouterSpec::parse_list(&args.routers)
        .map_err(|e| InputError::field("--routers", e.to_string()))?;
    if !(args.gamma.is_finite() && args.gamma >= 1.0) {
        return Err(InputError::field(
            "--gamma",
            format!("expected γ ≥ 1, got {}", args.gamma),
        ));
    }
    for s in &mut specs {
        if let RouterSpec::CompressAndRoute { gamma, .. } = s {
            *gamma = args.gamma;
        }
    }
    Ok(specs)
}

/// Run `compare-routers`.
pub fn execute(args: CompareArgs, reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
    let routers = router_list(&args)?;
    let job = args.sim.resolve()?;
    Ok(Report::CompareRouters(Box::new(compare(&job, &routers, reporter)?)).into())
}
