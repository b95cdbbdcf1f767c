//! The analytic screen: each pool of a plan estimated with the cross-check
//! (`analytic::iteration_model`, the analytic model of the iteration engine
//! validated against the DES; see the README's validation matrix).
//!
//! The planners use it three ways:
//! - **start** each DES search at the analytic answer (the smallest count
//!   whose cross-check P99 TTFT meets the SLO), so the DES only verifies
//!   the boundary ([`Screen::size`]);
//! - **prove** a pool infeasible without simulating it: the P99 of its
//!   prompts' own chunked prefill, with nothing else running, is a lower
//!   bound on any fleet's P99 TTFT ([`Screen::floor_p99_ttft_ms`]);
//! - **report** the cross-check beside every DES answer, flagging pools where
//!   the two differ by more than the validated error band ([`P99_BAND`]).
//!
//! Compression (γ > 1) is not modelled: pools see their uncompressed length
//! ranges.

use crate::analytic::calibration::{nearest_rank_unsorted, sample_lengths};
use crate::analytic::iteration_model::{
    CrossCheck, IterationPool, SampleMoments, cross_check_with_moments, own_prefill_s,
    sample_moments,
};
use crate::error::InputError;
use crate::profile::Profile;
use crate::workload::spec::WorkloadSpec;

use std::sync::Arc;

use super::plan::FleetPlan;

/// Requests sampled to calibrate each pool.
const SAMPLES: usize = 50_000;
/// Largest pool the analytic sizing tries.
const MAX_INSTANCES: u32 = 1 << 16;
/// Seed of the cross-check's wait draws.
const DRAW_SEED: u64 = 0x5eed;

/// Relative error of the cross-check's P99 TTFT against the iteration DES
/// within which they are taken to agree: 95% of the validation matrix's
/// cells at ρ ≤ 0.9 lie inside it (p95 |error| 52.0%, p90 33.0%, median
/// 6.9%: `cargo bench --bench analytic_validate`, the README's table). A
/// planner flags only pools whose difference is larger: those are outside
/// what the model was validated to.
pub const P99_BAND: f64 = 0.55;

/// The cross-check's P99 TTFT `analytic_ms` against the DES's `des_ms`.
pub fn compare_p99(analytic_ms: f64, des_ms: f64) -> crate::api::analytic::CrossCheckVsDes {
    let err = (analytic_ms - des_ms) / des_ms;
    let finite = analytic_ms.is_finite() && des_ms.is_finite() && des_ms > 0.0;
    crate::api::analytic::CrossCheckVsDes {
        p99_ttft_error: finite.then_some(err),
        band: P99_BAND,
        disagrees: if finite {
            err.abs() > P99_BAND
        } else {
            analytic_ms.is_finite() != des_ms.is_finite()
        },
    }
}

/// Whether the cross-check's P99 `analytic_ms` (`None`: unstable) and the
/// DES's `des_ms` (`None`: infinite) differ beyond [`P99_BAND`].
pub fn p99_disagrees(analytic_ms: Option<f64>, des_ms: Option<f64>) -> bool {
    compare_p99(
        analytic_ms.unwrap_or(f64::INFINITY),
        des_ms.unwrap_or(f64::INFINITY),
    )
    .disagrees
}

/// Length samples and the arrival rate of a workload.
#[derive(Debug)]
pub struct Screen {
    samples: Vec<(u32, u32)>,
    lam: f64,
    /// Estimates already made: a search asks for the same (pool, size)
    /// many times (the start's bisection, then the guide's rescaled
    /// steps), and each is a Monte Carlo over the pool's samples.
    memo: std::sync::Mutex<std::collections::HashMap<EstimateKey, CrossCheck>>,
    /// The sample of each pool length range `(lo, hi]` met so far.
    pool_samples: std::sync::Mutex<std::collections::HashMap<(u64, u64), Arc<PoolSample>>>,
}

/// What an estimate depends on besides the screen itself: the pool's
/// profile (its debug form, which lists every parameter), its length range
/// (lower, upper bound of ISL + OSL) and its instance count.
type EstimateKey = (String, u64, u64, u32);

impl Clone for Screen {
    fn clone(&self) -> Self {
        self.at_rate(self.lam)
    }
}

/// One pool's requests as the screen sees them.
#[derive(Debug)]
struct PoolSample {
    samples: Vec<(u32, u32)>,
    lam_req_s: f64,
    /// Their range of ISL + OSL, (lower, upper], tokens.
    range_tok: (u64, u64),
    /// Their moments per prefill chunk size met so far.
    moments: std::sync::Mutex<Vec<(u32, SampleMoments)>>,
}

