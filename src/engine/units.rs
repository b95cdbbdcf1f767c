//! Sub-nanosecond step arithmetic.
//!
//! Global simulated time is integer nanoseconds. Inside a serving instance,
//! step durations are integers in units of 2^-16 ns (≈15 fs), so a run of
//! pure-decode steps has an exactly computable end time (an arithmetic series
//! of integers) and the fast-forward engine and the naive step engine agree to
//! the bit. Event times are the floor of the unit time in ns.

use std::sync::Arc;

use crate::profile::Profile;
use crate::profile::step_law::StepLaw;

/// Units per nanosecond (2^16).
pub const UNITS_PER_NS: u128 = 1 << 16;

/// Nanoseconds (floor) of an absolute unit time.
#[inline]
pub fn ns_of(units: u128) -> u64 {
    (units >> 16) as u64
}

/// Unit time of an absolute ns time.
#[inline]
pub fn units_of(ns: u64) -> u128 {
    (ns as u128) << 16
}

/// Convert seconds to units, rounded to the nearest unit.
fn s_to_units(s: f64) -> u64 {
    (s * 1e9 * UNITS_PER_NS as f64).round() as u64
}

/// A profile's manual step-time model in integer units:
/// `step = w + h · Σ ctx + p · prefill_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepModel {
    /// Fixed step cost W, units.
    pub w_u: u64,
    /// Cost per context token (H / calibration_ctx), units.
    pub h_u: u64,
    /// Cost per prefill token, units.
    pub p_u: u64,
}

impl StepModel {
    /// Quantise a profile's coefficients (relative error < 1e-6 for the presets;
    /// the presets' H/calibration_ctx are exact multiples of 2^-16 ns).
    pub fn of(profile: &Profile) -> Self {
        StepModel {
            w_u: s_to_units(profile.w_s).max(1),
            h_u: s_to_units(profile.h_s / profile.calibration_ctx as f64),
            p_u: s_to_units(profile.prefill_s_per_token),
        }
    }

    /// Duration of one step, units.
    #[inline]
    pub fn step_u(&self, sum_ctx: u64, prefill_tok: u64) -> u128 {
        self.w_u as u128
            + self.h_u as u128 * sum_ctx as u128
            + self.p_u as u128 * prefill_tok as u128
    }
}

/// The step-time law the iteration engine runs, in integer units: the
/// profile's linear [`StepModel`] (presets, files, `custom`), or a computed
/// profile's per-batch [`StepLaw`] — `W(b) + H(b)·Σctx` for pure-decode steps
/// (so a run of them is still an arithmetic series) and the full roofline for
/// steps with prefill chunks.
#[derive(Debug, Clone)]
pub enum StepCost {
    /// `w + h·Σctx + p·prefill tokens` whatever the batch.
    Linear(StepModel),
    /// Per-batch coefficients, quantised once per batch size.
    PerBatch {
        /// The law (roofline instance and its W(b), H(b) table).
        law: Arc<StepLaw>,
        /// `(W(b), H(b) per context token)` in units for b = 1..=len.
        table_u: Vec<(u64, u64)>,
    },
}

impl StepCost {
    /// The law of a profile: its [`StepLaw`] if it has one, else the linear model.
    pub fn of(profile: &Profile) -> Self {
        match &profile.step_law {
            None => StepCost::Linear(StepModel::of(profile)),
            Some(law) => StepCost::PerBatch {
                table_u: law.table.iter().map(|&(w, h)| quantise(w, h)).collect(),
                law: law.clone(),
            },
        }
    }

    /// A pure-decode step of `n_dec` sequences whose contexts sum to
    /// `sum_ctx`: (its duration, the increase of the duration per later step
    /// of the same run), units.
    #[inline]
    pub fn decode_ab(&self, n_dec: u32, sum_ctx: u64) -> (u128, u128) {
        let (w, h) = match self {
            StepCost::Linear(m) => (m.w_u, m.h_u),
            StepCost::PerBatch { law, table_u } => match table_u.get(n_dec as usize - 1) {
                Some(&c) => c,
                None => {
                    let (w, h) = law.decode_coeffs_s(n_dec);
                    quantise(w, h)
                }
            },
        };
        (
            w as u128 + h as u128 * sum_ctx as u128,
            h as u128 * n_dec as u128,
        )
    }

