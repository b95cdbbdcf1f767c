//! Differential test: the fast-forward engine and the naive step engine must
//! produce the same per-request timestamps on many randomized scenarios,
//! including KV pressure with preemptions, bursts and several instances.

mod common;

use kvfleet::engine::dispatch::DispatchPolicy;
use kvfleet::engine::{
    self, Arrivals, ControlChange, Disagg, EngineKind, LinkSpec, PoolConfig, ScaleMode, SimConfig,
    Warmup,
};
use kvfleet::profile::{PowerCurve, Profile};
use kvfleet::workload::Request;
use kvfleet::workload::memory::VecSource;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn random_scenario(seed: u64) -> (SimConfig, Vec<Request>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let blk = [1u32, 4, 16][rng.random_range(0..3)];
    let max_len = rng.random_range(8..600u32);
    // KV from "barely fits one request" to roomy, so some scenarios preempt a lot.
    let kv_tok = rng.random_range(max_len as u64 * 2..max_len as u64 * 40);
    let profile = Profile {
        name: "rand".into(),
        w_s: rng.random_range(0.0005..0.02),
        h_s: if rng.random_bool(0.2) {
            0.0
        } else {
            rng.random_range(0.0..0.002)
        },
        calibration_ctx: [1024, 8192][rng.random_range(0..2)],
        chunk: [1u32, 7, 64, 512, 4096][rng.random_range(0..5)],
        blk_size: blk,
        total_kv_blks: kv_tok.div_ceil(blk as u64),
        max_slots: rng.random_range(1..40),
        cost_per_hr: 1.0,
        gpus_per_instance: 1,
        prefill_s_per_token: if rng.random_bool(0.3) {
            rng.random_range(0.0..1e-5)
        } else {
            0.0
        },
        power: PowerCurve::new(100.0, 400.0, 1.0, 3.0),
        step_law: None,
    };
    let instances = rng.random_range(1..5);
    let dispatch = common::DISPATCHERS[rng.random_range(0..6)];
    let n = rng.random_range(20..400);
    let mean_gap_ns = rng.random_range(1e5..5e7);
    let reqs = common::bursty_requests(&mut rng, n, mean_gap_ns, 0.15, max_len);
    let cfg = SimConfig {
        warmup: Warmup {
            fraction: 0.0,
            seconds: None,
        },
        validate: true,
        record_requests: true,
        max_waiting: Some(u64::MAX),
        ..SimConfig::new(
            vec![PoolConfig {
                dispatch,
                ..PoolConfig::new("p", profile, instances, max_len + 1)
            }],
            seed,
            1000.0,
        )
    };
    (cfg, reqs)
}

fn rel_diff(a: u64, b: u64) -> f64 {
    if a == b {
        0.0
    } else {
        (a as f64 - b as f64).abs() / (a.max(b) as f64)
    }
}

/// Run `cfg` with both engines and check they agree request by request;
/// returns the preemptions and the requests restarted after failures.
fn compare_engines(mut cfg: SimConfig, reqs: Vec<Request>, seed: u64) -> (u64, u64) {
    let fast = engine::run(
        &cfg,
        Arrivals::Open(Box::new(VecSource::new(reqs.clone()))),
        0,
        None,
    )
    .expect("fast run");
    cfg.engine = EngineKind::Step;
    let step = engine::run(
        &cfg,
        Arrivals::Open(Box::new(VecSource::new(reqs))),
        0,
        None,
    )
    .expect("step run");
    assert_eq!(
        fast.records.len(),
        step.records.len(),
        "seed {seed}: record count"
    );
    assert_eq!(fast.completed, step.completed, "seed {seed}");
    for (f, s) in fast.records.iter().zip(&step.records) {
        assert_eq!(
            (f.id, f.pool, f.instance),
            (s.id, s.pool, s.instance),
            "seed {seed}: placement of request {}",
            f.id
        );
        assert!(
            rel_diff(f.first_token_ns, s.first_token_ns) <= 1e-9,
            "seed {seed}: TTFT of request {}: {f:?} vs {s:?}",
            f.id
        );
        assert!(
            rel_diff(f.done_ns, s.done_ns) <= 1e-9,
            "seed {seed}: E2E of request {}: {f:?} vs {s:?}",
            f.id
        );
    }
    let p_fast: u64 = fast.pools.iter().map(|p| p.total_stats.preemptions).sum();
    let p_step: u64 = step.pools.iter().map(|p| p.total_stats.preemptions).sum();
    assert_eq!(p_fast, p_step, "seed {seed}: preemptions");
    assert_eq!(
        fast.arrived,
        fast.completed + fast.rejected_total() + fast.in_flight,
        "seed {seed}: conservation"
    );
    // The fast engine must actually skip steps.
    let steps: u64 = fast.pools.iter().map(|p| p.total_stats.steps).sum();
    assert!(
        fast.events <= step.events,
        "seed {seed}: fast used more events ({} > {})",
        fast.events,
        step.events
    );
    assert!(steps > 0);
    assert_eq!(fast.evicted, step.evicted, "seed {seed}: restarts");
    (p_fast, fast.evicted)
}

/// Split the scenario's pool into prefill and a copy serving decode
/// (free-KV dispatch), joined by `link`.
fn add_free_kv_decode_pool(cfg: &mut SimConfig, link: &str, kv_bytes_per_token: f64) {
    let mut decode = cfg.pools[0].clone();
    decode.id = "decode".into();
    decode.dispatch = DispatchPolicy::FreeKv;
    cfg.pools.push(decode);
    cfg.disagg = Some(Disagg {
        pairs: vec![(0, 1)],
        link: LinkSpec::parse(link).expect("link"),
        kv_bytes_per_token,
    });
}

