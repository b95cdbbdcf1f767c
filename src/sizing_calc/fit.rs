//! Ordinary least squares of a time metric against concurrency, with the
//! interquartile-range outlier removal NAT's calculator uses.
//!
//! The procedure, for `n` points with distinct concurrencies:
//!
//! 1. fewer than 2 points: no fit;
//! 2. when `n > 4` and `n <= 8`, drop points whose raw value lies outside
//!    `[Q1 − 2.0·IQR, Q3 + 2.0·IQR]`;
//! 3. when `n > 4`, fit, and drop points whose residual lies outside
//!    `[Q1 − 1.5·IQR, Q3 + 1.5·IQR]` of the residuals;
//! 4. fit the rest; reject the fit when R² < 0.7.
//!
//! Quartiles interpolate linearly between order statistics (position
//! `(n − 1)·p`). One deviation from NAT: a point must lie outside a bound by
//! more than a rounding tolerance (1e-9 of the data's scale) to be dropped, so
//! that exactly linear data, whose residuals are pure floating-point noise,
//! keeps all its points.

use serde::Serialize;

/// Parameters of the fit (NAT's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    /// Remove outliers at all.
    pub remove_outliers: bool,
    /// Outlier removal runs only when there are more points than this.
    pub min_points_exclusive: usize,
    /// Up to this many points, extreme raw values are removed first.
    pub small_range_threshold: usize,
    /// IQR multiple for the raw-value (extreme) filter.
    pub extreme_iqr_factor: f64,
    /// IQR multiple for the residual filter.
    pub conservative_iqr_factor: f64,
    /// Fits with a lower R² are rejected.
    pub min_r_squared: f64,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            remove_outliers: true,
            min_points_exclusive: 4,
            small_range_threshold: 8,
            extreme_iqr_factor: 2.0,
            conservative_iqr_factor: 1.5,
            min_r_squared: 0.7,
        }
    }
}

/// A fitted line `time_s = slope_s_per_user · concurrency + intercept_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinearFit {
    /// Seconds added per additional concurrent user.
    pub slope_s_per_user: f64,
    /// Extrapolated time at zero concurrency, seconds.
    pub intercept_s: f64,
    /// Coefficient of determination of the final fit (0 when the data is flat).
    pub r_squared: f64,
}

impl LinearFit {
    /// The fitted value at a concurrency.
    pub fn predict_s(&self, concurrency: f64) -> f64 {
        self.slope_s_per_user * concurrency + self.intercept_s
    }
}

/// Whether a fit can be used for an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FitStatus {
    /// R² at or above the minimum.
    Accepted,
    /// R² below the minimum: not used.
    PoorFit,
    /// Fewer than two points (before or after outlier removal).
    TooFewPoints,
    /// Slope, intercept or R² is not a finite number (values too large for
    /// double precision, e.g. near 1e300): not used.
    NotFinite,
}

/// The outcome of fitting one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitOutcome {
    /// Accepted, poor or impossible.
    pub status: FitStatus,
    /// The final line, when one could be computed (also for a poor fit).
    pub fit: Option<LinearFit>,
    /// Concurrencies removed as outliers: raw-value ones first, then residual ones.
    pub outliers_removed: Vec<u32>,
    /// Concurrencies the final line was fitted on.
    pub points_used: Vec<u32>,
    /// Why the fit is not accepted, or a caution about it.
    pub reason: Option<String>,
}

