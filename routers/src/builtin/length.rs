//! `length`: send each request to the smallest pool whose context fits it.

use crate::{
    Decision, FleetView, LengthSignal, PoolView, RejectReason, RequestView, Router, RouterStats,
};

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
        let mut by_ctx: Vec<usize> = (0..pools.len()).collect();
        by_ctx.sort_by_key(|&i| (pools[i].max_ctx_tok, i));
        LengthRouter {
            signal,
            threshold_tok,
            mean_output_tok: mean_output_tok.unwrap_or(0),
            by_ctx,
            stats: RouterStats {
                routed: vec![0; pools.len()],
                ..RouterStats::default()
            },
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
}

impl Router for LengthRouter {
    fn name(&self) -> &str {
        "length"
    }

    fn route(&mut self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Decision {
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
        let choice = choice.or_else(|| {
            self.by_ctx
                .iter()
                .copied()
                .find(|&i| fleet.pools[i].fits(total))
        });
        match choice {
            Some(pool) => {
                self.stats.routed[pool] += 1;
                Decision::Route { pool }
            }
            None => {
                *self
                    .stats
                    .rejected
                    .entry(RejectReason::ExceedsMaxContext.as_str())
                    .or_default() += 1;
                Decision::Reject {
                    reason: RejectReason::ExceedsMaxContext,
                }
            }
        }
    }

    fn stats(&self) -> RouterStats {
        self.stats.clone()
    }
}
