//! Issue 11, defects 7, 5 and 12 (grid-flex side): `--verify-des N` places
//! the event inside the N requests, a window without arrivals is "no
//! arrivals" (never ∞ or BREACH), absurd horizons and 0 replications are
//! refused, and scenario windows after the run ends carry no energy.

mod common;

use common::{json_of, kvfleet, temp_input};
use serde_json::Value;

const CDF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cdf/chat_small.json"
);

/// `kvfleet grid-flex` on 40 H100 at 200 req/s of a chat workload, plus `extra`.
fn grid_flex(extra: &[&str]) -> std::process::Output {
    let base = "grid-flex --lam 200 --n-gpus 40 --gpu h100 --slo 500 --flex-pcts 0,20 --quiet";
    kvfleet()
        .args(base.split(' '))
        .args(["--cdf", CDF])
        .args(extra)
        .output()
        .expect("runs")
}

#[test]
fn verify_des_without_event_times_places_the_event_inside_the_requests() {
    let out = grid_flex(&["--verify-des", "15000", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let [start, dur] = [0, 1].map(|i| v["event_s"][i].as_f64().expect("event times"));
    assert!(
        start + dur < 15000.0 / 200.0,
        "event inside the 75 s of arrivals: {start} + {dur}"
    );
    for l in v["levels"].as_array().expect("levels") {
        let d = &l["des"];
        assert!(d["event_arrivals"].as_u64().expect("n") > 500, "{d}");
        assert!(d["after_arrivals"].as_u64().expect("n") > 500, "{d}");
        assert!(
            d["event_p99_ttft_ms"].as_f64().is_some_and(f64::is_finite),
            "{d}"
        );
    }
    // 40 H100 at 200 req/s of a chat workload meet a 500 ms SLO uncapped.
    assert_eq!(v["levels"][0]["des"]["verdict"], "ok");
    assert_eq!(v["levels"][0]["des"]["slo_met"], true);
    let table = grid_flex(&["--verify-des", "15000"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(!table.contains('∞'), "{table}");
}

#[test]
fn verify_des_too_short_for_given_event_times_exits_2_naming_both_flags() {
    let out = grid_flex(&["--verify-des", "15000", "--event-start-s", "600"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--verify-des") && err.contains("--event-start-s"),
        "{err}"
    );
}

#[test]
fn absurd_horizon_and_zero_replications_exit_2() {
    for (args, flag) in [
        (&["--event-start-s", "1e9"][..], "--event-start-s"),
        (&["--replications", "0"][..], "--replications"),
        (&["--replications", "1001"][..], "--replications"),
        (&["--verify-des", "1000000000000"][..], "--verify-des"),
    ] {
        let out = grid_flex(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}

#[test]
fn a_scenario_window_after_the_run_ends_has_no_arrivals_and_no_energy() {
    let path = temp_input(
        "late_window.toml",
        &format!(
            "[workload]\ncdf = \"{CDF}\"\nlam = 20\nn_requests = 400\n\n\
             [[pools]]\nid = \"chat\"\ngpu = \"h100\"\ninstances = 2\nmax_ctx = 8192\n\n\
             [[windows]]\nname = \"during\"\nstart_s = 0\nend_s = 10\n\n\
             [[windows]]\nname = \"later\"\nstart_s = 100\nend_s = 3100\n"
        ),
    );
    let path = path.to_str().expect("utf-8");
    let (v, _) = json_of(kvfleet().args(["run", path, "--json", "--quiet", "--no-timing"]));
    let later = &v["windows"][1];
    assert_eq!(later["requests"]["arrived"], 0);
    assert_eq!(later["energy_j"], 0.0, "no energy after the run: {later}");
    assert!(
        later["note"]
            .as_str()
            .expect("note")
            .contains("no arrivals")
    );
    assert!(
        v["sim_end_s"].as_f64().expect("end") < 100.0,
        "idle windows do not extend the run"
    );
    assert!(v["windows"][0]["energy_j"].as_f64().expect("energy") > 0.0);
}

#[test]
fn depths_deeper_than_a_breach_are_not_simulated_unless_asked_and_the_answer_is_the_same() {
    // Depths up to 60% on a short event: the fleet breaches at some depth
    // (50% here); by default the depths past the first breach are left
    // unsimulated (and say so), and the breaching one stops once its breach
    // is certain; with --all-depths every one is simulated to the end.
    // Every level up to the breach, the breach, and the deepest safe depth
    // agree.
    let args = [
        "--flex-pcts",
        "0,30,40,50,60",
        "--verify-des",
        "15000",
        "--json",
    ];
    let run = |extra: &[&str]| -> Value {
        json_of(
            kvfleet()
                .args("grid-flex --lam 200 --n-gpus 40 --gpu h100 --slo 500 --quiet".split(' '))
                .args(["--cdf", CDF])
                .args(args)
                .args(extra),
        )
        .0
    };
    let (quick, all) = (run(&[]), run(&["--all-depths"]));
    let (q, a) = (
        quick["levels"].as_array().expect("levels"),
        all["levels"].as_array().expect("levels"),
    );
    let first_breach = a
        .iter()
        .position(|l| l["des"]["verdict"] == "breach")
        .expect("a depth breaches at 50–60%");
    assert!(first_breach + 1 < a.len(), "a deeper depth to skip");
    for (i, (lq, la)) in q.iter().zip(a).enumerate() {
        if i < first_breach {
            assert_eq!(lq, la, "level {i} simulated alike");
        } else if i == first_breach {
            // The breaching depth stopped once its breach was certain (or
            // ran to the end): a breach both ways.
            let (d, full) = (&lq["des"], &la["des"]);
            assert_eq!(d["verdict"], "breach", "{d}");
            if d["breach_decided_at_s"].is_number() {
                assert!(d["event_p99_ttft_ms"].is_null(), "{d}");
                assert!(
                    full["event_p99_ttft_ms"].is_null()
                        || full["event_p99_ttft_ms"].as_f64() > Some(500.0),
                    "{full}"
                );
                assert!(full.get("breach_decided_at_s").is_none(), "{full}");
            } else {
                assert_eq!(lq, la, "level {i} simulated alike");
            }
        } else {
            let d = &lq["des"];
            assert_eq!(d["verdict"], "not-simulated", "{d}");
            assert!(d["not_simulated"].is_string(), "{d}");
            assert!(
                d["event_p99_ttft_ms"].is_null() && d["energy_saved_kwh"].is_null(),
                "{d}"
            );
            assert_eq!(d["slo_met"], false);
            assert_ne!(la["des"]["verdict"], "not-simulated");
        }
    }
    assert_eq!(quick["max_safe_flex_pct"], all["max_safe_flex_pct"]);
}
