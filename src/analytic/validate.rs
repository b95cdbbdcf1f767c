//! The validation matrix of the analytic layer against the iteration DES.
//!
//! A cell is a workload × GPU preset × instance count × load `ρ`, where `ρ` is
//! a fraction of the **DES's own capacity** (found by bisection on the
//! arrival rate: the largest rate whose run is stable). Each cell runs the
//! DES (JSQ dispatch, several replications on fixed seeds) and every
//! analytic model on the same workload, and reports their P99 TTFT and
//! capacity errors. `cargo bench --bench analytic_validate` prints the whole
//! matrix; `tests/analytic_cross_check.rs` checks a few cells.

use std::path::PathBuf;

use serde::Serialize;

use super::calibration::{PoolCalibration, sample_lengths};
use super::estimates::all_estimates;
use super::iteration_model::{IterationPool, cross_check};
use crate::engine::dispatch::DispatchPolicy;
use crate::engine::{PoolConfig, SimConfig};
use crate::profile::Profile;
use crate::simulate::{SimulateJob, run_job};
use crate::workload::spec::WorkloadSpec;

/// One workload of the matrix: a built-in CDF name, `chat` for the built-in
/// default chat lengths, or `rag` (long prompts, short answers: ISL
/// `lognormal:4000:0.6:15000`, OSL `lognormal:200:0.8:1000`); and the pool's
/// max context. (The built-in `lmsys-multiturn` CDF is byte-identical to
/// `lmsys` in the published data, so the matrix uses `rag` instead.)
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MatrixWorkload {
    /// `azure`, `lmsys`, `agent-heavy`, `chat` or `rag`.
    pub name: &'static str,
    /// Pool max context, tokens.
    pub max_ctx_tok: u32,
}

/// The five workloads of the matrix.
pub const WORKLOADS: [MatrixWorkload; 5] = [
    MatrixWorkload {
        name: "azure",
        max_ctx_tok: 8192,
    },
    MatrixWorkload {
        name: "lmsys",
        max_ctx_tok: 16384,
    },
    MatrixWorkload {
        name: "rag",
        max_ctx_tok: 16384,
    },
    MatrixWorkload {
        name: "agent-heavy",
        max_ctx_tok: 65536,
    },
    MatrixWorkload {
        name: "chat",
        max_ctx_tok: 8192,
    },
];

/// How many requests and replications each DES run uses.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MatrixSettings {
    /// Requests per DES run of a cell.
    pub cell_requests: u64,
    /// Replications per cell (their P99s are averaged).
    pub replications: u32,
    /// Requests per run of the capacity bisection.
    pub capacity_requests: u64,
    /// Bisection steps of the capacity search.
    pub capacity_steps: u32,
    /// Every DES run covers at least this much simulated time (requests =
    /// max(the count above, λ × this)), so that large fleets at high load
    /// reach steady state and an overloaded one is seen to be unstable.
    pub min_sim_s: f64,
    /// Workload samples for the analytic models.
    pub samples: usize,
    /// Root seed.
    pub seed: u64,
}

impl Default for MatrixSettings {
    fn default() -> Self {
        MatrixSettings {
            cell_requests: 100_000,
            replications: 3,
            capacity_requests: 40_000,
            capacity_steps: 9,
            min_sim_s: 600.0,
            samples: 100_000,
            seed: 7,
        }
    }
}

/// One analytic model's numbers in a cell.
#[derive(Debug, Clone, Serialize)]
pub struct ModelResult {
    /// Model name (`iteration` is the cross-check).
    pub model: &'static str,
    /// Its P99 TTFT, ms (infinite when it calls the pool unstable).
    pub p99_ttft_ms: f64,
    /// `(model − DES) / DES` of the P99 TTFT.
    pub p99_error: f64,
}

/// A cell's results.
#[derive(Debug, Clone, Serialize)]
pub struct CellResult {
    /// Workload name.
    pub workload: &'static str,
    /// GPU preset.
    pub gpu: &'static str,
    /// Instances in the pool.
    pub instances: u32,
    /// Load as a fraction of the DES capacity.
    pub rho: f64,
    /// Offered rate, requests/s.
    pub lam_req_s: f64,
    /// The DES capacity, requests/s.
    pub des_capacity_req_s: f64,
    /// The cross-check's capacity, requests/s.
    pub analytic_capacity_req_s: f64,
    /// `(analytic − DES) / DES` capacity.
    pub capacity_error: f64,
    /// The DES's P99 TTFT (mean over replications), ms; infinite if a
    /// replication was unstable.
    pub des_p99_ttft_ms: f64,
    /// Every model's P99 TTFT and error; the cross-check first.
    pub models: Vec<ModelResult>,
}

/// The workload spec of a matrix workload at rate `lam` with `n` requests.
pub fn workload_spec(w: &MatrixWorkload, lam: f64, n: u64) -> WorkloadSpec {
    let mut spec = WorkloadSpec::default_chat();
    match w.name {
        "chat" => {}
        "rag" => {
            spec.isl = Some("lognormal:4000:0.6:15000".into());
            spec.osl = Some("lognormal:200:0.8:1000".into());
        }
        cdf => {
            spec.cdf = Some(PathBuf::from(cdf));
            spec.isl = None;
            spec.osl = None;
        }
    }
    spec.lam = Some(lam);
    spec.n_requests = Some(n);
    spec
}

