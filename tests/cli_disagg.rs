//! `kvfleet disagg`: the JSON contract, the search's own consistency, the
//! analytic screen's soundness against the DES, and bad input.

mod common;

use common::{json_of, kvfleet};
use kvfleet::engine::LinkSpec;
use kvfleet::planner::disagg::DisaggStudy;
use kvfleet::profile::Profile;
use kvfleet::workload::spec::WorkloadSpec;
use serde_json::Value;

const CDF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cdf/chat_small.json"
);

const ARGS: &[&str] = &[
    "disagg",
    "--cdf",
    CDF,
    "--lam",
    "150",
    "--gpu-prefill",
    "a100",
    "--gpu-decode",
    "h100",
    "--slo-ttft",
    "300",
    "--slo-tpot",
    "30",
    "--n-sim-req",
    "6000",
    "--seed",
    "9",
    "--json",
    "--quiet",
];

fn run_json(args: &[&str], threads: &str) -> (Value, Vec<u8>) {
    json_of(kvfleet().env("RAYON_NUM_THREADS", threads).args(args))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::INFINITY)
}

#[test]
fn contract_best_is_the_cheapest_pair_meeting_both_slos() {
    let (v, bytes) = run_json(ARGS, "2");
    let cands = v["candidates"].as_array().expect("candidates");
    assert!(cands.len() >= 3, "{v}");
    for c in cands {
        for k in [
            "n_prefill",
            "n_decode",
            "gpus",
            "cost",
            "des",
            "analytic",
            "slo_met",
        ] {
            assert!(c.get(k).is_some(), "missing {k}: {c}");
        }
        assert!(c["cost"]["per_hr_usd"].is_f64());
        if c["des"].is_null() {
            // Screened out: the analytic screen found a necessary condition violated.
            assert_eq!(c["analytic"]["feasible"], false, "{c}");
            assert_eq!(c["slo_met"], false);
            continue;
        }
        for k in ["p99_ttft_ms", "p99_tpot_ms", "throughput_req_s"] {
            assert!(c["des"].get(k).is_some(), "missing des.{k}");
        }
        let ok = c["des"]["stable"] == true
            && f(&c["des"]["p99_ttft_ms"]) <= 300.0
            && f(&c["des"]["p99_tpot_ms"]) <= 30.0;
        assert_eq!(c["slo_met"].as_bool(), Some(ok), "{c}");
    }
    let best = &v["best"];
    assert_eq!(best["slo_met"], true);
    let cheapest = cands
        .iter()
        .filter(|c| c["slo_met"] == true)
        .map(|c| f(&c["cost"]["per_hr_usd"]))
        .fold(f64::INFINITY, f64::min);
    assert_eq!(f(&best["cost"]["per_hr_usd"]), cheapest);
    // One prefill instance fewer than the best misses TTFT (or was screened out).
    let np = best["n_prefill"].as_u64().unwrap();
    let nd = best["n_decode"].as_u64().unwrap();
    let fewer = cands
        .iter()
        .find(|c| c["n_prefill"].as_u64() == Some(np - 1) && c["n_decode"].as_u64() == Some(nd))
        .expect("the pair with one prefill instance fewer was evaluated");
    assert_eq!(fewer["slo_met"], false);
    // Pareto: cheaper frontier points have higher TTFT.
    let mut front: Vec<(f64, f64)> = cands
        .iter()
        .filter(|c| c["pareto"] == true)
        .map(|c| (f(&c["cost"]["per_hr_usd"]), f(&c["des"]["p99_ttft_ms"])))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(front.windows(2).all(|w| w[1].1 < w[0].1), "{front:?}");
    // Aggregated fleets of both GPU types, on the same SLOs.
    let agg = v["aggregated"].as_array().expect("aggregated");
    assert_eq!(agg.len(), 2);
    for a in agg {
        assert_eq!(a["slo_met"], true, "{a}");
        assert!(f(&a["des"]["p99_ttft_ms"]) <= 300.0);
        assert!(f(&a["des"]["p99_tpot_ms"]) <= 30.0);
    }
    // Determinism across thread counts.
    let (_, one) = run_json(ARGS, "1");
    assert_eq!(bytes, one);
}

