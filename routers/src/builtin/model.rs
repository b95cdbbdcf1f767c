//! `model`: route by the request's model id.

use std::collections::BTreeMap;

use super::common::{by_ctx, no_fit, route_if_fits};
use crate::{Decision, FleetView, PoolView, RejectReason, RequestView, Router, RouterStats};

/// Routes by model id. Lookup order for a request asking for model `m`:
/// 1. the explicit `model → pool` map;
/// 2. the smallest fitting pool whose [`PoolView::models`] lists `m`, or whose id is `m`;
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

    fn route_default(&mut self, fleet: &FleetView<'_>, total: u64) -> Decision {
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

/// A pool serves model `m` when it lists it in `models` or is named after it.
fn serves(p: &PoolView, m: &str) -> bool {
    p.id == m || p.models.iter().any(|x| x == m)
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
                } else if fleet.pools.iter().any(|p| serves(p, m)) {
                    self.stats.bump("declared");
                    self.by_ctx
                        .iter()
                        .copied()
                        .find(|&i| serves(&fleet.pools[i], m) && fleet.pools[i].fits(total))
                        .map_or_else(
                            || no_fit(fleet.pools.iter().filter(|p| serves(p, m)), total),
                            |pool| Decision::Route { pool },
                        )
                } else {
                    self.route_default(fleet, total)
                }
            }
            None => self.route_default(fleet, total),
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

    fn pools() -> Vec<PoolView> {
        let mut p = vec![
            pool("small", 2000),
            pool("big", 32000),
            pool("coder", 16000),
        ];
        p[2].models = vec!["coder-7b".to_string()];
        p
    }

    fn map() -> BTreeMap<String, usize> {
        [("llama-8b".to_string(), 0), ("llama-70b".to_string(), 1)]
            .into_iter()
            .collect()
    }

    fn asking(model: &str) -> RequestView<'_> {
        RequestView {
            model: Some(model),
            ..req(500, 500)
        }
    }

    const NO_MATCH: Decision = Decision::Reject {
        reason: RejectReason::NoMatchingPool,
    };
    const TOO_LONG: Decision = Decision::Reject {
        reason: RejectReason::ExceedsMaxContext,
    };

    #[test]
    fn map_then_declared_then_default() {
        let p = pools();
        let mut r = ModelRouter::new(&p, map(), Some(1));
        assert_eq!(
            r.route(&asking("llama-8b"), &fleet(&p)),
            Decision::Route { pool: 0 }
        );
        assert_eq!(
            r.route(&asking("llama-70b"), &fleet(&p)),
            Decision::Route { pool: 1 }
        );
        assert_eq!(
            r.route(&asking("coder-7b"), &fleet(&p)),
            Decision::Route { pool: 2 }
        );
        assert_eq!(
            r.route(&asking("mystery"), &fleet(&p)),
            Decision::Route { pool: 1 }
        );
        assert_eq!(r.route(&req(1, 1), &fleet(&p)), Decision::Route { pool: 1 });
        let s = r.stats();
        assert_eq!(s.extra.get("default"), Some(&2));
        assert_eq!(s.extra.get("declared"), Some(&1));
    }

    #[test]
    fn unknown_model_without_default_is_rejected() {
        let p = pools();
        let mut r = ModelRouter::new(&p, map(), None);
        assert_eq!(r.route(&asking("mystery"), &fleet(&p)), NO_MATCH);
        assert_eq!(r.route(&req(1, 1), &fleet(&p)), NO_MATCH);
        assert_eq!(r.stats().rejected.get("no_matching_pool"), Some(&2));
    }

    #[test]
    fn mapped_pool_too_small_is_rejected_not_rerouted() {
        let p = pools();
        let mut r = ModelRouter::new(&p, map(), Some(1));
        let long = RequestView {
            model: Some("llama-8b"),
            ..req(1500, 501)
        };
        assert_eq!(r.route(&long, &fleet(&p)), TOO_LONG);
        let huge = RequestView {
            model: Some("coder-7b"),
            ..req(16000, 1)
        };
        assert_eq!(r.route(&huge, &fleet(&p)), TOO_LONG);
        let mut r = ModelRouter::new(&p, map(), Some(0));
        let default_too_small = RequestView {
            model: Some("mystery"),
            ..req(2000, 1)
        };
        assert_eq!(r.route(&default_too_small, &fleet(&p)), TOO_LONG);
    }
}
