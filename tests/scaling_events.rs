//! Instance-count changes during a run (autoscaling, scale-in, failures),
//! against hand-computed timelines.
//!
//! Profile: 10 ms steps whatever the batch (H = 0, no prefill cost), so every
//! timestamp is a multiple of 10 ms and can be worked out by hand.

use kvfleet::engine::dispatch::DispatchPolicy;
use kvfleet::engine::{
    self, Arrivals, ControlChange, EngineKind, PoolConfig, ScaleMode, SimConfig, SimOutcome, Warmup,
};
use kvfleet::profile::{PowerCurve, Profile};
use kvfleet::workload::Request;
use kvfleet::workload::memory::VecSource;

const MS: u64 = 1_000_000;

fn config(instances: u32, engine: EngineKind) -> SimConfig {
    let profile = Profile {
        name: "flat".into(),
        w_s: 0.010,
        h_s: 0.0,
        calibration_ctx: 8192,
        chunk: 4096,
        blk_size: 16,
        total_kv_blks: 1 << 16,
        max_slots: 64,
        cost_per_hr: 1.0,
        gpus_per_instance: 1,
        prefill_s_per_token: 0.0,
        power: PowerCurve::new(100.0, 500.0, 0.0, 0.0),
        step_law: None,
    };
    let mut cfg = SimConfig::new(
        vec![PoolConfig {
            dispatch: DispatchPolicy::RoundRobin,
            ..PoolConfig::new("p", profile, instances, 10_000)
        }],
        1,
        1e9,
    );
    cfg.engine = engine;
    cfg.warmup = Warmup {
        fraction: 0.0,
        seconds: None,
    };
    cfg.validate = true;
    cfg.record_requests = true;
    cfg
}

fn run(cfg: &SimConfig, reqs: Vec<Request>) -> SimOutcome {
    engine::run(cfg, Arrivals::Open(Box::new(VecSource::new(reqs))), 0, None).expect("run")
}

/// (first token, done, instance) per request.
fn timeline(out: &SimOutcome) -> Vec<(u64, u64, u32)> {
    out.records
        .iter()
        .map(|r| (r.first_token_ns, r.done_ns, r.instance))
        .collect()
}

const ENGINES: [EngineKind; 2] = [EngineKind::Fast, EngineKind::Step];

#[test]
fn a_failed_instance_restarts_its_requests_elsewhere_keeping_streamed_tokens() {
    // A → instance 0, B → instance 1, both at t = 0 (ISL 1, OSL 100): prefill
    // [0, 10 ms] emits token 1, then one token per 10 ms. Instance 1 fails at
    // 255 ms, when B has 25 tokens (24 decode steps ended by 250 ms). B
    // restarts on instance 0 at its next boundary (260 ms): recompute prefill
    // of 1 + 25 tokens in one step emits token 26 at 270 ms, then 74 decode
    // steps: done at 1010 ms. A is unaffected (H = 0): done at 1000 ms.
    for e in ENGINES {
        let mut cfg = config(2, e);
        cfg.controls = vec![ControlChange::instances(0.255, 0, 1, ScaleMode::Fail)];
        let out = run(&cfg, vec![Request::new(0, 1, 100), Request::new(0, 1, 100)]);
        assert_eq!(
            timeline(&out),
            vec![(10 * MS, 1000 * MS, 0), (10 * MS, 1010 * MS, 0)],
            "{e:?}"
        );
        assert_eq!(out.evicted, 1);
        assert_eq!(out.completed, 2);
        // Instance 1 was powered (and busy at batch 1) for 255 ms, instance 0 for 1010 ms.
        let st = out.pools[0].total_stats;
        assert!(
            (st.powered_ns - 1265.0 * MS as f64).abs() < 1.0,
            "{}",
            st.powered_ns
        );
        assert!(
            (st.busy_ns - 1265.0 * MS as f64).abs() < 1.0,
            "{}",
            st.busy_ns
        );
        let p = cfg.pools[0].profile.power;
        let want = p.power_w(1, 64) * (0.260 + 0.255 + 0.010) + p.power_w(2, 64) * 0.740;
        assert!(
            (st.busy_energy_j - want).abs() < 1e-6,
            "{} vs {want}",
            st.busy_energy_j
        );
    }
}

