//! The library's front door: one request type per subcommand, one report
//! type per result, and [`execute`] between them.
//!
//! Every front end speaks the same vocabulary — the flags of the CLI. A
//! front end turns its input into a [`Command`] (the CLI from `argv`, the
//! Python package from keyword arguments via [`parse`], planner scenario
//! files through [`plan_scenario`]); each subcommand's arguments resolve
//! into a validated library configuration (bad input → one
//! [`InputError`] naming the flag, before any work), the library runs it,
//! reporting progress to the [`Reporter`] the caller passes, and the result
//! comes back as a [`Report`], whose serde form is the `--json` document.
//! How a report is shown (table, CSV, SVG) is [`crate::report_format`]'s
//! business; where it goes (stdout, files, a notebook) is the front end's.

pub mod analytic;
pub mod benchmark;
pub mod calibrate;
pub mod calibrate_serving;
pub mod cluster;
pub mod compare;
pub mod disagg;
pub mod fleet;
pub mod gridflex;
pub mod merge;
pub mod optimize;
pub mod output;
pub mod pareto;
pub mod plan_scenario;
pub mod profile;
pub mod rack_plan;
mod report;
pub mod simulate;
pub mod sizing_calc;
pub mod tpw;
pub mod whatif;
pub mod workload_args;

pub use report::{Outcome, Report};

use crate::progress::Reporter;

use std::any::TypeId;
use std::path::Path;

use clap::builder::ValueParser;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::error::InputError;
use output::OutputKind;

/// kvfleet: capacity planning for LLM serving fleets.
#[derive(Debug, Parser)]
#[command(name = "kvfleet", version, about, long_about = None, args_override_self = true)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a fleet on a workload (built-in default chat workload without flags).
    Simulate(Box<simulate::SimulateArgs>),
    /// Compare routers on one fleet and one arrival stream.
    CompareRouters(Box<compare::CompareArgs>),
    /// Cheapest fleet shape (homogeneous or two-pool) that the DES confirms meets the SLO.
    Optimize(Box<optimize::OptimizeArgs>),
    /// Fleet size per arrival rate (and per GPU type), with the rate at which each size stops meeting the SLO.
    Whatif(Box<whatif::WhatifArgs>),
    /// Short-pool threshold sweep: cost / latency frontier and recommendation.
    Pareto(Box<pareto::ParetoArgs>),
    /// Power curtailment depth against latency: sustained (analytic) and for a demand-response event (DES).
    GridFlex(Box<gridflex::GridFlexArgs>),
    /// Disaggregated prefill/decode: cheapest (nP, nD) for TTFT and TPOT targets, DES-verified, against aggregated fleets.
    Disagg(Box<disagg::DisaggArgs>),
    /// Output tokens per joule of SLO-sized fleets (per GPU type, or homogeneous vs two-pool), with a utilisation sweep.
    TokPerWatt(Box<tpw::TpwArgs>),
    /// Simulate a multi-pool fleet file (reference JSON or scenario TOML).
    SimulateFleet(Box<fleet::SimulateFleetArgs>),
    /// Run a scenario TOML file.
    Run(simulate::RunArgs),
    /// Measured-concurrency-sweep GPU estimate (NAT `sizing calc` compatible).
    SizingCalc(Box<sizing_calc::SizingCalcArgs>),
    /// Analytic queueing estimates for one pool, side by side (optionally beside the DES).
    Analytic(Box<analytic::AnalyticArgs>),
    /// A profile's derived numbers (KV capacity, step and prefill times, throughput, power); `profile step` for one roofline step.
    Profile(Box<profile::ProfileArgs>),
    /// Fit a profile's W, H and prefill cost per token to measured step times (CSV); prints the profile as TOML.
    Calibrate(Box<calibrate::CalibrateArgs>),
    /// Fixed-concurrency serving benchmark (vLLM benchmark_serving / InferenceMAX) on a simulated deployment; `--compare` with measured rows.
    Benchmark(Box<benchmark::BenchmarkArgs>),
    /// Rack-scale sizing: racks, TP×PP×EP plan and batch, KV tiers (HBM / host / NVMe) and utilisation for concurrent users, with a DES check.
    Cluster(Box<cluster::ClusterArgs>),
    /// Merge the shard documents of a sweep run with `--shard I/N` into the report one run gives.
    Merge(Box<merge::MergeArgs>),
    /// Split a rack's trays between clients' prefill/decode workers (deployment scenario file).
    RackPlan(Box<rack_plan::RackPlanArgs>),
}

