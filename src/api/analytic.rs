//! `kvfleet analytic`: every analytic model's estimate for one pool, side by
//! side, optionally beside the slot-model and iteration-model DES.

use serde::Serialize;

use super::output::OutputArgs;
use super::workload_args::WorkloadArgs;
use super::{Outcome, Report};
use crate::analytic::calibration::{PoolCalibration, sample_lengths};
use crate::analytic::estimates::{PoolEstimate, all_estimates, finite_or_null};
use crate::analytic::iteration_model::{CrossCheck, IterationPool, cross_check};
use crate::engine::dispatch::DispatchPolicy;
use crate::engine::{ServiceModel, SimConfig};
use crate::error::InputError;
use crate::metrics::report::SimReport;
use crate::profile::{Profile, ProfileOverrides, resolve_profile};
use crate::progress::Reporter;
use crate::scenario::pool_config;
use crate::simulate::{SimulateJob, run_job};
use crate::workload::spec::WorkloadSpec;

/// Relative mean-wait difference from the slot-model DES beyond which a row is flagged.
pub const DES_TOLERANCE: f64 = 0.10;

/// Flags of `analytic`.
#[derive(Debug, clap::Args)]
pub struct AnalyticArgs {
    /// Workload flags (Poisson `--lam` with a CDF or ISL/OSL distributions).
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// GPU profile: a10g, a100, h100, custom, or a profile .toml.
    #[arg(long, default_value = "h100")]
    pub gpu: String,
    /// Profile field overrides.
    #[command(flatten)]
    pub profile: ProfileOverrides,
    /// Instances in the pool (each instance has the profile's GPUs).
    #[arg(long, default_value_t = 4)]
    pub n_gpus: u32,
    /// Max context of the pool, tokens (longer requests are rejected, not counted in λ).
    #[arg(long, default_value_t = 8192)]
    pub max_ctx: u32,
    /// P99 TTFT SLO, ms.
    #[arg(long, default_value_t = 500.0)]
    pub slo: f64,
    /// Requests sampled from the workload to calibrate the pool.
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    pub calib_samples: u32,
    /// Also run the DES on N requests with the slot and the iteration model.
    #[arg(long, value_name = "N")]
    pub verify_des: Option<u64>,
    /// Instance choice of the verifying DES (`central` = the analytic M/G/c's single queue).
    #[arg(long, value_enum, default_value_t = DispatchPolicy::Central)]
    pub dispatch: DispatchPolicy,
    /// Root seed (calibration sample and DES).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// One row of the side-by-side table.
#[derive(Debug, Clone, Serialize)]
pub struct AnalyticRow {
    /// The estimate (for DES rows, the measured values).
    #[serde(flatten)]
    pub estimate: PoolEstimate,
    /// Whether the P99 TTFT meets the SLO.
    pub slo_met: bool,
    /// `(mean wait − DES slot mean wait) / DES slot mean wait`, when the DES ran.
    #[serde(serialize_with = "opt_finite_or_null")]
    pub vs_des_slot: Option<f64>,
    /// The mean wait differs from the slot-model DES by more than [`DES_TOLERANCE`].
    pub disagrees_with_des: bool,
}

fn opt_finite_or_null<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => finite_or_null(x, s),
        None => s.serialize_none(),
    }
}

/// The `analytic` report.
#[derive(Debug, Clone, Serialize)]
pub struct AnalyticReport {
    /// The workload as described by the spec.
    pub workload: String,
    /// Profile name.
    pub gpu: String,
    /// Instances in the pool.
    pub instances: u32,
    /// GPUs in the pool.
    pub gpus: u64,
    /// Pool max context, tokens.
    pub max_ctx_tok: u32,
    /// P99 TTFT SLO, ms.
    pub slo_ms: f64,
    /// Offered rate before the context filter, requests/s.
    pub offered_lam_req_s: f64,
    /// Fraction of sampled requests longer than the pool accepts.
    pub rejected_fraction: f64,
    /// The pool's calibration (λ after the context filter).
    pub calibration: PoolCalibration,
    /// Analytic rows, then (with `--verify-des`) `des-slot` and `des-iteration`.
    pub rows: Vec<AnalyticRow>,
    /// Requests simulated per DES run (with `--verify-des`).
    pub des_requests: Option<u64>,
    /// Relative tolerance of the DES comparison.
    pub des_tolerance: f64,
    /// The estimate kvfleet stands behind: the analytic model of the
    /// iteration engine under `--dispatch` (see
    /// [`crate::analytic::iteration_model`]).
    pub cross_check: CrossCheck,
    /// Dispatch of the DES and the cross-check.
    pub dispatch: &'static str,
    /// With `--verify-des`: the cross-check against the iteration DES.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_check_vs_des: Option<CrossCheckVsDes>,
}

