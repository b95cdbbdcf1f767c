//! Power, energy and control events in the engine.

use kvfleet::engine::{
    self, Arrivals, ControlChange, EngineKind, MetricWindow, PoolConfig, SimConfig, Warmup,
};
use kvfleet::profile::{PowerCurve, Profile};
use kvfleet::workload::Request;
use kvfleet::workload::memory::VecSource;

fn profile(max_slots: u32) -> Profile {
    Profile {
        name: "p".into(),
        w_s: 0.010,
        h_s: 0.0,
        calibration_ctx: 8192,
        chunk: 4096,
        blk_size: 16,
        total_kv_blks: 1 << 20,
        max_slots,
        cost_per_hr: 1.0,
        gpus_per_instance: 1,
        prefill_s_per_token: 0.0,
        // k = 0: linear in b / max_slots, easy to compute by hand.
        power: PowerCurve::new(100.0, 500.0, 0.0, 0.0),
        step_law: None,
    }
}

fn config(profile: Profile, instances: u32, engine: EngineKind) -> SimConfig {
    SimConfig {
        engine,
        warmup: Warmup {
            fraction: 0.0,
            seconds: None,
        },
        validate: true,
        record_requests: true,
        ..SimConfig::new(
            vec![PoolConfig::new("p", profile, instances, 100_000)],
            1,
            1e9,
        )
    }
}

#[test]
fn energy_matches_a_hand_computed_schedule() {
    // A: t = 0, ISL 1, OSL 10. B: t = 25 ms, ISL 1, OSL 5. Steps are 10 ms.
    // Batch per step: 1,1,1 (A alone), 2,2,2,2,2 (B admitted at 30 ms, done at 80 ms), 1,1 (A done at 100 ms).
    for engine_kind in [EngineKind::Fast, EngineKind::Step] {
        let mut cfg = config(profile(10), 1, engine_kind);
        cfg.windows = vec![MetricWindow {
            name: "all".into(),
            start_s: 0.0,
            end_s: 1.0,
        }];
        let reqs = vec![Request::new(0, 1, 10), Request::new(25_000_000, 1, 5)];
        let out = engine::run(
            &cfg,
            Arrivals::Open(Box::new(VecSource::new(reqs))),
            0,
            None,
        )
        .expect("runs");
        let done: Vec<u64> = out.records.iter().map(|r| r.done_ns).collect();
        assert_eq!(done, vec![100_000_000, 80_000_000], "{engine_kind:?}");
        let p = |b: f64| 100.0 + 400.0 * b / 10.0;
        let expected_busy_j = p(1.0) * 0.050 + p(2.0) * 0.050;
        let st = &out.pools[0].total_stats;
        assert!(
            (st.busy_energy_j - expected_busy_j).abs() < 1e-9,
            "{} vs {expected_busy_j}",
            st.busy_energy_j
        );
        assert!((st.busy_ns - 1e8).abs() < 1e-3);
        assert!((st.batch_ns - (1.0 * 5e7 + 2.0 * 5e7)).abs() < 1e-3);
        // The window [0, 1 s] saw the same busy energy; idle power fills the other 0.9 s.
        let w = &out.windows[0].stats_by_pool[0];
        assert!((w.busy_energy_j - expected_busy_j).abs() < 1e-9);
        let window_energy = w.busy_energy_j + 100.0 * (1e9 - w.busy_ns) * 1e-9;
        assert!((window_energy - (expected_busy_j + 100.0 * 0.9)).abs() < 1e-6);
    }
}

/// Poisson arrivals every `gap_ms` on average, ISL 50..2000, OSL 10..`max_osl`.
fn chat(n: usize, seed: u64, gap_ms: f64, max_osl: u32) -> Vec<Request> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut t = 0u64;
    (0..n)
        .map(|_| {
            t += (-(1.0 - rng.random::<f64>()).ln() * gap_ms * 1e6) as u64;
            Request::new(t, rng.random_range(50..2000), rng.random_range(10..max_osl))
        })
        .collect()
}

#[test]
fn a_zero_depth_event_changes_nothing() {
    let base = config(profile(64), 4, EngineKind::Fast);
    let reqs = chat(20_000, 3, 40.0, 100);
    let a = engine::run(
        &base,
        Arrivals::Open(Box::new(VecSource::new(reqs.clone()))),
        0,
        None,
    )
    .expect("runs");
    let mut ev = base.clone();
    ev.controls = vec![
        ControlChange::cap(20.0, 0, 64),
        ControlChange::cap(50.0, 0, 64),
    ];
    let b =
        engine::run(&ev, Arrivals::Open(Box::new(VecSource::new(reqs))), 0, None).expect("runs");
    assert_eq!(a.records, b.records, "identical per-request timestamps");
    assert_eq!(
        a.pools[0].total_stats.busy_energy_j.to_bits(),
        b.pools[0].total_stats.busy_energy_j.to_bits()
    );
    assert_eq!(
        a.fleet.ttft.percentile_ns(99.0),
        b.fleet.ttft.percentile_ns(99.0)
    );
}

