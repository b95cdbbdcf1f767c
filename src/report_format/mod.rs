//! The forms a report can take besides its serde (JSON) form — one trait
//! per text format ([`HumanReport`] tables, [`CsvReport`]) and SVG charts —
//! with one module per subcommand. Reports render to strings or files;
//! where the text goes (stdout, a notebook cell) is the front end's
//! business. Planners never import this module.

mod analytic;
mod benchmark;
mod cluster;
mod destinations;
mod disagg;
mod gridflex;
mod optimize;
mod pareto;
mod profile;
mod rack_plan;
mod tpw;
mod whatif;

use std::path::{Path, PathBuf};

use crate::api::Report;

pub use destinations::Destinations;

/// A report that can be shown to a person as text (usually a table).
pub trait HumanReport {
    /// Render the report as text.
    fn human(&self) -> String;
}

/// A report that has a CSV form (sweeps).
pub trait CsvReport {
    /// Render the report as CSV text with a header row.
    fn csv(&self) -> String;
}

impl Report {
    /// The human form (a table with notes), as the CLI prints it.
    pub fn human(&self) -> String {
        match self {
            Report::Simulate(r) => r.human(),
            Report::CompareRouters(r) => r.human(),
            Report::Optimize(r) => r.human(),
            Report::Whatif(r) => r.human(),
            Report::Pareto(r) => r.human(),
            Report::GridFlex(r) => r.human(),
            Report::Disagg(r) => r.human(),
            Report::TokPerWatt(r) => r.human(),
            Report::SizingCalc(r) => r.human(),
            Report::SizingSimulated(r) => r.human(),
            Report::Analytic(r) => r.human(),
            Report::Profile(r) => r.human(),
            Report::ProfileStep(r) => r.human(),
            Report::ProfileValidate(r) => r.human(),
            Report::Calibration(c) => c.text.clone(),
            Report::Shard(d) => d.human(),
            Report::Benchmark(r) => r.human(),
            Report::Cluster(r) => r.human(),
            Report::Deployment(r) => r.human(),
            Report::RackPlan(r) => r.human(),
        }
    }

    /// The CSV form, for reports that have one (sweeps, candidates, routers).
    pub fn csv(&self) -> Option<String> {
        Some(match self {
            Report::CompareRouters(r) => r.csv(),
            Report::Whatif(r) => r.csv(),
            Report::Pareto(r) => r.csv(),
            Report::GridFlex(r) => r.csv(),
            Report::Disagg(r) => r.csv(),
            Report::SizingCalc(r) => r.csv(),
            Report::SizingSimulated(r) => r.simulated.csv(),
            Report::Benchmark(r) => r.csv(),
            Report::Cluster(r) => r.csv(),
            Report::RackPlan(r) => r.csv(),
            _ => return None,
        })
    }

    /// Write the report's chart as SVG to `path` (whatif, pareto, grid-flex);
    /// `false` when the report has no chart.
    pub fn write_plot(&self, path: &Path) -> anyhow::Result<bool> {
        match self {
            Report::Whatif(r) => whatif::plot(r, path)?,
            Report::Pareto(r) => pareto::plot(r, path)?,
            Report::GridFlex(r) => gridflex::plot(r, path)?,
            Report::Benchmark(r) => benchmark::plot(r, path)?,
            Report::RackPlan(r) => rack_plan::plot(r, path)?,
            Report::Cluster(r) => cluster::plot(r, path)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Write the report's diagram as SVG to `path` (cluster: the racks);
    /// `false` when the report has none.
    pub fn write_diagram(&self, path: &Path) -> anyhow::Result<bool> {
        match self {
            Report::Cluster(r) => cluster::diagram(r, path)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Write the report's charts as SVG files into `dir` (sizing-calc);
    /// returns the files written.
    pub fn write_plot_dir(&self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        match self {
            Report::SizingCalc(r) => crate::sizing_calc::plot::write_plots(r, dir),
            Report::SizingSimulated(r) => crate::sizing_calc::plot::write_plots(&r.simulated, dir),
            _ => Ok(Vec::new()),
        }
    }
}
