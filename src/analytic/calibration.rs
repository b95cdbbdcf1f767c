//! Per-pool calibration of the analytic models from a workload sample.
//!
//! The analytic models need a handful of numbers about one pool: the arrival
//! rate, how many servers (slots) it has, and the first two moments of the
//! service time together with the prefill-time distribution. They come from
//! the slot model applied to sampled `(ISL, OSL)` pairs, so that
//! the calibration is exactly the service law the slot-model DES runs:
//!
//! - step time of a request: `step(n_slots sequences of ISL + OSL tokens)`
//!   = `W + H · n_slots · (ISL + OSL) / calibration_ctx`;
//! - prefill time: `ceil(ISL / chunk) · step + prefill_s_per_token · ISL`;
//! - service time (the slot is held this long): prefill time + `OSL · step`.

use rand::SeedableRng;
use serde::Serialize;

use crate::profile::Profile;
use crate::rng::SimRng;
use crate::workload::lengths::LengthModel;

/// What the analytic models know about one pool.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PoolCalibration {
    /// Arrival rate into the pool, requests/s.
    pub lam_req_s: f64,
    /// Serving instances in the pool.
    pub instances: u32,
    /// Slots per instance, `profile.n_slots(max_ctx)` (the M/G/c servers).
    pub slots_per_instance: u32,
    /// Running-sequence cap per instance of the iteration model (vLLM `max_num_seqs`).
    pub max_num_seqs: u32,
    /// Mean slot-model service time, s.
    pub mean_service_s: f64,
    /// Squared coefficient of variation of the service time, `Var[S] / E[S]²`.
    pub cv2_service: f64,
    /// Mean prefill time, s.
    pub mean_prefill_s: f64,
    /// 99th percentile of the prefill time, s (nearest-rank over the sample).
    pub p99_prefill_s: f64,
    /// Mean input length of the sample, tokens.
    pub mean_isl_tok: f64,
    /// Mean output length of the sample, tokens.
    pub mean_osl_tok: f64,
}

impl PoolCalibration {
    /// Calibrate a pool of `instances` instances of `profile` with maximum
    /// context `max_ctx_tok`, fed at `lam_req_s` requests/s, from `samples`
    /// of `(ISL, OSL)` of the requests that go to this pool (the caller
    /// filters by context).
    ///
    /// `max_num_seqs` is the profile's `max_slots`. With no samples every
    /// time and length is 0 (the estimates then report zero waits).
    pub fn from_samples(
        profile: &Profile,
        max_ctx_tok: u32,
        instances: u32,
        lam_req_s: f64,
        samples: &[(u32, u32)],
    ) -> PoolCalibration {
        let slots = profile.n_slots(max_ctx_tok);
        let chunk = profile.chunk.max(1) as u64;
        let n = samples.len();
        let mut prefill_s: Vec<f64> = Vec::with_capacity(n);
        let mut service_s: Vec<f64> = Vec::with_capacity(n);
        let (mut sum_isl, mut sum_osl) = (0.0, 0.0);
        for &(isl, osl) in samples {
            let step = profile.step_s(slots as f64 * (isl as f64 + osl as f64), 0.0);
            let pre = (isl as u64).div_ceil(chunk) as f64 * step
                + profile.prefill_s_per_token * isl as f64;
            prefill_s.push(pre);
            service_s.push(pre + osl as f64 * step);
            sum_isl += isl as f64;
            sum_osl += osl as f64;
        }
        let mean = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let mean_service_s = mean(&service_s);
        let cv2_service = if mean_service_s > 0.0 {
            // Two-pass population variance (stable for large samples).
            let var = service_s
                .iter()
                .map(|s| (s - mean_service_s).powi(2))
                .sum::<f64>()
                / n as f64;
            var / (mean_service_s * mean_service_s)
        } else {
            0.0
        };
        let mean_prefill_s = mean(&prefill_s);
        let p99_prefill_s = nearest_rank_unsorted(&mut prefill_s, 0.99);
        let per = |s: f64| if n == 0 { 0.0 } else { s / n as f64 };
        PoolCalibration {
            lam_req_s,
            instances,
            slots_per_instance: slots,
            max_num_seqs: profile.max_slots,
            mean_service_s,
            cv2_service,
            mean_prefill_s,
            p99_prefill_s,
            mean_isl_tok: per(sum_isl),
            mean_osl_tok: per(sum_osl),
        }
    }

