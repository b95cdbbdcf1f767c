//! `prefix-affinity`: consistent hashing on a request's first prefix block
//! hash, so requests sharing a prefix land on the same pool (and its KV cache).

use super::common::{by_ctx, least_loaded, too_long};
use crate::{Decision, FleetView, PoolView, RequestView, Router, RouterStats};

/// Consistent hashing over pools: each pool owns `virtual_nodes` points on a
/// 64-bit ring, placed by hashing its id (not its index, so adding a pool only
/// moves the keys that now fall on the new pool's points — about 1/N of
/// them). A request's key is its first prefix block hash; it goes to the
/// owner of the first point clockwise from the key among pools that fit its
/// ISL + OSL. When that pool's [`PoolView::load`] exceeds `overload_threshold`
/// the request goes to the least-loaded fitting pool instead (counted
/// `spilled` when that is a different pool). Requests without prefix hashes
/// go to the least-loaded fitting pool.
///
/// Extra counter: `no_prefix`.
pub struct PrefixAffinityRouter {
    overload_threshold: f64,
    /// (point, pool index), sorted.
    ring: Vec<(u64, usize)>,
    by_ctx: Vec<usize>,
    stats: RouterStats,
}

/// SplitMix64 finaliser: a fast, well-mixed 64-bit permutation. Trace hash
/// ids are often small consecutive integers, so keys are mixed before use.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// FNV-1a over bytes: stable across Rust releases and platforms (unlike
/// `DefaultHasher`), so ring placement is reproducible.
fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl PrefixAffinityRouter {
    /// A prefix-affinity router over `pools` with `virtual_nodes` (≥ 1) ring
    /// points per pool.
    pub fn new(pools: &[PoolView], virtual_nodes: u32, overload_threshold: f64) -> Self {
        let mut ring: Vec<(u64, usize)> = pools
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                let base = hash_str(&p.id);
                (0..virtual_nodes as u64).map(move |v| (mix64(base ^ mix64(v.wrapping_add(1))), i))
            })
            .collect();
        ring.sort_unstable();
        PrefixAffinityRouter {
            overload_threshold,
            ring,
            by_ctx: by_ctx(pools),
            stats: RouterStats::for_pools(pools.len()),
        }
    }

    /// The ring owner of `key` among pools that fit `total_tok`.
    fn ring_target(&self, key: u64, fleet: &FleetView<'_>, total_tok: u64) -> Option<usize> {
        let h = mix64(key);
        let start = self.ring.partition_point(|&(p, _)| p < h);
        let (after, before) = self.ring.split_at(start);
        before
            .iter()
            .chain(after)
            .map(|&(_, i)| i)
            .find(|&i| fleet.pools[i].fits(total_tok))
    }
}

impl Router for PrefixAffinityRouter {
    fn name(&self) -> &str {
        "prefix-affinity"
    }

