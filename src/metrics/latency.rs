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
}
