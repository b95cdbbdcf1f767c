//! Property: whatever the fleet and request, every router kind either rejects
//! or names a pool that fits the routed copy's total tokens, and its counters
//! add up.

use std::collections::BTreeMap;

use kvfleet_routers::{Decision, FleetView, PoolView, RequestView, RouterSpec, build};
use proptest::prelude::*;

fn arb_pool() -> impl Strategy<Value = (u32, u64, u32, u32, u32, bool)> {
    (
        prop_oneof![1u32..4096, 4096u32..200_000],
        prop_oneof![Just(u64::MAX), 1u64..300_000],
        0u32..200,
        0u32..300,
        0u32..300,
        any::<bool>(),
    )
}

fn make_pools(raw: &[(u32, u64, u32, u32, u32, bool)]) -> Vec<PoolView> {
    raw.iter()
        .enumerate()
        .map(
            |(i, &(ctx, kv, slots, running, waiting, serves_m))| PoolView {
                id: format!("p{i}"),
                max_ctx_tok: ctx,
                instances: 1 + i as u32,
                slots,
                running,
                waiting,
                kv_capacity_tok: kv,
                models: if serves_m {
                    vec!["m1".into()]
                } else {
                    Vec::new()
                },
            },
        )
        .collect()
}

/// One spec of every kind, parameterised from the random draw so that pool
/// ids, thresholds and probabilities vary.
fn specs(pools: &[PoolView], knobs: &Knobs) -> Vec<RouterSpec> {
    let id = |k: usize| pools[k % pools.len()].id.clone();
    let max_ctx = pools.iter().map(|p| p.max_ctx_tok).max().unwrap();
    vec![
        RouterSpec::length(),
        RouterSpec::Length {
            signal: kvfleet_routers::LengthSignal::Input,
            threshold_tok: Some(knobs.b_tok),
            mean_output_tok: None,
        },
        RouterSpec::Length {
            signal: kvfleet_routers::LengthSignal::Estimate,
            threshold_tok: Some(knobs.b_tok),
            mean_output_tok: Some(knobs.b_tok / 3),
        },
        RouterSpec::Random,
        RouterSpec::default_for("compress-and-route").unwrap(),
        RouterSpec::CompressAndRoute {
            gamma: knobs.gamma,
            threshold_tok: Some(knobs.b_tok.min(max_ctx)),
            safe_categories: vec!["prose".into(), "code".into()],
            ratio_floor: knobs.frac,
            success_prob: knobs.frac,
            compression_latency_ns: 1,
        },
        RouterSpec::LeastLoaded,
        RouterSpec::Spillover {
            utilisation_threshold: knobs.frac,
        },
        RouterSpec::Model {
            model_pools: BTreeMap::from([("m0".into(), id(knobs.pick))]),
            default_pool: knobs.default.then(|| id(knobs.pick + 1)),
        },
        RouterSpec::Semantic {
            label: "selected_model".into(),
            label_pools: BTreeMap::from([("a".into(), id(knobs.pick + 2))]),
            fallback_pool: knobs.default.then(|| id(knobs.pick)),
        },
        RouterSpec::PrefixAffinity {
            virtual_nodes: 1 + knobs.pick as u32 % 16,
            overload_threshold: knobs.frac * 2.0,
        },
    ]
}

#[derive(Debug, Clone)]
struct Knobs {
    gamma: f64,
    b_tok: u32,
    frac: f64,
    pick: usize,
    default: bool,
}

fn arb_knobs() -> impl Strategy<Value = Knobs> {
    (
        1.0f64..4.0,
        1u32..100_000,
        0.0f64..=1.0,
        0usize..8,
        any::<bool>(),
    )
        .prop_map(|(gamma, b_tok, frac, pick, default)| Knobs {
            gamma,
            b_tok,
            frac,
            pick,
            default,
        })
}

#[derive(Debug, Clone)]
struct Req {
    input: u32,
    output: u32,
    predicted: Option<u32>,
    category: &'static str,
    model: Option<&'static str>,
    label: Option<&'static str>,
    prefix: Vec<u64>,
}

fn arb_req() -> impl Strategy<Value = Req> {
    (
        prop_oneof![0u32..5000, 0u32..250_000],
        prop_oneof![0u32..2000, 0u32..100_000],
        proptest::option::of(0u32..50_000),
        prop::sample::select(vec!["prose", "code", "rag", "mixed", "other"]),
        prop::sample::select(vec![None, Some("m0"), Some("m1"), Some("m2")]),
        prop::sample::select(vec![None, Some("a"), Some("b")]),
        prop::collection::vec(any::<u64>(), 0..3),
    )
        .prop_map(
            |(input, output, predicted, category, model, label, prefix)| Req {
                input,
                output,
                predicted,
                category,
                model,
                label,
                prefix,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decisions_fit_or_reject(
        raw in prop::collection::vec(arb_pool(), 1..6),
        knobs in arb_knobs(),
        reqs in prop::collection::vec(arb_req(), 1..24),
        seed in any::<u64>(),
    ) {
        let pools = make_pools(&raw);
        let fleet = FleetView { now_s: 1.0, pools: &pools };
        for spec in specs(&pools, &knobs) {
            // A spec may be invalid for this fleet (e.g. B above every
            // context); that must be a clean BuildError, never a panic.
            let Ok(mut router) = build(&spec, &pools, seed) else { continue };
            for r in &reqs {
                let labels: Vec<(String, String)> = r
                    .label
                    .map(|v| vec![("selected_model".to_string(), v.to_string())])
                    .unwrap_or_default();
                let view = RequestView {
                    id: 0,
                    arrival_s: 0.5,
                    input_tokens: r.input,
                    output_tokens: r.output,
                    predicted_output_tokens: r.predicted,
                    category: r.category,
                    model: r.model,
                    labels: &labels,
                    prefix_hashes: &r.prefix,
                };
                let d = router.route(&view, &fleet);
                if let Some(pool) = d.pool() {
                    prop_assert!(pool < pools.len(), "{spec:?} named pool {pool}");
                    let total = d.routed_total_tokens(&view).unwrap();
                    prop_assert!(
                        pools[pool].fits(total),
                        "{} sent {} tokens to {:?}: {d:?}", spec.kind(), total, pools[pool]
                    );
                }
                if let Decision::RouteTransformed { transform, .. } = d {
                    prop_assert!(transform.input_tokens <= r.input);
                    prop_assert!(transform.input_tokens > 0);
                }
                // A request that fits some pool is never refused as too long.
                if matches!(d, Decision::Reject { reason: kvfleet_routers::RejectReason::ExceedsMaxContext })
                    && matches!(spec.kind(), "length" | "random" | "least-loaded" | "spillover" | "prefix-affinity" | "compress-and-route")
                {
                    prop_assert!(!pools.iter().any(|p| p.fits(view.total_tokens())), "{spec:?}");
                }
            }
            let stats = router.stats();
            prop_assert_eq!(stats.routed.len(), pools.len());
            prop_assert_eq!(stats.routed_total() + stats.rejected_total(), reqs.len() as u64);
            prop_assert!(stats.compressed <= stats.routed_total());
        }
    }
}
