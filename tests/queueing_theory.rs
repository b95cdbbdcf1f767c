//! The slot model against exact M/M/c (Erlang-C): one instance with c slots,
//! and a central queue over 4 instances against M/M/(4c). Service is
//! (1 + OSL)·W with H = 0 and OSL exponential with a large mean, so service
//! is exponential to within a fraction of a percent.

use kvfleet::analytic::MmcQueue;
use kvfleet::engine::dispatch::DispatchPolicy;
use kvfleet::engine::{self, Arrivals, PoolConfig, ServiceModel, SimConfig, Warmup};
use kvfleet::error::InputError;
use kvfleet::profile::{PowerCurve, Profile};
use kvfleet::workload::{Request, RequestSource};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const W_S: f64 = 0.0001;
const MEAN_OSL: f64 = 1000.0;

/// Poisson arrivals at `lambda`, ISL 1, OSL = ceil(Exp(MEAN_OSL)), generated lazily.
struct PoissonSource {
    rng: Xoshiro256PlusPlus,
    lambda: f64,
    t_s: f64,
    left: u64,
    n: u64,
}

impl RequestSource for PoissonSource {
    fn next_request(&mut self) -> Result<Option<Request>, InputError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.t_s += -(1.0 - self.rng.random::<f64>()).ln() / self.lambda;
        let osl = (-(1.0 - self.rng.random::<f64>()).ln() * MEAN_OSL)
            .ceil()
            .max(1.0) as u32;
        Ok(Some(Request::new((self.t_s * 1e9) as u64, 1, osl)))
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.n)
    }
}

/// Exact mean service time: (1 + E[ceil X])·W with E[ceil X] = 1/(1 − e^(−1/mean)).
fn mean_service_s() -> f64 {
    (1.0 + 1.0 / (1.0 - (-1.0 / MEAN_OSL).exp())) * W_S
}

fn config(c: u32, instances: u32, dispatch: DispatchPolicy) -> SimConfig {
    let profile = Profile {
        name: "mmc".into(),
        w_s: W_S,
        h_s: 0.0,
        calibration_ctx: 1 << 20,
        chunk: 1,
        blk_size: 16,
        total_kv_blks: 1 << 30,
        max_slots: c,
        cost_per_hr: 1.0,
        gpus_per_instance: 1,
        prefill_s_per_token: 0.0,
        power: PowerCurve::new(0.0, 0.0, 0.0, 0.0),
        step_law: None,
    };
    SimConfig {
        service_model: ServiceModel::Slot,
        warmup: Warmup {
            fraction: 0.05,
            seconds: None,
        },
        max_waiting: Some(u64::MAX),
        ..SimConfig::new(
            vec![PoolConfig {
                dispatch,
                ..PoolConfig::new("mmc", profile, instances, 1 << 20)
            }],
            1,
            1e9,
        )
    }
}

fn check(c: u32, instances: u32, dispatch: DispatchPolicy, rho: f64, n: usize, seed: u64) {
    let servers = c * instances;
    let mean_s = mean_service_s();
    let lambda = rho * servers as f64 / mean_s;
    let src = PoissonSource {
        rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        lambda,
        t_s: 0.0,
        left: n as u64,
        n: n as u64,
    };
    let cfg = config(c, instances, dispatch);
    let out = engine::run(&cfg, Arrivals::Open(Box::new(src)), 0, None).expect("run");
    assert_eq!(out.completed, n as u64);
    let q = MmcQueue {
        c: servers as u64,
        lambda,
        mu: 1.0 / mean_s,
    };
    let wait = &out.fleet.queue_wait;
    let mean = wait.mean_ns().expect("waits") * 1e-9;
    let p_wait = wait.fraction_positive().expect("waits");
    let p99 = wait.percentile_ns(99.0).expect("waits") * 1e-9;
    let (em, ep, e99) = (q.mean_wait_s(), q.p_wait(), q.wait_quantile_s(0.99));
    eprintln!(
        "c={servers} rho={rho}: mean {mean:.6} vs {em:.6} ({:+.2}%), P(W>0) {p_wait:.4} vs {ep:.4}, P99 {p99:.6} vs {e99:.6} ({:+.2}%)",
        100.0 * (mean / em - 1.0),
        100.0 * (p99 / e99 - 1.0)
    );
    assert!(
        (mean / em - 1.0).abs() < 0.03,
        "mean wait {mean} vs exact {em} at ρ={rho}"
    );
    assert!(
        (p_wait - ep).abs() < 0.01,
        "P(wait>0) {p_wait} vs exact {ep} at ρ={rho}"
    );
    if e99 > 0.0 {
        assert!(
            (p99 / e99 - 1.0).abs() < 0.03,
            "P99 wait {p99} vs exact {e99} at ρ={rho}"
        );
    }
}

/// Heavy traffic relaxes slowly: more requests near saturation.
fn requests_for(rho: f64) -> usize {
    if rho > 0.9 { 32_000_000 } else { 4_000_000 }
}

#[test]
fn slot_model_matches_mmc_single_instance() {
    for (i, rho) in [0.5, 0.8, 0.95].into_iter().enumerate() {
        check(
            8,
            1,
            DispatchPolicy::Jsq,
            rho,
            requests_for(rho),
            11 + i as u64,
        );
    }
}

#[test]
fn central_queue_over_four_instances_matches_mm_4c() {
    for (i, rho) in [0.5, 0.8, 0.95].into_iter().enumerate() {
        check(
            2,
            4,
            DispatchPolicy::Central,
            rho,
            requests_for(rho),
            21 + i as u64,
        );
    }
}