#[test]
fn fast_engine_matches_step_engine_on_random_scenarios() {
    let mut total_preemptions = 0u64;
    let mut scenarios_with_preemption = 0;
    for seed in 0..240u64 {
        let (cfg, reqs) = random_scenario(seed);
        let (p, _) = compare_engines(cfg, reqs, seed);
        total_preemptions += p;
        scenarios_with_preemption += (p > 0) as u32;
    }
    assert!(
        scenarios_with_preemption >= 20,
        "only {scenarios_with_preemption} scenarios preempted ({total_preemptions} preemptions)"
    );
}

#[test]
fn fast_engine_matches_step_engine_on_random_disaggregated_scenarios() {
    // The same random scenarios split into a prefill pool and a decode pool
    // (own instance count and dispatch), joined by a random link.
    let mut with_preemption = 0;
    for seed in 1000..1240u64 {
        let (mut cfg, reqs) = random_scenario(seed);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xd15a);
        let mut decode = cfg.pools[0].clone();
        decode.id = "decode".into();
        decode.instances = rng.random_range(1..5);
        decode.dispatch = [
            DispatchPolicy::LeastKv,
            DispatchPolicy::Jsq,
            DispatchPolicy::Central,
            DispatchPolicy::FreeKv,
        ][rng.random_range(0..4)];
        if cfg.pools[0].dispatch == DispatchPolicy::Central && rng.random_bool(0.5) {
            cfg.pools[0].dispatch = DispatchPolicy::Jsq;
        }
        cfg.pools.push(decode);
        let link = ["inf", "ib", "shared:0.5:3", "0.05:20", "ethernet"][rng.random_range(0..5)];
        cfg.disagg = Some(Disagg {
            pairs: vec![(0, 1)],
            link: LinkSpec::parse(link).expect("link"),
            kv_bytes_per_token: rng.random_range(1e3..4e5),
        });
        with_preemption += (compare_engines(cfg, reqs, seed).0 > 0) as u32;
    }
    assert!(
        with_preemption >= 10,
        "only {with_preemption} disaggregated scenarios preempted"
    );
}

#[test]
fn fast_engine_matches_step_engine_under_scaling_and_failures() {
    // Random instance-count schedules (scale-out, drain, failure) and cap
    // changes on the random scenarios, some of them disaggregated.
    let mut evicted_total = 0u64;
    for seed in 2000..2160u64 {
        let (mut cfg, reqs) = random_scenario(seed);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5ca1e);
        let horizon_s = reqs
            .last()
            .map(|r| r.arrival_ns as f64 * 1e-9)
            .unwrap_or(1.0);
        if rng.random_bool(0.3) {
            let link = ["inf", "ib", "0.05:20"][rng.random_range(0..3)];
            add_free_kv_decode_pool(&mut cfg, link, rng.random_range(1e3..4e5));
        }
        let n_changes = rng.random_range(1..5);
        for _ in 0..n_changes {
            let at_s = rng.random_range(0.0..horizon_s.max(1e-3));
            let pool = rng.random_range(0..cfg.pools.len());
            cfg.controls.push(if rng.random_bool(0.8) {
                let mode = if rng.random_bool(0.5) {
                    ScaleMode::Fail
                } else {
                    ScaleMode::Drain
                };
                ControlChange::instances(at_s, pool, rng.random_range(1..6), mode)
            } else {
                ControlChange::cap(at_s, pool, rng.random_range(1..40))
            });
        }
        cfg.controls.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        evicted_total += compare_engines(cfg, reqs, seed).1;
    }
    assert!(evicted_total > 100, "only {evicted_total} evictions");
}

#[test]
fn fast_engine_matches_step_engine_with_bounded_queues() {
    // `max_queue` (0 = no queueing, or a small bound) on the random
    // scenarios: both engines must reject the same requests and agree on the
    // rest, and the bound must bite on some of them.
    let mut rejected_total = 0u64;
    let mut checked_bound = 0;
    for seed in 3000..3160u64 {
        let (mut cfg, reqs) = random_scenario(seed);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x9e0e);
        let cap = [0u32, 1, 2, 5][rng.random_range(0..4)];
        cfg.pools[0].max_queue = Some(cap);
        let disagg = rng.random_bool(0.2);
        if disagg {
            add_free_kv_decode_pool(&mut cfg, "ib", 1e4);
        }
        let fast = engine::run(
            &cfg,
            Arrivals::Open(Box::new(VecSource::new(reqs.clone()))),
            0,
            None,
        )
        .expect("fast run");
        rejected_total += fast.rejected.get("queue_full").copied().unwrap_or(0);
        let preempted: u64 = fast.pools.iter().map(|p| p.total_stats.preemptions).sum();
        if !disagg && preempted == 0 {
            // Waiting requests never exceed the bound (0: at most the one
            // admitted at an instance's next step boundary), per queue.
            // (A preempted request returns to its queue without a check.)
            let p = &cfg.pools[0];
            let queues = if p.dispatch == DispatchPolicy::Central {
                1
            } else {
                p.instances as u64
            };
            let bound = cap.max(1) as u64 * queues;
            let most = fast.queue_trace.iter().map(|&(_, w)| w).max().unwrap_or(0);
            assert!(most <= bound, "seed {seed}: {most} waiting > {bound}");
            checked_bound += 1;
        }
        compare_engines(cfg, reqs, seed);
    }
    assert!(
        rejected_total > 1000,
        "only {rejected_total} queue_full rejections"
    );
    assert!(
        checked_bound >= 40,
        "bound checked on only {checked_bound} scenarios"
    );
}
