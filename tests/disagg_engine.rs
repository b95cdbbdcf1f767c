//! Disaggregated prefill/decode in the engine, against hand computations.
//!
//! Profile: W = 10 ms, H = 0.8192 ms at 8192 tokens (100 ns per context
//! token), 0.1 ms per prefill token, so every step time is a whole number of
//! nanoseconds: a prefill step of p prompt tokens lasts 10 ms + 100 ns·p +
//! 100 µs·p, a decode step at context c lasts 10 ms + 100 ns·c.

use kvfleet::engine::dispatch::DispatchPolicy;
use kvfleet::engine::{
    self, Arrivals, Disagg, EngineKind, LinkSpec, PoolConfig, SimConfig, SimOutcome, Warmup,
};
use kvfleet::profile::{PowerCurve, Profile};
use kvfleet::workload::Request;
use kvfleet::workload::memory::VecSource;

fn profile() -> Profile {
    Profile {
        name: "hand".into(),
        w_s: 0.010,
        h_s: 0.0008192,
        calibration_ctx: 8192,
        chunk: 4096,
        blk_size: 16,
        total_kv_blks: 1 << 16,
        max_slots: 64,
        cost_per_hr: 1.0,
        gpus_per_instance: 1,
        prefill_s_per_token: 0.0001,
        power: PowerCurve::new(100.0, 500.0, 1.0, 3.0),
        step_law: None,
    }
}

fn pool(id: &str, dispatch: DispatchPolicy) -> PoolConfig {
    PoolConfig {
        dispatch,
        ..PoolConfig::new(id, profile(), 1, 100_000)
    }
}

