//! `random`: uniformly random among the pools that fit the request.

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::common::too_long;
use crate::{Decision, FleetView, RequestView, Router, RouterStats};

/// Picks uniformly among pools whose context fits the request.
pub struct RandomRouter {
    rng: Xoshiro256PlusPlus,
    fitting: Vec<usize>,
    stats: RouterStats,
}

impl RandomRouter {
    /// A random router over `n_pools` pools with its own seeded stream.
    pub fn new(n_pools: usize, seed: u64) -> Self {
        RandomRouter {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            fitting: Vec::with_capacity(n_pools),
            stats: RouterStats::for_pools(n_pools),
        }
    }
}

impl Router for RandomRouter {
    fn name(&self) -> &str {
        "random"
    }

    fn route(&mut self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Decision {
        let total = req.total_tokens();
        self.fitting.clear();
        self.fitting
            .extend((0..fleet.pools.len()).filter(|&i| fleet.pools[i].fits(total)));
        let decision = if self.fitting.is_empty() {
            too_long()
        } else {
            let pool = self.fitting[self.rng.random_range(0..self.fitting.len())];
            Decision::Route { pool }
        };
        self.stats.record(decision)
    }

    fn stats(&self) -> RouterStats {
        self.stats.clone()
    }
}
