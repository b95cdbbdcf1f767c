//! Command-line interface. Raw arguments are parsed by clap, resolved into a
//! validated configuration (bad input → [`crate::error::InputError`], exit 2)
//! and only then handed to the library.

pub mod analytic;
pub mod benchmark;
pub mod calibrate;
pub mod calibrate_serving;
pub mod compare;
pub mod disagg;
pub mod fleet;
pub mod gridflex;
pub mod optimize;
pub mod output;
pub mod pareto;
pub mod plan_scenario;
pub mod profile;
pub mod progress;
pub mod simulate;
pub mod sizing_calc;
pub mod tpw;
pub mod whatif;
pub mod workload_args;

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

/// Parse the arguments; a usage error becomes one line (exit 2), help and
/// version are printed (exit 0).
fn parse_args() -> Result<Cli, InputError> {
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => return Err(InputError::Usage(one_line(&e.to_string()))),
    };
    Cli::from_arg_matches(&matches).map_err(|e| InputError::Usage(one_line(&e.to_string())))
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
            Command::Benchmark(a) => (Some(&a.output), a.csv.as_deref(), a.plot.as_deref()),
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
        if let Command::SizingCalc(a) = self
            && let Some(p) = a.plot_dir.as_deref()
        {
            out.push(("--plot-dir", p, Dir));
        }
        out
    }
}

/// Parse the process arguments and run the chosen subcommand.
pub fn run() -> anyhow::Result<()> {
    let cli = parse_args()?;
    for (flag, path, kind) in cli.command.output_paths() {
        output::check_output_path(flag, path, kind)?;
    }
    init_logging();
    crate::progress::set_reporter(Box::new(progress::StderrReporter));
    match cli.command {
        Command::Simulate(args) => simulate::run(*args),
        Command::Run(args) => simulate::run_scenario(args),
        Command::SimulateFleet(args) => fleet::run(*args),
        Command::CompareRouters(args) => compare::run(*args),
        Command::Optimize(args) => optimize::run(*args),
        Command::Whatif(args) => whatif::run(*args),
        Command::Pareto(args) => pareto::run(*args),
        Command::GridFlex(args) => gridflex::run(*args),
        Command::TokPerWatt(args) => tpw::run(*args),
        Command::Disagg(args) => disagg::run(*args),
        Command::SizingCalc(args) => sizing_calc::run(*args),
        Command::Analytic(args) => analytic::run(*args),
        Command::Profile(args) => profile::run(*args),
        Command::Calibrate(args) => calibrate::run(*args),
        Command::Benchmark(args) => benchmark::run(*args),
    }
}

/// Log lines go to stderr; `KVFLEET_LOG` sets the filter (default `warn`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KVFLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}
