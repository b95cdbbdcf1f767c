//! Sub-nanosecond step arithmetic.
//!
//! Global simulated time is integer nanoseconds. Inside a serving instance,
//! step durations are integers in units of 2^-16 ns (≈15 fs), so a run of
//! pure-decode steps has an exactly computable end time (an arithmetic series
//! of integers) and the fast-forward engine and the naive step engine agree to
//! the bit. Event times are the floor of the unit time in ns.

use crate::profile::Profile;

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
        let (af, bf, xf) = (a as f64, b as f64, x as f64);
        let c = af - bf / 2.0;
        let est = (-c + (c * c + 2.0 * bf * xf).sqrt()) / bf;
        if est.is_finite() && est > 0.0 {
            est as u64
        } else {
            0
        }
    };
    while m > 0 && series_u(a, b, m) >= x {
        m -= 1;
    }
    while series_u(a, b, m + 1) < x {
        m += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_coefficients_are_exact() {
        let h = StepModel::of(&Profile::preset("h100").expect("preset"));
        assert_eq!(h.h_u, 40000 * 64); // 39.0625 ns per token · 2^16
        assert_eq!(h.w_u, 4_000_000u64 << 16);
        let a = StepModel::of(&Profile::preset("a100").expect("preset"));
        assert_eq!(a.h_u as u128 * 8192, 650_000u128 << 16);
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
