//! `kvfleet sizing-calc`: offline GPU estimate from a measured concurrency
//! sweep (NAT `nat sizing calc --offline_mode` compatible).

use std::path::PathBuf;

use crate::sizing_calc::{self, SizingConfig, input, plot};

/// Flags of `sizing-calc`.
#[derive(Debug, clap::Args)]
pub struct SizingCalcArgs {
    /// Measurements: NAT calc_runner_output.json, a NAT output directory of
    /// job_* runs (newest job wins per concurrency), or a CSV with columns
    /// concurrency,llm_latency_p95,workflow_runtime_p95,total_runtime (+ optional interrupted).
    #[arg(long, value_name = "FILE|DIR")]
    pub metrics: PathBuf,
    /// GPUs the measurements were taken on.
    #[arg(long, value_name = "G")]
    pub test_gpu_count: u32,
    /// Users the fleet must serve.
    #[arg(long, value_name = "U")]
    pub target_users: u32,
    /// Target p95 workflow runtime, seconds (0 = not a target).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub target_workflow_runtime: Option<f64>,
    /// Target p95 LLM latency, seconds (0 = not a target).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub target_llm_latency: Option<f64>,
    /// Write SVG charts (concurrency vs p95 with fit, outliers, target) here.
    #[arg(long, value_name = "DIR")]
    pub plot_dir: Option<PathBuf>,
    /// Also write the per-concurrency table as CSV to this file.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Output flags.
    #[command(flatten)]
    pub output: super::output::OutputArgs,
}

/// Run `sizing-calc`: validate flags, read the sweep, analyse, emit.
pub fn run(args: SizingCalcArgs) -> anyhow::Result<()> {
    let config = SizingConfig::new(
        args.test_gpu_count,
        args.target_users,
        args.target_workflow_runtime,
        args.target_llm_latency,
    )?;
    let loaded = input::load(&args.metrics)?;
    if !args.output.quiet {
        for note in &loaded.notes {
            eprintln!("note: {note}");
        }
    }
    let mut report = sizing_calc::analyze(loaded.points, &config);
    report.sources = loaded.sources;
    if let Some(dir) = &args.plot_dir {
        let written = plot::write_plots(&report, dir)?;
        if !args.output.quiet {
            for path in written {
                eprintln!("wrote {}", path.display());
            }
        }
    }
    if let Some(path) = &args.csv {
        super::output::write_csv(&report, path)?;
    }
    super::output::emit(&report, &args.output)
}
