//! Disaggregated multi-client deployments on one rack (DESIGN §15, seed 002):
//! workers of `N x SPEC` computed profiles placed on whole trays of a rack
//! preset ([`rack`]), clients with their own workloads, loads and SLOs, and
//! named designs mapping clients to prefill/decode pools, shared pools
//! allowed ([`file`], [`model`]); [`simulate`] runs a design in the engine
//! (`kvfleet run FILE.toml`), [`screen`] estimates one client's pools
//! analytically and [`search`] splits the rack's trays between the clients
//! (`kvfleet rack-plan FILE.toml`).

pub mod file;
pub mod model;
pub mod rack;
pub mod resolve;
pub mod results;
pub mod screen;
pub mod search;
pub mod simulate;
mod traffic;

use std::path::Path;

use serde::Serialize;

pub use file::is_deployment_scenario;
pub use model::{Client, Design, Load, Role, Scenario};
pub use rack::RackPreset;
pub use simulate::{ClientResult, DesignResult, simulate_design};

use crate::error::InputError;

/// `kvfleet run` on a deployment scenario: every named design simulated.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentReport {
    /// The scenario's description.
    pub description: Option<String>,
    /// Rack preset.
    pub rack: String,
    /// GPUs in the rack.
    pub rack_gpus: u32,
    /// Load multiplier applied to every client.
    pub load_scale: f64,
    /// Required fraction of requests meeting the SLOs.
    pub slo_target: f64,
    /// The clients.
    pub clients: Vec<Client>,
    /// Every design's results.
    pub designs: Vec<DesignResult>,
}

/// Simulate every design of the scenario at `path`.
pub fn run_file(
    path: &Path,
    load_scale: f64,
    seed: Option<u64>,
) -> Result<DeploymentReport, InputError> {
    let mut scn = model::load(path)?;
    if let Some(s) = seed {
        scn.seed = s;
    }
    check_scale(load_scale)?;
    if scn.designs.is_empty() {
        return Err(InputError::File {
            path: path.to_path_buf(),
            reason: "`deployments`: `kvfleet run` needs at least one [[deployments]] design (or use `kvfleet rack-plan`)".into(),
        });
    }
    let designs = scn
        .designs
        .iter()
        .map(|d| simulate_design(&scn, d, load_scale))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DeploymentReport {
        description: scn.description.clone(),
        rack: scn.rack.name.to_string(),
        rack_gpus: scn.rack.gpus(),
        load_scale,
        slo_target: scn.sim.slo_target,
        clients: scn.clients.clone(),
        designs,
    })
}

/// Check a load multiplier.
pub fn check_scale(k: f64) -> Result<(), InputError> {
    if k.is_finite() && k > 0.0 && k <= 100.0 {
        Ok(())
    } else {
        Err(InputError::field(
            "--load-scale",
            format!("expected a multiplier in (0, 100], got {k}"),
        ))
    }
}
