//! `semantic`: route by a label carried in the trace (e.g. a classifier's pick).

use std::collections::BTreeMap;

use super::common::{by_ctx, route_if_fits, too_long};
use crate::{Decision, FleetView, PoolView, RequestView, Router, RouterStats};

/// Routes by the value of one trace label (default key `selected_model`): a
/// `value → pool` map, then a pool whose id equals the value or whose
/// [`PoolView::models`] lists it, and for a missing label or an unmapped value the
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
        let mapped = req.label(&self.label).and_then(|v| {
            self.label_pools.get(v).copied().or_else(|| {
                fleet
                    .pools
                    .iter()
                    .position(|p| p.id == v || p.models.iter().any(|m| m == v))
            })
        });
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
                    .map_or_else(|| too_long(fleet, total), |pool| Decision::Route { pool })
            }
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
        vec![
            pool("long", 32000),
            pool("short", 2000),
            pool("reasoning", 16000),
        ]
    }

    fn map() -> BTreeMap<String, usize> {
        [("small".to_string(), 1), ("o-series".to_string(), 2)]
            .into_iter()
            .collect()
    }

    fn labels(v: &str) -> Vec<(String, String)> {
        vec![
            ("complexity".to_string(), "high".to_string()),
            ("selected_model".to_string(), v.to_string()),
        ]
    }

    #[test]
    fn routes_by_label_value_with_fallback_pool() {
        let p = pools();
        let mut r = SemanticRouter::new(&p, "selected_model".into(), map(), Some(0));
        let l = labels("o-series");
        let labelled = RequestView {
            labels: &l,
            ..req(100, 100)
        };
        assert_eq!(r.route(&labelled, &fleet(&p)), Decision::Route { pool: 2 });
        let l = labels("unmapped");
        let unmapped = RequestView {
            labels: &l,
            ..req(100, 100)
        };
        assert_eq!(r.route(&unmapped, &fleet(&p)), Decision::Route { pool: 0 });
        assert_eq!(
            r.route(&req(100, 100), &fleet(&p)),
            Decision::Route { pool: 0 }
        );
        assert_eq!(r.stats().extra.get("fallback"), Some(&2));
    }

    #[test]
    fn without_fallback_pool_uses_smallest_fitting() {
        let p = pools();
        let mut r = SemanticRouter::new(&p, "selected_model".into(), map(), None);
        assert_eq!(
            r.route(&req(100, 100), &fleet(&p)),
            Decision::Route { pool: 1 }
        );
        assert_eq!(
            r.route(&req(3000, 100), &fleet(&p)),
            Decision::Route { pool: 2 }
        );
    }

    #[test]
    fn custom_label_key() {
        let p = pools();
        let by_complexity = [("high".to_string(), 2)].into_iter().collect();
        let mut r = SemanticRouter::new(&p, "complexity".into(), by_complexity, Some(1));
        let l = labels("small");
        let high = RequestView {
            labels: &l,
            ..req(100, 100)
        };
        assert_eq!(r.route(&high, &fleet(&p)), Decision::Route { pool: 2 });
    }

    #[test]
    fn mapped_or_fallback_pool_too_small_is_rejected() {
        let p = pools();
        let mut r = SemanticRouter::new(&p, "selected_model".into(), map(), Some(1));
        let l = labels("small");
        let too_long = RequestView {
            labels: &l,
            ..req(2000, 1)
        };
        let reject = Decision::Reject {
            reason: RejectReason::ExceedsMaxContext,
        };
        assert_eq!(r.route(&too_long, &fleet(&p)), reject);
        assert_eq!(r.route(&req(2000, 1), &fleet(&p)), reject);
    }

    #[test]
    fn a_label_naming_a_pool_selects_it_without_a_map() {
        let mut p = vec![pool("llama8b", 4096), pool("llama70b", 8192)];
        p[1].models = vec!["big".to_string()];
        let mut r = SemanticRouter::new(&p, "selected_model".into(), BTreeMap::new(), None);
        let labels = [("selected_model".to_string(), "llama70b".to_string())];
        let mut q = req(100, 10);
        q.labels = &labels;
        assert_eq!(r.route(&q, &fleet(&p)), Decision::Route { pool: 1 });
        let labels = [("selected_model".to_string(), "big".to_string())];
        q.labels = &labels;
        assert_eq!(r.route(&q, &fleet(&p)), Decision::Route { pool: 1 });
        let labels = [("selected_model".to_string(), "unknown".to_string())];
        q.labels = &labels;
        assert_eq!(r.route(&q, &fleet(&p)), Decision::Route { pool: 0 });
        assert_eq!(r.stats().extra.get("fallback"), Some(&1));
    }
}
