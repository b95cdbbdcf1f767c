//! The one least-squares routine of kvfleet's profiles: used both to linearise
//! the roofline into `W + H·Σctx/calibration_ctx + prefill_s_per_token·P` and by
//! `kvfleet calibrate` to fit the same coefficients to measured step times.

/// A least-squares fit and its error against the data.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinearFit {
    /// Fitted coefficients, one per column.
    pub coef: Vec<f64>,
    /// Relative residual `(fitted − y) / y` of every row.
    pub rel_residuals: Vec<f64>,
    /// Median of |relative residual|.
    pub median_rel_err: f64,
    /// Maximum of |relative residual|.
    pub max_rel_err: f64,
}

/// Fit `y ≈ X·c` minimising the sum of squared *relative* errors
/// (`Σ ((X·c − y)/y)²`, so short and long steps weigh alike), with `c ≥ 0`:
/// a column whose coefficient comes out negative is dropped (fixed at 0) and the
/// rest refitted. Columns that are all zero get coefficient 0. Returns `None`
/// when there are no rows, a `y` is not positive and finite, or the rows have
/// different lengths.
pub fn fit_nonneg_relative(x: &[Vec<f64>], y: &[f64]) -> Option<LinearFit> {
    let k = x.first()?.len();
    if x.len() != y.len()
        || x.iter().any(|r| r.len() != k)
        || y.iter().any(|v| !(v.is_finite() && *v > 0.0))
    {
        return None;
    }
    let mut active: Vec<bool> = (0..k).map(|j| x.iter().any(|r| r[j] != 0.0)).collect();
    let mut coef = vec![0.0; k];
    loop {
        let cols: Vec<usize> = (0..k).filter(|&j| active[j]).collect();
        if cols.is_empty() {
            break;
        }
        // Weighted rows: each row divided by its y.
        let a: Vec<Vec<f64>> = x
            .iter()
            .zip(y)
            .map(|(r, yi)| cols.iter().map(|&j| r[j] / yi).collect())
            .collect();
        let b = vec![1.0; y.len()];
        let sol = qr_solve(&a, &b)?;
        coef = vec![0.0; k];
        for (c, &j) in sol.iter().zip(&cols) {
            coef[j] = *c;
        }
        match cols
            .iter()
            .copied()
            .filter(|&j| coef[j] < 0.0)
            .min_by(|&a, &b| coef[a].total_cmp(&coef[b]))
        {
            Some(j) => {
                active[j] = false;
                coef[j] = 0.0;
            }
            None => break,
        }
    }
    let rel_residuals: Vec<f64> = x
        .iter()
        .zip(y)
        .map(|(r, yi)| (r.iter().zip(&coef).map(|(a, c)| a * c).sum::<f64>() - yi) / yi)
        .collect();
    let mut abs: Vec<f64> = rel_residuals.iter().map(|r| r.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let median_rel_err = if abs.len() % 2 == 1 {
        abs[abs.len() / 2]
    } else {
        0.5 * (abs[abs.len() / 2 - 1] + abs[abs.len() / 2])
    };
    let max_rel_err = abs.last().copied().unwrap_or(0.0);
    Some(LinearFit {
        coef,
        rel_residuals,
        median_rel_err,
        max_rel_err,
    })
}

/// Least squares `min ‖A·c − b‖` by modified Gram–Schmidt QR on unit-scaled
/// columns; `None` if the columns are linearly dependent.
fn qr_solve(a: &[Vec<f64>], b: &[f64]) -> Option<Vec<f64>> {
    let (m, n) = (a.len(), a.first()?.len());
    if m < n {
        return None;
    }
    // Column-major copy, scaled to unit norm.
    let mut q: Vec<Vec<f64>> = (0..n).map(|j| (0..m).map(|i| a[i][j]).collect()).collect();
    let scale: Vec<f64> = q
        .iter()
        .map(|c| c.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    if scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return None;
    }
    for (c, s) in q.iter_mut().zip(&scale) {
        c.iter_mut().for_each(|v| *v /= s);
    }
    let mut r = vec![vec![0.0; n]; n];
    for j in 0..n {
        for i in 0..j {
            let d: f64 = q[i].iter().zip(&q[j]).map(|(x, y)| x * y).sum();
            r[i][j] = d;
            let qi = q[i].clone();
            q[j].iter_mut().zip(&qi).for_each(|(v, w)| *v -= d * w);
        }
        let norm = q[j].iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm < 1e-12 {
            return None;
        }
        r[j][j] = norm;
        q[j].iter_mut().for_each(|v| *v /= norm);
    }
    let qtb: Vec<f64> = q
        .iter()
        .map(|c| c.iter().zip(b).map(|(x, y)| x * y).sum())
        .collect();
    let mut c = vec![0.0; n];
    for j in (0..n).rev() {
        let s: f64 = (j + 1..n).map(|k| r[j][k] * c[k]).sum();
        c[j] = (qtb[j] - s) / r[j][j];
    }
    Some(c.iter().zip(&scale).map(|(c, s)| c / s).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_exact_coefficients_and_drops_negative_ones() {
        let (w, h, p) = (0.004, 0.00032, 2.5e-5);
        let mut x = vec![];
        let mut y = vec![];
        for b in [1.0, 4.0, 16.0, 64.0] {
            for ctx in [512.0, 4096.0, 16384.0] {
                for pf in [0.0, 512.0] {
                    let row = vec![1.0, b * ctx / 8192.0, pf];
                    y.push(w + h * row[1] + p * pf);
                    x.push(row);
                }
            }
        }
        let f = fit_nonneg_relative(&x, &y).expect("fit");
        for (got, want) in f.coef.iter().zip([w, h, p]) {
            assert!((got - want).abs() / want < 1e-9, "{got} vs {want}");
        }
        assert!(f.max_rel_err < 1e-9);
        // A decreasing relation cannot have a negative slope: the slope is dropped.
        let x2: Vec<Vec<f64>> = (1..5).map(|i| vec![1.0, i as f64]).collect();
        let y2: Vec<f64> = (1..5).map(|i| 10.0 - i as f64).collect();
        let f2 = fit_nonneg_relative(&x2, &y2).expect("fit");
        assert_eq!(f2.coef[1], 0.0);
        assert!(f2.coef[0] > 0.0 && f2.max_rel_err > 0.1);
        assert!(fit_nonneg_relative(&[], &[]).is_none());
        assert!(fit_nonneg_relative(&[vec![1.0]], &[-1.0]).is_none());
    }
}