/// Sizing an aggregated fleet stops a size's run once it is certain to miss
/// TTFT; when no size up to the limit meets the targets, the largest one is
/// reported, so its P99s must come from a run simulated to the end.
#[test]
fn an_aggregated_fleet_that_meets_nothing_is_reported_from_a_whole_run() {
    let args: Vec<&str> = ARGS
        .iter()
        .map(|&a| match a {
            "150" => "40",
            "300" => "20",
            a => a,
        })
        .chain(["--max-prefill", "2", "--max-decode", "2"])
        .collect();
    let (v, _) = run_json(&args, "2");
    let agg = v["aggregated"].as_array().expect("aggregated");
    assert_eq!(agg.len(), 2);
    for a in agg {
        assert_eq!(a["slo_met"], false, "{a}");
        assert_eq!(a["instances"], 4, "the limit, 2 + 2: {a}");
        // Stable and measured: a run stopped at its certain miss would
        // read `stable: false` with the P99s of the requests served so far.
        assert_eq!(a["des"]["stable"], true, "{a}");
        assert!(f(&a["des"]["p99_ttft_ms"]) > 20.0, "{a}");
        assert!(f(&a["des"]["throughput_req_s"]) > 35.0, "{a}");
    }
}

/// The study of `screened_pairs_miss_in_the_des_too`, with `replications`.
fn small_study(replications: u32) -> DisaggStudy {
    DisaggStudy {
        workload: WorkloadSpec {
            cdf: Some(CDF.into()),
            lam: Some(150.0),
            n_requests: Some(6000),
            ..WorkloadSpec::default()
        },
        prefill: Profile::preset("a100").unwrap(),
        decode: Profile::preset("h100").unwrap(),
        max_ctx_tok: 8192,
        slo_ttft_ms: 300.0,
        slo_tpot_ms: 30.0,
        max_prefill: 16,
        max_decode: 64,
        link: LinkSpec::parse("ib").unwrap(),
        kv_bytes_per_token: 327_680.0,
        aggregated: vec![],
        seed: 9,
        replications,
        progress: false,
        streams: Default::default(),
    }
}

#[test]
fn a_skipped_last_replication_was_predicted_to_meet_and_does() {
    // With a loose TTFT target a generous pair meets both by a wide margin:
    // its third replication is skipped, and the report says two ran. Run
    // with four replications (so the third is not the skippable last, and
    // runs), it still meets both: the prediction held.
    let loose = |replications| DisaggStudy {
        slo_ttft_ms: 1000.0,
        ..small_study(replications)
    };
    let d = loose(3).simulate_pair(6, 40).expect("simulates");
    assert_eq!(d.replications, 2, "{d:?}");
    let all = loose(4).simulate_pair(6, 40).expect("simulates");
    assert!(all.replications >= 3, "{all:?}");
    assert!(
        all.stable && all.p99_ttft_ms.is_some_and(|t| t <= 1000.0),
        "{all:?}"
    );
    assert!(all.p99_tpot_ms.is_none_or(|t| t <= 30.0), "{all:?}");
    // Not clear of a tight target: every replication runs.
    let tight = DisaggStudy {
        slo_ttft_ms: d.p99_ttft_ms.expect("finite") * 1.02,
        ..small_study(3)
    };
    let t = tight.simulate_pair(6, 40).expect("simulates");
    assert!(
        t.replications == 3 || !t.stable || t.p99_ttft_ms > Some(tight.slo_ttft_ms),
        "{t:?}"
    );
}

#[test]
fn screened_pairs_miss_in_the_des_too() {
    // The screen only removes pairs violating a necessary condition; check
    // that the DES agrees for every pair it screened out.
    let study = small_study(3);
    let report = study.run().expect("study");
    let screened: Vec<_> = report
        .candidates
        .iter()
        .filter(|c| c.des.is_none())
        .collect();
    assert!(!screened.is_empty());
    for c in screened {
        let d = study
            .simulate_pair(c.n_prefill, c.n_decode)
            .expect("simulates");
        let meets = d.stable
            && d.p99_ttft_ms.is_some_and(|t| t <= 300.0)
            && d.p99_tpot_ms.is_none_or(|t| t <= 30.0);
        assert!(
            !meets,
            "screened pair ({}, {}) meets the SLOs in the DES: {d:?}",
            c.n_prefill, c.n_decode
        );
    }
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    for (flag, value, needle) in [
        ("--link", "warp-drive", "--link"),
        ("--slo-tpot", "0", "--slo-tpot"),
        ("--max-decode", "0", "--max-decode"),
        ("--gpu-decode", "nonesuch", "--gpu-decode"),
        ("--kv-bytes-per-token=-5", "--quiet", "--kv-bytes-per-token"),
    ] {
        let out = kvfleet()
            .args(["disagg", "--lam", "10", flag, value])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
}
