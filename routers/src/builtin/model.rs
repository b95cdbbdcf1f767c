//! `model`: route by the request's model id.

use std::collections::BTreeMap;

use super::common::{by_ctx, route_if_fits, too_long};
use crate::{Decision, FleetView, PoolView, RejectReason, RequestView, Router, RouterStats};

/// Routes by model id. Lookup order for a request asking for model `m`:
/// 1. the explicit `model → pool` map;
/// 2. the smallest fitting pool whose [`PoolView::models`] lists `m`;
/// 3. the default pool.
///
/// A request without a model id goes to the default pool. With no match and
/// no default the request is rejected with
/// [`RejectReason::NoMatchingPool`]; a matched pool too small for the
/// request's ISL + OSL gives [`RejectReason::ExceedsMaxContext`] (the router
/// never looks further once a model has matched).
///
/// Extra counters: `declared` (matched through a pool's model list),
/// `default` (sent to the default pool).
pub struct ModelRouter {
    model_pools: BTreeMap<String, usize>,
    default_pool: Option<usize>,
    by_ctx: Vec<usize>,
    stats: RouterStats,
}

impl ModelRouter {
    /// A model router; pool ids must already be resolved to indices.
    pub fn new(
        pools: &[PoolView],
        model_pools: BTreeMap<String, usize>,
        default_pool: Option<usize>,
    ) -> Self {
        ModelRouter {
            model_pools,
            default_pool,
            by_ctx: by_ctx(pools),
            stats: RouterStats::for_pools(pools.len()),
        }
    }

    fn to_default(&mut self, fleet: &FleetView<'_>, total: u64) -> Decision {
        match self.default_pool {
            Some(pool) => {
                self.stats.bump("default");
                route_if_fits(fleet, pool, total)
            }
            None => Decision::Reject {
                reason: RejectReason::NoMatchingPool,
            },
        }
    }
}

impl Router for ModelRouter {
    fn name(&self) -> &str {
        "model"
    }

    fn route(&mut self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Decision {
        let total = req.total_tokens();
        let decision = match req.model {
            Some(m) => {
                if let Some(&pool) = self.model_pools.get(m) {
                    route_if_fits(fleet, pool, total)
                } else if fleet.pools.iter().any(|p| p.models.iter().any(|x| x == m)) {
                    self.stats.bump("declared");
                    self.by_ctx
                        .iter()
                        .copied()
                        .find(|&i| {
                            let p = &fleet.pools[i];
                            p.models.iter().any(|x| x == m) && p.fits(total)
                        })
                        .map_or_else(too_long, |pool| Decision::Route { pool })
                } else {
                    self.to_default(fleet, total)
                }
            }
            None => self.to_default(fleet, total),
        };
        self.stats.record(decision)
    }

    fn stats(&self) -> RouterStats {
        self.stats.clone()
    }
}
