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
                (0..virtual_nodes as u64)
                    .map(move |v| (mix64(base ^ mix64(v.wrapping_add(1))), i))
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
        let decision = pool.map_or_else(too_long, |pool| Decision::Route { pool });
        self.stats.record(decision)
    }

    fn stats(&self) -> RouterStats {
        self.stats.clone()
    }
}
