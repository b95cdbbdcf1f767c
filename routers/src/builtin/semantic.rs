//! `semantic`: route by a label carried in the trace (e.g. a classifier's pick).

use std::collections::BTreeMap;

use super::common::{by_ctx, route_if_fits, too_long};
use crate::{Decision, FleetView, PoolView, RequestView, Router, RouterStats};

/// Routes by the value of one trace label (default key `selected_model`): a
/// `value → pool` map, and for a missing label or an unmapped value the
/// fallback pool, or — without a fallback — the smallest pool that fits (as
/// `length`). A mapped or fallback pool too small for the request's
/// ISL + OSL gives [`crate::RejectReason::ExceedsMaxContext`].
///
/// Extra counter: `fallback` (label missing or unmapped).
pub struct SemanticRouter {
    label: String,
    label_pools: BTreeMap<String, usize>,
    fallback_pool: Option<usize>,
    by_ctx: Vec<usize>,
    stats: RouterStats,
}

impl SemanticRouter {
    /// A semantic router; pool ids must already be resolved to indices.
    pub fn new(
        pools: &[PoolView],
        label: String,
        label_pools: BTreeMap<String, usize>,
        fallback_pool: Option<usize>,
    ) -> Self {
        SemanticRouter {
            label,
            label_pools,
            fallback_pool,
            by_ctx: by_ctx(pools),
            stats: RouterStats::for_pools(pools.len()),
        }
    }
}

impl Router for SemanticRouter {
    fn name(&self) -> &str {
        "semantic"
    }

    fn route(&mut self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Decision {
        let total = req.total_tokens();
        let mapped = req
            .label(&self.label)
            .and_then(|v| self.label_pools.get(v).copied());
        let decision = match (mapped, self.fallback_pool) {
            (Some(pool), _) => route_if_fits(fleet, pool, total),
            (None, Some(pool)) => {
                self.stats.bump("fallback");
                route_if_fits(fleet, pool, total)
            }
            (None, None) => {
                self.stats.bump("fallback");
                self.by_ctx
                    .iter()
                    .copied()
                    .find(|&i| fleet.pools[i].fits(total))
                    .map_or_else(too_long, |pool| Decision::Route { pool })
            }
        };
        self.stats.record(decision)
    }

    fn stats(&self) -> RouterStats {
        self.stats.clone()
    }
}
