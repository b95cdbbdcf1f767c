//! Minimal instance counts per pool, found with the DES in the loop.
//!
//! 1. Upper bound: starting from the given lower bounds, double every pool
//!    that misses the SLO until all pools meet it. A pool whose P99 TTFT stops
//!    improving while still above the SLO cannot meet it at any size
//!    (prefill-bound), and the search stops with that reason.
//! 2. Bisection per pool, with the other pools held at their upper bound.
//!    Under `length` and `compress-and-route` routing a pool's traffic does
//!    not depend on the other pools' sizes, so the pools are searched in
//!    parallel. Every evaluation uses the same seed (common random numbers).
//!    When a P99 lands within `close_band` of the SLO, the decision is taken
//!    on the mean of `close_replications` replications.
//! 3. Joint check at the minimal counts; a pool that fails it (interaction
//!    or noise) gets one more instance until the check passes.

use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use super::plan::FleetPlan;
use crate::engine::{EngineKind, ServiceModel, SimConfig, Slo, Warmup};
use crate::metrics::report::SimReport;
use crate::simulate::{SimulateJob, run_job};
use crate::workload::spec::WorkloadSpec;

/// How pools are sized.
#[derive(Debug, Clone, PartialEq)]
pub struct SizingSettings {
    /// P99 TTFT target for every pool, ms.
    pub slo_ttft_ms: f64,
    /// Requests per simulation.
    pub n_requests: u64,
    /// Seed of every simulation (common random numbers).
    pub seed: u64,
    /// Relative distance to the SLO inside which replications decide.
    pub close_band: f64,
    /// Replications used near the SLO.
    pub close_replications: u32,
    /// Largest pool the search tries, instances.
    pub max_instances: u32,
}

impl SizingSettings {
    /// Defaults for a given SLO and simulation length.
    pub fn new(slo_ttft_ms: f64, n_requests: u64, seed: u64) -> Self {
        SizingSettings {
            slo_ttft_ms,
            n_requests,
            seed,
            close_band: 0.1,
            close_replications: 3,
            max_instances: 4096,
        }
    }
}

/// One pool's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolResult {
    /// Pool id.
    pub id: String,
    /// Profile name.
    pub gpu: String,
    /// Max context, tokens.
    pub max_ctx: u32,
    /// Serving instances.
    pub instances: u32,
    /// GPUs.
    pub gpus: u64,
    /// DES P99 TTFT at this size, ms (null: no traffic).
    pub p99_ttft_ms: Option<f64>,
    /// DES SLO attainment of the pool.
    pub attainment: Option<f64>,
}

/// A fleet sized by the DES.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizedFleet {
    /// Instance counts per pool, in fleet order.
    pub counts: Vec<u32>,
    /// Per-pool results at those counts (from the joint check).
    pub pools: Vec<PoolResult>,
    /// Whether every pool met the SLO in the joint check.
    pub slo_met: bool,
    /// Fleet SLO attainment in the joint check.
    pub attainment: Option<f64>,
    /// $ per hour.
    pub cost_per_hr: f64,
    /// GPUs.
    pub gpus: u64,
    /// Simulations run.
    pub evaluations: u32,
    /// Why the SLO cannot be met, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

struct Evaluator<'a> {
    plan: &'a FleetPlan,
    workload: &'a WorkloadSpec,
    settings: &'a SizingSettings,
    count: AtomicU32,
}

impl Evaluator<'_> {
    fn run(&self, counts: &[u32], replications: u32) -> anyhow::Result<SimReport> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let job = SimulateJob {
            cfg: SimConfig {
                pools: self.plan.pools(counts),
                router: self.plan.router(),
                engine: EngineKind::Fast,
                service_model: ServiceModel::Iteration,
                seed: self.settings.seed,
                warmup: Warmup::default(),
                slo: Slo {
                    ttft_ms: self.settings.slo_ttft_ms,
                    tpot_ms: None,
                },
                validate: false,
                record_requests: false,
                max_waiting: None,
            },
            workload: WorkloadSpec {
                n_requests: Some(self.settings.n_requests),
                ..self.workload.clone()
            },
            per_pool: Vec::new(),
            replications,
            timing: false,
            progress: false,
        };
        run_job(&job)
    }

    fn p99(r: &SimReport, pool: usize) -> Option<f64> {
        r.pools[pool].metrics.ttft_ms.p99
    }

    /// Does `pool` meet the SLO at `counts`? Near the SLO, decide on replications.
    fn pool_ok(&self, counts: &[u32], pool: usize) -> anyhow::Result<(bool, Option<f64>)> {
        let slo = self.settings.slo_ttft_ms;
        let r = self.run(counts, 1)?;
        let p = Self::p99(&r, pool);
        let verdict_ok = r.verdict == "stable";
        match p {
            None => Ok((verdict_ok, None)),
            Some(v)
                if verdict_ok
                    && (v - slo).abs() <= self.settings.close_band * slo
                    && self.settings.close_replications > 1 =>
            {
                let rr = self.run(counts, self.settings.close_replications)?;
                let m = Self::p99(&rr, pool);
                Ok((rr.verdict == "stable" && m.is_none_or(|m| m <= slo), m))
            }
            Some(v) => Ok((verdict_ok && v <= slo, Some(v))),
        }
    }
}