impl PoolSample {
    /// The samples' moments at `p`'s prefill chunk (computed once per chunk).
    fn moments_at(&self, p: &Profile) -> SampleMoments {
        let chunk = p.chunk.max(1);
        let known = |m: &[(u32, SampleMoments)]| m.iter().find(|e| e.0 == chunk).map(|e| e.1);
        if let Some(m) = self.moments.lock().ok().and_then(|m| known(&m)) {
            return m;
        }
        let m = sample_moments(p, &self.samples);
        if let Ok(mut all) = self.moments.lock() {
            all.push((chunk, m));
        }
        m
    }
}

impl Screen {
    /// Calibrate from the workload's length model and Poisson rate.
    pub fn new(workload: &WorkloadSpec, seed: u64) -> Result<Screen, InputError> {
        let model = workload.length_model()?.ok_or_else(|| {
            InputError::field("--cdf", "the analytic screen needs a length model")
        })?;
        let lam = workload.lam.ok_or_else(|| {
            InputError::field("--lam", "the analytic screen needs a Poisson rate")
        })?;
        Ok(Screen::of(sample_lengths(&model, SAMPLES, seed), lam))
    }

    /// The same workload sample at another Poisson rate.
    pub fn at_rate(&self, lam: f64) -> Screen {
        Screen::of(self.samples.clone(), lam)
    }

    /// A screen of `samples` at `lam`, with nothing memoized yet.
    fn of(samples: Vec<(u32, u32)>, lam: f64) -> Screen {
        Screen {
            samples,
            lam,
            memo: Default::default(),
            pool_samples: Default::default(),
        }
    }

    /// The requests routed to pool `i` of `plan` (by total length, as the
    /// length router does) and their rate; `None` when it gets none.
    fn pool_sample(&self, plan: &FleetPlan, i: usize) -> Option<Arc<PoolSample>> {
        let pools = plan.pools(&vec![1; plan.shapes().len()]);
        let lo = if i == 0 {
            0
        } else {
            pools[i - 1].max_ctx_tok as u64
        };
        let hi = pools[i].max_ctx_tok as u64;
        let known = self
            .pool_samples
            .lock()
            .ok()
            .and_then(|m| m.get(&(lo, hi)).cloned());
        if known.is_some() {
            return known;
        }
        let samples: Vec<(u32, u32)> = self
            .samples
            .iter()
            .copied()
            .filter(|&(a, b)| {
                let t = a as u64 + b as u64;
                t > lo && t <= hi
            })
            .collect();
        if samples.is_empty() {
            return None;
        }
        let s = Arc::new(PoolSample {
            lam_req_s: self.lam * samples.len() as f64 / self.samples.len() as f64,
            samples,
            range_tok: (lo, hi),
            moments: Default::default(),
        });
        if let Ok(mut m) = self.pool_samples.lock() {
            m.insert((lo, hi), s.clone());
        }
        Some(s)
    }

    fn estimate(&self, plan: &FleetPlan, i: usize, n: u32, s: &PoolSample) -> CrossCheck {
        let pools = plan.pools(&vec![n; plan.shapes().len()]);
        let key = (
            format!("{:?} {:?}", pools[i].profile, pools[i].dispatch),
            s.range_tok.0,
            s.range_tok.1,
            n,
        );
        if let Some(c) = self.memo.lock().ok().and_then(|m| m.get(&key).copied()) {
            return c;
        }
        let c = cross_check_with_moments(
            &IterationPool {
                profile: &pools[i].profile,
                instances: n,
                lam_req_s: s.lam_req_s,
                dispatch: pools[i].dispatch,
                samples: &s.samples,
            },
            &s.moments_at(&pools[i].profile),
            DRAW_SEED,
        );
        if let Ok(mut m) = self.memo.lock() {
            m.insert(key, c);
        }
        c
    }

    /// The cross-check of every pool at these counts (`None`: no traffic).
    pub fn cross_checks(&self, plan: &FleetPlan, counts: &[u32]) -> Vec<Option<CrossCheck>> {
        (0..counts.len())
            .map(|i| {
                let s = self.pool_sample(plan, i)?;
                Some(self.estimate(plan, i, counts[i], &s))
            })
            .collect()
    }

    /// Cross-check P99 TTFT per pool at these counts, ms (`None`: no traffic or unstable).
    pub fn p99_ttft_ms(&self, plan: &FleetPlan, counts: &[u32]) -> Vec<Option<f64>> {
        self.cross_checks(plan, counts)
            .into_iter()
            .map(|c| {
                c.filter(|c| c.stable && c.p99_ttft_ms.is_finite())
                    .map(|c| c.p99_ttft_ms)
            })
            .collect()
    }

    /// Cross-check P99 TTFT of pool `i` at `n` instances, ms (`None`: no
    /// traffic or unstable).
    pub fn pool_p99_ttft_ms(&self, plan: &FleetPlan, i: usize, n: u32) -> Option<f64> {
        let s = self.pool_sample(plan, i)?;
        let c = self.estimate(plan, i, n, &s);
        (c.stable && c.p99_ttft_ms.is_finite()).then_some(c.p99_ttft_ms)
    }

