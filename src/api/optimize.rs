//! `kvfleet optimize`: the cheapest fleet shape that the DES confirms.

use std::path::PathBuf;

use super::output::OutputArgs;
use super::{Outcome, Report};
use crate::error::InputError;
use crate::planner::SizingSettings;
use crate::planner::optimize::{OptimizeConfig, availability, optimize};
use crate::profile::{ProfileOverrides, resolve_profile};
use crate::progress::Reporter;
use crate::workload::cdf::LengthCdf;
use crate::workload::spec::WorkloadSpec;

/// Flags shared by the planners (reference names).
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// Total-token CDF of the workload.
    #[arg(long)]
    pub cdf: PathBuf,
    /// TTFT SLO (P99 per pool), ms.
    #[arg(long, default_value_t = 500.0)]
    pub slo: f64,
    /// Long-pool (and homogeneous) max context, tokens.
    #[arg(long, visible_alias = "max-ctx", default_value_t = 65536)]
    pub long_max_ctx: u32,
    /// Short-pool profile.
    #[arg(long, default_value = "a100")]
    pub gpu_short: String,
    /// Long-pool profile.
    #[arg(long, default_value = "a100")]
    pub gpu_long: String,
    /// Requests per DES simulation.
    #[arg(long, default_value_t = 20_000)]
    pub n_sim_req: u64,
    /// Seed of every simulation (common random numbers across candidates).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Node availability A (counts become ceil(n / A)).
    #[arg(long, conflicts_with = "failure_rate_per_day")]
    pub node_avail: Option<f64>,
    /// Node failure rate per node-day (with --mttr-hours: A = 1/(1 + r·MTTR/24)).
    #[arg(long, requires = "mttr_hours")]
    pub failure_rate_per_day: Option<f64>,
    /// Mean time to repair, hours.
    #[arg(long)]
    pub mttr_hours: Option<f64>,
}

/// Most node failures per node-day accepted by `--failure-rate-per-day`.
pub const MAX_FAILURES_PER_DAY: f64 = 24.0;
/// Longest mean time to repair accepted by `--mttr-hours` (one year).
pub const MAX_MTTR_HOURS: f64 = 8760.0;
/// Lowest node availability accepted (counts become ceil(n / A)).
pub const MIN_AVAILABILITY: f64 = 0.01;

impl PlanArgs {
    /// The workload at rate `lam`.
    pub fn workload(&self, lam: f64) -> Result<WorkloadSpec, InputError> {
        if !(lam.is_finite() && lam > 0.0) {
            return Err(InputError::field(
                "--lam",
                format!("expected a positive rate, got {lam}"),
            ));
        }
        self.check_n_sim_req()?;
        let w = WorkloadSpec {
            cdf: Some(self.cdf.clone()),
            lam: Some(lam),
            n_requests: Some(self.n_sim_req),
            ..WorkloadSpec::default()
        };
        w.validate_named(crate::workload::spec::FieldNaming::Flags)
            .map_err(|e| match e {
                // The request count of these commands is --n-sim-req.
                InputError::Field { field, reason } if field == "--n-req" => {
                    InputError::field("--n-sim-req", reason)
                }
                e => e,
            })?;
        Ok(w)
    }

    fn check_n_sim_req(&self) -> Result<(), InputError> {
        if self.n_sim_req < 1000 {
            return Err(InputError::field(
                "--n-sim-req",
                format!(
                    "expected at least 1000 requests per simulation, got {}",
                    self.n_sim_req
                ),
            ));
        }
        Ok(())
    }

