//! `sizing-calc --simulate`: the simulated sweep, the identical fit, and the
//! DES's direct search answer (minimal: one instance fewer misses the target).

mod common;

use common::run_json as run;

const BASE: &[&str] = &[
    "sizing-calc",
    "--simulate",
    "--gpu",
    "a100",
    "--test-gpu-count",
    "1",
    "--target-users",
    "60",
    "--target-workflow-runtime",
    "12",
    "--workflows-per-level",
    "200",
    "--concurrencies",
    "1,2,4,8,16",
    "--json",
    "--quiet",
];

#[test]
fn simulated_sweep_and_direct_search_are_consistent() {
    let v = run(BASE);
    let sim = &v["simulated"];
    assert!(sim["gpu_estimates"].is_object(), "NAT schema: {sim}");
    assert!(sim["fit_results"].is_object());
    let d = &v["des_direct"];
    let target = 12.0;
    let at = d["at_answer"]["workflow_runtime_p95_s"]
        .as_f64()
        .expect("answer p95");
    assert!(at <= target, "the answer meets the target: {d}");
    if let Some(fewer) = d["one_instance_fewer"]["workflow_runtime_p95_s"].as_f64() {
        assert!(
            fewer > target,
            "one instance fewer must miss the target: {d}"
        );
    }
    assert!(d["gpus"].as_u64().is_some_and(|g| g >= 1));
    // p95 workflow runtime grows with concurrency on a fixed fleet.
    let wf: Vec<f64> = sim["calc_data"]
        .as_object()
        .expect("calc_data")
        .iter()
        .map(|(c, x)| {
            (
                c.parse::<u32>().expect("concurrency"),
                x["sizing_metrics"]["workflow_runtime_p95"]
                    .as_f64()
                    .expect("p95"),
            )
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_values()
        .collect();
    assert!(wf.first() < wf.last(), "{wf:?}");
    // Same seed, same bytes.
    assert_eq!(v, run(BASE));
}

#[test]
fn compare_puts_a_measured_sweep_beside_the_simulated_one() {
    let csv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sizing/golden.csv"
    );
    let v = run(&[BASE, &["--compare", csv]].concat());
    assert!(v["measured"]["gpu_estimates"].is_object());
    assert!(v["simulated"]["gpu_estimates"].is_object());
}

#[test]
fn simulate_rejects_bad_settings_with_exit_2() {
    for (args, needle) in [
        (vec!["--concurrencies", "0,4"], "--concurrencies"),
        (vec!["--isl", "nonsense:3"], "--isl"),
        (vec!["--gpu", "tpu9"], "tpu9"),
    ] {
        let out = common::kvfleet()
            .args([BASE, &args].concat())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{args:?}"
        );
    }
}