fn disagg_config(link: &str, kv_bytes_per_token: f64, engine: EngineKind) -> SimConfig {
    let mut cfg = SimConfig::new(
        vec![
            pool("prefill", DispatchPolicy::Jsq),
            pool("decode", DispatchPolicy::LeastKv),
        ],
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
    cfg.disagg = Some(Disagg {
        pairs: vec![(0, 1)],
        link: LinkSpec::parse(link).expect("link spec"),
        kv_bytes_per_token,
    });
    cfg
}

fn run(cfg: &SimConfig, reqs: Vec<Request>) -> SimOutcome {
    engine::run(cfg, Arrivals::Open(Box::new(VecSource::new(reqs))), 0, None).expect("run")
}

/// (first token, done) per request, ns.
fn times(out: &SimOutcome) -> Vec<(u64, u64)> {
    out.records
        .iter()
        .map(|r| (r.first_token_ns, r.done_ns))
        .collect()
}

const ENGINES: [EngineKind; 2] = [EngineKind::Fast, EngineKind::Step];

#[test]
fn ideal_link_one_request_matches_hand_computation_and_aggregated_serving() {
    // Prefill of 100 tokens: 10 ms + 10 µs + 10 ms = 20.010 ms. The KV lands
    // at once; decode steps at contexts 101, 102, 103 emit tokens 2..4:
    // 3·10 ms + 100 ns·306 = 30.0306 ms.
    for e in ENGINES {
        let out = run(
            &disagg_config("inf", 327_680.0, e),
            vec![Request::new(0, 100, 4)],
        );
        assert_eq!(times(&out), vec![(20_010_000, 50_040_600)], "{e:?}");
        assert_eq!(out.records[0].pool, 1, "completed in the decode pool");
        let kv = out.kv_transfer.as_ref().expect("transfer outcome");
        assert_eq!(kv.transfers, 1);
        assert_eq!(kv.bytes, 100.0 * 327_680.0);
        // With an ideal link, one request sees exactly the aggregated timeline.
        let mut agg = SimConfig::new(vec![pool("one", DispatchPolicy::Jsq)], 1, 1e9);
        agg.engine = e;
        agg.warmup = cfg_no_warmup();
        agg.record_requests = true;
        let a = run(&agg, vec![Request::new(0, 100, 4)]);
        assert_eq!(times(&a), times(&out));
    }
}

fn cfg_no_warmup() -> Warmup {
    Warmup {
        fraction: 0.0,
        seconds: None,
    }
}

#[test]
fn ideal_link_two_requests_queue_at_both_phases() {
    // A: t = 0, ISL 100, OSL 3. B: t = 5 ms, ISL 50, OSL 2.
    // Prefill: A [0, 20.010 ms]; B waits, then [20.010, 35.015 ms] (10 ms + 5 µs + 5 ms).
    // Decode: A lands at 20.010 ms, steps at ctx 101 → 30.0201 ms and ctx 102 → 40.0303 ms (done).
    // B lands at 35.015 ms mid-step and joins at the 40.0303 ms boundary: ctx 51 → 50.0354 ms.
    for e in ENGINES {
        let out = run(
            &disagg_config("inf", 327_680.0, e),
            vec![Request::new(0, 100, 3), Request::new(5_000_000, 50, 2)],
        );
        assert_eq!(
            times(&out),
            vec![(20_010_000, 40_030_300), (35_015_000, 50_035_400)],
            "{e:?}"
        );
        assert_eq!(out.completed, 2);
        assert_eq!(out.in_flight, 0);
    }
}

#[test]
fn concurrent_transfers_share_the_link() {
    // Two prefill instances on one shared link of 1 MB/s (0.001 B/ns), 1 µs
    // latency, 1000 B per token. A (ISL 100, 100 kB) is prefilled on one
    // instance until 20.010 ms, B (ISL 50, 50 kB) on the other until
    // 15.005 ms (10 ms + 5 µs + 5 ms). B alone: 5,005 B by 20.010 ms; then
    // each gets 0.0005 B/ns: B's other 44,995 B end at 20.010 + 89.990 =
    // 110.000 ms; A has 55,005 B left, alone: 165.005 ms. Plus 1 µs each.
    for e in ENGINES {
        let mut cfg = disagg_config("shared:0.001:1", 1000.0, e);
        cfg.pools[0].instances = 2;
        let out = run(&cfg, vec![Request::new(0, 100, 2), Request::new(0, 50, 2)]);
        let first: Vec<u64> = out.records.iter().map(|r| r.first_token_ns).collect();
        let want = [165_006_000u64, 110_001_000];
        for (got, want) in first.iter().zip(want) {
            assert!(got.abs_diff(want) <= 1, "{e:?}: {first:?} vs {want}");
        }
        let kv = out.kv_transfer.as_ref().unwrap();
        assert_eq!(kv.links, 1);
        assert!((kv.link_busy_s - 0.150).abs() < 1e-8, "{}", kv.link_busy_s);
    }
}

#[test]
fn ttft_grows_with_isl_by_exactly_the_transfer_term() {
    // One request at a time: TTFT(link) − TTFT(ideal) = ISL·kv_bytes/bandwidth + latency.
    // InfiniBand preset: 50 GB/s per GPU, 10 µs; Llama-3-70B BF16 KV: 327,680 B/token.
    let kvb = 327_680.0;
    let mut extra_prev = 0u64;
    for isl in [128u32, 1024, 8192, 32768] {
        let ideal = run(
            &disagg_config("inf", kvb, EngineKind::Fast),
            vec![Request::new(0, isl, 8)],
        );
        let ib = run(
            &disagg_config("ib", kvb, EngineKind::Fast),
            vec![Request::new(0, isl, 8)],
        );
        let extra = ib.records[0].first_token_ns - ideal.records[0].first_token_ns;
        let expected = (isl as f64 * kvb / 50.0).ceil() as u64 + 10_000;
        assert_eq!(extra, expected, "ISL {isl}");
        assert!(extra > extra_prev);
        extra_prev = extra;
        // Decoding itself is unchanged: E2E − TTFT is the same.
        let dec = |o: &SimOutcome| o.records[0].done_ns - o.records[0].first_token_ns;
        assert_eq!(dec(&ib), dec(&ideal));
    }
}

#[test]
fn conservation_and_engine_agreement_under_load() {
    // 400 requests over 2 prefill and 3 decode instances, a slow shared link and
    // tight decode KV (preemptions): every request completes, fast ≡ step.
    let mk = |e| {
        let mut cfg = disagg_config("shared:2:5", 2000.0, e);
        cfg.pools[0].instances = 2;
        cfg.pools[1].instances = 3;
        cfg.pools[1].profile.total_kv_blks = 300;
        cfg.pools[0].max_ctx_tok = 2000;
        cfg.pools[1].max_ctx_tok = 2000;
        cfg
    };
    let mut reqs = Vec::new();
    let mut t = 0u64;
    for k in 0..400u64 {
        t += 3_000_000 + (k * 7919 % 11) * 1_000_000;
        reqs.push(Request::new(
            t,
            50 + (k * 37 % 900) as u32,
            1 + (k * 53 % 300) as u32,
        ));
    }
    let fast = run(&mk(EngineKind::Fast), reqs.clone());
    let step = run(&mk(EngineKind::Step), reqs);
    assert_eq!(fast.arrived, 400);
    assert_eq!(fast.completed + fast.rejected_total() + fast.in_flight, 400);
    assert_eq!(fast.completed, 400);
    assert_eq!(times(&fast), times(&step));
    let preempt = fast.pools[1].total_stats.preemptions;
    assert!(
        preempt > 0,
        "the decode pool should preempt with 300 blocks"
    );
    assert_eq!(preempt, step.pools[1].total_stats.preemptions);
}

#[test]
fn bad_pairs_are_rejected_with_a_clear_message() {
    let mut cfg = disagg_config("inf", 1000.0, EngineKind::Fast);
    cfg.disagg.as_mut().unwrap().pairs = vec![(0, 0)];
    let err = engine::run(
        &cfg,
        Arrivals::Open(Box::new(VecSource::new(vec![Request::new(0, 1, 2)]))),
        0,
        None,
    )
    .expect_err("invalid pairs");
    assert!(
        err.to_string().contains("cannot both prefill and decode"),
        "{err}"
    );
    for bad in ["warp-drive", "0", "-3", "5:x", "1:2:3"] {
        assert!(LinkSpec::parse(bad).is_err(), "{bad}");
    }
}