#[test]
fn a_cap_event_is_exact_in_both_engines_and_delays_requests() {
    // About 25 req/s of ~0.55 s each: ~7 running per instance uncapped; a cap of 4 binds.
    let reqs = chat(2_000, 5, 40.0, 100);
    let mut cfg = config(profile(64), 2, EngineKind::Fast);
    cfg.controls = ControlChange::ramp(0, 5.0, 2.0, 64, 4);
    cfg.controls.push(ControlChange::cap(15.0, 0, 64));
    let fast = engine::run(
        &cfg,
        Arrivals::Open(Box::new(VecSource::new(reqs.clone()))),
        0,
        None,
    )
    .expect("runs");
    cfg.engine = EngineKind::Step;
    let step = engine::run(
        &cfg,
        Arrivals::Open(Box::new(VecSource::new(reqs.clone()))),
        0,
        None,
    )
    .expect("runs");
    assert_eq!(
        fast.records, step.records,
        "fast-forward stays exact across control changes"
    );
    let free = engine::run(
        &config(profile(64), 2, EngineKind::Fast),
        Arrivals::Open(Box::new(VecSource::new(reqs))),
        0,
        None,
    )
    .expect("runs");
    let ttft_sum = |o: &engine::SimOutcome| {
        o.records
            .iter()
            .map(|r| r.first_token_ns - r.arrival_ns)
            .sum::<u64>()
    };
    assert!(
        ttft_sum(&fast) > ttft_sum(&free),
        "capping the batch must delay first tokens"
    );
    assert_eq!(fast.completed, 2_000);
    assert_eq!(free.verdict, engine::Verdict::Stable);
}

fn gridflex_json(extra: &[&str]) -> serde_json::Value {
    let out = assert_cmd::Command::cargo_bin("kvfleet")
        .expect("binary")
        .args([
            "grid-flex",
            "--gpu",
            "h100",
            "--n-gpus",
            "4",
            "--lam",
            "40",
            "--event-start-s",
            "60",
            "--event-duration-s",
            "120",
            "--after-s",
            "120",
            "--json",
            "--quiet",
        ])
        .args(extra)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn grid_flex_contract_and_deeper_events_raise_event_p99() {
    // 4 H100 at 40 req/s of the built-in chat workload run ~10 sequences each, so these caps bind.
    let svg = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-gridflex-{}.svg", std::process::id()));
    // Every depth measured to the end (a breaching one would stop early).
    let v = gridflex_json(&[
        "--flex-pcts",
        "0,25,30,33",
        "--all-depths",
        "--replications",
        "3",
        "--plot",
        svg.to_str().expect("utf-8 path"),
    ]);
    let chart = std::fs::read_to_string(&svg).expect("the chart was written");
    assert!(chart.starts_with("<svg") && chart.contains("P99 TTFT"));
    let _ = std::fs::remove_file(&svg);
    let levels = v["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 4);
    for l in levels {
        for k in ["flex_pct", "n_max", "power_per_gpu_w", "fleet_kw"] {
            assert!(l[k].is_number(), "{k}");
        }
        assert!(l["analytic"]["stable"].is_boolean());
        for k in [
            "event_p99_ttft_ms",
            "after_p99_ttft_ms",
            "recovery_s",
            "energy_saved_kwh",
            "slo_met",
        ] {
            assert!(l["des"].get(k).is_some(), "des.{k}");
        }
    }
    assert!(
        v["max_safe_flex_pct"].get("sustained").is_some()
            && v["max_safe_flex_pct"].get("event").is_some()
    );
    // Caps shrink with depth, and the mean event P99 over replications never falls.
    let caps: Vec<u64> = levels
        .iter()
        .map(|l| l["n_max"].as_u64().expect("n"))
        .collect();
    assert!(caps.windows(2).all(|w| w[1] <= w[0]), "{caps:?}");
    let p99: Vec<f64> = levels
        .iter()
        .map(|l| {
            l["des"]["event_p99_ttft_ms"]
                .as_f64()
                .unwrap_or(f64::INFINITY)
        })
        .collect();
    assert!(
        p99.windows(2).all(|w| w[1] >= w[0]),
        "event P99 by depth: {p99:?}"
    );
    assert!(
        p99[3] > p99[0],
        "the deepest cap must cost latency: {p99:?}"
    );
    // Depth 0 saves nothing. (A cap that only queues requests briefly saves ~nothing either:
    // the fleet is work-conserving, so energy falls only when the cap defers work.)
    assert_eq!(levels[0]["des"]["energy_saved_kwh"].as_f64(), Some(0.0));
    assert!(levels.iter().all(|l| {
        l["des"]["energy_saved_kwh"]
            .as_f64()
            .is_some_and(f64::is_finite)
    }));
}

#[test]
fn tokens_per_joule_rise_with_utilisation_and_analytic_agrees() {
    let cdf = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cdf/chat_small.json"
    );
    let out = assert_cmd::Command::cargo_bin("kvfleet")
        .expect("binary")
        .args([
            "tok-per-watt",
            "--cdf",
            cdf,
            "--lam",
            "40",
            "--slo",
            "300",
            "--max-ctx",
            "8192",
            "--gpus",
            "h100",
            "a100",
            "--rho-sweep",
            "--n-sim-req",
            "6000",
            "--json",
            "--quiet",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for f in v["fleets"].as_array().expect("fleets") {
        let des = f["output_tok_per_j"].as_f64().expect("DES tok/J");
        let ana = f["output_tok_per_j_analytic"]
            .as_f64()
            .expect("analytic tok/J");
        assert!((ana / des - 1.0).abs() < 0.2, "analytic {ana} vs DES {des}");
        assert!(f["power_curve"].as_array().is_some_and(|c| !c.is_empty()));
    }
    for gpu in ["h100", "a100"] {
        let tpj: Vec<f64> = v["rho_sweep"]
            .as_array()
            .expect("sweep")
            .iter()
            .filter(|f| f["fleet"] == gpu)
            .map(|f| f["output_tok_per_j"].as_f64().expect("tok/J"))
            .collect();
        assert_eq!(tpj.len(), 4);
        assert!(tpj.windows(2).all(|w| w[1] > w[0]), "{gpu}: {tpj:?}");
    }
}
