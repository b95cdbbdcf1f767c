//! `length`: send each request to the smallest pool whose context fits it.

use super::common::{by_ctx, too_long};
use crate::{Decision, FleetView, LengthSignal, PoolView, RequestView, Router, RouterStats};

/// Routes by request length: the smallest pool (by max context) that fits the
/// chosen length signal; with a threshold, signal ≤ threshold goes to the
/// smallest fitting pool and longer requests to the smallest pool whose max
/// context exceeds the threshold. A request whose ISL + OSL fits no pool is
/// rejected (never sent to the largest pool anyway).
pub struct LengthRouter {
    signal: LengthSignal,
    threshold_tok: Option<u32>,
    mean_output_tok: u32,
    /// Pool indices sorted by ascending max context (ties by index).
    by_ctx: Vec<usize>,
    stats: RouterStats,
}

impl LengthRouter {
    /// A length router over `pools`.
    pub fn new(
        pools: &[PoolView],
        signal: LengthSignal,
        threshold_tok: Option<u32>,
        mean_output_tok: Option<u32>,
    ) -> Self {
        LengthRouter {
            signal,
            threshold_tok,
            mean_output_tok: mean_output_tok.unwrap_or(0),
            by_ctx: by_ctx(pools),
            stats: RouterStats::for_pools(pools.len()),
        }
    }

    fn signal_tokens(&self, req: &RequestView<'_>) -> u64 {
        match self.signal {
            LengthSignal::Total => req.total_tokens(),
            LengthSignal::Input => req.input_tokens as u64,
            LengthSignal::Estimate => {
                req.input_tokens as u64
                    + req.predicted_output_tokens.unwrap_or(self.mean_output_tok) as u64
            }
        }
    }

    /// The pool `length` picks for `req`, or `None` when the request's
    /// ISL + OSL fits no pool. Counts nothing (shared with other routers).
    pub(crate) fn choose(&self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Option<usize> {
        let signal = self.signal_tokens(req);
        let total = req.total_tokens();
        // Pools the request physically fits, in ascending context order.
        let mut fitting = self
            .by_ctx
            .iter()
            .copied()
            .filter(|&i| fleet.pools[i].fits(total));
        let choice = match self.threshold_tok {
            None => self.by_ctx.iter().copied().find(|&i| {
                fleet.pools[i].fits(total) && fleet.pools[i].max_ctx_tok as u64 >= signal
            }),
            Some(b) if signal <= b as u64 => fitting.next(),
            Some(b) => fitting.find(|&i| fleet.pools[i].max_ctx_tok > b),
        };
        // Fall back to any pool the request physically fits.
        choice.or_else(|| {
            self.by_ctx
                .iter()
                .copied()
                .find(|&i| fleet.pools[i].fits(total))
        })
    }
}

impl Router for LengthRouter {
    fn name(&self) -> &str {
        "length"
    }

    fn route(&mut self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Decision {
        let decision = match self.choose(req, fleet) {
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

    fn pools() -> Vec<PoolView> {
        // Deliberately not in context order.
        vec![pool("long", 8000), pool("short", 1000), pool("mid", 4000)]
    }

    #[test]
    fn smallest_fitting_pool_without_threshold() {
        let p = pools();
        let mut r = LengthRouter::new(&p, LengthSignal::Total, None, None);
        assert_eq!(
            r.route(&req(900, 100), &fleet(&p)),
            Decision::Route { pool: 1 }
        );
        assert_eq!(
            r.route(&req(900, 101), &fleet(&p)),
            Decision::Route { pool: 2 }
        );
        assert_eq!(
            r.route(&req(4000, 4000), &fleet(&p)),
            Decision::Route { pool: 0 }
        );
        assert_eq!(
            r.route(&req(4000, 4001), &fleet(&p)),
            Decision::Reject {
                reason: RejectReason::ExceedsMaxContext
            }
        );
        let s = r.stats();
        assert_eq!(s.routed, vec![1, 1, 1]);
        assert_eq!(s.rejected.get("exceeds_max_ctx"), Some(&1));
    }

    #[test]
    fn request_within_max_ctx_but_over_kv_names_the_kv_cache() {
        let mut p = pools();
        for x in &mut p {
            x.kv_capacity_tok = 16;
        }
        let mut r = LengthRouter::new(&p, LengthSignal::Total, None, None);
        assert_eq!(
            r.route(&req(100, 100), &fleet(&p)),
            Decision::Reject {
                reason: RejectReason::ExceedsKvCapacity
            }
        );
        assert_eq!(
            r.route(&req(8000, 1), &fleet(&p)),
            Decision::Reject {
                reason: RejectReason::ExceedsMaxContext
            }
        );
        assert_eq!(r.stats().rejected.get("exceeds_kv_capacity"), Some(&1));
    }

    #[test]
    fn threshold_splits_short_and_long() {
        let p = pools();
        let mut r = LengthRouter::new(&p, LengthSignal::Total, Some(500), None);
        // ≤ B: smallest fitting pool.
        assert_eq!(
            r.route(&req(400, 100), &fleet(&p)),
            Decision::Route { pool: 1 }
        );
        // > B: smallest pool whose context exceeds B (here the short pool, 1000 > 500).
        assert_eq!(
            r.route(&req(400, 101), &fleet(&p)),
            Decision::Route { pool: 1 }
        );
        let mut r = LengthRouter::new(&p, LengthSignal::Total, Some(1000), None);
        assert_eq!(
            r.route(&req(900, 100), &fleet(&p)),
            Decision::Route { pool: 1 }
        );
        assert_eq!(
            r.route(&req(900, 101), &fleet(&p)),
            Decision::Route { pool: 2 }
        );
    }

    #[test]
    fn input_signal_ignores_output_for_the_split_but_never_overflows() {
        let p = pools();
        let mut r = LengthRouter::new(&p, LengthSignal::Input, Some(1000), None);
        // ISL 500 ≤ B, but ISL + OSL = 3000 does not fit the short pool.
        assert_eq!(
            r.route(&req(500, 2500), &fleet(&p)),
            Decision::Route { pool: 2 }
        );
        // ISL 1001 > B goes long even though total would fit mid.
        assert_eq!(
            r.route(&req(1001, 10), &fleet(&p)),
            Decision::Route { pool: 2 }
        );
    }

    #[test]
    fn estimate_uses_prediction_then_mean() {
        let p = pools();
        let mut r = LengthRouter::new(&p, LengthSignal::Estimate, Some(1000), Some(700));
        // No prediction: 400 + 700 > 1000 → long side, though the true total is 500.
        assert_eq!(
            r.route(&req(400, 100), &fleet(&p)),
            Decision::Route { pool: 2 }
        );
        let with_pred = RequestView {
            predicted_output_tokens: Some(50),
            ..req(400, 100)
        };
        assert_eq!(r.route(&with_pred, &fleet(&p)), Decision::Route { pool: 1 });
    }

    #[test]
    fn kv_capacity_limits_fit() {
        let mut p = pools();
        p[1].kv_capacity_tok = 600;
        let mut r = LengthRouter::new(&p, LengthSignal::Total, None, None);
        assert_eq!(
            r.route(&req(500, 101), &fleet(&p)),
            Decision::Route { pool: 2 }
        );
    }
}
