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
            None => too_long(),
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
