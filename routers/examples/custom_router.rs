//! A user-defined router: send each request to the cheapest pool that fits
//! it, breaking price ties by load. Run with
//! `cargo run -p kvfleet-routers --example custom_router`.

use std::collections::BTreeMap;

use kvfleet_routers::{
    Decision, FleetView, PoolView, RejectReason, RequestView, Router, RouterSpec, RouterStats,
    build,
};

/// Cheapest pool (by price per instance-hour) whose context fits the request.
struct CheapestFit {
    /// Price of one instance-hour, by pool index (resolved from pool ids once).
    price_per_hour: Vec<f64>,
    stats: RouterStats,
}

impl CheapestFit {
    /// Prices are given by pool id; pools without a price are never used.
    fn new(pools: &[PoolView], prices: &BTreeMap<&str, f64>) -> Self {
        CheapestFit {
            price_per_hour: pools
                .iter()
                .map(|p| prices.get(p.id.as_str()).copied().unwrap_or(f64::INFINITY))
                .collect(),
            stats: RouterStats::for_pools(pools.len()),
        }
    }
}

impl Router for CheapestFit {
    fn name(&self) -> &str {
        "cheapest-fit"
    }

    fn route(&mut self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Decision {
        let total = req.total_tokens();
        let best = fleet
            .pools
            .iter()
            .enumerate()
            // The one rule every router must keep: only pools that fit.
            .filter(|(i, p)| p.fits(total) && self.price_per_hour[*i].is_finite())
            .min_by(|(i, a), (j, b)| {
                let by_price = self.price_per_hour[*i].total_cmp(&self.price_per_hour[*j]);
                by_price.then(a.load().total_cmp(&b.load()))
            })
            .map(|(i, _)| i);
        let decision = match best {
            Some(pool) => Decision::Route { pool },
            None => Decision::Reject {
                reason: RejectReason::ExceedsMaxContext,
            },
        };
        if decision
            .pool()
            .is_some_and(|p| fleet.pools[p].load() >= 1.0)
        {
            // Router-specific counters go in `extra` and show up in the report.
            self.stats.bump("sent_to_saturated_pool");
        }
        // `record` counts routed-per-pool / rejected-by-reason for us.
        self.stats.record(decision)
    }

    fn stats(&self) -> RouterStats {
        self.stats.clone()
    }
}

fn pool(id: &str, max_ctx_tok: u32, slots: u32, running: u32) -> PoolView {
    PoolView {
        id: id.to_string(),
        max_ctx_tok,
        instances: 4,
        slots,
        running,
        waiting: 0,
        kv_capacity_tok: 1 << 20,
        models: Vec::new(),
    }
}

fn request(input_tokens: u32, output_tokens: u32) -> RequestView<'static> {
    RequestView {
        id: 0,
        arrival_s: 0.0,
        input_tokens,
        output_tokens,
        predicted_output_tokens: None,
        category: "prose",
        model: None,
        labels: &[],
        prefix_hashes: &[],
    }
}

fn main() {
    let pools = vec![
        pool("l40s-8k", 8192, 256, 250),
        pool("h100-32k", 32768, 128, 10),
        pool("h100-128k", 131072, 32, 2),
    ];
    let fleet = FleetView {
        now_s: 0.0,
        pools: &pools,
    };
    let prices = BTreeMap::from([("l40s-8k", 1.1), ("h100-32k", 2.4), ("h100-128k", 2.4)]);

    // A custom router and a built-in one are both just `Box<dyn Router>`.
    let mut routers: Vec<Box<dyn Router>> = vec![
        Box::new(CheapestFit::new(&pools, &prices)),
        build(&"least-loaded".parse::<RouterSpec>().unwrap(), &pools, 42).unwrap(),
    ];
    let requests = [
        request(1000, 200),
        request(20_000, 500),
        request(200_000, 10),
    ];
    for router in &mut routers {
        for req in &requests {
            let decision = router.route(req, &fleet);
            let to = decision.pool().map_or("-", |p| pools[p].id.as_str());
            println!(
                "{:>13}: {:>6} tok -> {to} ({decision:?})",
                router.name(),
                req.total_tokens()
            );
        }
        println!("{:>13}: {:?}", router.name(), router.stats());
    }
}
