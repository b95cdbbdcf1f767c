//! Issue 11, defects 1, 5 and 8: planners compare a P99 over *all* arrivals
//! with the SLO (a fleet rejecting 30% of its traffic never meets a P99
//! SLO), pareto thins many thresholds, and `--b-short` equal to
//! `--long-max-ctx` means a homogeneous fleet.

mod common;

use common::{kvfleet, temp_input};
use serde_json::Value;

/// 30% of requests are longer than 4096 tokens (the largest context used below).
const OVER_30: &str =
    r#"{"cdf": [[512, 0.30], [2048, 0.60], [4096, 0.70], [16384, 0.85], [32768, 1.0]]}"#;

/// Everything fits 8192 tokens.
const SMALL: &str = r#"{"cdf": [[256, 0.2], [1024, 0.6], [4096, 0.95], [8192, 1.0]]}"#;

/// The words of `line` as arguments, with `CDF` replaced by a file `name`
/// holding `cdf`.
fn args(name: &str, cdf: &str, line: &str) -> Vec<String> {
    let path = temp_input(name, cdf).to_string_lossy().into_owned();
    line.split_whitespace()
        .map(|w| {
            if w == "CDF" {
                path.clone()
            } else {
                w.to_string()
            }
        })
        .collect()
}

/// Run `kvfleet ARGS [extra]`: exit code, stdout, stderr.
fn run(args: &[String], extra: &[&str]) -> (i32, String, String) {
    let out = kvfleet().args(args).args(extra).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `kvfleet ARGS --json`, required to succeed.
fn json(args: &[String]) -> Value {
    let (code, out, err) = run(args, &["--json"]);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).expect("one JSON document")
}

#[test]
fn optimize_does_not_recommend_a_fleet_that_rejects_30_percent() {
    let a = args(
        "over30_opt.json",
        OVER_30,
        "optimize --cdf CDF --lam 20 --slo 500 --gpu-short a100 --gpu-long a100 \
         --long-max-ctx 4096 --quiet",
    );
    let v = json(&a);
    assert!(v["best"].is_null(), "no recommendation: {}", v["best"]);
    let b = &v["baseline"];
    assert_eq!(b["slo_met"], false, "{b}");
    let reason = b["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("rejects 30%") && reason.contains("exceeds_max_ctx"),
        "{reason}"
    );
    assert!(b["des"]["rejected_fraction"].as_f64().expect("fraction") > 0.25);
    assert!(
        b["des"]["fleet_p99_ttft_ms"].is_null(),
        "infinite fleet P99"
    );
    let (code, table, _) = run(&a, &[]);
    assert_eq!(code, 0);
    assert!(!table.contains("Recommended"), "{table}");
    assert!(table.contains("✗ rejects 30%"), "{table}");
    assert!(
        table.contains("no fleet of these pools can meet P99 ≤ 500 ms"),
        "{table}"
    );
}

#[test]
fn whatif_marks_a_rejecting_fleet_as_missing_the_slo() {
    let v = json(&args(
        "over30_whatif.json",
        OVER_30,
        "whatif --cdf CDF --slo 500 --gpu-short a100 --gpu-long a100 --b-short 2048 \
         --long-max-ctx 4096 --lam-range 10 --quiet",
    ));
    let p = &v[0];
    assert_eq!(p["slo_met"], false, "{p}");
    assert!(
        p["reason"]
            .as_str()
            .expect("reason")
            .contains("rejects 30%"),
        "{p}"
    );
    assert!(p["max_lam_within_slo"].is_null());
}

#[test]
fn tok_per_watt_flags_fleets_that_miss_the_slo() {
    let a = args(
        "over30_tpw.json",
        OVER_30,
        "tok-per-watt --cdf CDF --lam 10 --slo 500 --gpus a100 --max-ctx 4096 --quiet",
    );
    let f = &json(&a)["fleets"][0];
    assert_eq!(f["slo_met"], false, "{f}");
    assert!(
        f["reason"].as_str().expect("reason").contains("rejects"),
        "{f}"
    );
    let (_, table, _) = run(&a, &[]);
    assert!(table.contains("misses the SLO"), "{table}");
}