    fn route(&mut self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Decision {
        let total = req.total_tokens();
        let target = match req.prefix_hashes.first() {
            Some(&key) => self.ring_target(key, fleet, total),
            None => {
                self.stats.bump("no_prefix");
                None
            }
        };
        let pool = match target {
            Some(t) if fleet.pools[t].load() <= self.overload_threshold => Some(t),
            Some(t) => {
                let alt = least_loaded(&self.by_ctx, fleet, total);
                if alt.is_some_and(|a| a != t) {
                    self.stats.spilled += 1;
                }
                alt
            }
            None => least_loaded(&self.by_ctx, fleet, total),
        };
        let decision = pool.map_or_else(|| too_long(fleet, total), |pool| Decision::Route { pool });
        self.stats.record(decision)
    }

    fn stats(&self) -> RouterStats {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::testutil::{fleet, pool, req};

    fn pools(n: usize) -> Vec<PoolView> {
        (0..n).map(|i| pool(&format!("pool-{i}"), 8000)).collect()
    }

    fn keyed(hashes: &[u64]) -> RequestView<'_> {
        RequestView {
            prefix_hashes: hashes,
            ..req(100, 100)
        }
    }

    fn owners(r: &mut PrefixAffinityRouter, p: &[PoolView], keys: u64) -> Vec<usize> {
        (0..keys)
            .map(|k| r.route(&keyed(&[k, 999]), &fleet(p)).pool().unwrap())
            .collect()
    }

    #[test]
    fn same_first_hash_same_pool_across_calls_and_loads() {
        let mut p = pools(4);
        let mut r = PrefixAffinityRouter::new(&p, 128, 1.0);
        let first = owners(&mut r, &p, 500);
        // Load below the threshold does not move anything.
        for (i, q) in p.iter_mut().enumerate() {
            q.running = 10 * i as u32;
            q.waiting = 50;
        }
        assert_eq!(owners(&mut r, &p, 500), first);
        // Only the first hash matters.
        let d = r.route(&keyed(&[7, 1, 2, 3]), &fleet(&p));
        assert_eq!(d.pool(), Some(first[7]));
        assert_eq!(r.stats().spilled, 0);
    }

    #[test]
    fn keys_spread_over_pools() {
        let p = pools(4);
        let mut r = PrefixAffinityRouter::new(&p, 128, 1.0);
        let mut counts = [0u32; 4];
        for o in owners(&mut r, &p, 20_000) {
            counts[o] += 1;
        }
        for c in counts {
            assert!((3500..6500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn adding_a_pool_moves_about_one_in_n_keys_all_to_the_new_pool() {
        let four = pools(4);
        let five = pools(5);
        let before = owners(
            &mut PrefixAffinityRouter::new(&four, 128, 1.0),
            &four,
            20_000,
        );
        let after = owners(
            &mut PrefixAffinityRouter::new(&five, 128, 1.0),
            &five,
            20_000,
        );
        let moved: Vec<usize> = (0..before.len())
            .filter(|&k| before[k] != after[k])
            .collect();
        assert!(moved.iter().all(|&k| after[k] == 4));
        let frac = moved.len() as f64 / before.len() as f64;
        assert!((0.14..0.26).contains(&frac), "moved {frac}");
    }

    #[test]
    fn skips_pools_that_do_not_fit() {
        let mut p = pools(3);
        p[1].max_ctx_tok = 1000;
        let mut r = PrefixAffinityRouter::new(&p, 64, 1.0);
        let small: Vec<usize> = owners(&mut r, &p, 300);
        assert!(small.contains(&1));
        for k in 0..300u64 {
            let big = RequestView {
                prefix_hashes: &[k],
                ..req(1000, 1000)
            };
            let d = r.route(&big, &fleet(&p)).pool().unwrap();
            assert_ne!(d, 1);
            // Keys not owned by the small pool keep their owner.
            if small[k as usize] != 1 {
                assert_eq!(d, small[k as usize]);
            }
        }
    }

    #[test]
    fn overloaded_target_falls_back_to_least_loaded() {
        let mut p = pools(3);
        let mut r = PrefixAffinityRouter::new(&p, 64, 1.0);
        let t = r.route(&keyed(&[42]), &fleet(&p)).pool().unwrap();
        for q in p.iter_mut() {
            q.running = 60;
        }
        // Exactly at the threshold: still the target.
        p[t].running = 100;
        assert_eq!(r.route(&keyed(&[42]), &fleet(&p)).pool(), Some(t));
        p[t].waiting = 1;
        let other = (t + 1) % 3;
        p[other].running = 10;
        assert_eq!(r.route(&keyed(&[42]), &fleet(&p)).pool(), Some(other));
        assert_eq!(r.stats().spilled, 1);
    }

    #[test]
    fn no_prefix_goes_least_loaded() {
        let mut p = pools(3);
        p[0].running = 5;
        p[1].running = 1;
        p[2].running = 3;
        let mut r = PrefixAffinityRouter::new(&p, 64, 1.0);
        assert_eq!(r.route(&req(1, 1), &fleet(&p)), Decision::Route { pool: 1 });
        assert_eq!(r.stats().extra.get("no_prefix"), Some(&1));
        assert_eq!(
            r.route(&req(8000, 1), &fleet(&p)),
            Decision::Reject {
                reason: crate::RejectReason::ExceedsMaxContext
            }
        );
    }
}
