//! Concurrent sessions from an arrival process, in continuous time: Poisson
//! session arrivals at λ per minute, exponential session lengths of mean S
//! minutes (an M/M/∞ system), the number of open sessions followed event by
//! event. Its time average is λ·S (Little's law); the sizing holds the p95
//! over time. (The seed tool steps minutes and over-counts; this does not.)

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::SeedableRng;
use rand_distr::{Distribution, Exp};
use serde::Serialize;

use crate::rng::SimRng;

/// Concurrency of the sessions over the measured window (after warm-up).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Concurrency {
    /// Session arrivals per minute.
    pub arrival_rate_per_min: f64,
    /// Mean session length, minutes.
    pub avg_session_min: f64,
    /// Little's law: λ·S.
    pub little_mean: f64,
    /// Time-average of open sessions.
    pub mean: f64,
    /// 95th percentile over time of open sessions.
    pub p95: u64,
    /// Most sessions open at once.
    pub max: u64,
    /// Measured minutes.
    pub measured_min: f64,
}

/// Simulate the sessions for `warmup_min + simulation_min` minutes.
pub fn simulate_concurrency(
    arrival_rate_per_min: f64,
    avg_session_min: f64,
    simulation_min: f64,
    warmup_min: f64,
    seed: u64,
) -> Concurrency {
    let mut rng = SimRng::seed_from_u64(seed ^ 0x5e55_1045);
    let gap = Exp::new(arrival_rate_per_min).expect("rate > 0 (validated)");
    let life = Exp::new(1.0 / avg_session_min).expect("length > 0 (validated)");
    let end = warmup_min + simulation_min;
    let mut departures: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
    // Times in integer nanominutes keep the heap ordering exact.
    let to_i = |m: f64| (m * 1e9).round() as u64;
    let mut t = 0.0f64;
    let mut next_arrival = gap.sample(&mut rng);
    let mut open = 0u64;
    let mut time_at: Vec<(u64, f64)> = Vec::new(); // (open sessions, minutes), measured window
    let mut area = 0.0;
    let mut max = 0u64;
    loop {
        let next_dep = departures.peek().map(|r| r.0 as f64 / 1e9);
        let (tn, is_arrival) = match next_dep {
            Some(d) if d < next_arrival => (d, false),
            _ => (next_arrival, true),
        };
        let tn_c = tn.min(end);
        let lo = t.max(warmup_min);
        if tn_c > lo {
            let dt = tn_c - lo;
            area += open as f64 * dt;
            time_at.push((open, dt));
            if open > max {
                max = open;
            }
        }
        if tn >= end {
            break;
        }
        t = tn;
        if is_arrival {
            open += 1;
            departures.push(Reverse(to_i(t + life.sample(&mut rng))));
            next_arrival = t + gap.sample(&mut rng);
        } else {
            departures.pop();
            open -= 1;
        }
    }
    time_at.sort_by_key(|x| x.0);
    let total: f64 = time_at.iter().map(|x| x.1).sum();
    let mut acc = 0.0;
    let mut p95 = 0;
    for (n, dt) in &time_at {
        acc += dt;
        p95 = *n;
        if acc >= 0.95 * total {
            break;
        }
    }
    Concurrency {
        arrival_rate_per_min,
        avg_session_min,
        little_mean: arrival_rate_per_min * avg_session_min,
        mean: if total > 0.0 { area / total } else { 0.0 },
        p95,
        max,
        measured_min: simulation_min,
    }
}
