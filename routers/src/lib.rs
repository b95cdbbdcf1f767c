//! # kvfleet-routers
//!
//! The leaf crate that owns the [`Router`] trait. The kvfleet engine depends on
//! this crate, never the reverse: a router sees the fleet only through the
//! read-only [`FleetView`] / [`PoolView`] and the request through a
//! [`RequestView`], and answers with a [`Decision`]. Routers are built from a
//! serde [`RouterSpec`] (TOML or JSON) by [`build`].
//!
//! Built-in routers live in [`builtin`] (`length`, `compress-and-route`,
//! `random`, `least-loaded`, `spillover`, `model`, `semantic`,
//! `prefix-affinity`; [`RouterSpec::KINDS`]); see `routers/README.md` and
//! `examples/custom_router.rs` for how to write and plug in your own.
//!
//! Every router keeps [`RouterStats`] counters (routed per pool, compressed,
//! spilled, rejected by reason, router-specific extras) for the JSON report.

#![warn(missing_docs)]

pub mod builtin;
mod spec;
mod view;

pub use spec::{BuildError, LengthSignal, RouterSpec, UnknownKindError, build};
pub use view::{FleetView, PoolView, RequestView};

use std::collections::BTreeMap;

/// A change a router applies to its routed copy of a request (the shared
/// request is never mutated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transform {
    /// Input tokens after the transformation (e.g. after prompt compression).
    pub input_tokens: u32,
    /// Extra latency added before the request reaches the pool (counted in TTFT).
    pub added_latency_ns: u64,
}

/// Why a router refused a request. Every rejection is counted by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The request's ISL + OSL exceeds every pool's maximum context.
    ExceedsMaxContext,
    /// The request's ISL + OSL is within a pool's maximum context but larger
    /// than the KV cache of one of its instances (e.g. a tiny `--kv-blocks`).
    ExceedsKvCapacity,
    /// No pool serves this request's model or label, and there is no default.
    NoMatchingPool,
    /// Compression was attempted, failed, and the request fits no pool uncompressed.
    CompressionFailed,
}

impl RejectReason {
    /// Stable snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::ExceedsMaxContext => "exceeds_max_ctx",
            RejectReason::ExceedsKvCapacity => "exceeds_kv_capacity",
            RejectReason::NoMatchingPool => "no_matching_pool",
            RejectReason::CompressionFailed => "compression_failed",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A router's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send the request, unchanged, to the pool with this index.
    Route {
        /// Index into [`FleetView::pools`].
        pool: usize,
    },
    /// Send a transformed copy of the request to the pool with this index.
    RouteTransformed {
        /// Index into [`FleetView::pools`].
        pool: usize,
        /// What changed in the routed copy.
        transform: Transform,
    },
    /// Refuse the request.
    Reject {
        /// Why.
        reason: RejectReason,
    },
}

impl Decision {
    /// The pool this decision sends the request to, if any.
    pub fn pool(&self) -> Option<usize> {
        match *self {
            Decision::Route { pool } | Decision::RouteTransformed { pool, .. } => Some(pool),
            Decision::Reject { .. } => None,
        }
    }

    /// Total tokens (input + output) of the copy that reaches the pool: the
    /// request's own total, or the transformed one. `None` for a rejection.
    pub fn routed_total_tokens(&self, req: &RequestView<'_>) -> Option<u64> {
        match *self {
            Decision::Route { .. } => Some(req.total_tokens()),
            Decision::RouteTransformed { transform, .. } => {
                Some(transform.input_tokens as u64 + req.output_tokens as u64)
            }
            Decision::Reject { .. } => None,
        }
    }
}

/// Counters every router keeps; they appear in the JSON report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RouterStats {
    /// Requests routed to each pool, by pool index.
    pub routed: Vec<u64>,
    /// Requests routed as a compressed copy.
    pub compressed: u64,
    /// Requests sent to a pool other than their first choice because of load.
    pub spilled: u64,
    /// Requests refused, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Router-specific counters (e.g. `compression_failed`, `fallback`), by name.
    pub extra: BTreeMap<&'static str, u64>,
}

impl RouterStats {
    /// Zeroed counters for a fleet of `n_pools` pools.
    pub fn for_pools(n_pools: usize) -> Self {
        RouterStats {
            routed: vec![0; n_pools],
            ..RouterStats::default()
        }
    }

    /// Count a decision (routed per pool, or rejected by reason) and return it
    /// unchanged, so a router can end `route` with `self.stats.record(d)`.
    /// `compressed`, `spilled` and `extra` are left to the router.
    pub fn record(&mut self, decision: Decision) -> Decision {
        match decision {
            Decision::Route { pool } | Decision::RouteTransformed { pool, .. } => {
                if pool >= self.routed.len() {
                    self.routed.resize(pool + 1, 0);
                }
                self.routed[pool] += 1;
            }
            Decision::Reject { reason } => {
                *self.rejected.entry(reason.as_str()).or_default() += 1;
            }
        }
        decision
    }

    /// Add one to the router-specific counter `name`.
    pub fn bump(&mut self, name: &'static str) {
        *self.extra.entry(name).or_default() += 1;
    }

    /// Requests routed to any pool.
    pub fn routed_total(&self) -> u64 {
        self.routed.iter().sum()
    }

    /// Requests rejected for any reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// A routing policy: picks a pool for each request.
///
/// Implementations must be deterministic given their construction seed, and
/// must never mutate shared request data. A router is built for one fleet:
/// `fleet.pools` passed to [`Router::route`] holds the same pools, in the same
/// order, as the slice given at construction (only their load changes).
/// A decision must never name a pool whose [`PoolView::fits`] is false for the
/// routed copy's total tokens; reject with [`RejectReason::ExceedsMaxContext`]
/// instead.
pub trait Router: Send {
    /// Short name used in reports (e.g. `"length"`).
    fn name(&self) -> &str;
    /// Decide where `req` goes, given the current state of the fleet.
    fn route(&mut self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Decision;
    /// Counters accumulated so far.
    fn stats(&self) -> RouterStats;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> RequestView<'static> {
        RequestView {
            id: 0,
            arrival_s: 0.0,
            input_tokens: 700,
            output_tokens: 300,
            predicted_output_tokens: None,
            category: "prose",
            model: None,
            labels: &[],
            prefix_hashes: &[],
        }
    }

    #[test]
    fn decision_helpers() {
        let t = Decision::RouteTransformed {
            pool: 2,
            transform: Transform {
                input_tokens: 200,
                added_latency_ns: 5,
            },
        };
        assert_eq!(t.pool(), Some(2));
        assert_eq!(t.routed_total_tokens(&req()), Some(500));
        assert_eq!(
            Decision::Route { pool: 1 }.routed_total_tokens(&req()),
            Some(1000)
        );
        let r = Decision::Reject {
            reason: RejectReason::NoMatchingPool,
        };
        assert_eq!((r.pool(), r.routed_total_tokens(&req())), (None, None));
    }

    #[test]
    fn stats_record_counts_and_grows() {
        let mut s = RouterStats::for_pools(2);
        s.record(Decision::Route { pool: 1 });
        s.record(Decision::Route { pool: 3 });
        s.record(Decision::Reject {
            reason: RejectReason::CompressionFailed,
        });
        s.bump("x");
        s.bump("x");
        assert_eq!(s.routed, vec![0, 1, 0, 1]);
        assert_eq!((s.routed_total(), s.rejected_total()), (2, 1));
        assert_eq!(s.rejected.get("compression_failed"), Some(&1));
        assert_eq!(s.extra.get("x"), Some(&2));
    }
}