/// Quantile `p` (0..=1) of a non-empty slice, linear interpolation between
/// order statistics at position `(n − 1)·p`.
pub fn quantile_linear(values: &[f64], p: f64) -> f64 {
    assert!(!values.is_empty(), "quantile of an empty slice");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pos = (sorted.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Ordinary least squares. `None` when there are fewer than two distinct x.
pub fn ols(points: &[(f64, f64)]) -> Option<LinearFit> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let ss_res: f64 = points
        .iter()
        .map(|p| (p.1 - (slope * p.0 + intercept)).powi(2))
        .sum();
    let ss_tot: f64 = points.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    let r_squared = if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else {
        0.0
    };
    Some(LinearFit {
        slope_s_per_user: slope,
        intercept_s: intercept,
        r_squared,
    })
}

/// Keep the points whose `key` lies within `[Q1 − k·IQR, Q3 + k·IQR]` (with
/// a rounding tolerance `tol`); returns kept and removed points.
fn iqr_filter(
    points: &[(u32, f64)],
    keys: &[f64],
    factor: f64,
    tol: f64,
) -> (Vec<(u32, f64)>, Vec<u32>) {
    let q1 = quantile_linear(keys, 0.25);
    let q3 = quantile_linear(keys, 0.75);
    let iqr = q3 - q1;
    let (lo, hi) = (q1 - factor * iqr - tol, q3 + factor * iqr + tol);
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for (p, &k) in points.iter().zip(keys) {
        if k >= lo && k <= hi {
            kept.push(*p);
        } else {
            removed.push(p.0);
        }
    }
    (kept, removed)
}

fn as_xy(points: &[(u32, f64)]) -> Vec<(f64, f64)> {
    points.iter().map(|&(c, y)| (f64::from(c), y)).collect()
}

fn too_few(points_used: Vec<u32>, outliers_removed: Vec<u32>, why: String) -> FitOutcome {
    FitOutcome {
        status: FitStatus::TooFewPoints,
        fit: None,
        outliers_removed,
        points_used,
        reason: Some(why),
    }
}

/// Fit one metric: `points` are `(concurrency, p95 seconds)` with distinct
/// concurrencies, already filtered for validity.
pub fn fit_metric(points: &[(u32, f64)], cfg: &FitConfig) -> FitOutcome {
    let mut pts: Vec<(u32, f64)> = points.to_vec();
    pts.sort_by_key(|p| p.0);
    if pts.len() < 2 {
        return too_few(
            pts.iter().map(|p| p.0).collect(),
            Vec::new(),
            format!(
                "need at least 2 valid concurrencies for a linear fit, have {}",
                pts.len()
            ),
        );
    }
    let scale = pts.iter().map(|p| p.1.abs()).fold(1.0, f64::max);
    let tol = 1e-9 * scale;
    let mut outliers = Vec::new();
    if cfg.remove_outliers && pts.len() > cfg.min_points_exclusive {
        if pts.len() <= cfg.small_range_threshold {
            let raw: Vec<f64> = pts.iter().map(|p| p.1).collect();
            let (kept, removed) = iqr_filter(&pts, &raw, cfg.extreme_iqr_factor, tol);
            outliers.extend(removed);
            pts = kept;
        }
        let Some(first) = ols(&as_xy(&pts)) else {
            return too_few(
                pts.iter().map(|p| p.0).collect(),
                outliers,
                "fewer than 2 points left after removing extreme values".to_string(),
            );
        };
        let residuals: Vec<f64> = pts
            .iter()
            .map(|&(c, y)| y - first.predict_s(f64::from(c)))
            .collect();
        let (kept, removed) = iqr_filter(&pts, &residuals, cfg.conservative_iqr_factor, tol);
        outliers.extend(removed);
        pts = kept;
    }
    let used: Vec<u32> = pts.iter().map(|p| p.0).collect();
    let Some(fit) = ols(&as_xy(&pts)) else {
        return too_few(
            used,
            outliers,
            "fewer than 2 points left after outlier removal".to_string(),
        );
    };
    let finite = fit.r_squared.is_finite()
        && fit.slope_s_per_user.is_finite()
        && fit.intercept_s.is_finite();
    let (status, reason) = if !finite {
        (
            FitStatus::NotFinite,
            Some(format!(
                "the fit is not finite (slope = {:e} s/user, intercept = {:e} s, R² = {}): the p95 values (up to {:e} s) are too large to fit; expected latencies in seconds",
                fit.slope_s_per_user,
                fit.intercept_s,
                fit.r_squared,
                pts.iter().map(|p| p.1.abs()).fold(0.0, f64::max)
            )),
        )
    } else if fit.r_squared < cfg.min_r_squared {
        let why = if fit.r_squared == 0.0 && fit.slope_s_per_user == 0.0 {
            "the metric is constant across concurrencies (R² undefined, taken as 0)".to_string()
        } else {
            format!(
                "poor linear fit: R² = {:.3} < {}; the relationship may not be linear",
                fit.r_squared, cfg.min_r_squared
            )
        };
        (FitStatus::PoorFit, Some(why))
    } else if used.len() == 2 {
        (
            FitStatus::Accepted,
            Some("only 2 points: the line passes through both, R² says nothing".to_string()),
        )
    } else {
        (FitStatus::Accepted, None)
    };
    FitOutcome {
        status,
        fit: Some(fit),
        outliers_removed: outliers,
        points_used: used,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    fn pts(c: &[u32], y: &[f64]) -> Vec<(u32, f64)> {
        c.iter().copied().zip(y.iter().copied()).collect()
    }

    const C: [u32; 6] = [1, 2, 4, 8, 16, 32];

    #[test]
    fn quantiles_interpolate_linearly() {
        let v = [4.0, 1.0, 3.0, 2.0];
        // position (n-1)p = 0.75 → 1 + 0.75·(2 − 1)
        assert!(close(quantile_linear(&v, 0.25), 1.75, 1e-12));
        assert!(close(quantile_linear(&v, 0.75), 3.25, 1e-12));
        assert!(close(quantile_linear(&v, 0.5), 2.5, 1e-12));
        assert_eq!(quantile_linear(&v, 0.0), 1.0);
        assert_eq!(quantile_linear(&v, 1.0), 4.0);
        assert_eq!(quantile_linear(&[7.0], 0.25), 7.0);
        // five values: position 1.0 and 3.0 fall on order statistics
        let w = [10.0, 20.0, 30.0, 40.0, 50.0];
        assert_eq!(quantile_linear(&w, 0.25), 20.0);
        assert_eq!(quantile_linear(&w, 0.75), 40.0);
    }

    #[test]
    fn ols_exact_line_and_r_squared() {
        let f = ols(&[(1.0, 3.0), (2.0, 5.0), (3.0, 7.0)]).unwrap();
        assert!(close(f.slope_s_per_user, 2.0, 1e-12));
        assert!(close(f.intercept_s, 1.0, 1e-12));
        assert!(close(f.r_squared, 1.0, 1e-12));
        assert!(ols(&[(1.0, 3.0)]).is_none());
        assert!(ols(&[(1.0, 3.0), (1.0, 4.0)]).is_none());
        // noisy data worked by hand: residuals -0.4, 0.8, -1.0, 1.2, -0.6; SS_tot = 10
        let g = ols(&[(1.0, 1.0), (2.0, 3.0), (3.0, 2.0), (4.0, 5.0), (5.0, 4.0)]).unwrap();
        assert!(close(g.slope_s_per_user, 0.8, 1e-12));
        assert!(close(g.intercept_s, 0.6, 1e-12));
        let ss_res = 0.16 + 0.64 + 1.0 + 1.44 + 0.36;
        assert!(close(g.r_squared, 1.0 - ss_res / 10.0, 1e-12));
    }

    #[test]
    fn golden_workflow_runtime_keeps_all_points() {
        let y = [4.03488, 4.71197, 5.67581, 7.90895, 12.677, 24.5307];
        let out = fit_metric(&pts(&C, &y), &FitConfig::default());
        assert_eq!(out.status, FitStatus::Accepted);
        // 24.5307 lies just inside Q3 + 2·IQR = 24.5491
        assert!(out.outliers_removed.is_empty());
        let f = out.fit.unwrap();
        assert!(close(f.slope_s_per_user, 0.6568, 5e-5));
        assert!(close(f.intercept_s, 3.0264, 5e-5));
        assert!(close(f.r_squared, 0.9955, 5e-5));
    }

    #[test]
    fn golden_llm_latency_drops_32_as_extreme_value() {
        let y = [1.14981, 1.3591, 1.50682, 2.10668, 3.30196, 6.57847];
        let out = fit_metric(&pts(&C, &y), &FitConfig::default());
        assert_eq!(out.status, FitStatus::Accepted);
        assert_eq!(out.outliers_removed, vec![32]);
        assert_eq!(out.points_used, vec![1, 2, 4, 8, 16]);
        let f = out.fit.unwrap();
        assert!(close(f.slope_s_per_user, 0.142130, 1e-6));
        assert!(close(f.intercept_s, 1.003666, 1e-6));
    }

    #[test]
    fn residual_filter_removes_off_line_point_in_large_sweep() {
        // 10 points on y = 0.5x + 2 except one spike: n > 8, so only the
        // residual filter runs, and it catches the spike.
        let c: Vec<u32> = (1..=10).collect();
        let mut y: Vec<f64> = c.iter().map(|&x| 0.5 * f64::from(x) + 2.0).collect();
        y[4] += 3.0;
        let out = fit_metric(&pts(&c, &y), &FitConfig::default());
        assert_eq!(out.outliers_removed, vec![5]);
        let f = out.fit.unwrap();
        assert!(close(f.slope_s_per_user, 0.5, 1e-9));
        assert!(close(f.intercept_s, 2.0, 1e-9));
    }

    #[test]
    fn no_outlier_removal_up_to_four_points() {
        let y = [1.0, 1.1, 1.2, 50.0];
        let out = fit_metric(&pts(&[1, 2, 3, 4], &y), &FitConfig::default());
        assert!(out.outliers_removed.is_empty());
        assert_eq!(out.points_used.len(), 4);
    }

    #[test]
    fn exactly_linear_data_keeps_every_point() {
        let c: Vec<u32> = vec![1, 2, 4, 8, 16, 32, 64];
        let y: Vec<f64> = c.iter().map(|&x| 0.1 * f64::from(x) + 0.3).collect();
        let out = fit_metric(&pts(&c, &y), &FitConfig::default());
        assert!(
            out.outliers_removed.is_empty(),
            "{:?}",
            out.outliers_removed
        );
        assert_eq!(out.status, FitStatus::Accepted);
    }

    #[test]
    fn too_few_points() {
        let out = fit_metric(&[], &FitConfig::default());
        assert_eq!(out.status, FitStatus::TooFewPoints);
        let out = fit_metric(&[(4, 2.0)], &FitConfig::default());
        assert_eq!(out.status, FitStatus::TooFewPoints);
        assert!(out.reason.unwrap().contains("have 1"));
        let out = fit_metric(&[(1, 2.0), (4, 3.5)], &FitConfig::default());
        assert_eq!(out.status, FitStatus::Accepted);
        assert!(out.reason.unwrap().contains("only 2 points"));
    }

    #[test]
    fn poor_fit_is_rejected() {
        let y = [5.0, 1.0, 6.0, 2.0];
        let out = fit_metric(&pts(&[1, 2, 3, 4], &y), &FitConfig::default());
        assert_eq!(out.status, FitStatus::PoorFit);
        assert!(out.fit.unwrap().r_squared < 0.7);
        assert!(out.reason.unwrap().contains("R²"));
        let flat = fit_metric(&pts(&[1, 2, 3], &[2.0, 2.0, 2.0]), &FitConfig::default());
        assert_eq!(flat.status, FitStatus::PoorFit);
        assert!(flat.reason.unwrap().contains("constant"));
    }

    proptest::proptest! {
        #[test]
        fn quantile_is_monotone_and_bounded(
            v in proptest::collection::vec(-1e6f64..1e6, 1..40),
            p in 0.0f64..=1.0,
            q in 0.0f64..=1.0,
        ) {
            let (lo, hi) = if p <= q { (p, q) } else { (q, p) };
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let a = quantile_linear(&v, lo);
            let b = quantile_linear(&v, hi);
            proptest::prop_assert!(a <= b + 1e-9 * max.abs().max(1.0));
            proptest::prop_assert!(a >= min && b <= max);
        }

        #[test]
        fn exact_lines_are_recovered_without_outliers(
            slope in 0.001f64..5.0,
            intercept in 0.0f64..20.0,
            n in 2usize..16,
        ) {
            let data: Vec<(u32, f64)> = (1..=n as u32)
                .map(|c| (c * 3, slope * f64::from(c * 3) + intercept))
                .collect();
            let out = fit_metric(&data, &FitConfig::default());
            proptest::prop_assert!(out.outliers_removed.is_empty());
            let f = out.fit.unwrap();
            proptest::prop_assert!((f.slope_s_per_user - slope).abs() < 1e-9 * slope.max(1.0));
            proptest::prop_assert!((f.intercept_s - intercept).abs() < 1e-7);
        }
    }
}
