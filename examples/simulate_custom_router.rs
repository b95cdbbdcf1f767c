//! Plugging a user-defined router into the simulator.
//!
//! `cargo run --release -p kvfleet --example simulate_custom_router`
//!
//! The router below sends each request to the pool whose queue per slot is
//! shortest among pools that fit it ("join the shortest pool"), and is run
//! on the same two-pool fleet and arrival stream as the built-in `length`.

use kvfleet::engine::{self, PoolConfig, SimConfig};
use kvfleet::profile::Profile;
use kvfleet::simulate::open_arrivals;
use kvfleet::workload::spec::WorkloadSpec;
use kvfleet_routers::{Decision, FleetView, RejectReason, RequestView, Router, RouterStats};

/// Shortest (running + waiting) / slots among pools that fit.
struct ShortestPool {
    stats: RouterStats,
}

impl Router for ShortestPool {
    fn name(&self) -> &str {
        "shortest-pool"
    }

    fn route(&mut self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Decision {
        let best = (0..fleet.pools.len())
            .filter(|&i| fleet.pools[i].fits(req.total_tokens()))
            .min_by(|&a, &b| fleet.pools[a].load().total_cmp(&fleet.pools[b].load()));
        let decision = match best {
            Some(pool) => Decision::Route { pool },
            None => Decision::Reject {
                reason: RejectReason::ExceedsMaxContext,
            },
        };
        self.stats.record(decision)
    }

    fn stats(&self) -> RouterStats {
        self.stats.clone()
    }
}

fn pool(id: &str, instances: u32, max_ctx_tok: u32) -> PoolConfig {
    PoolConfig::new(
        id,
        Profile::preset("h100").expect("built-in preset"),
        instances,
        max_ctx_tok,
    )
}

fn main() -> anyhow::Result<()> {
    let cfg = SimConfig::new(
        vec![pool("short", 2, 2048), pool("long", 2, 8192)],
        11,
        500.0,
    );
    let mut workload = WorkloadSpec::default_chat();
    workload.n_requests = Some(50_000);
    workload.lam = Some(30.0);

    let builtin = engine::run(&cfg, open_arrivals(&workload, cfg.seed, 0)?, 0, None)?;
    let custom = Box::new(ShortestPool {
        stats: RouterStats::for_pools(cfg.pools.len()),
    });
    let mine = engine::run_with_router(
        &cfg,
        open_arrivals(&workload, cfg.seed, 0)?,
        0,
        None,
        custom,
    )?;

    for (name, out) in [("length", &builtin), ("shortest-pool", &mine)] {
        let p99 = out.fleet.ttft.percentile_ns(99.0).unwrap_or(f64::NAN) / 1e6;
        println!(
            "{name:>14}: {} arrivals, P99 TTFT {p99:.1} ms, routed {:?}, verdict {:?}",
            out.arrived, out.router.1.routed, out.verdict
        );
    }
    Ok(())
}
