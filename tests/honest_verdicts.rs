//! Issue 11, defects 6 and 12: a run that measures nothing is not a success,
//! rejections name the right reason, and goodput never exceeds throughput.

mod common;

use common::kvfleet;
use serde_json::Value;

/// Run `kvfleet simulate ARGS --json`, returning (exit code, JSON report, stderr).
fn simulate(args: &[&str]) -> (i32, Value, String) {
    let out = kvfleet()
        .arg("simulate")
        .args(args)
        .args(["--json", "--quiet", "--no-timing"])
        .output()
        .expect("runs");
    let v: Value = serde_json::from_slice(&out.stdout).expect("the report is printed first");
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn warmup_covering_the_whole_run_is_no_data_and_exit_1() {
    let (code, v, err) = simulate(&["--n-req", "300", "--warmup-s", "1e9"]);
    assert_eq!(v["requests"]["measured"], 0);
    assert_eq!(v["verdict"], "no-data", "{v}");
    assert!(v["verdict_reason"].as_str().is_some());
    assert_eq!(code, 1, "nothing measured is a runtime failure: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("no-data"), "{err}");
}

#[test]
fn kv_blocks_too_small_is_all_rejected_as_exceeds_kv_capacity() {
    let (code, v, err) = simulate(&["--n-req", "300", "--kv-blocks", "1"]);
    assert_eq!(v["verdict"], "all-rejected", "{v}");
    let by = &v["requests"]["rejected_by_reason"];
    assert_eq!(by["exceeds_kv_capacity"], 300, "{by}");
    assert!(by.get("exceeds_max_ctx").is_none(), "{by}");
    assert_eq!(v["slo"]["missed_fraction"], 1.0);
    assert!(
        v["slo"]["p99_ttft_all_ms"].is_null(),
        "infinite P99 is null"
    );
    assert_eq!(code, 1, "{err}");
}

#[test]
fn all_oversized_cdf_is_all_rejected() {
    let cdf = common::temp_input("huge.json", r#"{"cdf": [[20000, 0.0], [30000, 1.0]]}"#);
    let (code, v, _) = simulate(&[
        "--n-req",
        "200",
        "--cdf",
        cdf.to_str().expect("utf-8"),
        "--max-ctx",
        "8192",
    ]);
    assert_eq!(v["verdict"], "all-rejected", "{v}");
    assert_eq!(v["requests"]["rejected_by_reason"]["exceeds_max_ctx"], 200);
    assert_eq!(code, 1);
}

#[test]
fn goodput_never_exceeds_throughput_and_no_rate_over_a_zero_window() {
    for n in ["1", "10", "2000"] {
        let (code, v, _) = simulate(&["--n-req", n, "--warmup", "0"]);
        assert_eq!(code, 0);
        let good = v["goodput_req_per_s"].as_f64().expect("goodput");
        let thr = v["throughput"]["req_per_s"].as_f64().expect("throughput");
        assert!(
            good <= thr + 1e-9,
            "n={n}: goodput {good} > throughput {thr}"
        );
        assert!(thr < 1e6, "n={n}: {thr} req/s from a ~0 s window");
    }
}

#[test]
fn a_normal_run_is_still_stable_with_a_finite_all_arrivals_p99() {
    let (code, v, _) = simulate(&["--n-req", "500"]);
    assert_eq!(code, 0);
    assert_eq!(v["verdict"], "stable");
    let all = v["slo"]["p99_ttft_all_ms"].as_f64().expect("finite");
    let p99 = v["ttft_ms"]["p99"].as_f64().expect("p99");
    assert!((all - p99).abs() <= 0.01 * p99 + 1e-6, "{all} vs {p99}");
}

#[test]
fn slot_model_batch_is_occupancy_not_the_slot_count() {
    let (code, v, _) = simulate(&["--n-req", "3000", "--lam", "5", "--service-model", "slot"]);
    assert_eq!(code, 0);
    let batch = v["mean_batch"].as_f64().expect("batch");
    let slots = v["pools"][0]["n_slots"].as_f64().expect("slots");
    assert!(batch < 0.5 * slots, "batch {batch} vs {slots} slots");
    // Little's law: occupied slots per instance ≈ λ · mean E2E / instances.
    let little = 5.0 * v["e2e_ms"]["mean"].as_f64().expect("e2e") / 1e3 / 4.0;
    assert!(
        (batch - little).abs() < 0.25 * little,
        "{batch} vs Little {little}"
    );
}
