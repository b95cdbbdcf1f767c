//! Differential test of the per-batch step law (computed profiles): the
//! fast-forward engine and the naive step engine must give the same
//! per-request timestamps when pure-decode steps cost `W(b) + H(b)·Σctx` and
//! prefill steps are priced by the full roofline, on randomized scenarios
//! (models dense and MoE, with and without sliding windows, DP-attention,
//! pipeline stages and MTP; random
//! efficiencies, per-sequence overhead and CUDA-graph padding; KV pressure
//! with preemptions; bursts; 1–4 instances; every dispatcher; caps raised
//! above the tabulated batch sizes).

mod common;

use kvfleet::engine::{self, Arrivals, EngineKind, PoolConfig, SimConfig, Warmup};
use kvfleet::profile::computed::{linearise, parse_instance};
use kvfleet::workload::Request;
use kvfleet::workload::memory::VecSource;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const SPECS: [&str; 9] = [
    "h200:deepseek-r1:tp8:fp8:ep8:mtp2:acc0.8",
    "h100-sxm:gpt-oss-120b:tp2:fp4",
    "h100-sxm:gpt-oss-120b:tp8:fp4",
    "b200:gpt-oss-120b:tp1:fp4",
    "h100-sxm:llama-3.1-8b:tp1:bf16",
    "h200:deepseek-r1:tp8:fp8:ep8",
    "mi355x:gpt-oss-20b:tp1:fp4",
    "gb200:deepseek-r1:dep8:fp4",
    "h100-sxm:llama-3.1-70b:tp4:pp2:fp8",
];

fn random_scenario(seed: u64) -> (SimConfig, Vec<Request>, u32) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let spec = SPECS[rng.random_range(0..SPECS.len())];
    let mut inst = parse_instance("--gpu", spec).expect("catalog spec");
    let p = &mut inst.params;
    p.compute_eff = rng.random_range(0.05..0.9);
    p.memory_eff = rng.random_range(0.2..0.9);
    p.step_overhead_s = rng.random_range(0.0..5e-3);
    p.seq_overhead_s = if rng.random_bool(0.5) {
        rng.random_range(0.0..1e-4)
    } else {
        0.0
    };
    p.cuda_graph_max_tok = [0, 512][rng.random_range(0..2)];
    let mut profile = linearise(spec, inst).expect("linearises").profile;
    assert!(profile.step_law.is_some(), "computed profiles carry a law");
    let blk = [1u32, 4, 16][rng.random_range(0..3)];
    let max_len = rng.random_range(8..600u32);
    let kv_tok = rng.random_range(max_len as u64 * 2..max_len as u64 * 40);
    profile.blk_size = blk;
    profile.total_kv_blks = kv_tok.div_ceil(blk as u64);
    profile.chunk = [1u32, 7, 64, 512, 4096][rng.random_range(0..5)];
    // Caps up to 600: above the 512 tabulated batch sizes, W(b) and H(b) come on demand.
    let cap = if rng.random_bool(0.1) {
        600
    } else {
        rng.random_range(1..40)
    };
    let instances = rng.random_range(1..5);
    let dispatch = common::DISPATCHERS[rng.random_range(0..6)];
    let n = rng.random_range(20..400);
    let mean_gap_ns = rng.random_range(1e5..5e7);
    let reqs = common::bursty_requests(&mut rng, n, mean_gap_ns, 0.15, max_len);
    let mut pool = PoolConfig {
        dispatch,
        ..PoolConfig::new("p", profile, instances, max_len + 1)
    };
    pool.max_num_seqs = Some(cap);
    let cfg = SimConfig {
        warmup: Warmup {
            fraction: 0.0,
            seconds: None,
        },
        validate: true,
        record_requests: true,
        max_waiting: Some(u64::MAX),
        ..SimConfig::new(vec![pool], seed, 1000.0)
    };
    (cfg, reqs, cap)
}

/// Both engines on `cfg`; the same timestamps, placements and preemptions.
/// Returns the preemptions.
fn compare_engines(mut cfg: SimConfig, reqs: Vec<Request>, seed: u64) -> u64 {
    let run = |cfg: &SimConfig, reqs: Vec<Request>| {
        engine::run(cfg, Arrivals::Open(Box::new(VecSource::new(reqs))), 0, None).expect("run")
    };
    let fast = run(&cfg, reqs.clone());
    cfg.engine = EngineKind::Step;
    let step = run(&cfg, reqs);
    assert_eq!(fast.records.len(), step.records.len(), "seed {seed}");
    assert_eq!(fast.completed, step.completed, "seed {seed}");
    for (f, s) in fast.records.iter().zip(&step.records) {
        assert_eq!(
            (f.id, f.pool, f.instance, f.first_token_ns, f.done_ns),
            (s.id, s.pool, s.instance, s.first_token_ns, s.done_ns),
            "seed {seed}: request {}",
            f.id
        );
    }
    let pre =
        |o: &engine::SimOutcome| -> u64 { o.pools.iter().map(|p| p.total_stats.preemptions).sum() };
    assert_eq!(pre(&fast), pre(&step), "seed {seed}: preemptions");
    assert!(
        fast.events <= step.events,
        "seed {seed}: the fast engine never needs more events"
    );
    pre(&fast)
}

#[test]
fn fast_engine_matches_step_engine_under_the_per_batch_law() {
    let (mut with_preemption, mut above_table) = (0, 0);
    for seed in 0..240u64 {
        let (cfg, reqs, cap) = random_scenario(seed);
        above_table += (cap > 512) as u32;
        with_preemption += (compare_engines(cfg, reqs, seed) > 0) as u32;
    }
    println!("240 scenarios: {with_preemption} preempted, {above_table} with caps above the table");
    assert!(
        with_preemption >= 20,
        "only {with_preemption} scenarios preempted"
    );
    assert!(above_table >= 5, "only {above_table} caps above the table");
}
