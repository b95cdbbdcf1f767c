//! `compress-and-route` (γ, B): compress moderately long, compressible
//! requests so they fit the short pool; route everything else as `length`.

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::LengthRouter;
use super::common::too_long;
use crate::{
    Decision, FleetView, LengthSignal, PoolView, RejectReason, RequestView, Router, RouterStats,
    Transform,
};

/// Parameters of [`CompressRouter`], already validated and resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressParams {
    /// The band's upper edge factor γ (≥ 1): requests with total in
    /// (B, ⌊γ·B⌋] are compression candidates.
    pub gamma: f64,
    /// B, the short pool's budget in tokens (ISL + OSL after compression).
    pub threshold_tok: u32,
    /// Categories that may be compressed (others are routed as `length`).
    pub safe_categories: Vec<String>,
    /// Compressed ISL must be ≥ this fraction of the original ISL, in [0, 1].
    pub ratio_floor: f64,
    /// Probability that a compression attempt succeeds, in [0, 1].
    pub success_prob: f64,
    /// Latency compression adds before the request reaches the pool (TTFT).
    pub compression_latency_ns: u64,
}

/// Compress-and-route: a request whose ISL + OSL lies in (B, γ·B] and whose
/// category is safe is compressed to ISL := B − OSL (if that keeps at least
/// `ratio_floor` of its input) and sent, with the compression latency, to the
/// short pool (the smallest pool whose max context is ≥ B). A failed attempt
/// (probability 1 − `success_prob`) and every other request are routed as
/// `length` with threshold B would route them.
///
/// Extra counters: `compression_attempts`, `compression_failed`,
/// `not_compressible` (in the band but unsafe category, below the ratio floor,
/// or the short pool cannot hold B tokens).
pub struct CompressRouter {
    params: CompressParams,
    /// ⌊γ·B⌋: the largest total that is still a compression candidate.
    upper_tok: u64,
    /// Smallest pool whose max context is ≥ B, if any.
    short_pool: Option<usize>,
    fallback: LengthRouter,
    rng: Xoshiro256PlusPlus,
    stats: RouterStats,
}

impl CompressRouter {
    /// A compress-and-route router over `pools`, drawing compression
    /// successes from its own stream seeded with `seed`.
    pub fn new(pools: &[PoolView], params: CompressParams, seed: u64) -> Self {
        let b = params.threshold_tok;
        // A tiny epsilon so that e.g. γ = 1.1, B = 1000 gives 1100, not 1099.
        let upper_tok = (params.gamma * b as f64 + 1e-9).floor() as u64;
        let short_pool = (0..pools.len())
            .filter(|&i| pools[i].max_ctx_tok >= b)
            .min_by_key(|&i| (pools[i].max_ctx_tok, i));
        CompressRouter {
            upper_tok,
            short_pool,
            fallback: LengthRouter::new(pools, LengthSignal::Total, Some(b), None),
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            stats: RouterStats::for_pools(pools.len()),
            params,
        }
    }

    /// The compressed request's input tokens, if `req` may be compressed to
    /// fit B and the short pool can hold it.
    fn compressed_input(&self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Option<u32> {
        let b = self.params.threshold_tok;
        let new_input = b.checked_sub(req.output_tokens).filter(|&n| n > 0)?;
        if (new_input as f64) < self.params.ratio_floor * req.input_tokens as f64 {
            return None;
        }
        let short = self.short_pool?;
        fleet.pools[short]
            .fits(new_input as u64 + req.output_tokens as u64)
            .then_some(new_input)
    }
}

impl Router for CompressRouter {
    fn name(&self) -> &str {
        "compress-and-route"
    }

    fn route(&mut self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Decision {
        let total = req.total_tokens();
        let in_band = total > self.params.threshold_tok as u64 && total <= self.upper_tok;
        let mut failed = false;
        if in_band {
            let safe = self
                .params
                .safe_categories
                .iter()
                .any(|c| c == req.category);
            match self.compressed_input(req, fleet).filter(|_| safe) {
                None => self.stats.bump("not_compressible"),
                Some(input_tokens) => {
                    self.stats.bump("compression_attempts");
                    if self.rng.random_bool(self.params.success_prob) {
                        self.stats.compressed += 1;
                        let pool = self.short_pool.expect("compressible implies a short pool");
                        return self.stats.record(Decision::RouteTransformed {
                            pool,
                            transform: Transform {
                                input_tokens,
                                added_latency_ns: self.params.compression_latency_ns,
                            },
                        });
                    }
                    self.stats.bump("compression_failed");
                    failed = true;
                }
            }
        }
        let decision = match self.fallback.choose(req, fleet) {
            Some(pool) => Decision::Route { pool },
            None if failed => Decision::Reject {
                reason: RejectReason::CompressionFailed,
            },
            None => too_long(),
        };
        self.stats.record(decision)
    }

    fn stats(&self) -> RouterStats {
        self.stats.clone()
    }
}