    /// Total servers of the pool (instances × slots), the `c` of M/G/c.
    pub fn total_slots(&self) -> u64 {
        self.instances as u64 * self.slots_per_instance as u64
    }
}

/// Nearest-rank `q` quantile of sorted values (0 when empty).
pub fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[nearest_rank_index(sorted.len(), q)]
}

/// Index of the nearest-rank `q` quantile among `n ≥ 1` sorted values.
fn nearest_rank_index(n: usize, q: f64) -> usize {
    let rank = (q * n as f64).ceil() as usize;
    rank.clamp(1, n) - 1
}

/// The same value as [`nearest_rank`] of the sorted values (in
/// `f64::total_cmp` order), found by selection in O(n) instead of a sort
/// (the slice may be reordered). An upper quantile of many values (a P99)
/// is selected among the values above a threshold read off a sample:
/// one counting pass and a selection among a few percent of them, instead
/// of a selection over all of them (the analytic screens' Monte Carlo P99s
/// spent more time selecting than drawing).
pub fn nearest_rank_unsorted(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let n = values.len();
    let i = nearest_rank_index(n, q);
    if n >= TAIL_SELECT_MIN_LEN
        && n - i <= n / 16
        && let Some(v) = select_in_upper_tail(values, i)
    {
        return v;
    }
    *values.select_nth_unstable_by(i, f64::total_cmp).1
}

/// From this many values an upper quantile is selected in the tail.
const TAIL_SELECT_MIN_LEN: usize = 4096;

/// Values in the strided sample that sets the tail's threshold.
const TAIL_SAMPLE_LEN: usize = 512;

/// The value at position `i` of `values` sorted by `f64::total_cmp`, when
/// it lies at or above a threshold taken from a strided sample below the
/// matching sample quantile (by ~4 binomial standard deviations plus 8
/// ranks, so the check below almost never fails): the values below the
/// threshold fill the sorted positions before it, so position `i` is
/// position `i − below` among the others. `None` when the threshold turned
/// out above that value (the caller selects among all values instead).
fn select_in_upper_tail(values: &[f64], i: usize) -> Option<f64> {
    let n = values.len();
    let stride = (n / TAIL_SAMPLE_LEN).max(1);
    let mut sample: Vec<f64> = values.iter().step_by(stride).copied().collect();
    let m = sample.len() as f64;
    let above_frac = (n - i) as f64 / n as f64;
    let margin = 4.0 * (m * above_frac * (1.0 - above_frac)).sqrt() + 8.0;
    let k = (m * (1.0 - above_frac) - margin).floor();
    if k < 0.0 {
        return None;
    }
    let threshold = *sample.select_nth_unstable_by(k as usize, f64::total_cmp).1;
    let mut below = 0usize;
    let mut tail: Vec<f64> = Vec::with_capacity(2 * (n - i) + 64);
    for &v in values {
        if v.total_cmp(&threshold).is_lt() {
            below += 1;
        } else {
            tail.push(v);
        }
    }
    let j = i.checked_sub(below)?;
    Some(*tail.select_nth_unstable_by(j, f64::total_cmp).1)
}

