//! `kvfleet benchmark` on the disaggregated GB200 NVL72 deployments of
//! DESIGN §15 (seed 002): the acceptance command and the launcher's other
//! configurations run and report InferenceMAX fields; the disaggregated
//! deployment reduces to the aggregated instance in the limit (one prefill,
//! one decode, an ideal link, no queueing); every request is accounted for;
//! the same seed gives the same bytes.

mod common;

use common::{json_of, kvfleet, run_json};

const FIELDS: [&str; 12] = [
    "tput_per_gpu",
    "output_tput_per_gpu",
    "input_tput_per_gpu",
    "mean_ttft",
    "median_ttft",
    "p99_ttft",
    "mean_tpot",
    "median_tpot",
    "p99_tpot",
    "mean_intvty",
    "mean_e2el",
    "p99_e2el",
];

fn acceptance() -> Vec<&'static str> {
    vec![
        "benchmark",
        "--prefill",
        "5xgb200:deepseek-r1:tep4:fp4",
        "--decode",
        "1xgb200:deepseek-r1:dep32:fp4",
        "--isl",
        "8192",
        "--osl",
        "1024",
        "--range-ratio",
        "0.8",
        "--concurrency",
        "128,269",
        "--mtp",
        "3",
        "--json",
    ]
}

fn check_rows(v: &serde_json::Value, gpus: u64, conc: &[u64]) {
    assert_eq!(v["gpus"].as_u64(), Some(gpus), "{v}");
    let rows = v["rows"].as_array().expect("rows");
    let got: Vec<u64> = rows.iter().map(|r| r["conc"].as_u64().unwrap()).collect();
    assert_eq!(got, conc);
    for r in rows {
        for f in FIELDS {
            let x = r[f].as_f64().unwrap_or(f64::NAN);
            assert!(x.is_finite() && x > 0.0, "{f} = {x} in {r}");
        }
        // Conservation: every prompt sent completes (closed loop, no rejection).
        assert_eq!(r["completed"], r["num_prompts"], "{r}");
        assert_eq!(
            r["num_prompts"].as_u64(),
            Some(10 * r["conc"].as_u64().unwrap())
        );
        // Interactivity is 1 / TPOT.
        let (i, t) = (
            r["mean_intvty"].as_f64().unwrap(),
            r["mean_tpot"].as_f64().unwrap(),
        );
        assert!((i * t - 1.0).abs() < 1e-9, "{r}");
        // TTFT ≤ E2EL; tput/GPU ≤ input/GPU·prefill share + output/GPU·decode share.
        assert!(r["mean_ttft"].as_f64().unwrap() <= r["mean_e2el"].as_f64().unwrap());
    }
}

#[test]
fn acceptance_command_reports_inferencemax_fields() {
    let v = run_json(&acceptance());
    // 5 TEP4 context trays (20 GPUs) + one DEP32 generation worker (32 GPUs).
    check_rows(&v, 52, &[128, 269]);
    let rows = v["rows"].as_array().unwrap();
    // Throughput split: (input + output)/all = input/prefill·20/52 + output/decode·32/52.
    for r in rows {
        let all = r["tput_per_gpu"].as_f64().unwrap();
        let parts = r["input_tput_per_gpu"].as_f64().unwrap() * 20.0 / 52.0
            + r["output_tput_per_gpu"].as_f64().unwrap() * 32.0 / 52.0;
        assert!((all - parts).abs() < 1e-6 * all, "{all} vs {parts}");
    }
}

#[test]
fn same_seed_same_bytes() {
    let a = json_of(kvfleet().args(acceptance())).1;
    let b = json_of(kvfleet().args(acceptance())).1;
    assert_eq!(a, b);
    let mut other = acceptance();
    other.extend(["--seed", "7"]);
    let c = json_of(kvfleet().args(other)).1;
    assert_ne!(a, c, "another seed draws other lengths");
}