#[test]
fn scale_in_drains_a_removed_instance_then_powers_it_off() {
    // Same start; at 255 ms the pool drains to 1 instance: B finishes where it
    // is (1000 ms) and instance 1 powers off then. C (t = 300 ms, ISL 1, OSL 10)
    // can only go to instance 0; it arrives just as A's step [300, 310 ms]
    // starts, so its prefill shares the next one: token 1 at 320 ms, done at
    // 410 ms.
    for e in ENGINES {
        let mut cfg = config(2, e);
        cfg.controls = vec![ControlChange::instances(0.255, 0, 1, ScaleMode::Drain)];
        let out = run(
            &cfg,
            vec![
                Request::new(0, 1, 100),
                Request::new(0, 1, 100),
                Request::new(300 * MS, 1, 10),
            ],
        );
        assert_eq!(
            timeline(&out),
            vec![
                (10 * MS, 1000 * MS, 0),
                (10 * MS, 1000 * MS, 1),
                (320 * MS, 410 * MS, 0)
            ],
            "{e:?}"
        );
        assert_eq!(out.evicted, 0);
        let st = out.pools[0].total_stats;
        assert!(
            (st.powered_ns - 2000.0 * MS as f64).abs() < 1.0,
            "{}",
            st.powered_ns
        );
    }
}

#[test]
fn scale_out_adds_idle_instances_that_take_new_requests() {
    // One instance until 100 ms, then three. Round-robin keeps its pointer
    // (back at 0 after the first request) and cycles over the active ones.
    // Requests at 0, 150, 160, 170 ms (OSL 2: two 10 ms steps each).
    for e in ENGINES {
        let mut cfg = config(1, e);
        cfg.controls = vec![ControlChange::instances(0.100, 0, 3, ScaleMode::Drain)];
        let out = run(
            &cfg,
            vec![
                Request::new(0, 1, 2),
                Request::new(150 * MS, 1, 2),
                Request::new(160 * MS, 1, 2),
                Request::new(170 * MS, 1, 2),
            ],
        );
        let inst: Vec<u32> = out.records.iter().map(|r| r.instance).collect();
        assert_eq!(inst, vec![0, 0, 1, 2], "{e:?}");
        // Powered: instance 0 for the whole run (190 ms), the others from 100 ms.
        let st = out.pools[0].total_stats;
        assert!((st.powered_ns - (190.0 + 2.0 * 90.0) * MS as f64).abs() < 1.0);
    }
}

#[test]
fn a_failure_schedule_conserves_requests_in_both_engines() {
    // 600 requests on 4 instances; two fail at 2 s, one comes back at 4 s,
    // then a scale-in to 2 at 6 s. Every request completes; fast ≡ step.
    let mut reqs = Vec::new();
    for k in 0..600u64 {
        reqs.push(Request::new(
            k * 15 * MS,
            1 + (k * 37 % 400) as u32,
            1 + (k * 53 % 200) as u32,
        ));
    }
    let mk = |e| {
        let mut cfg = config(4, e);
        cfg.pools[0].dispatch = DispatchPolicy::Jsq;
        cfg.pools[0].profile.total_kv_blks = 120;
        cfg.controls = vec![
            ControlChange::instances(2.0, 0, 2, ScaleMode::Fail),
            ControlChange::instances(4.0, 0, 3, ScaleMode::Drain),
            ControlChange::instances(6.0, 0, 2, ScaleMode::Drain),
        ];
        cfg
    };
    let fast = run(&mk(EngineKind::Fast), reqs.clone());
    let step = run(&mk(EngineKind::Step), reqs);
    assert_eq!(fast.completed, 600);
    assert_eq!(
        fast.arrived,
        fast.completed + fast.rejected_total() + fast.in_flight
    );
    assert!(fast.evicted > 0);
    assert_eq!(fast.evicted, step.evicted);
    assert_eq!(timeline(&fast), timeline(&step));
}

#[test]
fn bad_controls_are_rejected() {
    let mut cfg = config(2, EngineKind::Fast);
    cfg.controls = vec![ControlChange::instances(1.0, 0, 0, ScaleMode::Fail)];
    let err = engine::run(
        &cfg,
        Arrivals::Open(Box::new(VecSource::new(vec![Request::new(0, 1, 2)]))),
        0,
        None,
    )
    .expect_err("zero instances");
    assert!(err.to_string().contains("at least 1 instance"), "{err}");
    cfg.controls = vec![ControlChange::instances(1.0, 3, 2, ScaleMode::Fail)];
    let err = engine::run(
        &cfg,
        Arrivals::Open(Box::new(VecSource::new(vec![Request::new(0, 1, 2)]))),
        0,
        None,
    )
    .expect_err("no such pool");
    assert!(err.to_string().contains("does not exist"), "{err}");
}
