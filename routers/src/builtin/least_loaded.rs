//! `least-loaded`: the fitting pool with the lowest (running + waiting) / slots.

use super::common::{by_ctx, least_loaded, too_long};
use crate::{Decision, FleetView, PoolView, RequestView, Router, RouterStats};

/// Sends each request to the pool with the lowest [`PoolView::load`] among
/// those that fit its ISL + OSL; ties go to the smaller context, then the
/// lower index (deterministic, no randomness).
pub struct LeastLoadedRouter {
    by_ctx: Vec<usize>,
    stats: RouterStats,
}

impl LeastLoadedRouter {
    /// A least-loaded router over `pools`.
    pub fn new(pools: &[PoolView]) -> Self {
        LeastLoadedRouter {
            by_ctx: by_ctx(pools),
            stats: RouterStats::for_pools(pools.len()),
        }
    }
}

impl Router for LeastLoadedRouter {
    fn name(&self) -> &str {
        "least-loaded"
    }

    fn route(&mut self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Decision {
        let decision = match least_loaded(&self.by_ctx, fleet, req.total_tokens()) {
            Some(pool) => Decision::Route { pool },
            None => too_long(),
        };
        self.stats.record(decision)
    }

    fn stats(&self) -> RouterStats {
        self.stats.clone()
    }
}
