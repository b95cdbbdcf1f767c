//! CLI tests of `kvfleet sizing-calc` against the fixtures in
//! `tests/fixtures/sizing` (the seed document's example sweep).

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/sizing/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-sizing-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = Command::cargo_bin("kvfleet")
        .unwrap()
        .arg("sizing-calc")
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn golden_args(metrics: &str) -> Vec<String> {
    args_with_target(metrics, "10")
}

fn args_with_target(metrics: &str, wf_target_s: &str) -> Vec<String> {
    [
        "--metrics",
        metrics,
        "--test-gpu-count",
        "8",
        "--target-users",
        "100",
        "--target-workflow-runtime",
        wf_target_s,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run_json(metrics: &str, extra: &[&str]) -> Value {
    run_json_target(metrics, "10", extra)
}

fn run_json_target(metrics: &str, wf_target_s: &str, extra: &[&str]) -> Value {
    let mut args = args_with_target(metrics, wf_target_s);
    args.push("--json".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run(&argv);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    serde_json::from_str(&r.stdout).expect("stdout is one JSON document")
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// All golden numbers of the issue, checked on a NAT-schema JSON report.
fn assert_golden(doc: &Value) {
    let wf = &doc["fit_results"]["wf_runtime_fit"];
    assert_eq!(format!("{:.4}", f(&wf["slope"])), "0.6568");
    assert_eq!(format!("{:.4}", f(&wf["intercept"])), "3.0264");
    assert_eq!(format!("{:.4}", f(&wf["r_squared"])), "0.9955");
    assert_eq!(wf["outliers_removed"], serde_json::json!([]));
    let gpus = f(&doc["gpu_estimates"]["gpu_estimate_by_wf_runtime"]);
    assert_eq!(format!("{gpus:.1}"), "75.4");
    assert!(doc["gpu_estimates"]["gpu_estimate_by_llm_latency"].is_null());
    let llm = &doc["fit_results"]["llm_latency_fit"];
    assert_eq!(llm["outliers_removed"], serde_json::json!([32]));
    let rough: Vec<Value> = ["1", "2", "4", "8", "16", "32"]
        .iter()
        .map(|c| doc["calc_data"][c]["gpu_estimates"]["gpu_estimate_by_wf_runtime"].clone())
        .collect();
    for (got, want) in rough.iter().zip([322.79, 188.479, 113.516, 79.0895]) {
        assert!((f(got) - want).abs() < 5e-4, "{got} vs {want}");
    }
    assert!(rough[4].is_null() && rough[5].is_null());
    assert_eq!(
        doc["calc_data"]["32"]["alerts"]["outlier_llm_latency"],
        true
    );
    assert_eq!(
        doc["calc_data"]["32"]["alerts"]["outlier_workflow_runtime"],
        false
    );
    assert_eq!(doc["kvfleet"]["recommendation"]["gpu_count_whole"], 76);
    assert_eq!(doc["kvfleet"]["recommendation"]["limited_by"], "wf_runtime");
}

#[test]
fn golden_nat_json_table() {
    let args = golden_args(&fixture("calc_runner_output.json"));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run(&argv);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = [
        "|        |           1 |             1.14981 |            4.03488 |           8.06977 |           0 |                   322.79 |",
        "|        |           2 |              1.3591 |            4.71197 |           9.32298 |           0 |                  188.479 |",
        "|        |           4 |             1.50682 |            5.67581 |           11.1683 |           0 |                  113.516 |",
        "|        |           8 |             2.10668 |            7.90895 |           15.6193 |           0 |                  79.0895 |",
        "|        |          16 |             3.30196 |             12.677 |           25.3173 |          32 |                          |",
        "| !L     |          32 |             6.57847 |            24.5307 |           43.9806 |          64 |                          |",
    ];
    for row in rows {
        assert!(r.stdout.contains(row), "missing row {row}\n{}", r.stdout);
    }
    assert!(r.stdout.contains(
        "| Workflow runtime | 1, 2, 4, 8, 16, 32 | none             |       0.656838 |       3.02642 | 0.9955 | accepted |"
    ), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("| LLM latency      | 1, 2, 4, 8, 16     | 32  ")
    );
    assert!(
        r.stdout
            .contains("| Workflow runtime |             10 |               10.6169 | 75.4 |")
    );
    assert!(
        r.stdout
            .contains("Recommended GPU count: 75.4 (plan 76 GPUs), set by workflow runtime")
    );
}

#[test]
fn golden_nat_json_output() {
    let doc = run_json(&fixture("calc_runner_output.json"), &[]);
    assert_golden(&doc);
    let a16 = &doc["calc_data"]["16"]["alerts"];
    assert_eq!(a16["num_items_greater_than_target_runtime"], 32);
    assert_eq!(
        doc["calc_data"]["32"]["alerts"]["num_items_greater_than_target_runtime"],
        64
    );
    assert_eq!(
        doc["calc_data"]["8"]["alerts"]["num_items_greater_than_target_runtime"],
        0
    );
    // the input measurements are echoed in NAT's layout
    let sm = &doc["calc_data"]["4"]["sizing_metrics"];
    assert_eq!(f(&sm["workflow_runtime_p95"]), 5.67581);
    assert_eq!(sm["per_item_metrics"].as_object().unwrap().len(), 8);
}

#[test]
fn golden_from_csv_without_interrupted_column() {
    let doc = run_json(&fixture("golden.csv"), &[]);
    assert_golden(&doc);
    // no per-item data in a CSV: NAT's integer fields stay 0
    assert_eq!(
        doc["calc_data"]["32"]["alerts"]["num_items_greater_than_target_runtime"],
        0
    );
}

#[test]
fn csv_interrupted_column_excludes_the_point() {
    let doc = run_json(&fixture("golden_interrupted.csv"), &[]);
    assert_eq!(
        doc["calc_data"]["4"]["sizing_metrics"]["alerts"]["workflow_interrupted"],
        true
    );
    assert!(doc["calc_data"]["4"]["gpu_estimates"]["gpu_estimate_by_wf_runtime"].is_null());
    assert_eq!(
        doc["kvfleet"]["excluded"],
        serde_json::json!([{"concurrency": 4, "reason": "workflow interrupted"}])
    );
    let used = &doc["kvfleet"]["metrics"]["wf_runtime"]["fit"]["points_used"];
    assert_eq!(used, &serde_json::json!([1, 2, 8, 16, 32]));
}

#[test]
fn job_directory_newest_job_wins() {
    // job_999999999 (older, sorts last by name) has a stale concurrency 8
    // (30 s); job_1700003600 (newer) has the real one. Only newest-wins
    // reproduces the golden numbers.
    let doc = run_json(&fixture("jobs"), &[]);
    assert_golden(&doc);
    let sources = &doc["kvfleet"]["sources"];
    assert!(sources["8"].as_str().unwrap().contains("job_1700003600"));
    assert!(sources["1"].as_str().unwrap().contains("job_999999999"));
    // the online/ subdirectory may also be given directly
    assert_golden(&run_json(&fixture("jobs/online"), &[]));
}

#[test]
fn json_output_reads_back_as_input() {
    let dir = temp_dir("roundtrip");
    let out = dir.join("report.json");
    let out_s = out.to_str().unwrap();
    let r = run(&[
        "--metrics",
        &fixture("calc_runner_output.json"),
        "--test-gpu-count",
        "8",
        "--target-users",
        "100",
        "--target-workflow-runtime",
        "10",
        "--out",
        out_s,
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Recommended GPU count: 75.4"));
    assert_golden(&run_json(out_s, &[]));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn target_below_intercept_is_infeasible_not_an_error() {
    let doc = run_json_target(&fixture("golden.csv"), "2.5", &[]);
    assert!(doc["gpu_estimates"]["gpu_estimate_by_wf_runtime"].is_null());
    let est = &doc["kvfleet"]["metrics"]["wf_runtime"]["estimate"];
    assert_eq!(est["status"], "infeasible");
    let reason = est["reason"].as_str().unwrap();
    assert!(reason.contains("infeasible target") && reason.contains("intercept 3.0264"));
    assert!(doc["kvfleet"]["recommendation"]["gpu_count"].is_null());
    assert_eq!(doc["kvfleet"]["recommendation"]["reason"], reason);
    // the fit itself is fine and stays in NAT's fit_results
    assert!(doc["fit_results"]["wf_runtime_fit"].is_object());
}

#[test]
fn negative_slope_is_infeasible() {
    let doc = run_json(&fixture("negative_slope.csv"), &[]);
    let est = &doc["kvfleet"]["metrics"]["wf_runtime"]["estimate"];
    assert_eq!(est["status"], "infeasible");
    assert!(est["reason"].as_str().unwrap().contains("slope"));
    let args = golden_args(&fixture("negative_slope.csv"));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run(&argv);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout
            .contains("No GPU recommendation: infeasible target")
    );
}

#[test]
fn too_few_points_is_reported() {
    let doc = run_json(&fixture("single_point.csv"), &[]);
    let m = &doc["kvfleet"]["metrics"]["wf_runtime"];
    assert_eq!(m["fit"]["status"], "too_few_points");
    assert_eq!(m["estimate"]["status"], "no_fit");
    assert!(
        m["estimate"]["reason"]
            .as_str()
            .unwrap()
            .contains("need at least 2 valid concurrencies")
    );
    assert!(doc["fit_results"]["wf_runtime_fit"].is_null());
    assert!(doc["gpu_estimates"]["gpu_estimate_by_wf_runtime"].is_null());
}

#[test]
fn poor_fit_is_rejected_with_r_squared() {
    let doc = run_json(&fixture("poor_fit.csv"), &[]);
    let fit = &doc["kvfleet"]["metrics"]["wf_runtime"]["fit"];
    assert_eq!(fit["status"], "poor_fit");
    assert!(f(&fit["r_squared"]) < 0.7);
    assert!(fit["reason"].as_str().unwrap().contains("R² = 0.047 < 0.7"));
    assert!(doc["fit_results"]["wf_runtime_fit"].is_null());
    // the latency fit of the same file is fine
    assert!(doc["fit_results"]["llm_latency_fit"].is_object());
}

#[test]
fn both_targets_recommend_the_larger() {
    let doc = run_json(
        &fixture("calc_runner_output.json"),
        &["--target-llm-latency", "2"],
    );
    let wf = f(&doc["gpu_estimates"]["gpu_estimate_by_wf_runtime"]);
    let llm = f(&doc["gpu_estimates"]["gpu_estimate_by_llm_latency"]);
    assert!(llm > wf);
    assert_eq!(f(&doc["kvfleet"]["recommendation"]["gpu_count"]), llm);
    assert_eq!(
        doc["kvfleet"]["recommendation"]["limited_by"],
        "llm_latency"
    );
    // items over the 2 s latency target at concurrency 8 (p95 2.10668)
    let n = &doc["calc_data"]["8"]["alerts"]["num_items_greater_than_target_latency"];
    assert!(n.as_u64().unwrap() > 0);
}

#[test]
fn malformed_inputs_exit_2_naming_file_and_field() {
    let cases = [
        ("bad_cell.csv", "line 3, column `workflow_runtime_p95`"),
        (
            "bad_type.json",
            "field `calc_data.2.sizing_metrics.llm_latency_p95`",
        ),
        ("missing_calc_data.json", "field `calc_data`: missing"),
        ("truncated.json", "invalid JSON"),
        ("does_not_exist.json", "cannot read"),
    ];
    for (file, what) in cases {
        let path = fixture(file);
        let args = golden_args(&path);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(&argv);
        assert_eq!(r.code, 2, "{file}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{file}: stdout {}", r.stdout);
        assert!(r.stderr.contains(&path), "{file}: {}", r.stderr);
        assert!(r.stderr.contains(what), "{file}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{file}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"));
    }
}

#[test]
fn bad_flags_exit_2() {
    let m = fixture("golden.csv");
    let cases: [&[&str]; 4] = [
        &[
            "--test-gpu-count",
            "0",
            "--target-users",
            "100",
            "--target-workflow-runtime",
            "10",
        ],
        &[
            "--test-gpu-count",
            "8",
            "--target-users",
            "0",
            "--target-workflow-runtime",
            "10",
        ],
        &["--test-gpu-count", "8", "--target-users", "100"],
        &[
            "--test-gpu-count",
            "8",
            "--target-users",
            "100",
            "--target-llm-latency",
            "-1",
        ],
    ];
    for case in cases {
        let mut argv = vec!["--metrics", m.as_str()];
        argv.extend_from_slice(case);
        let r = run(&argv);
        assert_eq!(r.code, 2, "{case:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("error: --"), "{case:?}: {}", r.stderr);
    }
    let empty_dir = temp_dir("empty");
    let r = run(&golden_args(empty_dir.to_str().unwrap())
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("job_*"), "{}", r.stderr);
    std::fs::remove_dir_all(empty_dir).unwrap();
}

#[test]
fn plots_and_csv_are_written() {
    let dir = temp_dir("plots");
    let plots = dir.join("plots");
    let csv = dir.join("table.csv");
    let mut args = golden_args(&fixture("calc_runner_output.json"));
    args.extend(
        [
            "--plot-dir",
            plots.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
            "--json",
            "--quiet",
        ]
        .map(String::from),
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run(&argv);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.is_empty(), "--quiet: {}", r.stderr);
    let llm = std::fs::read_to_string(plots.join("concurrency_vs_p95_llm_latency.svg")).unwrap();
    assert!(llm.contains("<svg") && llm.contains("outlier (removed from fit)"));
    let wf = std::fs::read_to_string(plots.join("concurrency_vs_p95_wf_runtime.svg")).unwrap();
    assert!(wf.contains("target 10 s") && wf.contains("linear fit"));
    let table = std::fs::read_to_string(&csv).unwrap();
    let mut lines = table.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("concurrency,llm_latency_p95,")
    );
    assert_eq!(lines.count(), 6);
    // the CSV report is itself a valid measurements CSV
    let doc = run_json(csv.to_str().unwrap(), &[]);
    assert_golden(&doc);
    std::fs::remove_dir_all(dir).unwrap();
}
