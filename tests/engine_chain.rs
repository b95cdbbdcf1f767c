//! Chained steps change nothing but the event count: the fast engine with
//! `SimConfig::chain_steps` on and off gives the same outcome, bit for bit
//! (every timestamp, statistic, energy and KV integral, metric window and
//! queue sample), on random scenarios built to make chaining matter:
//! prompts longer than the prefill budget (a chained lead of several
//! prefill steps, cut inside by arrivals), bursts at one nanosecond, KV
//! pressure with preemptions, every dispatcher (free-KV and least-KV read
//! an instance's KV use between its events), metric windows (snapshots in
//! the middle of a lead) and running-sequence caps changed mid-run.

mod common;

use kvfleet::engine::{
    self, Arrivals, ControlChange, MetricWindow, PoolConfig, ScaleMode, SimConfig, SimOutcome,
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
    let max_len = rng.random_range(16..3000u32);
    let kv_tok = rng.random_range(max_len as u64 * 2..max_len as u64 * 60);
    let profile = Profile {
        name: "rand".into(),
        w_s: rng.random_range(0.0005..0.02),
        h_s: rng.random_range(0.0..0.002),
        calibration_ctx: 1024,
        // Budgets below most prompts: leads of several prefill steps.
        chunk: [7u32, 64, 256, 512, 4096][rng.random_range(0..5)],
        blk_size: blk,
        total_kv_blks: kv_tok.div_ceil(blk as u64),
        max_slots: rng.random_range(1..48),
        cost_per_hr: 1.0,
        gpus_per_instance: 1,
        prefill_s_per_token: rng.random_range(0.0..2e-5),
        power: PowerCurve::new(100.0, 400.0, 1.0, 3.0),
        step_law: None,
    };
    let instances = rng.random_range(1..6);
    let dispatch = common::DISPATCHERS[rng.random_range(0..6)];
    let n = rng.random_range(50..600);
    let mean_gap_ns = rng.random_range(1e6..1e8);
    let reqs = common::bursty_requests(&mut rng, n, mean_gap_ns, 0.1, max_len);
    let span_s = reqs.last().map_or(0, |r| r.arrival_ns) as f64 * 1e-9;
    let mut windows = Vec::new();
    for k in 0..rng.random_range(0..3) {
        let a = rng.random_range(0.0..span_s.max(1e-3));
        windows.push(MetricWindow {
            name: format!("w{k}"),
            start_s: a,
            end_s: a + rng.random_range(0.0..span_s.max(1e-3)),
        });
    }
    let mut controls = Vec::new();
    for _ in 0..rng.random_range(0..4) {
        let at = rng.random_range(0.0..span_s.max(1e-3));
        controls.push(ControlChange::cap(at, 0, rng.random_range(1..64)));
    }
    if rng.random_bool(0.1) && instances > 1 {
        // Chaining is off in fleets that can fail: checked the same way.
        let at = rng.random_range(0.0..span_s.max(1e-3));
        controls.push(ControlChange::instances(
            at,
            0,
            instances - 1,
            ScaleMode::Fail,
        ));
    }
    controls.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    let cfg = SimConfig {
        warmup: Warmup {
            fraction: 0.0,
            seconds: None,
        },
        validate: rng.random_bool(0.3),
        record_requests: true,
        max_waiting: Some(u64::MAX),
        controls,
        windows,
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

fn run(cfg: &SimConfig, reqs: &[Request]) -> SimOutcome {
    engine::run(
        cfg,
        Arrivals::Open(Box::new(VecSource::new(reqs.to_vec()))),
        0,
        None,
    )
    .expect("run")
}

/// The outcome's every field but the event count and the wall time, as
/// text (`{:?}` prints each `f64` exactly).
fn fingerprint(mut o: SimOutcome) -> String {
    o.events = 0;
    o.wall_s = 0.0;
    format!("{o:?}")
}

#[test]
fn chained_steps_change_nothing_but_the_event_count() {
    let (mut fewer, mut scenarios) = (0, 0);
    for seed in 0..300u64 {
        let (mut cfg, reqs) = random_scenario(seed);
        let chained = run(&cfg, &reqs);
        cfg.chain_steps = false;
        let plain = run(&cfg, &reqs);
        assert!(
            chained.events <= plain.events,
            "seed {seed}: chaining added events ({} > {})",
            chained.events,
            plain.events
        );
        fewer += (chained.events < plain.events) as u32;
        scenarios += 1;
        let (a, b) = (fingerprint(chained), fingerprint(plain));
        if a != b {
            let at = a
                .bytes()
                .zip(b.bytes())
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            let from = at.saturating_sub(200);
            panic!(
                "seed {seed}: outcomes differ at byte {at}:\n chained: …{}\n plain:   …{}",
                &a[from..(at + 200).min(a.len())],
                &b[from..(at + 200).min(b.len())]
            );
        }
    }
    // The comparison means something only where chaining saved events.
    assert!(
        fewer * 2 >= scenarios,
        "chaining saved events in only {fewer} of {scenarios} scenarios"
    );
}
