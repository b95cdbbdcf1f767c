//! `kvfleet simulate` and `kvfleet run`: flags (the reference tool's names)
//! are resolved into a validated [`SimulateJob`] before any work starts.

use std::path::PathBuf;

use kvfleet_routers::RouterSpec;

use super::output::OutputArgs;
use super::workload_args::WorkloadArgs;
use super::{Outcome, Report};
use crate::engine::dispatch::DispatchPolicy;
use crate::engine::{EngineKind, ServiceModel, SimConfig, Slo, Warmup};
use crate::error::InputError;
use crate::profile::{ProfileOverrides, resolve_profile};
use crate::progress::Reporter;
use crate::scenario::{FLAG_SIM_NAMES, Scenario, check_sim, check_sim_named, pool_config};
use crate::simulate::{SimulateJob, run_job};

/// Flags of `simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Scenario TOML or reference fleet JSON. Each workload flag overrides only its own field of the file's workload (`--lam 20` keeps its lengths and request count); seed, engine and replications override the file's.
    #[arg(long, value_name = "FILE.toml")]
    pub scenario: Option<PathBuf>,
    /// Workload flags.
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// GPU profile of a single pool: a10g, a100, h100, custom, or a profile .toml.
    #[arg(long, default_value = "h100")]
    pub gpu: String,
    /// Instances in the single pool (each instance has the profile's GPUs).
    #[arg(long, default_value_t = 4)]
    pub n_gpus: u32,
    /// Max context of the single pool, tokens.
    #[arg(long, default_value_t = 8192)]
    pub max_ctx: u32,
    /// Two-pool fleet: profile of the short pool (default: --gpu).
    #[arg(long)]
    pub gpu_short: Option<String>,
    /// Two-pool fleet: profile of the long pool (default: --gpu).
    #[arg(long)]
    pub gpu_long: Option<String>,
    /// Two-pool fleet: short-pool instances.
    #[arg(long)]
    pub n_s: Option<u32>,
    /// Two-pool fleet: long-pool instances (0 = single pool).
    #[arg(long)]
    pub n_l: Option<u32>,
    /// Two-pool fleet: short-pool max context = routing threshold, tokens.
    #[arg(long, default_value_t = 4096)]
    pub b_short: u32,
    /// Two-pool fleet: long-pool max context, tokens.
    #[arg(long, default_value_t = 65536)]
    pub long_max_ctx: u32,
    /// Profile field overrides (apply to every pool).
    #[command(flatten)]
    pub profile: ProfileOverrides,
    /// Router kind (length, random, least-loaded, spillover, compress-and-route, ...).
    #[arg(long, default_value = "length")]
    pub router: String,
    /// Instance choice within a pool.
    #[arg(long, value_enum, default_value_t = DispatchPolicy::Jsq)]
    pub dispatch: DispatchPolicy,
    /// Most requests waiting per instance (per pool with `--dispatch central`),
    /// whatever the bottleneck; an arrival that finds its queue full is a
    /// counted `queue_full` rejection. 0 = no queueing (a loss system, as
    /// Erlang-B): a request is rejected unless its instance has a free
    /// sequence slot and KV and nothing else waits. Unset = unbounded.
    #[arg(long, value_name = "N")]
    pub max_queue: Option<u32>,
    /// vLLM max_num_seqs override.
    #[arg(long)]
    pub max_num_seqs: Option<u32>,
    /// `fast` (exact fast-forward) or `step` (naive reference).
    #[arg(long, value_enum)]
    pub engine: Option<EngineKind>,
    /// `iteration` (continuous batching) or `slot` (M/G/c cross-check).
    #[arg(long, value_enum, default_value_t = ServiceModel::Iteration)]
    pub service_model: ServiceModel,
    /// Root seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Fraction of requests excluded as warm-up.
    #[arg(long, default_value_t = 0.1)]
    pub warmup: f64,
    /// Exclude requests arriving in the first S seconds instead.
    #[arg(long)]
    pub warmup_s: Option<f64>,
    /// Independent replications (run in parallel; 95% CIs reported).
    #[arg(long)]
    pub replications: Option<u32>,
    /// TTFT SLO, ms.
    #[arg(long, default_value_t = 500.0)]
    pub slo: f64,
    /// TPOT SLO, ms.
    #[arg(long)]
    pub slo_tpot: Option<f64>,
    /// Omit wall-clock timing from the report (byte-identical output per seed).
    #[arg(long)]
    pub no_timing: bool,
    /// Check engine invariants at every step boundary (slow).
    #[arg(long)]
    pub validate: bool,
    /// Simulate every request even when the fleet is unstable (verdict and backlog reported at the end).
    #[arg(long)]
    pub run_to_completion: bool,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

