//! `kvfleet sizing-calc`: offline GPU estimate from a measured concurrency
//! sweep (NAT `nat sizing calc --offline_mode` compatible).

use std::path::PathBuf;

use super::{Outcome, Report};
use crate::progress::Reporter;
use crate::sizing_calc::{self, SizingConfig, input};

/// Flags of `sizing-calc`.
#[derive(Debug, clap::Args)]
pub struct SizingCalcArgs {
    /// Measurements: NAT calc_runner_output.json, a NAT output directory of
    /// job_* runs (newest job wins per concurrency), or a CSV with columns
    /// concurrency,llm_latency_p95,workflow_runtime_p95,total_runtime (+ optional interrupted).
    #[arg(long, value_name = "FILE|DIR", required_unless_present = "simulate")]
    pub metrics: Option<PathBuf>,
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
    /// Simulated-sweep flags (`--simulate`).
    #[command(flatten)]
    pub sim: SimulateSweepArgs,
    /// Output flags.
    #[command(flatten)]
    pub output: super::output::OutputArgs,
}

/// Flags of `sizing-calc --simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateSweepArgs {
    /// Run the concurrency sweep in the simulator instead of reading measurements.
    #[arg(long)]
    pub simulate: bool,
    /// With --simulate: a measured sweep (FILE|DIR as --metrics) to show beside the simulated one.
    #[arg(long, value_name = "FILE|DIR", requires = "simulate")]
    pub compare: Option<PathBuf>,
    /// GPU profile of the simulated fleet: a10g, a100, h100, custom, or a profile .toml.
    #[arg(long, default_value = "h100")]
    pub gpu: String,
    /// Max context of the simulated pool, tokens.
    #[arg(long, default_value_t = 8192)]
    pub max_ctx: u32,
    /// Concurrency levels to simulate.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32")]
    pub concurrencies: Vec<u32>,
    /// Workflows per concurrency level (at least 2 per user are run).
    #[arg(long, default_value_t = 400)]
    pub workflows_per_level: u32,
    /// LLM calls per workflow (run sequentially).
    #[arg(long, default_value_t = 3)]
    pub calls_per_workflow: u32,
    /// Mean exponential think time between calls, seconds.
    #[arg(long, default_value_t = 0.0)]
    pub think_time_s: f64,
    /// Call lengths from a total-token CDF file.
    #[arg(long)]
    pub cdf: Option<PathBuf>,
    /// Call ISL distribution (`fixed:N`, `uniform:A:B`, `exp:MEAN`, `lognormal:MEDIAN:SIGMA[:MAX]`, `range:N:RATIO`).
    #[arg(long)]
    pub isl: Option<String>,
    /// Call OSL distribution.
    #[arg(long)]
    pub osl: Option<String>,
    /// Root seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Profile field overrides.
    #[command(flatten)]
    pub profile: crate::profile::ProfileOverrides,
}

/// Run `sizing-calc`: validate flags, read the sweep, analyse.
pub fn execute(args: SizingCalcArgs, reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
    let config = SizingConfig::new(
        args.test_gpu_count,
        args.target_users,
        args.target_workflow_runtime,
        args.target_llm_latency,
    )?;
    if args.sim.simulate {
        return run_simulated(&args, config, reporter);
    }
    let Some(metrics) = &args.metrics else {
        return Err(crate::error::InputError::field(
            "--metrics",
            "give a measured sweep (FILE|DIR), or --simulate",
        )
        .into());
    };
    let loaded = input::load(metrics)?;
    let notices = loaded.notes.iter().map(|n| format!("note: {n}")).collect();
    let mut report = sizing_calc::analyze(loaded.points, &config);
    report.sources = loaded.sources;
    Ok(Outcome {
        report: Report::SizingCalc(Box::new(report)),
        notices,
    })
}

fn run_simulated(
    args: &SizingCalcArgs,
    config: SizingConfig,
    reporter: &dyn Reporter,
) -> anyhow::Result<Outcome> {
    use crate::error::InputError;
    use crate::sizing_calc::simulate::SweepSimulation;
    use crate::sizing_calc::simulated_report::{SimSettings, SimulatedSizing};
    use crate::workload::spec::WorkloadSpec;

    let a = &args.sim;
    if args.metrics.is_some() {
        return Err(InputError::field(
            "--metrics",
            "not with --simulate (use --compare FILE to show a measured sweep beside it)",
        )
        .into());
    }
    let profile = crate::profile::resolve_profile("--gpu", &a.gpu, &a.profile)?;
    let mut lengths_spec = WorkloadSpec::default_chat();
    if a.cdf.is_some() || a.isl.is_some() || a.osl.is_some() {
        lengths_spec.cdf = a.cdf.clone();
        lengths_spec.isl = a.isl.clone();
        lengths_spec.osl = a.osl.clone();
    }
    lengths_spec.validate_named(crate::workload::spec::FieldNaming::Flags)?;
    let lengths = lengths_spec
        .length_model()?
        .ok_or_else(|| InputError::field("--isl", "give --cdf, or --isl and --osl"))?;
    let sim = SweepSimulation {
        profile: profile.clone(),
        max_ctx_tok: a.max_ctx,
        test_gpu_count: args.test_gpu_count,
        concurrencies: a.concurrencies.clone(),
        workflows_per_level: a.workflows_per_level,
        calls_per_workflow: a.calls_per_workflow,
        think_time_s: a.think_time_s,
        lengths,
        categories: lengths_spec.category_mix()?,
        seed: a.seed,
    };
    sim.validate()?;
    let measured = match &a.compare {
        Some(path) => Some(sizing_calc::analyze(input::load(path)?.points, &config)),
        None => None,
    };
    let pb = crate::progress::bar(
        reporter,
        !args.output.quiet,
        2,
        "simulating sweep and direct search",
    );
    let (points, direct) = rayon::join(|| sim.run_sweep(), || sim.direct_search(&config));
    if let Some(pb) = pb {
        pb.finish();
    }
    let simulated = sizing_calc::analyze(points?, &config);
    let report = SimulatedSizing {
        settings: SimSettings {
            gpu: profile.name.clone(),
            gpus_per_instance: profile.gpus_per_instance,
            max_ctx: a.max_ctx,
            test_gpu_count: args.test_gpu_count,
            concurrencies: a.concurrencies.clone(),
            workflows_per_level: a.workflows_per_level,
            calls_per_workflow: a.calls_per_workflow,
            think_time_s: a.think_time_s,
            lengths: match (&lengths_spec.cdf, &lengths_spec.isl, &lengths_spec.osl) {
                (Some(cdf), _, _) => format!("CDF {}", cdf.display()),
                (None, Some(i), Some(o)) => format!("ISL {i} / OSL {o}"),
                _ => "default chat lengths".into(),
            },
            seed: a.seed,
        },
        simulated,
        measured,
        des_direct: direct?,
    };
    Ok(Report::SizingSimulated(Box::new(report)).into())
}