/// Size `plan` for `workload` so that every pool's DES P99 TTFT meets the
/// SLO, starting from `lower` (e.g. an analytic screen; 1 per pool if `None`).
pub fn size_fleet(
    plan: &FleetPlan,
    workload: &WorkloadSpec,
    settings: &SizingSettings,
    lower: Option<&[u32]>,
) -> anyhow::Result<SizedFleet> {
    let k = plan.shapes().len();
    let ev = Evaluator {
        plan,
        workload,
        settings,
        count: AtomicU32::new(0),
    };
    let lower: Vec<u32> = lower
        .map(|l| l.iter().map(|&n| n.max(1)).collect())
        .unwrap_or_else(|| vec![1; k]);
    // 1. Upper bound by doubling the failing pools.
    let mut ub = lower.clone();
    // A pool is prefill-bound when two consecutive doublings, both in stable
    // runs, improve its P99 by less than 1%.
    let mut last_p99: Vec<Option<f64>> = vec![None; k];
    let mut flat: Vec<u32> = vec![0; k];
    let mut reason = None;
    loop {
        let r = ev.run(&ub, 1)?;
        let slo = settings.slo_ttft_ms;
        let stable = r.verdict == "stable";
        let failing: Vec<usize> = (0..k)
            .filter(|&i| !stable || Evaluator::p99(&r, i).is_some_and(|p| p > slo))
            .collect();
        if failing.is_empty() {
            break;
        }
        for &i in &failing {
            let now = Evaluator::p99(&r, i).filter(|_| stable);
            match (last_p99[i], now) {
                (Some(prev), Some(now)) if now > 0.99 * prev && now > slo => flat[i] += 1,
                _ => flat[i] = 0,
            }
            if flat[i] >= 2 {
                reason = Some(format!(
                    "pool `{}`: P99 TTFT stays at {:.0} ms > SLO {slo} ms however many instances (prefill-bound)",
                    plan.shapes()[i].id,
                    now.unwrap_or(f64::NAN)
                ));
            }
            last_p99[i] = now;
            ub[i] = ub[i].saturating_mul(2);
        }
        if reason.is_some() || ub.iter().any(|&n| n > settings.max_instances) {
            let reason = reason.unwrap_or_else(|| {
                format!(
                    "no fleet up to {} instances per pool meets the SLO",
                    settings.max_instances
                )
            });
            return joint(
                &ev,
                plan,
                ub.iter().map(|&n| n.min(settings.max_instances)).collect(),
                Some(reason),
            );
        }
    }
    // 2. Bisection per pool, others at their upper bound.
    let minima: Vec<u32> = (0..k)
        .into_par_iter()
        .map(|i| -> anyhow::Result<u32> {
            let (mut lo, mut hi) = (lower[i] - 1, ub[i]);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let mut c = ub.clone();
                c[i] = mid;
                if ev.pool_ok(&c, i)?.0 {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            Ok(hi)
        })
        .collect::<anyhow::Result<_>>()?;
    // 3. Joint check.
    let mut counts = minima;
    for _ in 0..8 {
        let failing: Vec<usize> = (0..k)
            .filter_map(|i| (!ev.pool_ok(&counts, i).ok()?.0).then_some(i))
            .collect();
        if failing.is_empty() {
            break;
        }
        for i in failing {
            counts[i] += 1;
        }
    }
    joint(&ev, plan, counts, None)
}

fn joint(
    ev: &Evaluator<'_>,
    plan: &FleetPlan,
    counts: Vec<u32>,
    reason: Option<String>,
) -> anyhow::Result<SizedFleet> {
    let r = ev.run(&counts, 1)?;
    let slo = ev.settings.slo_ttft_ms;
    let pools: Vec<PoolResult> = plan
        .pools(&counts)
        .iter()
        .zip(&r.pools)
        .map(|(p, rp)| PoolResult {
            id: p.id.clone(),
            gpu: p.profile.name.clone(),
            max_ctx: p.max_ctx_tok,
            instances: p.instances,
            gpus: p.gpus(),
            p99_ttft_ms: rp.metrics.ttft_ms.p99,
            attainment: rp.metrics.slo.attainment,
        })
        .collect();
    let slo_met = reason.is_none()
        && r.verdict == "stable"
        && pools.iter().all(|p| p.p99_ttft_ms.is_none_or(|v| v <= slo));
    Ok(SizedFleet {
        cost_per_hr: plan.cost_per_hr(&counts),
        gpus: plan.gpus(&counts),
        counts,
        pools,
        slo_met,
        attainment: r.fleet.slo.attainment,
        evaluations: ev.count.load(Ordering::Relaxed),
        reason,
    })
}