impl SimulateArgs {
    /// Resolve flags into a validated job.
    pub fn resolve(&self) -> Result<SimulateJob, InputError> {
        // The flags' own values first, so that their errors name the flags.
        check_sim_named(
            self.warmup,
            self.slo,
            self.replications.unwrap_or(1),
            FLAG_SIM_NAMES,
        )?;
        let mut job = match &self.scenario {
            Some(path) => {
                let run = super::fleet::RunFlags {
                    seed: None,
                    replications: None,
                    engine: None,
                    slo: None,
                    warmup: None,
                    no_timing: self.no_timing,
                };
                super::fleet::resolve_fleet(path, &self.workload, &run, self.output.quiet)?
            }
            None => self.resolve_flags()?,
        };
        if let Some(s) = self.seed {
            job.cfg.seed = s;
        }
        if let Some(e) = self.engine {
            job.cfg.engine = e;
        }
        if let Some(r) = self.replications {
            job.replications = r;
        }
        check_sim(
            job.cfg.warmup.fraction,
            job.cfg.slo.ttft_ms,
            job.replications,
        )?;
        job.timing = !self.no_timing;
        job.progress = !self.output.quiet;
        job.cfg.validate |= self.validate;
        job.cfg.run_to_completion |= self.run_to_completion;
        Ok(job)
    }

    fn resolve_flags(&self) -> Result<SimulateJob, InputError> {
        let workload = self.workload.resolve()?;
        let two_pool = self.n_s.is_some() || self.n_l.is_some_and(|n| n > 0);
        let mut pools = Vec::new();
        let router = RouterSpec::default_for(&self.router).ok_or_else(|| {
            InputError::field(
                "--router",
                format!(
                    "unknown router `{}`; expected one of {}",
                    self.router,
                    RouterSpec::KINDS.join(", ")
                ),
            )
        })?;
        if two_pool {
            let (n_s, n_l) = (self.n_s.unwrap_or(1), self.n_l.unwrap_or(1));
            // B = --long-max-ctx is accepted (every request fits the short
            // pool, as in the reference); only a larger B is contradictory.
            if self.b_short > self.long_max_ctx {
                return Err(InputError::field(
                    "--b-short",
                    format!(
                        "expected at most --long-max-ctx ({}), got {}",
                        self.long_max_ctx, self.b_short
                    ),
                ));
            }
            let gs = self.gpu_short.as_deref().unwrap_or(&self.gpu);
            let gl = self.gpu_long.as_deref().unwrap_or(&self.gpu);
            let ps = resolve_profile("--gpu-short", gs, &self.profile)?;
            let pl = resolve_profile("--gpu-long", gl, &self.profile)?;
            if n_s > 0 {
                pools.push(pool_config(
                    &|k| two_pool_flag(k, true),
                    "short".into(),
                    ps,
                    n_s,
                    self.b_short,
                    self.dispatch,
                    self.max_queue,
                    self.max_num_seqs,
                    vec![],
                )?);
            }
            pools.push(pool_config(
                &|k| two_pool_flag(k, false),
                "long".into(),
                pl,
                n_l,
                self.long_max_ctx,
                self.dispatch,
                self.max_queue,
                self.max_num_seqs,
                vec![],
            )?);
        } else {
            let p = resolve_profile("--gpu", &self.gpu, &self.profile)?;
            pools.push(pool_config(
                &single_pool_flag,
                "pool".into(),
                p,
                self.n_gpus,
                self.max_ctx,
                self.dispatch,
                self.max_queue,
                self.max_num_seqs,
                vec![],
            )?);
        }
        if let Some(w) = self.warmup_s
            && !(w.is_finite() && (0.0..=crate::workload::MAX_SIM_TIME_S).contains(&w))
        {
            return Err(InputError::field(
                "--warmup-s",
                format!(
                    "expected seconds in [0, {:e}], got {w}",
                    crate::workload::MAX_SIM_TIME_S
                ),
            ));
        }
        if let Some(t) = self.slo_tpot
            && !(t.is_finite() && t > 0.0)
        {
            return Err(InputError::field(
                "--slo-tpot",
                format!("expected a positive number of ms, got {t}"),
            ));
        }
        Ok(SimulateJob {
            cfg: SimConfig {
                router,
                service_model: self.service_model,
                warmup: Warmup {
                    fraction: self.warmup,
                    seconds: self.warmup_s,
                },
                slo: Slo {
                    ttft_ms: self.slo,
                    tpot_ms: self.slo_tpot,
                },
                ..SimConfig::new(pools, 42, self.slo)
            },
            workload,
            per_pool: Vec::new(),
            replications: 1,
            timing: true,
            progress: true,
            streams: None,
        })
    }
}

