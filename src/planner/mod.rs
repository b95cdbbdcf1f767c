//! Planners: fleets sized with the simulator in the loop.
//!
//! A [`FleetPlan`] is a fleet shape (homogeneous, or short/long pools split
//! at B with a `length` or `compress-and-route` router). [`sizing`] finds
//! the smallest instance counts whose DES P99 TTFT meets the SLO in every
//! pool; `optimize`, `whatif` and `pareto` wrap it in search loops; [`disagg`]
//! sizes disaggregated prefill/decode pools against TTFT and TPOT targets.
//! Every search starts from the analytic [`screen`] (the cross-check of the
//! iteration engine) and the DES verifies around its answer.

pub mod disagg;
pub mod gridflex;
pub mod optimize;
pub mod pareto;
pub mod plan;
pub mod replication_order;
pub mod screen;
pub mod shard;
pub mod sizing;
pub mod threshold;
pub mod tpw;
pub mod whatif;

pub use plan::FleetPlan;
pub use sizing::{PoolResult, SizedFleet, SizingSettings, size_fleet};