    /// A step with prefill chunks `(prior cached tokens, chunk tokens)` and
    /// `n_dec` decode sequences whose contexts sum to `sum_dec_ctx`, units.
    /// The linear law charges `w + h·(Σ decode ctx + Σ (prior + chunk)) + p·Σ chunk`.
    pub fn mixed_u(
        &self,
        n_dec: u32,
        sum_dec_ctx: u64,
        chunks: impl Iterator<Item = (u64, u64)>,
    ) -> u128 {
        match self {
            StepCost::Linear(m) => {
                let (ctx, tok) =
                    chunks.fold((0u64, 0u64), |(c, t), (prior, k)| (c + prior + k, t + k));
                m.step_u(sum_dec_ctx + ctx, tok)
            }
            StepCost::PerBatch { law, .. } => {
                let mut chunks = chunks.peekable();
                if chunks.peek().is_none() && n_dec > 0 {
                    // A decode-only step (one that preempted or admitted a
                    // transferred cache) costs what the decode law says.
                    return self.decode_ab(n_dec, sum_dec_ctx).0;
                }
                s_to_units(law.mixed_step_s(n_dec, sum_dec_ctx, chunks)).max(1) as u128
            }
        }
    }
}

/// `(W s, H s per token)` in units (W at least one unit).
fn quantise(w_s: f64, h_s_per_tok: f64) -> (u64, u64) {
    (s_to_units(w_s).max(1), s_to_units(h_s_per_tok))
}

/// Total duration of `m` steps whose durations are `a, a+b, a+2b, ...` (units).
#[inline]
pub fn series_u(a: u128, b: u128, m: u64) -> u128 {
    let m = m as u128;
    m * a + b * (m * m.saturating_sub(1) / 2)
}

/// The largest `m` with `series_u(a, b, m) < x` (a ≥ 1).
pub fn steps_before(a: u128, b: u128, x: u128) -> u64 {
    if x == 0 {
        return 0;
    }
    let mut m: u64 = if b == 0 {
        ((x - 1) / a) as u64
    } else {
        // Only an estimate (corrected below), converted without the slow
        // 128-bit path when the values fit 64 bits (the same values).
        let f = super::server::units_as_f64;
        let (af, bf, xf) = (f(a), f(b), f(x));
        let c = af - bf / 2.0;
        let est = (-c + (c * c + 2.0 * bf * xf).sqrt()) / bf;
        if est.is_finite() && est > 0.0 {
            est as u64
        } else {
            0
        }
    };
    // Walk from the estimate with the series' own recurrence: one full
    // evaluation instead of two per call (a dispatcher that reads every
    // instance's KV use calls this per instance per arrival).
    let mut s = series_u(a, b, m);
    while m > 0 && s >= x {
        m -= 1;
        s -= a + b * m as u128;
    }
    walk_steps_before(a, b, x, m, s, u64::MAX).map_or(m, |(m, _)| m)
}

