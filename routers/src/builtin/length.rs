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
            None => too_long(),
        };
        self.stats.record(decision)
    }

    fn stats(&self) -> RouterStats {
        self.stats.clone()
    }
}