fn des_run(
    w: &MatrixWorkload,
    profile: &Profile,
    instances: u32,
    lam: f64,
    n: u64,
    replications: u32,
    seed: u64,
) -> anyhow::Result<crate::metrics::report::SimReport> {
    let mut pool = PoolConfig::new("pool", profile.clone(), instances, w.max_ctx_tok);
    pool.dispatch = DispatchPolicy::Jsq;
    let job = SimulateJob {
        cfg: SimConfig::new(vec![pool], seed, 500.0),
        workload: workload_spec(w, lam, n),
        per_pool: Vec::new(),
        replications,
        timing: false,
        progress: false,
        streams: None,
    };
    run_job(&job, crate::progress::SILENT)
}

/// The largest stable arrival rate of the DES, by bisection between 0 and
/// `hi` (doubled until unstable).
pub fn des_capacity(
    w: &MatrixWorkload,
    profile: &Profile,
    instances: u32,
    guess: f64,
    s: &MatrixSettings,
) -> anyhow::Result<f64> {
    let stable = |lam: f64| -> anyhow::Result<bool> {
        let n = s.capacity_requests.max((lam * s.min_sim_s) as u64);
        let rep = des_run(w, profile, instances, lam, n, 1, s.seed)?;
        Ok(rep.verdict == "stable")
    };
    let (mut lo, mut hi) = (0.0, guess.max(1e-3) * 1.5);
    let mut doublings = 0;
    while stable(hi)? {
        lo = hi;
        hi *= 2.0;
        doublings += 1;
        anyhow::ensure!(
            doublings <= 8,
            "{}: the DES is still stable at {hi:.3e} req/s, 256× the analytic guess {guess:.3e}",
            w.name
        );
    }
    for _ in 0..s.capacity_steps {
        let mid = 0.5 * (lo + hi);
        if stable(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi))
}

/// The accepted `(ISL, OSL)` sample of a workload for a pool.
pub fn pool_samples(
    w: &MatrixWorkload,
    profile: &Profile,
    s: &MatrixSettings,
) -> anyhow::Result<Vec<(u32, u32)>> {
    let spec = workload_spec(w, 1.0, 1);
    let model = spec
        .length_model()?
        .ok_or_else(|| anyhow::anyhow!("workload {} has no length model", w.name))?;
    let kv = profile.kv_capacity_tok();
    Ok(sample_lengths(&model, s.samples, s.seed)
        .into_iter()
        .filter(|&(i, o)| {
            let t = i as u64 + o as u64;
            t <= w.max_ctx_tok as u64 && t <= kv
        })
        .collect())
}

/// Run the cells of one (workload, GPU, instances) configuration at loads `rhos`.
pub fn validate_config(
    w: &MatrixWorkload,
    gpu: &'static str,
    instances: u32,
    rhos: &[f64],
    s: &MatrixSettings,
) -> anyhow::Result<Vec<CellResult>> {
    let profile = Profile::preset(gpu).ok_or_else(|| anyhow::anyhow!("no preset {gpu}"))?;
    let samples = pool_samples(w, &profile, s)?;
    let accepted = samples.len() as f64 / s.samples as f64;
    let at = |lam: f64| {
        cross_check(
            &IterationPool {
                profile: &profile,
                instances,
                lam_req_s: lam * accepted,
                dispatch: DispatchPolicy::Jsq,
                samples: &samples,
            },
            s.seed,
        )
    };
    let analytic_cap = at(0.0).capacity_req_per_s / accepted.max(1e-9);
    let des_cap = des_capacity(w, &profile, instances, analytic_cap, s)?;
    let mut out = Vec::new();
    for &rho in rhos {
        let lam = rho * des_cap;
        let rep = des_run(
            w,
            &profile,
            instances,
            lam,
            s.cell_requests.max((lam * s.min_sim_s) as u64),
            s.replications,
            s.seed + 1,
        )?;
        let des_p99 = if rep.verdict == "stable" {
            rep.fleet.ttft_ms.p99.unwrap_or(0.0)
        } else {
            f64::INFINITY
        };
        let x = at(lam);
        let cal = PoolCalibration::from_samples(
            &profile,
            w.max_ctx_tok,
            instances,
            lam * accepted,
            &samples,
        );
        let err = |a: f64| (a - des_p99) / des_p99;
        let mut models = vec![ModelResult {
            model: x.model,
            p99_ttft_ms: x.p99_ttft_ms,
            p99_error: err(x.p99_ttft_ms),
        }];
        for e in all_estimates(&cal, &profile) {
            models.push(ModelResult {
                model: e.model,
                p99_ttft_ms: e.p99_ttft_ms,
                p99_error: err(e.p99_ttft_ms),
            });
        }
        out.push(CellResult {
            workload: w.name,
            gpu,
            instances,
            rho,
            lam_req_s: lam,
            des_capacity_req_s: des_cap,
            analytic_capacity_req_s: analytic_cap,
            capacity_error: (analytic_cap - des_cap) / des_cap,
            des_p99_ttft_ms: des_p99,
            models,
        });
    }
    Ok(out)
}
