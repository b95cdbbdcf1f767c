//! CLI tests of `analytic`: JSON rows, the DES verification rows, the human
//! table, and bad input (exit 2).

mod common;

use common::{json_of, kvfleet};
use serde_json::Value;

fn json(args: &[&str]) -> Value {
    json_of(
        kvfleet()
            .arg("analytic")
            .args(["--json", "--quiet"])
            .args(args),
    )
    .0
}

#[test]
fn json_prints_every_model_row_and_calibration() {
    let v = json(&[
        "--gpu",
        "h100",
        "--n-gpus",
        "2",
        "--lam",
        "20",
        "--calib-samples",
        "20000",
    ]);
    let rows = v["rows"].as_array().expect("rows");
    let models: Vec<&str> = rows.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["reference", "mmc", "allen-cunneen", "birth-death"]);
    for r in rows {
        for k in [
            "stable",
            "utilisation",
            "mean_wait_ms",
            "p99_wait_ms",
            "p99_ttft_ms",
            "slo_met",
        ] {
            assert!(!r[k].is_null(), "{k} in {r}");
        }
        assert_eq!(r["stable"], true);
        assert!(r["vs_des_slot"].is_null());
    }
    let c = &v["calibration"];
    assert_eq!(c["slots_per_instance"], 128);
    assert_eq!(c["instances"], 2);
    assert!(c["cv2_service"].as_f64().unwrap() > 0.1);
    assert!(c["p99_prefill_s"].as_f64().unwrap() >= c["mean_prefill_s"].as_f64().unwrap());
    // Reference and Allen–Cunneen share the wait law; their TTFTs differ by
    // P99 prefill − mean prefill.
    assert_eq!(rows[0]["p99_wait_ms"], rows[2]["p99_wait_ms"]);
    let gap = rows[2]["p99_ttft_ms"].as_f64().unwrap() - rows[0]["p99_ttft_ms"].as_f64().unwrap();
    let want = (c["p99_prefill_s"].as_f64().unwrap() - c["mean_prefill_s"].as_f64().unwrap()) * 1e3;
    assert!((gap - want).abs() < 1e-6, "{gap} vs {want}");
}

#[test]
fn overload_is_unstable_with_null_waits_and_des_rows_appear() {
    // One a10g instance at 8192 context has 64 slots of ~5 s service; 200 req/s overloads it.
    let v = json(&[
        "--gpu",
        "a10g",
        "--n-gpus",
        "1",
        "--lam",
        "200",
        "--calib-samples",
        "5000",
    ]);
    for r in v["rows"].as_array().unwrap() {
        assert_eq!(r["stable"], false, "{r}");
        assert!(r["p99_ttft_ms"].is_null() && r["mean_wait_ms"].is_null());
        assert_eq!(r["slo_met"], false);
    }
    let v = json(&[
        "--isl",
        "fixed:200",
        "--osl",
        "exp:50",
        "--lam",
        "420",
        "--n-gpus",
        "1",
        "--calib-samples",
        "20000",
        "--verify-des",
        "20000",
    ]);
    let rows = v["rows"].as_array().unwrap();
    let models: Vec<&str> = rows.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(
        models,
        [
            "reference",
            "mmc",
            "allen-cunneen",
            "birth-death",
            "des-slot",
            "des-iteration"
        ]
    );
    // λ = 420 req/s on 128 slots of ~285 ms: ρ ≈ 0.93, so waits are positive.
    assert_eq!(rows[4]["vs_des_slot"], 0.0);
    assert!(rows[1]["vs_des_slot"].is_f64(), "{}", rows[1]);
    assert!(rows[5]["mean_wait_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(rows[4]["disagrees_with_des"], false);
    assert_eq!(v["des_requests"], 20000);
}

#[test]
fn human_table_names_every_model() {
    let out = kvfleet()
        .args([
            "analytic",
            "--quiet",
            "--lam",
            "10",
            "--calib-samples",
            "5000",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "reference",
        "mmc",
        "allen-cunneen",
        "birth-death",
        "P99 TTFT ms",
        "cv²",
        "slots/instance",
    ] {
        assert!(text.contains(needle), "`{needle}` missing in\n{text}");
    }
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--lam", "0"], "--lam"),
        (&["--gpu", "tpu9"], "unknown GPU profile"),
        (&["--n-gpus", "0"], "--n-gpus"),
        (&["--slo=-5"], "--slo"),
        (&["--max-ctx", "100000000"], "--max-ctx"),
        (&["--mmpp", "1:2:3:4"], "--mmpp"),
        (&["--verify-des", "0"], "--verify-des"),
        (&["--calib-samples", "0"], "--calib-samples"),
        (&["--no-such-flag"], "--no-such-flag"),
        (&["--n-gpus", "many"], "--n-gpus"),
    ];
    for (args, needle) in cases {
        let out = kvfleet()
            .arg("analytic")
            .arg("--quiet")
            .args(*args)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: expected `{needle}` in {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}
