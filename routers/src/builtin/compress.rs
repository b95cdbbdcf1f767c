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
            None => too_long(fleet, total),
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
    use crate::builtin::testutil::{fleet, pool, req};

    fn params(gamma: f64, b: u32) -> CompressParams {
        CompressParams {
            gamma,
            threshold_tok: b,
            safe_categories: ["prose", "rag", "mixed"].map(String::from).to_vec(),
            ratio_floor: 0.5,
            success_prob: 1.0,
            compression_latency_ns: 3_000_000,
        }
    }

    fn pools() -> Vec<PoolView> {
        vec![pool("long", 8000), pool("short", 1000)]
    }

    fn compressed(input_tokens: u32) -> Decision {
        Decision::RouteTransformed {
            pool: 1,
            transform: Transform {
                input_tokens,
                added_latency_ns: 3_000_000,
            },
        }
    }

    #[test]
    fn band_edges_b_and_gamma_b() {
        let p = pools();
        let mut r = CompressRouter::new(&p, params(1.5, 1000), 0);
        // Exactly B: short pool, untouched.
        assert_eq!(
            r.route(&req(900, 100), &fleet(&p)),
            Decision::Route { pool: 1 }
        );
        // B + 1: compressed to ISL = B − OSL.
        assert_eq!(r.route(&req(901, 100), &fleet(&p)), compressed(900));
        // Exactly γ·B: still compressed.
        assert_eq!(r.route(&req(1400, 100), &fleet(&p)), compressed(900));
        // γ·B + 1: long pool, as length.
        assert_eq!(
            r.route(&req(1401, 100), &fleet(&p)),
            Decision::Route { pool: 0 }
        );
        let s = r.stats();
        assert_eq!(s.compressed, 2);
        assert_eq!(s.routed, vec![1, 3]);
        assert_eq!(s.extra.get("compression_attempts"), Some(&2));
    }

    #[test]
    fn non_integer_gamma_b_edge() {
        let p = pools();
        let mut r = CompressRouter::new(&p, params(1.1, 1000), 0);
        assert_eq!(r.route(&req(1000, 100), &fleet(&p)), compressed(900));
        assert_eq!(
            r.route(&req(1001, 100), &fleet(&p)),
            Decision::Route { pool: 0 }
        );
    }

    #[test]
    fn code_is_not_compressed() {
        let p = pools();
        let mut r = CompressRouter::new(&p, params(1.5, 1000), 0);
        let code = RequestView {
            category: "code",
            ..req(1100, 100)
        };
        assert_eq!(r.route(&code, &fleet(&p)), Decision::Route { pool: 0 });
        for cat in ["rag", "mixed"] {
            let safe = RequestView {
                category: cat,
                ..req(1100, 100)
            };
            assert_eq!(r.route(&safe, &fleet(&p)), compressed(900));
        }
        assert_eq!(r.stats().extra.get("not_compressible"), Some(&1));
        assert_eq!(r.stats().compressed, 2);
    }

    #[test]
    fn ratio_floor_is_inclusive() {
        let p = pools();
        let mut r = CompressRouter::new(&p, params(2.0, 1000), 0);
        // 500 / 1000 = the floor exactly: allowed.
        assert_eq!(r.route(&req(1000, 500), &fleet(&p)), compressed(500));
        // 500 / 1002 < 0.5: not compressible.
        assert_eq!(
            r.route(&req(1002, 500), &fleet(&p)),
            Decision::Route { pool: 0 }
        );
        // OSL ≥ B leaves no input at all.
        assert_eq!(
            r.route(&req(100, 1000), &fleet(&p)),
            Decision::Route { pool: 0 }
        );
        assert_eq!(r.stats().extra.get("not_compressible"), Some(&2));
    }

    #[test]
    fn success_probability_zero_and_one() {
        let p = pools();
        let mut never = CompressRouter::new(
            &p,
            CompressParams {
                success_prob: 0.0,
                ..params(1.5, 1000)
            },
            0,
        );
        let mut always = CompressRouter::new(&p, params(1.5, 1000), 0);
        for _ in 0..200 {
            assert_eq!(
                never.route(&req(1100, 100), &fleet(&p)),
                Decision::Route { pool: 0 }
            );
            assert_eq!(always.route(&req(1100, 100), &fleet(&p)), compressed(900));
        }
        assert_eq!(never.stats().compressed, 0);
        assert_eq!(never.stats().extra.get("compression_failed"), Some(&200));
        assert_eq!(always.stats().compressed, 200);
        assert_eq!(always.stats().extra.get("compression_failed"), None);
    }

    #[test]
    fn partial_success_is_seeded() {
        let p = pools();
        let half = CompressParams {
            success_prob: 0.5,
            ..params(1.5, 1000)
        };
        let run = |seed| {
            let mut r = CompressRouter::new(&p, half.clone(), seed);
            (0..1000)
                .map(|_| r.route(&req(1100, 100), &fleet(&p)))
                .collect::<Vec<_>>()
        };
        let a = run(3);
        assert_eq!(a, run(3));
        let n = a
            .iter()
            .filter(|d| matches!(d, Decision::RouteTransformed { .. }))
            .count();
        assert!((430..570).contains(&n), "{n}");
    }

    #[test]
    fn failure_with_no_long_pool_rejects_as_compression_failed() {
        let p = vec![pool("short", 1000)];
        let mut r = CompressRouter::new(
            &p,
            CompressParams {
                success_prob: 0.0,
                ..params(1.5, 1000)
            },
            0,
        );
        assert_eq!(
            r.route(&req(1100, 100), &fleet(&p)),
            Decision::Reject {
                reason: RejectReason::CompressionFailed
            }
        );
        // Not a candidate at all: plain too-long rejection.
        assert_eq!(
            r.route(&req(1600, 100), &fleet(&p)),
            Decision::Reject {
                reason: RejectReason::ExceedsMaxContext
            }
        );
        assert_eq!(r.stats().rejected.get("compression_failed"), Some(&1));
        assert_eq!(r.stats().rejected.get("exceeds_max_ctx"), Some(&1));
    }

    #[test]
    fn short_pool_is_smallest_with_ctx_at_least_b() {
        // B = 2000: the 1000-token pool is too small to be the short pool.
        let p = vec![pool("tiny", 1000), pool("long", 8000), pool("short", 2000)];
        let mut r = CompressRouter::new(&p, params(1.5, 2000), 0);
        assert_eq!(
            r.route(&req(2400, 100), &fleet(&p)),
            Decision::RouteTransformed {
                pool: 2,
                transform: Transform {
                    input_tokens: 1900,
                    added_latency_ns: 3_000_000
                }
            }
        );
        // ≤ B still goes to the smallest pool that fits, as length does.
        assert_eq!(
            r.route(&req(500, 100), &fleet(&p)),
            Decision::Route { pool: 0 }
        );
    }

    #[test]
    fn short_pool_without_kv_room_for_b_is_not_used() {
        let mut p = pools();
        p[1].kv_capacity_tok = 950;
        let mut r = CompressRouter::new(&p, params(1.5, 1000), 0);
        assert_eq!(
            r.route(&req(1100, 100), &fleet(&p)),
            Decision::Route { pool: 0 }
        );
        assert_eq!(r.stats().compressed, 0);
    }
}