/// The clap command with kvfleet's value rules applied to every argument of
/// every subcommand: numeric values may be negative (`--slo -1` reaches the
/// range check instead of being taken for a flag), and counts accept a whole
/// number in scientific notation (`--n-req 1e6`).
pub fn command() -> clap::Command {
    fn adjust(cmd: clap::Command) -> clap::Command {
        cmd.mut_args(|a| {
            if !a.get_action().takes_values() {
                return a;
            }
            let t = a.get_value_parser().type_id();
            let a = a.allow_negative_numbers(true);
            if t == TypeId::of::<u64>() {
                a.value_parser(ValueParser::new(parse_count::<u64>))
            } else if t == TypeId::of::<u32>() {
                a.value_parser(ValueParser::new(parse_count::<u32>))
            } else if t == TypeId::of::<u16>() {
                a.value_parser(ValueParser::new(parse_count::<u16>))
            } else if t == TypeId::of::<usize>() {
                a.value_parser(ValueParser::new(parse_count::<usize>))
            } else {
                a
            }
        })
        .mut_subcommands(adjust)
    }
    adjust(Cli::command())
}

/// Parse a count: a whole number ≥ 0, also in scientific notation (`1e6`,
/// `2.5E3`), that fits the target type.
pub fn parse_count<T: TryFrom<u64>>(s: &str) -> Result<T, String> {
    let t = s.trim();
    let whole = match t.parse::<u64>() {
        Ok(v) => v,
        Err(_) => match t.parse::<f64>() {
            // 2^64 is exactly representable; anything below it that is whole converts exactly.
            Ok(f)
                if f.is_finite()
                    && f >= 0.0
                    && f.fract() == 0.0
                    && f < 18_446_744_073_709_551_616.0 =>
            {
                f as u64
            }
            _ => return Err(format!("expected a whole number ≥ 0, got `{s}`")),
        },
    };
    T::try_from(whole).map_err(|_| format!("{whole} is too large for this count"))
}

/// What parsing an argument list gave: a command to run, or text to print
/// (`--help`, `--version`) and stop.
#[derive(Debug)]
pub enum Parsed {
    /// A command to resolve and run.
    Run(Box<Command>),
    /// Help or version text, to be printed as is.
    Text(String),
}

/// Parse an argument list (the first item is the program name); a usage
/// error becomes one line naming the flag (exit 2 in the CLI, `InputError`
/// in Python).
pub fn parse<I, T>(args: I) -> Result<Parsed, InputError>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) if !e.use_stderr() => return Ok(Parsed::Text(e.render().to_string())),
        Err(e) => return Err(InputError::Usage(one_line(&e.to_string()))),
    };
    let cli =
        Cli::from_arg_matches(&matches).map_err(|e| InputError::Usage(one_line(&e.to_string())))?;
    Ok(Parsed::Run(Box::new(cli.command)))
}

