//! CLI tests of `compare-routers` and `simulate-fleet`.

use std::path::PathBuf;

mod common;

use common::{kvfleet, run_json as json_of};
use kvfleet::shared_data::shared_data;

const TWO_POOL: &[&str] = &[
    "--json",
    "--quiet",
    "--no-timing",
    "--gpu-short",
    "a100",
    "--gpu-long",
    "h100",
    "--n-s",
    "2",
    "--n-l",
    "2",
    "--b-short",
    "2048",
    "--long-max-ctx",
    "16384",
    "--isl",
    "uniform:50:6000",
    "--osl",
    "uniform:10:300",
    "--lam",
    "12",
    "--n-req",
    "4000",
    "--seed",
    "3",
];

#[test]
fn compare_routers_sees_identical_arrivals_and_reports_each_router() {
    let v = json_of(
        &[
            &[
                "compare-routers",
                "--routers",
                "length,random,compress-and-route,least-loaded",
            ],
            TWO_POOL,
        ]
        .concat(),
    );
    let rows = v["routers"].as_array().expect("rows");
    assert_eq!(rows.len(), 4);
    for r in rows {
        assert_eq!(r["requests"]["arrived"], v["arrivals"], "{}", r["router"]);
        assert!(r["ttft_ms"]["p99"].is_number());
        assert!(r["routed"]["short"].is_u64() && r["routed"]["long"].is_u64());
    }
    assert_eq!(v["arrivals"], 4000);
    // length: everything ≤ 2048 total goes short, so its short fraction exceeds random's
    let frac = |name: &str| {
        rows.iter()
            .find(|r| r["router"] == name)
            .and_then(|r| r["frac_short"].as_f64())
            .expect("router row")
    };
    assert!(frac("length") > frac("random"));
    let compress = rows
        .iter()
        .find(|r| r["router"] == "compress-and-route")
        .expect("row");
    assert!(compress["compressed"].as_u64().unwrap_or(0) > 0);
    assert!(frac("compress-and-route") > frac("length"));
}

#[test]
fn compare_routers_with_replications_gives_paired_comparisons() {
    let v = json_of(
        &[
            &[
                "compare-routers",
                "--routers",
                "length,random",
                "--replications",
                "3",
            ],
            TWO_POOL,
        ]
        .concat(),
    );
    let c = &v["comparisons"][0];
    assert_eq!(
        (c["a"].as_str(), c["b"].as_str()),
        (Some("length"), Some("random"))
    );
    assert!(c["ci95_ms"].as_f64().is_some_and(|h| h >= 0.0));
    assert!(c["distinguishable"].is_boolean());
    // The same router twice is never distinguishable from itself: difference exactly 0.
    let same = json_of(
        &[
            &[
                "compare-routers",
                "--routers",
                "length,length",
                "--replications",
                "3",
            ],
            TWO_POOL,
        ]
        .concat(),
    );
    assert_eq!(same["comparisons"][0]["p99_ttft_diff_ms"], 0.0);
    assert_eq!(same["comparisons"][0]["distinguishable"], false);
}

#[test]
fn compare_routers_rejects_unknown_router_with_exit_2() {
    let out = kvfleet()
        .args(["compare-routers", "--routers", "length,nope", "--quiet"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn reference_fleet_file_counts_over_context_rejections() {
    let Some(fleet) = shared_data(
        "multi_model_fleet.json",
        "reference_fleet_file_counts_over_context_rejections",
    ) else {
        return;
    };
    let v = json_of(&[
        "simulate-fleet",
        fleet.to_str().expect("utf8"),
        "--lam",
        "100",
        "--n-req",
        "20000",
        "--json",
        "--quiet",
        "--no-timing",
    ]);
    let ids: Vec<&str> = v["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids, ["llama70b", "llama8b", "codellama"]);
    // Agent-heavy requests above 16384 tokens fit no pool's context for their model: counted, never dropped.
    let over = v["requests"]["rejected_by_reason"]["exceeds_max_ctx"]
        .as_u64()
        .unwrap_or(0);
    assert!(over > 0);
    let r = &v["requests"];
    assert_eq!(
        r["arrived"].as_u64(),
        Some(
            r["completed"].as_u64().unwrap_or(0)
                + r["rejected"].as_u64().unwrap_or(0)
                + r["in_flight"].as_u64().unwrap_or(0)
        )
    );
    // Each pool's own stream goes to that pool (model = pool id).
    let routed = &v["router"]["routed"];
    let n70 = routed["llama70b"].as_f64().unwrap_or(0.0);
    let n8 = routed["llama8b"].as_f64().unwrap_or(0.0);
    assert!(
        (n70 / n8 - 0.60 / 0.25).abs() < 0.3,
        "lam_frac split: {routed}"
    );
}

#[test]
fn fleet_file_errors_name_the_problem() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let cases = [
        (
            r#"{"pools":[{"id":"a","gpu":"b300x","n_gpus":1,"max_ctx":4096}]}"#,
            "b300x",
        ),
        (
            r#"{"pools":[{"id":"a","gpu":"a100","n_gpu":1,"max_ctx":4096}]}"#,
            "n_gpu",
        ),
        (
            r#"{"pools":[{"id":"a","gpu":"a100","n_gpus":1,"max_ctx":4096}],"router":"psychic"}"#,
            "psychic",
        ),
        (
            r#"{"pools":[{"id":"a","gpu":"a100","n_gpus":1,"max_ctx":4096}],"workloads":{"a":{"cdf":"missing.json","lam_frac":1}}}"#,
            "missing.json",
        ),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let f = dir.join(format!("f{i}.json"));
        std::fs::write(&f, text).expect("write");
        let out = kvfleet()
            .args([
                "simulate-fleet",
                f.to_str().expect("utf8"),
                "--lam",
                "5",
                "--quiet",
            ])
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(needle), "{text}: expected `{needle}` in {err}");
    }
}

#[test]
fn semantic_replay_routes_by_selected_model() {
    let Some(_) = shared_data(
        "trace_samples/router_decisions.semantic_router.jsonl",
        "semantic_replay_routes_by_selected_model",
    ) else {
        return;
    };
    let scn =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/semantic_replay/fleet.toml");
    let v = json_of(&[
        "simulate-fleet",
        scn.to_str().expect("utf8"),
        "--json",
        "--quiet",
        "--no-timing",
    ]);
    // The trace has 180 llama70b and 60 llama8b decisions; one llama70b request exceeds the 8192 context.
    assert_eq!(v["router"]["routed"]["llama8b"], 60);
    assert_eq!(v["router"]["routed"]["llama70b"], 179);
    assert_eq!(v["requests"]["rejected_by_reason"]["exceeds_max_ctx"], 1);
}
