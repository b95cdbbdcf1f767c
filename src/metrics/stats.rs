//! Replication statistics: mean and Student-t 95% confidence half-width.

/// Two-sided 97.5% quantile of Student's t with `df` degrees of freedom
/// (table values for df ≤ 30, then the normal approximation with a 1/df correction).
pub fn t_975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        _ => 1.959964 + 2.4 / df as f64,
    }
}

/// Mean and 95% CI half-width of a sample (half-width `None` for fewer than 2 values).
pub fn mean_ci95(xs: &[f64]) -> (f64, Option<f64>) {
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n.max(1) as f64;
    if n < 2 {
        return (mean, None);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, Some(t_975(n - 1) * (var / n as f64).sqrt()))
}

/// Upper end of the one-sided 97.5% prediction interval for one more draw
/// from the population of `xs` (normal, unknown variance): `x̄ + t·s·√(1 + 1/n)`
/// with Student's t at `n − 1` degrees of freedom; `None` for fewer than 2
/// values.
pub fn upper_prediction_975(xs: &[f64]) -> Option<f64> {
    let n = xs.len();
    if n < 2 {
        return None;
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some(mean + t_975(n - 1) * (var * (1.0 + 1.0 / n as f64)).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prediction_bound_of_two_draws() {
        // x̄ = 101, s = √2, t(1) = 12.706: 101 + 12.706·√(2·1.5) = 123.007.
        let b = upper_prediction_975(&[100.0, 102.0]).expect("two values");
        assert!((b - (101.0 + 12.706 * 3f64.sqrt())).abs() < 1e-9, "{b}");
        assert!(upper_prediction_975(&[5.0]).is_none());
        assert_eq!(upper_prediction_975(&[7.0, 7.0, 7.0]), Some(7.0));
    }

    #[test]
    fn ci_of_known_sample() {
        let (m, h) = mean_ci95(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        // s = 1.29099, se = 0.645497, t(3) = 3.182
        assert!((h.expect("n ≥ 2") - 3.182 * 0.645_497).abs() < 1e-4);
        assert_eq!(mean_ci95(&[5.0]).1, None);
        assert!((t_975(1000) - 1.962).abs() < 0.002);
    }
}