/// A clap message up to its first blank line, on one line, without the
/// leading `error: `.
fn one_line(msg: &str) -> String {
    let text: Vec<&str> = msg
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = text.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

impl Command {
    /// Every output path the command was given, with its flag and kind.
    pub fn output_paths(&self) -> Vec<(&'static str, &Path, OutputKind)> {
        use OutputKind::{Dir, File};
        let (output, csv, plot): (Option<&output::OutputArgs>, _, _) = match self {
            Command::Simulate(a) => (Some(&a.output), None, None),
            Command::Run(a) => (Some(&a.output), None, None),
            Command::SimulateFleet(a) => (Some(&a.output), None, None),
            Command::CompareRouters(a) => (Some(&a.sim.output), a.csv.as_deref(), None),
            Command::Optimize(a) => (Some(&a.output), None, None),
            Command::Whatif(a) => (Some(&a.output), a.csv.as_deref(), a.plot.as_deref()),
            Command::Pareto(a) => (Some(&a.output), a.csv.as_deref(), a.plot.as_deref()),
            Command::GridFlex(a) => (Some(&a.output), a.csv.as_deref(), a.plot.as_deref()),
            Command::TokPerWatt(a) => (Some(&a.output), None, None),
            Command::Disagg(a) => (Some(&a.output), a.csv.as_deref(), None),
            Command::SizingCalc(a) => (Some(&a.output), a.csv.as_deref(), None),
            Command::Analytic(a) => (Some(&a.output), None, None),
            Command::Profile(a) => (Some(&a.output), None, None),
            Command::Calibrate(_) => (None, None, None),
            Command::Merge(a) => (Some(&a.output), a.csv.as_deref(), a.plot.as_deref()),
            Command::Benchmark(a) => (Some(&a.output), a.csv.as_deref(), a.plot.as_deref()),
            Command::Cluster(a) => (Some(&a.output), a.csv.as_deref(), a.plot.as_deref()),
            Command::RackPlan(a) => (Some(&a.output), a.csv.as_deref(), a.plot.as_deref()),
        };
        let mut out = Vec::new();
        if let Some(p) = output.and_then(|o| o.out.as_deref()) {
            out.push(("--out", p, File));
        }
        if let Command::Calibrate(a) = self
            && let Some(p) = a.out.as_deref()
        {
            out.push(("--out", p, File));
        }
        if let Some(p) = csv {
            out.push(("--csv", p, File));
        }
        if let Some(p) = plot {
            out.push(("--plot", p, File));
        }
        if let Command::Cluster(a) = self
            && let Some(p) = a.diagram.as_deref()
        {
            out.push(("--diagram", p, File));
        }
        if let Command::SizingCalc(a) = self
            && let Some(p) = a.plot_dir.as_deref()
        {
            out.push(("--plot-dir", p, Dir));
        }
        out
    }
}

impl Command {
    /// The subcommand's name as typed (`simulate`, `grid-flex`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Simulate(_) => "simulate",
            Command::CompareRouters(_) => "compare-routers",
            Command::Optimize(_) => "optimize",
            Command::Whatif(_) => "whatif",
            Command::Pareto(_) => "pareto",
            Command::GridFlex(_) => "grid-flex",
            Command::Disagg(_) => "disagg",
            Command::TokPerWatt(_) => "tok-per-watt",
            Command::SimulateFleet(_) => "simulate-fleet",
            Command::Run(_) => "run",
            Command::SizingCalc(_) => "sizing-calc",
            Command::Analytic(_) => "analytic",
            Command::Profile(_) => "profile",
            Command::Calibrate(_) => "calibrate",
            Command::Merge(_) => "merge",
            Command::Benchmark(_) => "benchmark",
            Command::Cluster(_) => "cluster",
            Command::RackPlan(_) => "rack-plan",
        }
    }

    /// The output flags (`--json`, `--out`, `--quiet`), where the command has them.
    pub fn output(&self) -> Option<&output::OutputArgs> {
        Some(match self {
            Command::Simulate(a) => &a.output,
            Command::Run(a) => &a.output,
            Command::SimulateFleet(a) => &a.output,
            Command::CompareRouters(a) => &a.sim.output,
            Command::Optimize(a) => &a.output,
            Command::Whatif(a) => &a.output,
            Command::Pareto(a) => &a.output,
            Command::GridFlex(a) => &a.output,
            Command::TokPerWatt(a) => &a.output,
            Command::Disagg(a) => &a.output,
            Command::SizingCalc(a) => &a.output,
            Command::Analytic(a) => &a.output,
            Command::Profile(a) => &a.output,
            Command::Merge(a) => &a.output,
            Command::Benchmark(a) => &a.output,
            Command::Cluster(a) => &a.output,
            Command::RackPlan(a) => &a.output,
            Command::Calibrate(_) => return None,
        })
    }

    /// Whether progress should be shown (not with `--quiet`).
    pub fn shows_progress(&self) -> bool {
        match self {
            Command::Calibrate(a) => !a.quiet,
            c => c.output().is_none_or(|o| !o.quiet),
        }
    }
}

/// Resolve a command into its validated configuration and run it,
/// reporting progress to `reporter`. Bad input fails before any work with
/// an [`InputError`] naming the flag (or file and field).
pub fn execute(command: Command, reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
    match command {
        Command::Simulate(a) => simulate::execute(*a, reporter),
        Command::Run(a) => simulate::execute_scenario(a, reporter),
        Command::SimulateFleet(a) => fleet::execute(*a, reporter),
        Command::CompareRouters(a) => compare::execute(*a, reporter),
        Command::Optimize(a) => optimize::execute(*a, reporter),
        Command::Whatif(a) => whatif::execute(*a, reporter),
        Command::Pareto(a) => pareto::execute(*a, reporter),
        Command::GridFlex(a) => gridflex::execute(*a, reporter),
        Command::TokPerWatt(a) => tpw::execute(*a, reporter),
        Command::Disagg(a) => disagg::execute(*a, reporter),
        Command::SizingCalc(a) => sizing_calc::execute(*a, reporter),
        Command::Analytic(a) => analytic::execute(*a, reporter),
        Command::Profile(a) => profile::execute(*a),
        Command::Calibrate(a) => calibrate::execute(*a),
        Command::Merge(a) => merge::execute(*a, reporter),
        Command::Benchmark(a) => benchmark::execute(*a),
        Command::Cluster(a) => cluster::execute(*a),
        Command::RackPlan(a) => rack_plan::execute(*a),
    }
}

/// The reporter a command's run should use: the caller's, or nothing with `--quiet`.
fn progress_for<'a>(reporter: &'a dyn Reporter, output: &output::OutputArgs) -> &'a dyn Reporter {
    if output.quiet {
        crate::progress::SILENT
    } else {
        reporter
    }
}
