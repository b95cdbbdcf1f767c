//! `spillover`: smallest fitting pool, unless it is busier than a threshold.

use super::common::{by_ctx, too_long};
use crate::{Decision, FleetView, PoolView, RequestView, Router, RouterStats};

/// Sends each request to the smallest pool that fits its ISL + OSL (its first
/// choice), unless that pool's utilisation — running / slots, a fraction of
/// slots, not requests per GPU — exceeds `utilisation_threshold`; then to the
/// next larger pool (in ascending context order) that fits, counted as
/// `spilled`. With no larger fitting pool the request stays with its first
/// choice.
pub struct SpilloverRouter {
    utilisation_threshold: f64,
    by_ctx: Vec<usize>,
    stats: RouterStats,
}

impl SpilloverRouter {
    /// A spillover router over `pools` (threshold: a fraction of slots).
    pub fn new(pools: &[PoolView], utilisation_threshold: f64) -> Self {
        SpilloverRouter {
            utilisation_threshold,
            by_ctx: by_ctx(pools),
            stats: RouterStats::for_pools(pools.len()),
        }
    }
}

impl Router for SpilloverRouter {
    fn name(&self) -> &str {
        "spillover"
    }

    fn route(&mut self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Decision {
        let total = req.total_tokens();
        let mut fitting = self
            .by_ctx
            .iter()
            .copied()
            .filter(|&i| fleet.pools[i].fits(total));
        let decision = match fitting.next() {
            None => too_long(fleet, total),
            Some(first) => {
                let busy = fleet.pools[first].utilisation() > self.utilisation_threshold;
                match fitting.next().filter(|_| busy) {
                    Some(larger) => {
                        self.stats.spilled += 1;
                        Decision::Route { pool: larger }
                    }
                    None => Decision::Route { pool: first },
                }
            }
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

    fn pools(short_running: u32) -> Vec<PoolView> {
        let mut p = vec![pool("long", 8000), pool("short", 1000)];
        p[1].running = short_running; // of 100 slots
        p
    }

    #[test]
    fn spills_only_strictly_above_threshold() {
        let mut r = SpilloverRouter::new(&pools(0), 0.9);
        let below = pools(89);
        let at = pools(90);
        let above = pools(91);
        assert_eq!(
            r.route(&req(500, 100), &fleet(&below)),
            Decision::Route { pool: 1 }
        );
        assert_eq!(
            r.route(&req(500, 100), &fleet(&at)),
            Decision::Route { pool: 1 }
        );
        assert_eq!(r.stats().spilled, 0);
        assert_eq!(
            r.route(&req(500, 100), &fleet(&above)),
            Decision::Route { pool: 0 }
        );
        assert_eq!(r.stats().spilled, 1);
        assert_eq!(r.stats().routed, vec![1, 2]);
    }

    #[test]
    fn threshold_is_a_fraction_of_slots_not_requests_per_gpu() {
        // 4 instances, 40 slots, 30 running: utilisation 0.75 (7.5 per GPU).
        let mut p = pools(30);
        p[1].instances = 4;
        p[1].slots = 40;
        let mut r = SpilloverRouter::new(&p, 0.8);
        assert_eq!(
            r.route(&req(10, 10), &fleet(&p)),
            Decision::Route { pool: 1 }
        );
        p[1].running = 33; // 0.825
        assert_eq!(
            r.route(&req(10, 10), &fleet(&p)),
            Decision::Route { pool: 0 }
        );
    }

    #[test]
    fn waiting_does_not_count_towards_utilisation() {
        let mut p = pools(50);
        p[1].waiting = 1000;
        let mut r = SpilloverRouter::new(&p, 0.9);
        assert_eq!(
            r.route(&req(10, 10), &fleet(&p)),
            Decision::Route { pool: 1 }
        );
    }

    #[test]
    fn long_requests_are_not_spills_and_busy_largest_pool_keeps_its_requests() {
        let mut p = pools(100);
        p[0].running = 100;
        let mut r = SpilloverRouter::new(&p, 0.5);
        assert_eq!(
            r.route(&req(2000, 10), &fleet(&p)),
            Decision::Route { pool: 0 }
        );
        assert_eq!(r.stats().spilled, 0);
        assert_eq!(
            r.route(&req(8000, 10), &fleet(&p)),
            Decision::Reject {
                reason: RejectReason::ExceedsMaxContext
            }
        );
    }

    #[test]
    fn spills_to_the_next_larger_pool_not_the_largest() {
        let mut p = vec![pool("xl", 32000), pool("s", 1000), pool("m", 4000)];
        p[1].running = 100;
        let mut r = SpilloverRouter::new(&p, 0.9);
        assert_eq!(
            r.route(&req(10, 10), &fleet(&p)),
            Decision::Route { pool: 2 }
        );
    }
}
