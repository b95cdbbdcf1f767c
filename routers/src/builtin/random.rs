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
            too_long(fleet, total)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RejectReason;
    use crate::builtin::testutil::{fleet, pool, req};

    #[test]
    fn only_fitting_pools_roughly_uniform_and_seeded() {
        let p = vec![pool("a", 1000), pool("b", 8000), pool("c", 8000)];
        let mut r = RandomRouter::new(3, 7);
        let mut again = RandomRouter::new(3, 7);
        let mut counts = [0u32; 3];
        for _ in 0..3000 {
            let d = r.route(&req(2000, 100), &fleet(&p));
            assert_eq!(d, again.route(&req(2000, 100), &fleet(&p)));
            counts[d.pool().unwrap()] += 1;
        }
        assert_eq!(counts[0], 0);
        assert!((1300..1700).contains(&counts[1]), "{counts:?}");
        assert_eq!(r.stats().routed_total(), 3000);
        assert_eq!(
            r.route(&req(8000, 1), &fleet(&p)),
            Decision::Reject {
                reason: RejectReason::ExceedsMaxContext
            }
        );
    }

    #[test]
    fn different_seeds_give_different_streams() {
        let p = vec![pool("a", 8000), pool("b", 8000)];
        let picks = |seed| {
            let mut r = RandomRouter::new(2, seed);
            (0..64)
                .map(|_| r.route(&req(1, 1), &fleet(&p)).pool().unwrap())
                .collect::<Vec<_>>()
        };
        assert_ne!(picks(1), picks(2));
    }
}
