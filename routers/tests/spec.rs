//! Router specs: TOML/JSON for every kind, strict fields, kind lists, and
//! build-time validation.

use std::collections::BTreeMap;

use kvfleet_routers::{
    BuildError, Decision, FleetView, LengthSignal, PoolView, RequestView, RouterSpec, build,
};

fn pool(id: &str, max_ctx_tok: u32) -> PoolView {
    PoolView {
        id: id.to_string(),
        max_ctx_tok,
        instances: 2,
        slots: 64,
        running: 0,
        waiting: 0,
        kv_capacity_tok: 1 << 30,
        models: Vec::new(),
    }
}

fn fleet_pools() -> Vec<PoolView> {
    vec![pool("short", 8192), pool("long", 65536)]
}

fn toml_spec(s: &str) -> RouterSpec {
    toml::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn json_spec(s: &str) -> RouterSpec {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn every_kind_parses_from_toml_and_json() {
    let cases: Vec<(&str, &str, RouterSpec)> = vec![
        (
            "kind = \"length\"\nsignal = \"estimate\"\nthreshold_tok = 8192\nmean_output_tok = 300",
            r#"{"kind":"length","signal":"estimate","threshold_tok":8192,"mean_output_tok":300}"#,
            RouterSpec::Length {
                signal: LengthSignal::Estimate,
                threshold_tok: Some(8192),
                mean_output_tok: Some(300),
            },
        ),
        (
            "kind = \"random\"",
            r#"{"kind":"random"}"#,
            RouterSpec::Random,
        ),
        (
            "kind = \"compress-and-route\"\ngamma = 2.0\nthreshold_tok = 8192\nsafe_categories = [\"prose\"]\nratio_floor = 0.3\nsuccess_prob = 0.9\ncompression_latency_ns = 5000000",
            r#"{"kind":"compress-and-route","gamma":2.0,"threshold_tok":8192,"safe_categories":["prose"],"ratio_floor":0.3,"success_prob":0.9,"compression_latency_ns":5000000}"#,
            RouterSpec::CompressAndRoute {
                gamma: 2.0,
                threshold_tok: Some(8192),
                safe_categories: vec!["prose".into()],
                ratio_floor: 0.3,
                success_prob: 0.9,
                compression_latency_ns: 5_000_000,
            },
        ),
        (
            "kind = \"least-loaded\"",
            r#"{"kind":"least-loaded"}"#,
            RouterSpec::LeastLoaded,
        ),
        (
            "kind = \"spillover\"\nutilisation_threshold = 0.75",
            r#"{"kind":"spillover","utilisation_threshold":0.75}"#,
            RouterSpec::Spillover {
                utilisation_threshold: 0.75,
            },
        ),
        (
            "kind = \"model\"\ndefault_pool = \"long\"\n[model_pools]\n\"llama-8b\" = \"short\"",
            r#"{"kind":"model","default_pool":"long","model_pools":{"llama-8b":"short"}}"#,
            RouterSpec::Model {
                model_pools: BTreeMap::from([("llama-8b".into(), "short".into())]),
                default_pool: Some("long".into()),
            },
        ),
        (
            "kind = \"semantic\"\nlabel = \"complexity\"\nfallback_pool = \"short\"\nlabel_pools = { high = \"long\" }",
            r#"{"kind":"semantic","label":"complexity","fallback_pool":"short","label_pools":{"high":"long"}}"#,
            RouterSpec::Semantic {
                label: "complexity".into(),
                label_pools: BTreeMap::from([("high".into(), "long".into())]),
                fallback_pool: Some("short".into()),
            },
        ),
        (
            "kind = \"prefix-affinity\"\nvirtual_nodes = 32\noverload_threshold = 1.5",
            r#"{"kind":"prefix-affinity","virtual_nodes":32,"overload_threshold":1.5}"#,
            RouterSpec::PrefixAffinity {
                virtual_nodes: 32,
                overload_threshold: 1.5,
            },
        ),
    ];
    let mut kinds = Vec::new();
    for (t, j, want) in cases {
        assert_eq!(toml_spec(t), want);
        assert_eq!(json_spec(j), want);
        kinds.push(want.kind());
        build(&want, &fleet_pools(), 1).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
    kinds.sort();
    let mut all = RouterSpec::KINDS.to_vec();
    all.sort();
    assert_eq!(kinds, all, "a kind is missing a parse test");
}

#[test]
fn bare_kind_gets_documented_defaults_and_round_trips() {
    for kind in RouterSpec::KINDS {
        let bare = toml_spec(&format!("kind = \"{kind}\""));
        assert_eq!(Some(bare.clone()), RouterSpec::default_for(kind));
        assert_eq!(bare.kind(), kind);
        let json = serde_json::to_string(&bare).unwrap();
        assert_eq!(json_spec(&json), bare, "{json}");
        let t = toml::to_string(&bare).unwrap();
        assert_eq!(toml_spec(&t), bare, "{t}");
    }
    assert_eq!(
        toml_spec("kind = \"compress-and-route\""),
        RouterSpec::CompressAndRoute {
            gamma: 1.5,
            threshold_tok: None,
            safe_categories: vec!["prose".into(), "rag".into(), "mixed".into()],
            ratio_floor: 0.5,
            success_prob: 1.0,
            compression_latency_ns: 3_000_000,
        }
    );
    assert_eq!(
        toml_spec("kind = \"spillover\""),
        RouterSpec::Spillover {
            utilisation_threshold: 0.9
        }
    );
    assert_eq!(
        toml_spec("kind = \"prefix-affinity\""),
        RouterSpec::PrefixAffinity {
            virtual_nodes: 128,
            overload_threshold: 1.0
        }
    );
}

#[test]
fn misspelt_fields_are_errors() {
    let bad = [
        "kind = \"length\"\ntreshold_tok = 8192",
        "kind = \"random\"\nseed = 3",
        "kind = \"least-loaded\"\nthreshold = 1.0",
        "kind = \"compress-and-route\"\ngama = 2.0",
        "kind = \"spillover\"\nutilization_threshold = 0.8",
        "kind = \"model\"\ndefault = \"long\"",
        "kind = \"semantic\"\nfallback = \"short\"",
        "kind = \"prefix-affinity\"\nvnodes = 8",
    ];
    for t in bad {
        let err = toml::from_str::<RouterSpec>(t).expect_err(t).to_string();
        assert!(err.contains("unknown field"), "{t}: {err}");
    }
    let err = serde_json::from_str::<RouterSpec>(r#"{"kind":"length","treshold_tok":1}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("treshold_tok"), "{err}");
}

#[test]
fn unknown_kind_lists_valid_kinds() {
    let err = toml::from_str::<RouterSpec>("kind = \"lenght\"")
        .unwrap_err()
        .to_string();
    for kind in RouterSpec::KINDS {
        assert!(err.contains(kind), "{err} lacks {kind}");
    }
}

#[test]
fn parse_list_builds_default_specs() {
    let specs = RouterSpec::parse_list("length, random,compress-and-route").unwrap();
    let kinds: Vec<&str> = specs.iter().map(RouterSpec::kind).collect();
    assert_eq!(kinds, ["length", "random", "compress-and-route"]);
    assert_eq!(specs[0], RouterSpec::length());
    let all = RouterSpec::parse_list(&RouterSpec::KINDS.join(",")).unwrap();
    assert_eq!(all.len(), RouterSpec::KINDS.len());
    for spec in &all {
        build(spec, &fleet_pools(), 0).unwrap();
    }

    let err = RouterSpec::parse_list("length,magic").unwrap_err();
    assert_eq!(err.name, "magic");
    let msg = err.to_string();
    assert!(msg.contains("`magic`"), "{msg}");
    for kind in RouterSpec::KINDS {
        assert!(msg.contains(kind), "{msg} lacks {kind}");
    }
    assert!(RouterSpec::parse_list(" , ").is_err());
    assert_eq!(
        "spillover".parse::<RouterSpec>().unwrap().kind(),
        "spillover"
    );
}

fn build_err(spec: &str) -> String {
    match build(&toml_spec(spec), &fleet_pools(), 0) {
        Err(e @ BuildError::Invalid { .. }) => e.to_string(),
        Ok(_) => panic!("{spec} built"),
    }
}

#[test]
fn unknown_pool_ids_are_build_errors_naming_them() {
    for (spec, id) in [
        ("kind = \"model\"\ndefault_pool = \"lng\"", "lng"),
        ("kind = \"model\"\nmodel_pools = { m = \"shrt\" }", "shrt"),
        ("kind = \"semantic\"\nfallback_pool = \"nope\"", "nope"),
        (
            "kind = \"semantic\"\nlabel_pools = { x = \"gone\" }",
            "gone",
        ),
    ] {
        let msg = build_err(spec);
        assert!(msg.contains(&format!("`{id}`")), "{msg}");
        assert!(msg.contains("short, long"), "{msg}");
    }
}

#[test]
fn out_of_range_parameters_are_build_errors() {
    for (spec, field) in [
        ("kind = \"compress-and-route\"\ngamma = 0.9", "gamma"),
        (
            "kind = \"compress-and-route\"\nsuccess_prob = 1.5",
            "success_prob",
        ),
        (
            "kind = \"compress-and-route\"\nratio_floor = -0.1",
            "ratio_floor",
        ),
        (
            "kind = \"compress-and-route\"\nthreshold_tok = 70000",
            "threshold_tok",
        ),
        (
            "kind = \"compress-and-route\"\nthreshold_tok = 0",
            "threshold_tok",
        ),
        (
            "kind = \"spillover\"\nutilisation_threshold = -1.0",
            "utilisation_threshold",
        ),
        (
            "kind = \"prefix-affinity\"\nvirtual_nodes = 0",
            "virtual_nodes",
        ),
        (
            "kind = \"prefix-affinity\"\noverload_threshold = nan",
            "overload_threshold",
        ),
    ] {
        let msg = build_err(spec);
        assert!(msg.contains(field), "{spec}: {msg}");
    }
    assert!(
        build(
            &RouterSpec::default_for("compress-and-route").unwrap(),
            &[],
            0
        )
        .is_err()
    );
}

#[test]
fn built_routers_report_their_kind_and_use_resolved_pools() {
    let pools = fleet_pools();
    let fleet = FleetView {
        now_s: 0.0,
        pools: &pools,
    };
    let req = RequestView {
        id: 1,
        arrival_s: 0.0,
        input_tokens: 100,
        output_tokens: 100,
        predicted_output_tokens: None,
        category: "prose",
        model: Some("llama-8b"),
        labels: &[],
        prefix_hashes: &[],
    };
    for kind in RouterSpec::KINDS {
        let r = build(&RouterSpec::default_for(kind).unwrap(), &pools, 0).unwrap();
        assert_eq!(r.name(), kind);
    }
    let mut r = build(
        &toml_spec("kind = \"model\"\nmodel_pools = { \"llama-8b\" = \"long\" }"),
        &pools,
        0,
    )
    .unwrap();
    assert_eq!(r.route(&req, &fleet), Decision::Route { pool: 1 });
    let stats = serde_json::to_value(r.stats()).unwrap();
    assert_eq!(stats["routed"], serde_json::json!([0, 1]));
    // Default compress-and-route: B = the smallest pool's context.
    let mut r = build(
        &RouterSpec::default_for("compress-and-route").unwrap(),
        &pools,
        0,
    )
    .unwrap();
    let band = RequestView {
        input_tokens: 9000,
        ..req
    };
    assert!(matches!(
        r.route(&band, &fleet),
        Decision::RouteTransformed { pool: 0, transform } if transform.input_tokens == 8092
    ));
}
