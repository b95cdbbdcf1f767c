//! Latency distributions: an hdrhistogram (3 significant digits, ns) for
//! percentiles plus exact sums for means and exact counts of positive values.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// One latency distribution in nanoseconds.
#[derive(Debug, Clone)]
pub struct LatencyHist {
    hist: Histogram<u64>,
    sum_ns: u128,
    count: u64,
    positive: u64,
}

impl Default for LatencyHist {
    fn default() -> Self {
        LatencyHist {
            hist: Histogram::new(3).expect("3 significant digits is a valid precision"),
            sum_ns: 0,
            count: 0,
            positive: 0,
        }
    }
}

/// Mean and percentiles of a distribution, milliseconds (`null` when empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Mean, ms.
    pub mean: Option<f64>,
    /// Median, ms.
    pub p50: Option<f64>,
    /// 90th percentile, ms.
    pub p90: Option<f64>,
    /// 99th percentile, ms.
    pub p99: Option<f64>,
    /// 99.9th percentile, ms.
    pub p999: Option<f64>,
}

impl LatencyHist {
    /// Record one value, ns.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        // `record` grows the auto-resizing histogram; `saturating_record` would clamp.
        if self.hist.record(ns).is_err() {
            self.hist.saturating_record(ns);
        }
        self.sum_ns += ns as u128;
        self.count += 1;
        self.positive += (ns > 0) as u64;
    }

    /// The value percentiles report for a recorded `ns`: the largest value
    /// of its histogram bucket (what [`LatencyHist::percentile_ns`] returns
    /// when the percentile's rank falls on it).
    pub fn reported_ns(&self, ns: u64) -> u64 {
        self.hist.highest_equivalent(ns)
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Fraction of values that are > 0 (e.g. P(wait > 0)).
    pub fn fraction_positive(&self) -> Option<f64> {
        (self.count > 0).then(|| self.positive as f64 / self.count as f64)
    }

    /// Exact mean, ns.
    pub fn mean_ns(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ns as f64 / self.count as f64)
    }

    /// Percentile (0–100), ns, within the histogram's 3-digit precision.
    pub fn percentile_ns(&self, p: f64) -> Option<f64> {
        (self.count > 0).then(|| self.hist.value_at_quantile(p / 100.0) as f64)
    }

    /// The `p`-th percentile (0–100), ns, of a population of `count() + misses`
    /// values: the recorded ones plus `misses` of infinite latency (e.g.
    /// rejected requests). `lower_bounds` of the recorded values are only
    /// lower bounds (requests unfinished at the end of the run) and count as
    /// infinite too; the result then is an upper bound of the recorded rank
    /// (never optimistic). `f64::INFINITY` when the percentile's rank falls
    /// among the infinite values; `None` for an empty population.
    pub fn percentile_with_misses_ns(&self, p: f64, misses: u64, lower_bounds: u64) -> Option<f64> {
        let n_all = self.count + misses;
        if n_all == 0 {
            return None;
        }
        let lower_bounds = lower_bounds.min(self.count);
        // Nearest rank (1-based) over the whole population.
        let rank = ((p / 100.0 * n_all as f64).ceil() as u64).clamp(1, n_all);
        if rank > self.count - lower_bounds {
            return Some(f64::INFINITY);
        }
        // The rank-th finite value is at most the (rank + lower_bounds)-th
        // recorded value; the half-step keeps the quantile's ceil on that rank.
        let held = rank + lower_bounds;
        let q = (held as f64 - 0.5) / self.count as f64;
        Some(self.hist.value_at_quantile(q) as f64)
    }

    /// Add another distribution into this one.
    pub fn merge(&mut self, other: &LatencyHist) {
        self.hist
            .add(&other.hist)
            .expect("auto-resizing histograms always merge");
        self.sum_ns += other.sum_ns;
        self.count += other.count;
        self.positive += other.positive;
    }

    /// Summary in milliseconds.
    pub fn summary_ms(&self) -> LatencySummary {
        let ms = |v: Option<f64>| v.map(|x| x / 1e6);
        LatencySummary {
            mean: ms(self.mean_ns()),
            p50: ms(self.percentile_ns(50.0)),
            p90: ms(self.percentile_ns(90.0)),
            p99: ms(self.percentile_ns(99.0)),
            p999: ms(self.percentile_ns(99.9)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_exact_mean() {
        let mut h = LatencyHist::default();
        for v in 1..=1000u64 {
            h.record(v * 1_000_000);
        }
        h.record(0);
        let s = h.summary_ms();
        assert!((s.mean.expect("mean") - 500_500.0 / 1001.0).abs() < 1e-9);
        assert!((s.p50.expect("p50") - 500.0).abs() <= 0.5);
        assert!((s.p99.expect("p99") - 990.0).abs() <= 1.0);
        assert!((h.fraction_positive().expect("n") - 1000.0 / 1001.0).abs() < 1e-12);
        let mut m = LatencyHist::default();
        m.merge(&h);
        assert_eq!(m.count(), 1001);
        assert_eq!(LatencyHist::default().summary_ms().p99, None);
    }

    #[test]
    fn percentile_over_all_arrivals_counts_misses_as_infinite() {
        let mut h = LatencyHist::default();
        for v in 1..=1000u64 {
            h.record(v * 1_000_000);
        }
        // No misses: the ordinary nearest-rank P99 (990 ms).
        let p = h.percentile_with_misses_ns(99.0, 0, 0).expect("values");
        assert!((p / 1e6 - 990.0).abs() <= 1.0, "{p}");
        // 5 misses in 1005: rank 995 is the 995th value.
        let p = h.percentile_with_misses_ns(99.0, 5, 0).expect("values");
        assert!((p / 1e6 - 995.0).abs() <= 1.0, "{p}");
        // 30% missed: P99 is infinite, P50 is not.
        assert_eq!(
            h.percentile_with_misses_ns(99.0, 429, 0),
            Some(f64::INFINITY)
        );
        assert!(
            h.percentile_with_misses_ns(50.0, 429, 0)
                .expect("v")
                .is_finite()
        );
        // Lower bounds count as misses: 20 unfinished of 1000 ⇒ P99 infinite.
        assert_eq!(
            h.percentile_with_misses_ns(99.0, 0, 20),
            Some(f64::INFINITY)
        );
        // Everything rejected, nothing recorded.
        let e = LatencyHist::default();
        assert_eq!(e.percentile_with_misses_ns(99.0, 3, 0), Some(f64::INFINITY));
        assert_eq!(e.percentile_with_misses_ns(99.0, 0, 0), None);
    }
}
