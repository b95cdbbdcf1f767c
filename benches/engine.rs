//! Simulated requests per second of the fast and step engines on a chat
//! workload: the built-in Azure CDF (`--cdf azure`), 8 H100 instances, λ = 150 req/s (≈80% of
//! the fleet's saturation rate of ≈190 req/s), 1M requests for the fast
//! engine and 100k for the step engine; then the same stream on a
//! disaggregated fleet (3 prefill + 8 decode H100 instances, InfiniBand KV
//! link; `kvfleet disagg` finds 2 + 7 the cheapest for 500 ms / 100 ms)
//! with the fast engine. Then fleet scale (issue 17): the same load per
//! instance (18.75 req/s, ≈78%) on 8, 80 and 1,000 instances, 2M requests
//! each, with events per request; and 8 instances at 2× overload (380 req/s,
//! 500k requests) simulated to completion (`run_to_completion`).
//! Single-threaded. Run with `cargo bench --bench engine`.

use std::path::PathBuf;
use std::time::Instant;

use kvfleet::engine::dispatch::DispatchPolicy;
use kvfleet::engine::{self, Disagg, EngineKind, LinkSpec, PoolConfig, SimConfig};
use kvfleet::profile::Profile;
use kvfleet::simulate::open_arrivals;
use kvfleet::workload::spec::WorkloadSpec;

fn workload_at(n: u64, lam: f64) -> (WorkloadSpec, &'static str) {
    let mut w = WorkloadSpec::default_chat();
    w.lam = Some(lam);
    w.n_requests = Some(n);
    w.cdf = Some(PathBuf::from("azure"));
    w.isl = None;
    w.osl = None;
    (w, "Azure CDF (built-in)")
}

fn config(engine: EngineKind) -> SimConfig {
    sized(engine, 8)
}

fn sized(engine: EngineKind, instances: u32) -> SimConfig {
    SimConfig {
        engine,
        ..SimConfig::new(
            vec![PoolConfig::new(
                "pool",
                Profile::preset("h100").expect("preset"),
                instances,
                8192,
            )],
            1,
            500.0,
        )
    }
}

/// 3 prefill + 8 decode H100 instances joined by InfiniBand.
fn disaggregated() -> SimConfig {
    let mut cfg = config(EngineKind::Fast);
    cfg.pools[0].id = "prefill".into();
    cfg.pools[0].instances = 3;
    let mut decode = cfg.pools[0].clone();
    decode.id = "decode".into();
    decode.instances = 8;
    decode.dispatch = DispatchPolicy::FreeKv;
    cfg.pools.push(decode);
    cfg.disagg = Some(Disagg {
        pairs: vec![(0, 1)],
        link: LinkSpec::parse("ib").expect("preset link"),
        kv_bytes_per_token: 327_680.0,
    });
    cfg
}

fn measure(label: &str, cfg: SimConfig, n: u64, repeats: usize) {
    measure_at(label, cfg, n, 150.0, repeats);
}

fn measure_at(label: &str, cfg: SimConfig, n: u64, lam: f64, repeats: usize) {
    let (w, what) = workload_at(n, lam);
    let mut rates = Vec::new();
    let mut events = 0;
    for r in 0..repeats {
        let arrivals = open_arrivals(&w, cfg.seed, r as u32).expect("workload opens");
        let t = Instant::now();
        let out = engine::run(&cfg, arrivals, r as u32, None).expect("run");
        let wall = t.elapsed().as_secs_f64();
        assert_eq!(
            out.arrived,
            out.completed + out.rejected_total() + out.in_flight
        );
        if cfg.run_to_completion {
            assert_ne!(
                out.verdict,
                engine::Verdict::Stable,
                "{label} is overloaded"
            );
            assert_eq!(out.in_flight, 0, "{label} runs to completion");
        } else {
            assert_eq!(
                out.verdict,
                engine::Verdict::Stable,
                "{label} must be stable"
            );
        }
        rates.push(out.arrived as f64 / wall);
        events = out.events;
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "{label:<15} {median:>9.0} simulated requests/s (median of {repeats}, {n} requests, {:.2} events/request, {what})",
        events as f64 / n as f64
    );
}

fn main() {
    // `cargo test` also builds benches with `--bench`-less args; keep it quick then.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    // The same memory settings as the binary (2 MB pages, freed memory kept),
    // so these rows measure what `kvfleet simulate` runs.
    kvfleet::process_memory::tune();
    measure("fast engine:", config(EngineKind::Fast), 1_000_000, 5);
    measure("step engine:", config(EngineKind::Step), 100_000, 3);
    measure("disaggregated:", disaggregated(), 1_000_000, 3);
    // Fleet scale: 18.75 req/s per instance.
    for n in [8u32, 80, 1000] {
        let lam = 18.75 * n as f64;
        measure_at(
            &format!("{n} instances:"),
            sized(EngineKind::Fast, n),
            2_000_000,
            lam,
            3,
        );
    }
    let overload = SimConfig {
        run_to_completion: true,
        ..sized(EngineKind::Fast, 8)
    };
    measure_at("2x overload:", overload, 500_000, 380.0, 3);
}
