//! Issue 11, defects 10 and 12 (fits): sizing-calc rejects a non-finite fit
//! instead of recommending GPUs from it, and calibrate warns (table and
//! JSON) when its fit error is too large to trust the profile.

mod common;

use common::{json_of, kvfleet, temp_input};

/// stdout and stderr of `kvfleet ARGS` (any exit code).
fn text_of(args: &[&str]) -> (String, String) {
    let out = kvfleet().args(args).output().expect("runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sizing_calc_rejects_a_fit_whose_r_squared_is_nan() {
    let csv = temp_input(
        "huge_p95.csv",
        "concurrency,llm_latency_p95,workflow_runtime_p95,total_runtime\n\
         1,1e300,1e300,10\n2,2e300,3e300,10\n3,3e300,2e300,10\n4,4e300,5e300,10\n",
    );
    let csv = csv.to_str().expect("utf-8");
    let args = "sizing-calc --test-gpu-count 8 --target-users 100 --target-workflow-runtime 10";
    let args: Vec<&str> = args.split(' ').chain(["--metrics", csv]).collect();
    let (v, _) = json_of(kvfleet().args(&args).arg("--json"));
    let est = &v["gpu_estimates"];
    assert!(est["gpu_estimate_by_wf_runtime"].is_null(), "{est}");
    let fit = &v["kvfleet"]["metrics"]["wf_runtime"]["fit"];
    assert_eq!(fit["status"], "not_finite", "{fit}");
    assert!(
        fit["reason"]
            .as_str()
            .expect("reason")
            .contains("not finite")
    );
    let (table, _) = text_of(&args);
    assert!(table.contains("No GPU recommendation"), "{table}");
    assert!(!table.contains("Recommended GPU count"), "{table}");
}

#[test]
fn calibrate_warns_when_the_fit_error_is_large() {
    // Step times that no W + H·ctx + prefill line describes (±50–90%).
    let mut csv = String::from("batch,ctx,prefill_tokens,step_ms\n");
    for (i, b) in [1u32, 2, 4, 8, 16, 32, 64, 128].iter().enumerate() {
        for c in [512u32, 4096] {
            let ms = if i % 2 == 0 { 50.0 } else { 5.0 } + c as f64 / 4096.0;
            csv += &format!("{b},{c},{},{ms}\n", 128 * (i % 3));
        }
    }
    let path = temp_input("noisy_steps.csv", &csv);
    let path = path.to_str().expect("utf-8");
    let (v, _) = json_of(kvfleet().args(["calibrate", path, "--json"]));
    assert!(
        v["fit"]["median_rel_err"].as_f64().expect("err") > 0.1,
        "{}",
        v["fit"]
    );
    let w = v["warnings"].as_array().expect("warnings");
    assert!(!w.is_empty() && w[0].as_str().expect("text").contains("median fit error"));
    let (out, err) = text_of(&["calibrate", path]);
    assert!(out.contains("# WARNING: median fit error"), "{out}");
    assert!(err.contains("warning:"), "{err}");
    // A good fit has no warnings.
    let good = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/calibrate/bench_layout.csv"
    );
    let (v, _) = json_of(kvfleet().args(["calibrate", good, "--json"]));
    assert_eq!(v["warnings"], serde_json::json!([]));
}
