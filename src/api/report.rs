//! The result of any subcommand: one variant per report type. Its serde
//! form (untagged: just the inner report) is the subcommand's `--json`
//! document.

use serde::Serialize;

use super::analytic::AnalyticReport;
use super::calibrate::CalibrationReport;
use super::profile::{ProfileReport, StepReport, ValidateOutput};
use crate::compare::CompareReport;
use crate::metrics::report::SimReport;
use crate::planner::disagg::DisaggReport;
use crate::planner::gridflex::GridFlexReport;
use crate::planner::optimize::OptimizeReport;
use crate::planner::pareto::ParetoReport;
use crate::planner::tpw::TpwReport;
use crate::planner::whatif::WhatifReport;
use crate::sizing_calc::SizingReport;
use crate::sizing_calc::simulated_report::SimulatedSizing;

/// A subcommand's report.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Report {
    /// `simulate`, `run` (simulation scenarios) and `simulate-fleet`.
    Simulate(Box<SimReport>),
    /// `compare-routers`.
    CompareRouters(Box<CompareReport>),
    /// `optimize`.
    Optimize(Box<OptimizeReport>),
    /// `whatif`.
    Whatif(Box<WhatifReport>),
    /// `pareto`.
    Pareto(Box<ParetoReport>),
    /// `grid-flex`.
    GridFlex(Box<GridFlexReport>),
    /// `disagg`.
    Disagg(Box<DisaggReport>),
    /// `tok-per-watt`.
    TokPerWatt(Box<TpwReport>),
    /// `sizing-calc` on a measured sweep.
    SizingCalc(Box<SizingReport>),
    /// `sizing-calc --simulate`.
    SizingSimulated(Box<SimulatedSizing>),
    /// `analytic`.
    Analytic(Box<AnalyticReport>),
    /// `profile`.
    Profile(Box<ProfileReport>),
    /// `profile step`.
    ProfileStep(Box<StepReport>),
    /// `profile validate`.
    ProfileValidate(Box<ValidateOutput>),
    /// `calibrate`.
    Calibration(Box<CalibrationReport>),
    /// `benchmark`.
    Benchmark(Box<crate::benchmark::report::BenchmarkReport>),
    /// `cluster`.
    Cluster(Box<crate::cluster::report::ClusterReport>),
    /// `run` on a deployment scenario (`[[clients]]`, `[[deployments]]`).
    Deployment(Box<crate::deployment::DeploymentReport>),
    /// `rack-plan`.
    RackPlan(Box<crate::deployment::search::RackPlanReport>),
    /// A sweeping command run with `--shard I/N`: the shard's items.
    Shard(Box<super::merge::ShardDoc>),
}

/// A report and the notices that came with it (lines for the user: stderr
/// in the CLI, Python warnings in the package).
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// Notes about the input or the run that are not part of the report.
    pub notices: Vec<String>,
}

impl From<Report> for Outcome {
    fn from(report: Report) -> Self {
        Outcome {
            report,
            notices: Vec::new(),
        }
    }
}

impl Report {
    /// The `--json` document (pretty-printed, as the CLI prints it).
    pub fn to_json_pretty(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    /// Why the run measured nothing, when it did not (the CLI exits 1 after
    /// printing the report): a simulation whose verdict is `no-data` or
    /// `all-rejected`.
    pub fn failure(&self) -> Option<String> {
        match self {
            Report::Simulate(r) => crate::simulate::fail_if_nothing_measured(r)
                .err()
                .map(|e| e.to_string()),
            _ => None,
        }
    }
}