/// The flag that sets a single-pool key (`instances` → `--n-gpus`).
pub fn single_pool_flag(key: &str) -> String {
    match key {
        "instances" => "--n-gpus".into(),
        k => format!("--{}", k.replace('_', "-")),
    }
}

/// The flag that sets a two-pool key of the short (or long) pool.
fn two_pool_flag(key: &str, short: bool) -> String {
    match (key, short) {
        ("instances", true) => "--n-s".into(),
        ("instances", false) => "--n-l".into(),
        ("max_ctx", true) => "--b-short".into(),
        ("max_ctx", false) => "--long-max-ctx".into(),
        (k, _) => format!("--{}", k.replace('_', "-")),
    }
}

/// Run `simulate`.
pub fn execute(args: SimulateArgs, reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
    let job = args.resolve()?;
    Ok(Report::Simulate(Box::new(run_job(&job, reporter)?)).into())
}

/// Flags of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the scenario's replications.
    #[arg(long)]
    pub replications: Option<u32>,
    /// Omit wall-clock timing from the report.
    #[arg(long)]
    pub no_timing: bool,
    /// Simulate every request even when the fleet is unstable (as `[sim] run_to_completion`).
    #[arg(long)]
    pub run_to_completion: bool,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Run `run SCENARIO.toml` (a simulation scenario, or a planner scenario with a `[plan]` table).
pub fn execute_scenario(args: RunArgs, reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
    let text = crate::input_file::read_text(&args.scenario)?;
    if super::plan_scenario::is_plan_scenario(&text) {
        let command = super::plan_scenario::command(&args.scenario, &text, args.output)?;
        return super::execute(command, reporter);
    }
    if crate::deployment::is_deployment_scenario(&text) {
        return super::rack_plan::run_deployments(&args.scenario, args.seed);
    }
    let mut job = Scenario::load(&args.scenario)?.into_job()?;
    if let Some(s) = args.seed {
        job.cfg.seed = s;
    }
    if let Some(r) = args.replications {
        check_sim_named(
            job.cfg.warmup.fraction,
            job.cfg.slo.ttft_ms,
            r,
            FLAG_SIM_NAMES,
        )?;
        job.replications = r;
    }
    job.timing = !args.no_timing;
    job.progress = !args.output.quiet;
    job.cfg.run_to_completion |= args.run_to_completion;
    Ok(Report::Simulate(Box::new(run_job(&job, reporter)?)).into())
}