    /// Node availability from the flags (1 without them). Failure rates
    /// above [`MAX_FAILURES_PER_DAY`], repair times above [`MAX_MTTR_HOURS`]
    /// and availabilities below [`MIN_AVAILABILITY`] (more than 100× the
    /// nodes) are refused, naming the flag.
    pub fn availability(&self) -> Result<f64, InputError> {
        let (a, flag) = match (self.node_avail, self.failure_rate_per_day, self.mttr_hours) {
            (Some(a), _, _) => (a, "--node-avail"),
            (None, Some(r), Some(m)) => {
                if !(r.is_finite() && (0.0..=MAX_FAILURES_PER_DAY).contains(&r)) {
                    return Err(InputError::field(
                        "--failure-rate-per-day",
                        format!(
                            "{r}: expected failures per node-day in [0, {MAX_FAILURES_PER_DAY}]"
                        ),
                    ));
                }
                if !(m.is_finite() && (0.0..=MAX_MTTR_HOURS).contains(&m)) {
                    return Err(InputError::field(
                        "--mttr-hours",
                        format!("{m}: expected hours in [0, {MAX_MTTR_HOURS}]"),
                    ));
                }
                (availability(r, m), "--failure-rate-per-day")
            }
            (None, Some(_), None) => {
                return Err(InputError::field(
                    "--failure-rate-per-day",
                    "needs --mttr-hours too",
                ));
            }
            _ => (1.0, "--node-avail"),
        };
        if !(a.is_finite() && (MIN_AVAILABILITY..=1.0).contains(&a)) {
            return Err(InputError::field(
                flag,
                format!(
                    "availability {a:.3e}; expected one in [{MIN_AVAILABILITY}, 1] \
                     (below it a fleet needs more than 100× its nodes)"
                ),
            ));
        }
        Ok(a)
    }

    /// Sizing settings.
    pub fn sizing(&self) -> Result<SizingSettings, InputError> {
        if !(self.slo.is_finite() && self.slo > 0.0) {
            return Err(InputError::field(
                "--slo",
                format!("expected a positive number of ms, got {}", self.slo),
            ));
        }
        self.check_n_sim_req()?;
        Ok(SizingSettings::new(self.slo, self.n_sim_req, self.seed))
    }
}

/// Flags of `optimize`.
#[derive(Debug, clap::Args)]
pub struct OptimizeArgs {
    /// Planner flags.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Arrival rate, requests/s.
    #[arg(long)]
    pub lam: f64,
    /// Short-pool threshold B; without it every CDF breakpoint below --long-max-ctx is a candidate.
    #[arg(long)]
    pub b_short: Option<u32>,
    /// Largest γ of compress-and-route to try (1 = length routing only).
    #[arg(long, default_value_t = 1.0)]
    pub gamma_max: f64,
    /// Candidates sized with the DES (cheapest first).
    #[arg(long, default_value_t = 3)]
    pub verify_top: usize,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Candidate thresholds: every CDF breakpoint strictly inside (0, 1) below `long_max_ctx`.
pub fn breakpoints(cdf: &LengthCdf, long_max_ctx: u32) -> Vec<u32> {
    cdf.points()
        .iter()
        .filter(|&&(t, f)| t < long_max_ctx && f > 0.0 && f < 1.0)
        .map(|&(t, _)| t)
        .collect()
}

/// Largest compression factor γ searched (a request compressed to 1/16 of
/// its length is no longer the same request).
pub const MAX_GAMMA: f64 = 16.0;

/// γ values 1, 1.5, 2, ... up to `gamma_max`.
pub fn gammas(gamma_max: f64) -> Vec<f64> {
    let mut g = vec![1.0];
    let mut x = 1.5;
    while x <= gamma_max + 1e-9 {
        g.push(x);
        x += 0.5;
    }
    g
}

/// Resolve the flags of `optimize`.
pub fn resolve(args: &OptimizeArgs) -> Result<OptimizeConfig, InputError> {
    let p = &args.plan;
    let cdf = LengthCdf::load(&p.cdf)?;
    let b_values = match args.b_short {
        Some(b) => vec![b],
        None => breakpoints(&cdf, p.long_max_ctx),
    };
    if !(args.gamma_max.is_finite() && (1.0..=MAX_GAMMA).contains(&args.gamma_max)) {
        return Err(InputError::field(
            "--gamma-max",
            format!("expected γ in [1, {MAX_GAMMA}], got {}", args.gamma_max),
        ));
    }
    let cfg = OptimizeConfig {
        workload: p.workload(args.lam)?,
        b_values,
        gammas: gammas(args.gamma_max),
        gpu_short: resolve_profile("--gpu-short", &p.gpu_short, &ProfileOverrides::default())?,
        gpu_long: resolve_profile("--gpu-long", &p.gpu_long, &ProfileOverrides::default())?,
        long_max_ctx: p.long_max_ctx,
        verify_top: args.verify_top,
        sizing: p.sizing()?,
        availability: p.availability()?,
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Run `optimize`.
pub fn execute(args: OptimizeArgs, reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
    let cfg = resolve(&args)?;
    Ok(Report::Optimize(Box::new(optimize(
        &cfg,
        super::progress_for(reporter, &args.output),
    )?))
    .into())
}