    /// A lower bound on pool `i`'s P99 TTFT over `n_requests` DES arrivals
    /// at any size, ms, or `None` when it proves nothing (no traffic, or a
    /// per-batch step law, for which the solo prefill is not shown to be the
    /// fastest). Each request's TTFT is at least its own chunked prefill
    /// with nothing else running ([`own_prefill_s`]); the bound is that
    /// quantity's quantile at `0.99 − 3σ` of the sample P99 over
    /// `n_requests` arrivals, so a run's P99 falls below it only by a
    /// three-sigma accident of sampling.
    pub fn floor_p99_ttft_ms(&self, plan: &FleetPlan, i: usize, n_requests: u64) -> Option<f64> {
        let pools = plan.pools(&vec![1; plan.shapes().len()]);
        let profile = &pools[i].profile;
        if profile.step_law.is_some() {
            return None;
        }
        let s = self.pool_sample(plan, i)?;
        let arrivals = (n_requests as f64 * s.lam_req_s / self.lam).max(1.0);
        let q = 0.99 - 3.0 * (0.01 * 0.99 / arrivals).sqrt();
        if q <= 0.5 {
            return None;
        }
        let mut solo: Vec<f64> = s
            .samples
            .iter()
            .map(|&(x, _)| own_prefill_s(profile, x, 0.0))
            .collect();
        Some(nearest_rank_unsorted(&mut solo, q) * 1e3)
    }

    /// The pools that no size can bring within `slo_ms` over `n_requests`
    /// DES arrivals, with the reason ([`Screen::floor_p99_ttft_ms`]).
    pub fn infeasible(&self, plan: &FleetPlan, slo_ms: f64, n_requests: u64) -> Option<String> {
        let shapes = plan.shapes();
        let why: Vec<String> = (0..shapes.len())
            .filter_map(|i| {
                let floor = self.floor_p99_ttft_ms(plan, i, n_requests)?;
                (floor > slo_ms).then(|| {
                    format!(
                        "pool `{}`: P99 TTFT ≥ {floor:.0} ms > SLO {slo_ms} ms however many instances (the P99 of its prompts' own chunked prefill with nothing else running; analytic lower bound, not simulated)",
                        shapes[i].id
                    )
                })
            })
            .collect();
        (!why.is_empty()).then(|| why.join("; "))
    }

    /// Smallest analytic counts meeting the SLO per pool (cross-check stable
    /// and P99 TTFT ≤ `slo_ms`), or `None` if some pool cannot meet it at any
    /// size (1 for a pool without traffic).
    pub fn size(&self, plan: &FleetPlan, slo_ms: f64) -> Option<Vec<u32>> {
        self.size_pools(plan, slo_ms).into_iter().collect()
    }

    /// Per pool, the smallest count whose cross-check meets the SLO (1 for a
    /// pool without traffic; `None` for one that meets it at no size).
    pub fn size_pools(&self, plan: &FleetPlan, slo_ms: f64) -> Vec<Option<u32>> {
        (0..plan.shapes().len())
            .map(|i| {
                let Some(s) = self.pool_sample(plan, i) else {
                    return Some(1);
                };
                let ok = |n: u32| {
                    let c = self.estimate(plan, i, n, &s);
                    c.stable && c.p99_ttft_ms <= slo_ms
                };
                let mut hi = self.light_load_size(plan, i, &s, 1.0);
                let mut lo = hi - 1;
                while !ok(hi) {
                    if hi >= MAX_INSTANCES {
                        return None;
                    }
                    lo = hi;
                    hi = hi.saturating_mul(2).min(MAX_INSTANCES);
                }
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if ok(mid) { hi = mid } else { lo = mid }
                }
                Some(hi)
            })
            .collect()
    }

    /// The fewest instances of pool `i` at which the cross-check's capacity
    /// covers its rate `rho` times over (at least 1).
    fn light_load_size(&self, plan: &FleetPlan, i: usize, s: &PoolSample, rho: f64) -> u32 {
        let cap1 = self.estimate(plan, i, 1, s).capacity_req_per_s;
        if cap1 > 0.0 && cap1.is_finite() {
            ((s.lam_req_s / (rho * cap1)).ceil() as u32).clamp(1, MAX_INSTANCES)
        } else {
            1
        }
    }

    /// Where to start a DES search for each pool: its analytic size, or
    /// for a pool that meets the SLO at no analytic size, the size at which
    /// it runs at a quarter of its capacity (the DES then sees at once
    /// whether more instances still help).
    pub fn start(&self, plan: &FleetPlan, slo_ms: f64) -> Vec<u32> {
        self.size_pools(plan, slo_ms)
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                n.unwrap_or_else(|| {
                    self.pool_sample(plan, i)
                        .map_or(1, |s| self.light_load_size(plan, i, &s, 0.25))
                })
            })
            .collect()
    }
}