#[test]
fn b_short_equal_to_long_max_ctx_is_a_homogeneous_fleet() {
    let flags = "--cdf CDF --slo 1000 --gpu-short h100 --gpu-long h100 --b-short 8192 \
                 --long-max-ctx 8192 --quiet";
    let v = json(&args(
        "small.json",
        SMALL,
        &format!("optimize --lam 5 {flags}"),
    ));
    assert_eq!(
        v["best"]["b_short"],
        Value::Null,
        "homogeneous: {}",
        v["best"]
    );
    assert_eq!(v["best"]["slo_met"], true);
    assert!(v["candidates"].as_array().expect("array").is_empty());
    let v = json(&args(
        "small.json",
        SMALL,
        &format!("whatif --lam-range 5 {flags}"),
    ));
    assert_eq!(v[0]["pools"].as_array().expect("pools").len(), 1);
    // A larger B is still a contradiction, named by flag.
    let a = args(
        "small.json",
        SMALL,
        "optimize --cdf CDF --lam 5 --b-short 9000 --long-max-ctx 8192",
    );
    let (code, _, err) = run(&a, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--b-short"), "{err}");
    // simulate's two-pool fleet accepts it too (every request fits the short pool).
    let v = json(&args(
        "small.json",
        SMALL,
        "simulate --n-req 300 --n-s 1 --n-l 1 --b-short 8192 --long-max-ctx 8192 --quiet \
         --no-timing",
    ));
    assert_eq!(v["verdict"], "stable");
}

#[test]
fn pareto_thins_many_breakpoints_and_says_which_were_merged() {
    // 200 breakpoints (the old sweep simulated every one: 100 took 146 s).
    let pts: Vec<String> = (1..=200)
        .map(|i| format!("[{}, {}]", i * 40, i as f64 / 200.0))
        .collect();
    let a = args(
        "many.json",
        &format!("{{\"cdf\": [{}]}}", pts.join(", ")),
        "pareto --cdf CDF --lam 5 --slo 2000 --long-max-ctx 8192 --n-sim-req 1000 --quiet",
    );
    let v = json(&a);
    let points = v.as_array().expect("array");
    // Baseline plus at most 32 thresholds.
    assert!(points.len() <= 33, "{} points", points.len());
    let merged: usize = points[1..]
        .iter()
        .map(|p| p["merged"]["count"].as_u64().expect("merged count") as usize)
        .sum();
    assert_eq!(merged, 199, "every threshold below 8192 is accounted for");
    let (_, table, _) = run(&a, &[]);
    assert!(table.contains("199 CDF thresholds thinned to"), "{table}");
}

#[test]
fn pareto_reports_a_rejecting_fleet_as_infeasible() {
    let v = json(&args(
        "over30_pareto.json",
        OVER_30,
        "pareto --cdf CDF --lam 10 --slo 500 --long-max-ctx 4096 --quiet",
    ));
    for p in v.as_array().expect("array") {
        assert_eq!(p["slo_met"], false, "{p}");
        assert!(
            p["reason"]
                .as_str()
                .expect("reason")
                .contains("rejects 30%")
        );
        assert_eq!(p["recommended"], false);
    }
}

#[test]
fn disagg_finds_no_pair_when_30_percent_is_rejected() {
    let a = args(
        "over30_disagg.json",
        OVER_30,
        "disagg --cdf CDF --lam 10 --slo-ttft 500 --slo-tpot 100 --gpu-prefill h100 \
         --gpu-decode a100 --max-ctx 4096 --quiet",
    );
    let v = json(&a);
    assert!(v["best"].is_null(), "{}", v["best"]);
    let simulated: Vec<&Value> = v["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .filter(|c| !c["des"].is_null())
        .collect();
    assert!(!simulated.is_empty());
    for c in simulated {
        assert_eq!(c["slo_met"], false, "{c}");
        assert!(c["des"]["rejected_fraction"].as_f64().expect("fraction") > 0.25);
    }
    let (_, table, _) = run(&a, &[]);
    assert!(table.contains("reject up to 30%"), "{table}");
}