/// The cross-check set against the iteration-model DES (`--verify-des`).
#[derive(Debug, Clone, Serialize)]
pub struct CrossCheckVsDes {
    /// `(cross-check − DES) / DES` P99 TTFT (`null`: either is infinite).
    #[serde(serialize_with = "opt_finite_or_null")]
    pub p99_ttft_error: Option<f64>,
    /// The validated error band ([`crate::planner::screen::P99_BAND`]).
    pub band: f64,
    /// The difference lies outside the band, or exactly one of the two is
    /// unstable: the estimate is not to be trusted for this pool.
    pub disagrees: bool,
}

impl AnalyticArgs {
    fn resolve_workload(&self) -> Result<(WorkloadSpec, f64, Profile), InputError> {
        let spec = self.workload.resolve()?;
        for (flag, set) in [
            ("--trace", spec.trace.is_some()),
            ("--rate-profile", spec.rate_profile.is_some()),
            ("--mmpp", spec.mmpp.is_some()),
            ("--users", spec.users.is_some()),
        ] {
            if set {
                return Err(InputError::field(
                    flag,
                    "the analytic models need Poisson arrivals; use --lam (with --cdf or --isl/--osl)",
                ));
            }
        }
        let lam = spec.lam.unwrap_or(crate::workload::spec::DEFAULT_CHAT_LAM);
        let profile = resolve_profile("--gpu", &self.gpu, &self.profile)?;
        let max = crate::scenario::MAX_INSTANCES_PER_POOL;
        if !(1..=max).contains(&self.n_gpus) {
            return Err(InputError::field(
                "--n-gpus",
                format!("expected 1 to {max} instances, got {}", self.n_gpus),
            ));
        }
        if self.max_ctx < 2 {
            return Err(InputError::field("--max-ctx", "expected at least 2 tokens"));
        }
        if profile.n_slots(self.max_ctx) == 0 {
            return Err(InputError::field(
                "--max-ctx",
                format!(
                    "{} tokens leave no slot on one {} instance (KV holds {} tokens)",
                    self.max_ctx,
                    profile.name,
                    profile.kv_capacity_tok()
                ),
            ));
        }
        if !(self.slo.is_finite() && self.slo > 0.0) {
            return Err(InputError::field(
                "--slo",
                format!("expected a positive number of ms, got {}", self.slo),
            ));
        }
        if self.calib_samples == 0 {
            return Err(InputError::field("--calib-samples", "expected at least 1"));
        }
        if self.verify_des == Some(0) {
            return Err(InputError::field(
                "--verify-des",
                "expected at least 1 request",
            ));
        }
        Ok((spec, lam, profile))
    }

