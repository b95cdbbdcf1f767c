//! Metrics: latency distributions, per-pool collectors, the JSON/human
//! report, and replication statistics.

pub mod collector;
pub mod latency;

pub mod report;
pub mod stats;

pub use collector::Collector;
pub use latency::{LatencyHist, LatencySummary};
