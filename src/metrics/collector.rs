//! Per-pool accumulation of request outcomes during a run.

use std::collections::BTreeMap;

use super::latency::LatencyHist;

/// What one pool (or the fleet) accumulated over measured requests.
#[derive(Debug, Clone, Default)]
pub struct Collector {
    /// Time to first token.
    pub ttft: LatencyHist,
    /// Time per output token after the first.
    pub tpot: LatencyHist,
    /// End-to-end latency.
    pub e2e: LatencyHist,
    /// Queue wait: from reaching the pool to first admission.
    pub queue_wait: LatencyHist,
    /// Measured requests that reached this pool (or the fleet).
    pub arrived: u64,
    /// Measured requests completed.
    pub completed: u64,
    /// Measured requests rejected, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Measured requests that met every SLO.
    pub slo_met: u64,
    /// Measured requests still in flight when the run ended (their TTFT is
    /// recorded as a lower bound when they had no first token).
    pub unfinished: u64,
    /// Completions (any request) inside the measurement window.
    pub window_completions: u64,
    /// Input tokens of those completions.
    pub window_input_tok: u64,
    /// Output tokens of those completions.
    pub window_output_tok: u64,
    /// Those completions that met every SLO (goodput's numerator, so
    /// goodput never exceeds throughput).
    pub window_slo_met: u64,
}

impl Collector {
    /// Count a measured rejection.
    pub fn reject(&mut self, reason: &str) {
        *self.rejected.entry(reason.to_string()).or_default() += 1;
    }

    /// Rejected measured requests.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Fraction of measured requests meeting every SLO (rejected and
    /// unfinished count as misses); `None` with no measured requests.
    pub fn attainment(&self) -> Option<f64> {
        (self.arrived > 0).then(|| self.slo_met as f64 / self.arrived as f64)
    }

    /// The `p`-th percentile TTFT (0–100) over every measured arrival, ns:
    /// rejected and unfinished requests are misses of infinite latency, so
    /// it is `f64::INFINITY` when more than (100 − p)% of arrivals missed;
    /// `None` with no measured arrivals. This is the percentile a planner
    /// compares with an SLO.
    pub fn ttft_percentile_all_ns(&self, p: f64) -> Option<f64> {
        let rejected = self.rejected_total();
        // Arrivals not accounted for by a TTFT value or a rejection (none in
        // a consistent collector) are misses too.
        let unseen = self.arrived.saturating_sub(self.ttft.count() + rejected);
        self.ttft
            .percentile_with_misses_ns(p, rejected + unseen, self.unfinished)
    }

    /// Fraction of measured arrivals that were rejected or left unfinished.
    pub fn missed_fraction(&self) -> Option<f64> {
        (self.arrived > 0).then(|| {
            ((self.rejected_total() + self.unfinished) as f64 / self.arrived as f64).min(1.0)
        })
    }

    /// Add another collector into this one.
    pub fn merge(&mut self, o: &Collector) {
        self.ttft.merge(&o.ttft);
        self.tpot.merge(&o.tpot);
        self.e2e.merge(&o.e2e);
        self.queue_wait.merge(&o.queue_wait);
        self.arrived += o.arrived;
        self.completed += o.completed;
        for (k, v) in &o.rejected {
            *self.rejected.entry(k.clone()).or_default() += v;
        }
        self.slo_met += o.slo_met;
        self.unfinished += o.unfinished;
        self.window_completions += o.window_completions;
        self.window_input_tok += o.window_input_tok;
        self.window_output_tok += o.window_output_tok;
        self.window_slo_met += o.window_slo_met;
    }
}
