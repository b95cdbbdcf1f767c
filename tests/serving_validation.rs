//! Issue 13's acceptance: the serving-instance model, calibrated on the 43
//! measured InferenceMAX H100 rows (gpt-oss-120b FP4, vLLM, TP 2/4/8;
//! `data/measured/`), predicts them with median |error| ≤ 10% on throughput
//! per GPU and mean TPOT and ≤ 20% on mean TTFT for every TP; the shipped
//! calibration is a local optimum of the fit; and the catalog plus that
//! calibration predicts other GPUs end to end. Run with `--nocapture` for
//! the table (also `kvfleet profile validate --serving`).

use kvfleet::benchmark::serving_fit::{FITTED, objective, replay};
use kvfleet::benchmark::validation::{
    SHIPPED_SPEC, shipped_calibration, shipped_rows, shipped_settings, validate_shipped,
};
use kvfleet::benchmark::{BenchmarkSpec, Deployment, run_benchmark};
use kvfleet::profile::resolve_profile;

#[test]
fn calibrated_model_meets_the_targets_for_every_tp() {
    let v = validate_shipped().expect("replays");
    println!(
        "{:<16} {:>4} {:>10} {:>10} {:>10}   uncalibrated tput/TPOT/TTFT",
        "group", "rows", "tput", "TPOT", "TTFT"
    );
    for (c, u) in v.calibrated.iter().zip(&v.uncalibrated) {
        println!(
            "{:<16} {:>4} {:>9.1}% {:>9.1}% {:>9.1}%   {:.1}% / {:.1}% / {:.1}%",
            c.group,
            c.rows,
            100.0 * c.tput_median_abs_err,
            100.0 * c.tpot_median_abs_err,
            100.0 * c.ttft_median_abs_err,
            100.0 * u.tput_median_abs_err,
            100.0 * u.tpot_median_abs_err,
            100.0 * u.ttft_median_abs_err
        );
    }
    let worst = v
        .rows
        .iter()
        .max_by(|a, b| a.ttft_err.abs().total_cmp(&b.ttft_err.abs()))
        .expect("rows");
    println!(
        "worst TTFT row: tp{} {}/{} conc {}: {:+.1}%",
        worst.measured.tp.unwrap_or(0),
        worst.measured.isl,
        worst.measured.osl,
        worst.measured.conc,
        100.0 * worst.ttft_err
    );
    assert_eq!(v.rows.len(), 43);
    for g in v.calibrated.iter().filter(|g| !g.group.contains(' ')) {
        assert!(g.tput_median_abs_err <= 0.10, "{}: tput {:?}", g.group, g);
        assert!(g.tpot_median_abs_err <= 0.10, "{}: TPOT {:?}", g.group, g);
        assert!(g.ttft_median_abs_err <= 0.20, "{}: TTFT {:?}", g.group, g);
    }
    // The calibration is what makes the difference.
    let all_u = v.uncalibrated.last().expect("all");
    let all_c = v.calibrated.last().expect("all");
    assert!(all_c.ttft_median_abs_err < all_u.ttft_median_abs_err);
}

#[test]
fn shipped_calibration_is_a_local_optimum_of_the_fit() {
    let rows = shipped_rows();
    let set = shipped_settings(SHIPPED_SPEC);
    let cal = shipped_calibration().efficiency;
    let f0 = objective(&replay(&rows, &set, cal).expect("replays"));
    for (name, lo, hi) in FITTED {
        for factor in [0.9, 1.1] {
            let mut p = cal;
            let slot = match name {
                "compute_eff" => &mut p.compute_eff,
                "memory_eff" => &mut p.memory_eff,
                "step_overhead_s" => &mut p.step_overhead_s,
                "seq_overhead_s" => &mut p.seq_overhead_s,
                "hop_latency_s" => &mut p.hop_latency_s,
                "link_eff" => &mut p.link_eff,
                "frontend_latency_s" => &mut p.frontend_latency_s,
                other => panic!("unknown fitted factor {other}"),
            };
            *slot = (*slot * factor).clamp(lo, hi);
            let f = objective(&replay(&rows, &set, p).expect("replays"));
            assert!(
                f >= f0 * 0.99,
                "{name} × {factor}: objective {f} below the shipped {f0}; refit with calibrate --serving"
            );
        }
    }
}

#[test]
fn other_gpus_are_predicted_from_the_catalog_and_the_h100_calibration() {
    let cal = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/calibration/vllm-h100.toml"
    );
    let mut tput_at_64 = vec![];
    for gpu in ["h100-sxm", "h200", "b200", "mi355x"] {
        let spec = format!("{gpu}:gpt-oss-120b:tp8:fp4@{cal}");
        let mut p = resolve_profile("--gpu", &spec, &Default::default()).expect("resolves");
        p.chunk = 8192;
        assert!(p.step_law.is_some());
        let rows = run_benchmark(&BenchmarkSpec {
            deployment: Deployment::Aggregated(p),
            isl: 1024,
            osl: 1024,
            range_ratio: 0.8,
            concurrency: vec![4, 64],
            prompts_per_conc: 10,
            seed: 1,
        })
        .expect("runs");
        for r in &rows {
            assert_eq!(r.completed, r.num_prompts, "{gpu}");
            assert!(r.tput_per_gpu > 0.0 && r.mean_tpot > 0.0 && r.mean_ttft > 0.0);
        }
        println!(
            "{gpu:<9} conc 4: {:.0} tok/s/GPU, TPOT {:.2} ms; conc 64: {:.0} tok/s/GPU, TPOT {:.2} ms",
            rows[0].tput_per_gpu,
            rows[0].mean_tpot * 1e3,
            rows[1].tput_per_gpu,
            rows[1].mean_tpot * 1e3
        );
        tput_at_64.push(rows[1].tput_per_gpu);
    }
    // More bandwidth (H200) and native FP4 with more bandwidth (B200) serve more per GPU.
    assert!(tput_at_64[1] > tput_at_64[0] && tput_at_64[2] > tput_at_64[1]);
}

#[test]
fn repository_rows_are_the_shared_measurements() {
    let Some(path) = kvfleet::shared_data::shared_data(
        "measured/inferencemax_gptoss_h100.csv",
        "repository_rows_are_the_shared_measurements",
    ) else {
        return;
    };
    let shared = std::fs::read_to_string(path).expect("reads");
    assert_eq!(
        shared,
        kvfleet::benchmark::validation::SHIPPED_ROWS_CSV,
        "data/measured/ is a copy of ../shared/data/measured/"
    );
}