    /// Resolve the flags and compute the report (runs the DES if asked).
    pub fn report(&self, reporter: &dyn Reporter) -> anyhow::Result<AnalyticReport> {
        let (spec, lam, profile) = self.resolve_workload()?;
        let model = spec
            .length_model()?
            .ok_or_else(|| InputError::field("--trace", "a trace has no length model"))?;
        let all = sample_lengths(&model, self.calib_samples as usize, self.seed);
        let kv_tok = profile.kv_capacity_tok();
        let fits = |&(i, o): &(u32, u32)| {
            let t = i as u64 + o as u64;
            t <= self.max_ctx as u64 && t <= kv_tok
        };
        let accepted: Vec<(u32, u32)> = all.iter().copied().filter(fits).collect();
        let rejected_fraction = 1.0 - accepted.len() as f64 / all.len() as f64;
        let cal = PoolCalibration::from_samples(
            &profile,
            self.max_ctx,
            self.n_gpus,
            lam * (1.0 - rejected_fraction),
            &accepted,
        );
        let cross_check = cross_check(
            &IterationPool {
                profile: &profile,
                instances: self.n_gpus,
                lam_req_s: cal.lam_req_s,
                dispatch: self.dispatch,
                samples: &accepted,
            },
            self.seed,
        );
        let mut estimates = all_estimates(&cal, &profile);
        let mut des_requests = None;
        let mut des_slot_mean = None;
        if let Some(n) = self.verify_des {
            des_requests = Some(n);
            let mut spec = spec.clone();
            spec.n_requests = Some(n);
            spec.lam = Some(lam);
            for (name, sm) in [
                ("des-slot", ServiceModel::Slot),
                ("des-iteration", ServiceModel::Iteration),
            ] {
                let rep = run_job(&self.des_job(&spec, &profile, sm)?, reporter)?;
                let e = des_row(name, &rep);
                if sm == ServiceModel::Slot {
                    des_slot_mean = Some(e.mean_wait_ms);
                }
                estimates.push(e);
            }
        }
        let cross_check_vs_des = estimates
            .iter()
            .find(|e| e.model == "des-iteration")
            .map(|d| crate::planner::screen::compare_p99(cross_check.p99_ttft_ms, d.p99_ttft_ms));
        let floor_ms = 0.01 * cal.mean_service_s * 1e3;
        let rows = estimates
            .into_iter()
            .map(|e| AnalyticRow {
                slo_met: e.stable && e.p99_ttft_ms <= self.slo,
                vs_des_slot: des_slot_mean
                    .map(|d| (e.mean_wait_ms - d) / d)
                    .filter(|v| v.is_finite()),
                disagrees_with_des: des_slot_mean
                    .is_some_and(|d| disagrees(e.mean_wait_ms, d, floor_ms)),
                estimate: e,
            })
            .collect();
        let mut shown = spec.clone();
        shown.n_requests = Some(self.verify_des.unwrap_or(self.calib_samples as u64));
        Ok(AnalyticReport {
            workload: shown.describe(),
            gpu: profile.name.clone(),
            instances: self.n_gpus,
            gpus: self.n_gpus as u64 * profile.gpus_per_instance as u64,
            max_ctx_tok: self.max_ctx,
            slo_ms: self.slo,
            offered_lam_req_s: lam,
            rejected_fraction,
            calibration: cal,
            rows,
            des_requests,
            des_tolerance: DES_TOLERANCE,
            cross_check,
            dispatch: self.dispatch.as_str(),
            cross_check_vs_des,
        })
    }

    fn des_job(
        &self,
        spec: &WorkloadSpec,
        profile: &Profile,
        service_model: ServiceModel,
    ) -> Result<SimulateJob, InputError> {
        let pool = pool_config(
            &super::simulate::single_pool_flag,
            "pool".into(),
            profile.clone(),
            self.n_gpus,
            self.max_ctx,
            self.dispatch,
            None,
            None,
            vec![],
        )?;
        Ok(SimulateJob {
            cfg: SimConfig {
                service_model,
                ..SimConfig::new(vec![pool], self.seed, self.slo)
            },
            workload: spec.clone(),
            per_pool: Vec::new(),
            replications: 1,
            timing: false,
            progress: !self.output.quiet,
            streams: None,
        })
    }
}

/// Whether a mean wait `a_ms` differs from the slot-model DES's `des_ms` by
/// more than [`DES_TOLERANCE`] relative and more than `floor_ms` absolute (the
/// floor keeps near-zero waits at low load from being flagged as noise). An
/// infinite value (unstable) agrees only with another infinite one.
pub fn disagrees(a_ms: f64, des_ms: f64, floor_ms: f64) -> bool {
    match (a_ms.is_finite(), des_ms.is_finite()) {
        (true, true) => {
            let diff = (a_ms - des_ms).abs();
            diff > DES_TOLERANCE * des_ms && diff > floor_ms
        }
        (false, false) => false,
        _ => true,
    }
}

/// A DES run's measured values as a row.
fn des_row(name: &'static str, rep: &SimReport) -> PoolEstimate {
    let m = &rep.fleet;
    let stable = rep.verdict == "stable";
    let v = |x: Option<f64>| {
        if stable {
            x.unwrap_or(0.0)
        } else {
            f64::INFINITY
        }
    };
    PoolEstimate {
        model: name,
        stable,
        utilisation: m.utilisation,
        mean_wait_ms: v(m.queue_wait_ms.mean),
        p99_wait_ms: v(m.queue_wait_ms.p99),
        p99_ttft_ms: v(m.ttft_ms.p99),
    }
}

/// Run `analytic`.
pub fn execute(args: AnalyticArgs, reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
    Ok(Report::Analytic(Box::new(args.report(reporter)?)).into())
}
