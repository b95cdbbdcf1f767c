//! The analytic screen: each pool of a plan sized with the batching-aware
//! birth–death model of the iteration engine (`analytic::estimates::birth_death`),
//! P99 TTFT = P99 wait + P99 prefill. The slot-model formulas (M/M/c,
//! Allen–Cunneen, the reference's) reserve worst-case KV per slot and call
//! fleets unstable that the iteration engine serves easily, so they are not
//! used to size. Cheap enough to rank every (B, γ) candidate before the DES
//! verifies the best ones, and reported beside every DES result.
//! Compression (γ > 1) is not modelled here: pools see their uncompressed
//! length ranges.

use crate::analytic::calibration::{PoolCalibration, sample_lengths};
use crate::analytic::estimates::birth_death;
use crate::error::InputError;
use crate::profile::Profile;
use crate::workload::spec::WorkloadSpec;

use super::plan::FleetPlan;

/// Requests sampled to calibrate each pool.
const SAMPLES: usize = 50_000;
/// Largest pool the analytic sizing tries.
const MAX_INSTANCES: u32 = 1 << 16;

/// Length samples and the arrival rate of a workload.
#[derive(Debug, Clone)]
pub struct Screen {
    samples: Vec<(u32, u32)>,
    lam: f64,
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
        Ok(Screen {
            samples: sample_lengths(&model, SAMPLES, seed),
            lam,
        })
    }

    /// The calibration and profile of pool `i` of `plan` at `n` instances.
    fn calibration(
        &self,
        plan: &FleetPlan,
        i: usize,
        n: u32,
    ) -> Option<(PoolCalibration, Profile)> {
        let pools = plan.pools(&vec![n; plan.shapes().len()]);
        let lo = if i == 0 {
            0
        } else {
            pools[i - 1].max_ctx_tok as u64
        };
        let hi = pools[i].max_ctx_tok as u64;
        let mine: Vec<(u32, u32)> = self
            .samples
            .iter()
            .copied()
            .filter(|&(a, b)| {
                let t = a as u64 + b as u64;
                t > lo && t <= hi
            })
            .collect();
        if mine.is_empty() {
            return None;
        }
        let lam = self.lam * mine.len() as f64 / self.samples.len() as f64;
        let profile = pools[i].profile.clone();
        Some((
            PoolCalibration::from_samples(&profile, hi as u32, n, lam, &mine),
            profile,
        ))
    }

    /// Analytic P99 TTFT per pool at these counts, ms (`None`: no traffic or unstable).
    pub fn p99_ttft_ms(&self, plan: &FleetPlan, counts: &[u32]) -> Vec<Option<f64>> {
        (0..counts.len())
            .map(|i| {
                let (cal, profile) = self.calibration(plan, i, counts[i])?;
                let e = birth_death(&cal, &profile);
                (e.stable && e.p99_ttft_ms.is_finite()).then_some(e.p99_ttft_ms)
            })
            .collect()
    }

    /// Smallest analytic counts meeting the SLO per pool, or `None` if some
    /// pool cannot meet it at any size.
    pub fn size(&self, plan: &FleetPlan, slo_ms: f64) -> Option<Vec<u32>> {
        (0..plan.shapes().len())
            .map(|i| {
                let ok = |n: u32| match self.calibration(plan, i, n) {
                    None => true,
                    Some((cal, profile)) => {
                        let e = birth_death(&cal, &profile);
                        e.stable && e.p99_ttft_ms <= slo_ms
                    }
                };
                let mut hi = 1u32;
                while !ok(hi) {
                    if hi >= MAX_INSTANCES {
                        return None;
                    }
                    hi *= 2;
                }
                let mut lo = hi / 2;
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if ok(mid) { hi = mid } else { lo = mid }
                }
                Some(hi)
            })
            .collect()
    }
}
