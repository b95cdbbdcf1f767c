//! The raw outcome of one replication, before it becomes a report.

use std::collections::BTreeMap;

use kvfleet_routers::RouterStats;

use super::server::InstanceStats;
use crate::metrics::Collector;

/// Whether the run reached a steady state.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "verdict")]
pub enum Verdict {
    /// Queues stayed bounded.
    Stable,
    /// Queues grew without bound; the run stopped early (unless
    /// `SimConfig::run_to_completion`, when it went on to the end).
    Unstable {
        /// Simulated time of detection, s.
        detected_at_s: f64,
        /// What triggered detection.
        reason: String,
    },
    /// A watched pool's P99 TTFT was certain to miss the SLO
    /// (`SimConfig::stop_on_ttft_miss`); the run stopped there.
    #[serde(rename = "slo-missed")]
    SloMissed {
        /// Simulated time of the decision, s.
        detected_at_s: f64,
        /// The watched pool whose miss was decided (`None`: a watched
        /// metric window's).
        #[serde(skip)]
        pool: Option<usize>,
        /// Which pool, and the counts that decided it.
        reason: String,
    },
}

/// Per-request timestamps (kept only with `record_requests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRecord {
    /// Arrival sequence number.
    pub id: u64,
    /// Arrival, ns.
    pub arrival_ns: u64,
    /// First token, ns (`u64::MAX` if none).
    pub first_token_ns: u64,
    /// Completion, ns (`u64::MAX` if rejected or unfinished).
    pub done_ns: u64,
    /// Pool index (`u16::MAX` if rejected by the router).
    pub pool: u16,
    /// Instance within the pool.
    pub instance: u32,
    /// Closed-loop user (`u32::MAX` for open workloads).
    pub user: u32,
}

/// What one pool did during a run.
#[derive(Debug, Clone)]
pub struct PoolOutcome {
    /// Measured outcomes.
    pub metrics: Collector,
    /// Instance statistics summed over the pool's instances, within the measurement window.
    pub window_stats: InstanceStats,
    /// Instance statistics summed over the whole run.
    pub total_stats: InstanceStats,
}

/// The raw outcome of one replication.
#[derive(Debug, Clone)]
pub struct SimOutcome {
    /// Per pool, in fleet order.
    pub pools: Vec<PoolOutcome>,
    /// Fleet-wide measured outcomes (pools merged, plus router rejections).
    pub fleet: Collector,
    /// Requests that arrived (all, including warm-up).
    pub arrived: u64,
    /// Requests completed (all).
    pub completed: u64,
    /// Requests rejected (all), by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Requests still in flight at the end.
    pub in_flight: u64,
    /// Requests counted in statistics.
    pub measured: u64,
    /// Start and end of the measurement window, s.
    pub window_s: (f64, f64),
    /// Simulated time at the end of the run, s.
    pub end_s: f64,
    /// Stability verdict.
    pub verdict: Verdict,
    /// Events processed (cancelled wake-ups skipped by the epoch check are not counted).
    pub events: u64,
    /// Wall-clock time of the run, s.
    pub wall_s: f64,
    /// Router name and counters.
    pub router: (String, RouterStats),
    /// Trace rows skipped.
    pub skipped: crate::workload::SkipCounts,
    /// Per-request records, if requested.
    pub records: Vec<RequestRecord>,
    /// The configured metric windows.
    pub windows: Vec<WindowOutcome>,
    /// (time s, waiting requests) sampled at arrivals, at most every 100 ms.
    pub queue_trace: Vec<(f64, u64)>,
    /// Requests waiting when the run ended.
    pub waiting_at_end: u64,
    /// When `SimConfig::end_at_recovery` ended the arrivals before the
    /// workload's end: the time the last offered request could arrive, s.
    pub arrivals_ended_s: Option<f64>,
    /// With `SimConfig::peak_held_window`: the most requests (waiting at or
    /// running on it) any instance held from the window's start, after that
    /// instant's step ends, until its end (`None`: not tracked, or a
    /// central queue, whose requests no instance holds while they wait).
    pub peak_held: Option<u64>,
    /// Requests restarted on another instance after theirs failed.
    pub evicted: u64,
    /// KV hand-offs of a disaggregated fleet (`None` when every pool serves both phases).
    pub kv_transfer: Option<TransferOutcome>,
}

/// What the KV-transfer links of a disaggregated fleet carried.
#[derive(Debug, Clone, Default)]
pub struct TransferOutcome {
    /// Transfers completed (all requests).
    pub transfers: u64,
    /// Bytes carried by those transfers.
    pub bytes: f64,
    /// Transfer time (link queueing and sharing plus latency) of measured requests.
    pub transfer: crate::metrics::LatencyHist,
    /// Arrival → end of prefill (the hand-off) of measured requests.
    pub prefill_phase: crate::metrics::LatencyHist,
    /// Links in the fleet.
    pub links: usize,
    /// Sum over links of the time each carried at least one transfer, s.
    pub link_busy_s: f64,
}

/// Metrics of requests arriving in one window, and the fleet's integrated
/// statistics (busy time, energy) over the window, per pool.
#[derive(Debug, Clone)]
pub struct WindowOutcome {
    /// Window name.
    pub name: String,
    /// Start, s.
    pub start_s: f64,
    /// End, s (the end of the run if it came first).
    pub end_s: f64,
    /// Outcomes of requests that arrived in the window (all, no warm-up exclusion).
    pub metrics: Collector,
    /// Instance statistics summed per pool over the window.
    pub stats_by_pool: Vec<InstanceStats>,
}

impl SimOutcome {
    /// Total rejected requests.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}