/// `n` deterministic `(ISL, OSL)` draws from `model` (same `seed`, same draws).
pub fn sample_lengths(model: &LengthModel, n: usize, seed: u64) -> Vec<(u32, u32)> {
    let mut rng = SimRng::seed_from_u64(seed);
    (0..n).map(|_| model.sample(&mut rng)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::lengths::LengthDist;
    use rand::{RngExt, SeedableRng};

    /// The tail selection gives the sorted order's value bit for bit, for
    /// heavy ties, sorted and reversed inputs, signed zeros, infinities and
    /// NaN, at lengths around where it starts and quantiles in and out of
    /// the tail.
    #[test]
    fn unsorted_nearest_rank_is_the_sorted_one_bit_for_bit() {
        let mut rng = crate::rng::SimRng::seed_from_u64(11);
        let specials = [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e300];
        for case in 0..400 {
            let n = match case % 4 {
                0 => rng.random_range(1..TAIL_SELECT_MIN_LEN),
                1 => TAIL_SELECT_MIN_LEN + rng.random_range(0..64),
                _ => rng.random_range(TAIL_SELECT_MIN_LEN..60_000),
            };
            let distinct = [2, 50, 1 << 30][case % 3];
            let mut v: Vec<f64> = (0..n)
                .map(|_| match rng.random_range(0..100) {
                    0 => specials[rng.random_range(0..specials.len())],
                    _ => rng.random_range(0..distinct) as f64 * 0.37,
                })
                .collect();
            match case % 5 {
                0 => v.sort_by(f64::total_cmp),
                1 => v.sort_by(|a, b| b.total_cmp(a)),
                _ => {}
            }
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            for q in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
                let want = nearest_rank(&sorted, q);
                let got = nearest_rank_unsorted(&mut v.clone(), q);
                assert_eq!(got.to_bits(), want.to_bits(), "n {n}, q {q}, case {case}");
            }
            // The tail path itself answers (it is not the fallback's result
            // that passed), and answers right.
            if n >= TAIL_SELECT_MIN_LEN {
                let i = nearest_rank_index(n, 0.99);
                let got = select_in_upper_tail(&v, i).expect("the threshold is below the P99");
                assert_eq!(got.to_bits(), sorted[i].to_bits(), "n {n}, case {case}");
            }
        }
    }

    #[test]
    fn hand_computed_two_requests() {
        // h100 at max_ctx 8192: 128 slots, chunk 1024, W = 4 ms, H = 0.32 ms.
        let p = Profile::preset("h100").expect("preset");
        let cal = PoolCalibration::from_samples(&p, 8192, 3, 7.0, &[(1000, 100), (3000, 1096)]);
        assert_eq!(cal.slots_per_instance, 128);
        assert_eq!(cal.max_num_seqs, 256);
        assert_eq!(cal.total_slots(), 384);
        // Request 1: step = 0.004 + 0.00032·128·1100/8192 = 0.0094999...;
        // prefill 1 step; service 101 steps.
        let s1: f64 = 0.004 + 0.00032 * 128.0 * 1100.0 / 8192.0;
        // Request 2: step = 0.004 + 0.00032·128·4096/8192 = 0.02448; prefill 3 steps.
        let s2: f64 = 0.004 + 0.00032 * 128.0 * 4096.0 / 8192.0;
        let (pre1, pre2) = (s1, 3.0 * s2);
        let (sv1, sv2) = (101.0 * s1, 1099.0 * s2);
        let m = (sv1 + sv2) / 2.0;
        let var = ((sv1 - m).powi(2) + (sv2 - m).powi(2)) / 2.0;
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
        assert!(close(cal.mean_service_s, m), "{} {m}", cal.mean_service_s);
        assert!(close(cal.cv2_service, var / (m * m)));
        assert!(close(cal.mean_prefill_s, (pre1 + pre2) / 2.0));
        assert!(close(cal.p99_prefill_s, pre2));
        assert_eq!((cal.mean_isl_tok, cal.mean_osl_tok), (2000.0, 598.0));
        assert_eq!(cal.lam_req_s, 7.0);
    }

    #[test]
    fn empty_sample_is_all_zero_and_sampling_is_deterministic() {
        let p = Profile::preset("a100").expect("preset");
        let cal = PoolCalibration::from_samples(&p, 4096, 1, 1.0, &[]);
        assert_eq!(
            (cal.mean_service_s, cal.cv2_service, cal.p99_prefill_s),
            (0.0, 0.0, 0.0)
        );
        let m = LengthModel::Separate {
            isl: LengthDist::Exp { mean_tok: 50.0 },
            osl: LengthDist::Uniform {
                lo_tok: 1,
                hi_tok: 9,
            },
        };
        let a = sample_lengths(&m, 1000, 5);
        assert_eq!(a, sample_lengths(&m, 1000, 5));
        assert_ne!(a, sample_lengths(&m, 1000, 6));
        assert_eq!(a.len(), 1000);
    }
}
