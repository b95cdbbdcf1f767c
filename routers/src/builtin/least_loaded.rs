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
            None => too_long(fleet, req.total_tokens()),
        };
        self.stats.record(decision)
    }

    fn stats(&self) -> RouterStats {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RejectReason;
    use crate::builtin::testutil::{fleet, pool, req};

    #[test]
    fn lowest_load_among_fitting_pools() {
        let mut p = vec![pool("a", 8000), pool("b", 1000), pool("c", 8000)];
        p[0].running = 50; // load 0.5
        p[1].running = 0; // idle but small
        p[2].running = 30;
        p[2].waiting = 10; // load 0.4
        let mut r = LeastLoadedRouter::new(&p);
        assert_eq!(
            r.route(&req(100, 100), &fleet(&p)),
            Decision::Route { pool: 1 }
        );
        assert_eq!(
            r.route(&req(2000, 100), &fleet(&p)),
            Decision::Route { pool: 2 }
        );
        assert_eq!(
            r.route(&req(8000, 1), &fleet(&p)),
            Decision::Reject {
                reason: RejectReason::ExceedsMaxContext
            }
        );
    }

    #[test]
    fn load_counts_waiting_relative_to_slots() {
        let mut p = vec![pool("a", 8000), pool("b", 8000)];
        p[0].slots = 10;
        p[0].running = 4; // 0.4
        p[1].slots = 100;
        p[1].running = 30;
        p[1].waiting = 20; // 0.5
        let mut r = LeastLoadedRouter::new(&p);
        assert_eq!(r.route(&req(1, 1), &fleet(&p)), Decision::Route { pool: 0 });
    }

    #[test]
    fn ties_go_to_the_smaller_context_and_no_slots_is_last_resort() {
        let mut p = vec![pool("big", 8000), pool("small", 2000), pool("none", 9000)];
        p[2].slots = 0;
        let mut r = LeastLoadedRouter::new(&p);
        assert_eq!(r.route(&req(1, 1), &fleet(&p)), Decision::Route { pool: 1 });
        assert_eq!(
            r.route(&req(8500, 1), &fleet(&p)),
            Decision::Route { pool: 2 }
        );
    }
}
