//! `kvfleet benchmark` and `kvfleet calibrate --serving` from the command line:
//! rows with InferenceMAX field names, --compare, disaggregated runs, CSV and
//! plot outputs, and bad input (exit 2, one line naming the flag or file).

mod common;

use common::{kvfleet, run_json, temp_input};

const ROWS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/measured/inferencemax_gptoss_h100.csv"
);
const CAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/calibration/vllm-h100.toml"
);

fn fails_with(args: &[&str], needle: &str) {
    let out = kvfleet().args(args).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
}

#[test]
fn rows_have_inferencemax_fields_and_compare_with_measured() {
    let v = run_json(&[
        "benchmark",
        "--gpu",
        "h100-sxm:gpt-oss-120b:tp8:fp4",
        "--calibration",
        CAL,
        "--isl",
        "1024",
        "--osl",
        "1024",
        "--compare",
        ROWS,
        "--json",
    ]);
    let rows = v["rows"].as_array().expect("rows");
    // The measured concurrencies of TP8 1024/1024.
    let conc: Vec<u64> = rows.iter().map(|r| r["conc"].as_u64().unwrap()).collect();
    assert_eq!(conc, [4, 8, 16, 32, 64]);
    for f in [
        "tput_per_gpu",
        "output_tput_per_gpu",
        "input_tput_per_gpu",
        "mean_ttft",
        "median_ttft",
        "p99_ttft",
        "mean_tpot",
        "median_tpot",
        "median_intvty",
        "mean_e2el",
    ] {
        assert!(rows[0][f].as_f64().unwrap() > 0.0, "{f}");
    }
    assert_eq!(rows[4]["num_prompts"], 640);
    let cmp = v["comparison"].as_array().expect("comparison");
    assert_eq!(cmp.len(), 5);
    for c in cmp {
        let f = c["fields"].as_array().unwrap();
        let tput = f.iter().find(|x| x["field"] == "tput_per_gpu").unwrap();
        assert!(tput["rel_err"].as_f64().unwrap().abs() < 0.15, "{c}");
    }
}

#[test]
fn disaggregated_csv_and_plot() {
    let csv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-bench-{}.csv", std::process::id()));
    let svg = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-bench-{}.svg", std::process::id()));
    let v = run_json(&[
        "benchmark",
        "--prefill",
        "1xh200:gpt-oss-120b:tp4:fp4",
        "--decode",
        "2xh200:gpt-oss-120b:tp4:fp4",
        "--calibration",
        CAL,
        "--concurrency",
        "8,32",
        "--csv",
        csv.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(v["gpus"], 12);
    let r = &v["rows"][1];
    assert_eq!(r["completed"], 320);
    // Output per decode GPU (8), input per prefill GPU (4), total over 12.
    let (o, i, t) = (
        r["output_tput_per_gpu"].as_f64().unwrap(),
        r["input_tput_per_gpu"].as_f64().unwrap(),
        r["tput_per_gpu"].as_f64().unwrap(),
    );
    assert!(((o * 8.0 + i * 4.0) / 12.0 - t).abs() < 1e-6 * t, "{r}");
    let text = std::fs::read_to_string(&csv).expect("csv");
    assert!(text.starts_with("conc,num_prompts") && text.lines().count() == 3);
    assert!(std::fs::read_to_string(&svg).expect("svg").contains("<svg"));
}

#[test]
fn mtp_raises_interactivity() {
    let run = |extra: &[&str]| {
        let mut a = vec![
            "benchmark",
            "--gpu",
            "h200:deepseek-r1:tp8:fp8:ep8",
            "--calibration",
            CAL,
            "--concurrency",
            "4",
            "--json",
        ];
        a.extend_from_slice(extra);
        run_json(&a)["rows"][0]["mean_tpot"].as_f64().unwrap()
    };
    let (plain, mtp) = (run(&[]), run(&["--mtp", "2", "--mtp-acceptance", "0.8"]));
    assert!(mtp < plain / 1.3, "{mtp} vs {plain}");
    fails_with(&["benchmark", "--gpu", "h100", "--mtp", "1"], "--mtp");
}

#[test]
fn agg_bmk_json_rows_are_read() {
    let path = temp_input(
        "agg_bmk.json",
        r#"[{"hw":"h100","isl":1024,"osl":1024,"tp":8,"conc":4,"tput_per_gpu":261.0,"mean_tpot":0.0037,"mean_ttft":0.033}]"#,
    );
    let v = run_json(&[
        "benchmark",
        "--gpu",
        "h100-sxm:gpt-oss-120b:tp8:fp4",
        "--compare",
        path.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
    assert_eq!(v["comparison"][0]["fields"].as_array().unwrap().len(), 4);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let g = "h100-sxm:gpt-oss-120b:tp8:fp4";
    fails_with(
        &["benchmark", "--gpu", g, "--range-ratio", "1.5"],
        "--range-ratio",
    );
    fails_with(
        &["benchmark", "--gpu", g, "--concurrency", "0"],
        "--concurrency",
    );
    fails_with(
        &["benchmark", "--gpu", g, "--compare", "/nonexistent.csv"],
        "nonexistent",
    );
    fails_with(
        &[
            "benchmark",
            "--prefill",
            "zx",
            "--decode",
            &format!("1x{g}"),
        ],
        "--prefill",
    );
    fails_with(
        &["benchmark", "--gpu", &format!("{g}@/nonexistent.toml")],
        "nonexistent",
    );
    let bad = temp_input("bad_cal.toml", "[efficiency]\nmemory_eff = 3.0\n");
    fails_with(
        &["benchmark", "--gpu", &format!("{g}@{}", bad.display())],
        "memory_eff",
    );
    let bad_rows = temp_input("rows.csv", "input_seq_len,output_seq_len\n1024,1024\n");
    fails_with(
        &[
            "benchmark",
            "--gpu",
            g,
            "--compare",
            bad_rows.to_str().unwrap(),
        ],
        "concurrency",
    );
    fails_with(&["calibrate", "--serving", ROWS, "--gpu", "h100"], "--gpu");
}

#[test]
fn calibrate_serving_prints_a_usable_overlay() {
    let rows = temp_input(
        "few_rows.csv",
        &std::fs::read_to_string(ROWS)
            .unwrap()
            .lines()
            .take(4)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let out_path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-cal-{}.toml", std::process::id()));
    let out = kvfleet()
        .args([
            "calibrate",
            "--serving",
            rows.to_str().unwrap(),
            "--gpu",
            "h100-sxm:gpt-oss-120b:fp4",
            "--max-evals",
            "30",
            "--out",
            out_path.to_str().unwrap(),
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("tp2") && summary.contains("median"),
        "{summary}"
    );
    let spec = format!("h100-sxm:gpt-oss-120b:tp2:fp4@{}", out_path.display());
    let v = run_json(&["benchmark", "--gpu", &spec, "--concurrency", "4", "--json"]);
    assert!(v["rows"][0]["tput_per_gpu"].as_f64().unwrap() > 0.0);
}