/// (prefill, decode, MTP depth, concurrencies, GPUs, concurrencies reported).
type Case<'a> = (&'a str, &'a str, &'a str, &'a str, u64, &'a [u64]);

/// The launcher's other GB200 8k/1k configurations (DESIGN §15: each context
/// worker one TEP4 tray, a generation worker ceil(gen_tp/4) trays).
#[test]
fn launcher_configurations_run() {
    let cases: [Case; 3] = [
        // tep 1 3 8 16 64 0.9 3 0 "1 2 4 8 18": 1 ctx tray, 3 TEP8 gen workers, MTP 3.
        (
            "1xgb200:deepseek-r1:tep4:fp4",
            "3xgb200:deepseek-r1:tep8:fp4",
            "3",
            "1,2,4,8,18",
            28,
            &[1, 2, 4, 8, 18],
        ),
        // dep 8 1 32 16 64 0.7 3 0 "538".
        (
            "8xgb200:deepseek-r1:tep4:fp4",
            "1xgb200:deepseek-r1:dep32:fp4",
            "3",
            "538",
            64,
            &[538],
        ),
        // dep 8 1 16 64 256 0.75 2 0 "1075": MTP 2.
        (
            "8xgb200:deepseek-r1:tep4:fp4",
            "1xgb200:deepseek-r1:dep16:fp4",
            "2",
            "1075",
            48,
            &[1075],
        ),
    ];
    for (p, d, mtp, conc, gpus, want) in cases {
        let v = run_json(&[
            "benchmark",
            "--prefill",
            p,
            "--decode",
            d,
            "--isl",
            "8192",
            "--osl",
            "1024",
            "--mtp",
            mtp,
            "--concurrency",
            conc,
            "--json",
        ]);
        check_rows(&v, gpus, want);
    }
}

fn times(v: &serde_json::Value) -> Vec<f64> {
    let r = &v["rows"][0];
    [
        "duration",
        "mean_ttft",
        "p99_ttft",
        "mean_tpot",
        "p99_tpot",
        "mean_e2el",
        "p99_e2el",
    ]
    .iter()
    .map(|f| r[*f].as_f64().unwrap())
    .collect()
}

/// One prefill and one decode instance of the aggregated spec, an ideal link,
/// one request at a time (no queueing, no batching): each request pays the
/// aggregated instance's prefill steps, then its decode steps, so every time
/// matches to within the engine's 1 ns rounding per hand-off.
#[test]
fn disaggregated_limit_is_the_aggregated_instance() {
    for spec in [
        "gb200:deepseek-r1:tep8:fp4",
        "gb200:deepseek-r1:dep8:fp4:mtp3",
    ] {
        let common = [
            "--isl",
            "8192",
            "--osl",
            "1024",
            "--concurrency",
            "1",
            "--json",
        ];
        let mut a = vec!["benchmark", "--gpu", spec];
        a.extend(common);
        let p = format!("1x{spec}");
        let mut d = vec![
            "benchmark",
            "--prefill",
            &p,
            "--decode",
            &p,
            "--link",
            "inf",
        ];
        d.extend(common);
        let (ta, td) = (times(&run_json(&a)), times(&run_json(&d)));
        for (x, y) in ta.iter().zip(&td) {
            // 10 requests back to back, each hand-off rounded to whole ns: a few ns in total.
            assert!((x - y).abs() <= 5e-8, "{spec}: {ta:?} vs {td:?}");
        }
        // With a real link the hand-off costs time: TTFT grows.
        let mut n = vec![
            "benchmark",
            "--prefill",
            &p,
            "--decode",
            &p,
            "--link",
            "ethernet",
        ];
        n.extend(common);
        let tn = times(&run_json(&n));
        assert!(
            tn[1] > ta[1] + 1e-3,
            "{spec}: a 12.5 GB/s link adds to TTFT: {tn:?}"
        );
    }
}