/// From `m` steps whose series `s = series_u(a, b, m)` is below `x`, the
/// largest `m' ≥ m` with `series_u(a, b, m') < x` and that series, walked
/// by the recurrence `series(m + 1) = series(m) + a + b·m` in at most
/// `limit` steps (`None` when more are needed). Exact in u128.
#[inline]
pub fn walk_steps_before(
    a: u128,
    b: u128,
    x: u128,
    mut m: u64,
    mut s: u128,
    limit: u64,
) -> Option<(u64, u128)> {
    let mut steps = 0u64;
    loop {
        let next = s + a + b * m as u128;
        if next >= x {
            return Some((m, s));
        }
        if steps == limit {
            return None;
        }
        s = next;
        m += 1;
        steps += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt as _, SeedableRng as _};

    #[test]
    fn preset_coefficients_are_exact() {
        let h = StepModel::of(&Profile::preset("h100").expect("preset"));
        assert_eq!(h.h_u, 40000 * 64); // 39.0625 ns per token · 2^16
        assert_eq!(h.w_u, 4_000_000u64 << 16);
        let a = StepModel::of(&Profile::preset("a100").expect("preset"));
        assert_eq!(a.h_u as u128 * 8192, 650_000u128 << 16);
    }

    #[test]
    fn presets_keep_the_linear_law_and_computed_profiles_run_per_batch() {
        let p = Profile::preset("h100").expect("preset");
        let (lin, m) = (StepCost::of(&p), StepModel::of(&p));
        assert!(matches!(lin, StepCost::Linear(x) if x == m));
        assert_eq!(
            lin.decode_ab(7, 5000),
            (m.step_u(5000, 0), m.h_u as u128 * 7)
        );
        // Mixed: w + h·(Σ decode ctx + Σ (prior + chunk)) + p·Σ chunk, as before.
        let chunks = [(100u64, 28u64), (0, 64)];
        assert_eq!(
            lin.mixed_u(3, 900, chunks.iter().copied()),
            m.step_u(900 + 128 + 64, 92)
        );
        let c = crate::profile::computed_profile("--gpu", "h100-sxm:gpt-oss-120b:tp2:fp4")
            .expect("computed")
            .profile;
        let law = StepCost::of(&c);
        let StepCost::PerBatch { law: l, .. } = &law else {
            panic!("a computed profile carries its per-batch law")
        };
        for b in [1u32, 16, 64, 700] {
            let (w, h) = l.decode_coeffs_s(b);
            let (a, inc) = law.decode_ab(b, 1000 * b as u64);
            assert_eq!(inc, s_to_units(h) as u128 * b as u128);
            assert_eq!(
                a,
                (s_to_units(w).max(1) + s_to_units(h) * 1000 * b as u64) as u128
            );
            assert_eq!(law.mixed_u(b, 1000 * b as u64, std::iter::empty()), a);
        }
        // MoE coverage: a larger batch costs more per step, less per sequence.
        let (a16, _) = law.decode_ab(16, 16 * 2048);
        let (a64, _) = law.decode_ab(64, 64 * 2048);
        assert!(a64 > a16 && a64 < 4 * a16);
        // A prefill chunk costs more than the decode step without it.
        assert!(law.mixed_u(16, 16 * 2048, [(0u64, 4096u64)].into_iter()) > a16);
    }

    /// The definition `steps_before` implements, by its own two searches.
    fn steps_before_by_definition(a: u128, b: u128, x: u128) -> u64 {
        if x == 0 {
            return 0;
        }
        let mut m = 0u64;
        while series_u(a, b, m + 1) < x {
            m += 1;
        }
        m
    }

    #[test]
    fn steps_before_agrees_with_its_definition_at_engine_scales() {
        // Step times of 1 µs to 1 s in units, growth per step 0 to 1 ms,
        // spans up to ~2000 steps: every x around the series' values and
        // between them.
        let mut rng = crate::rng::SimRng::seed_from_u64(17);
        for _ in 0..300 {
            let a = rng.random_range(1u128 << 16..(1u128 << 16) * 1_000_000_000);
            let b = if rng.random::<bool>() {
                0
            } else {
                rng.random_range(0u128..(1u128 << 16) * 1_000_000)
            };
            let m = rng.random_range(0u64..2000);
            let s = series_u(a, b, m);
            for x in [
                s.saturating_sub(1),
                s,
                s + 1,
                s + a / 2,
                s + a,
                s + a + b * m as u128,
            ] {
                assert_eq!(
                    steps_before(a, b, x),
                    steps_before_by_definition(a, b, x),
                    "a {a} b {b} x {x}"
                );
            }
        }
    }

    #[test]
    fn steps_before_matches_brute_force() {
        for &(a, b) in &[(1u128, 0u128), (7, 3), (1000, 1), (5, 1000), (123_456, 789)] {
            let mut total = 0u128;
            for m in 0..200u64 {
                // series(m) == total
                assert_eq!(series_u(a, b, m), total);
                for x in [total + 1, total + 2] {
                    let got = steps_before(a, b, x);
                    assert!(series_u(a, b, got) < x && series_u(a, b, got + 1) >= x);
                }
                total += a + b * m as u128;
            }
        }
    }
}
