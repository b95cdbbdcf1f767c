//! What each replication's arrival stream holds for a plan, read ahead of
//! the DES, and which replication a search should simulate first.
//!
//! Under plain length routing the pool a request goes to depends only on
//! its length, so one replay of a replication's stream (the one every
//! evaluation replays, common random numbers) tells, per pool, before any
//! simulation:
//! - its **measured arrivals**, exactly: the count a watched pool's P99
//!   miss is decided against (`SimConfig::measured_arrivals_bound`), so a
//!   pool with a small share of the traffic stops as soon as one with a
//!   large share does;
//! - the **floor** of its P99 TTFT at any size (see
//!   [`StreamReading::floor_p99_ttft_ms`]);
//! - how **hard** the replication is: a size meets the SLO only if every
//!   replication does, so an evaluation that fails is decided by its first
//!   failing replication; running the hardest one first makes a failing
//!   evaluation cost one simulation instead of several. On common random
//!   numbers the same stream tends to be the hardest at every size and for
//!   every candidate, and the streams themselves show it: per pool, the
//!   backlog of prefill work (each request's own chunked prefill spread
//!   over the pool's instances, drained in arrival time) that every
//!   request finds, its P99 over the measured requests. The order changes
//!   no decision, only how soon one is reached.

use super::plan::FleetPlan;
use super::sizing::{SizingSettings, job, replay_routed};
use crate::analytic::calibration::nearest_rank_unsorted;
use crate::analytic::iteration_model::own_prefill_s;
use crate::workload::spec::WorkloadSpec;

/// One replication's stream as plan's pools receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamReading {
    /// Per pool, the measured (past the warm-up) arrivals routed to it.
    pub measured_arrivals: Vec<u64>,
    /// Per pool, a floor under its DES P99 TTFT at any size, ms: the
    /// nearest-rank P99, over its measured arrivals, of each prompt's
    /// chunked prefill with nothing else running ([`own_prefill_s`]) —
    /// every request's TTFT is at least that (the screen's argument,
    /// `Screen::floor_p99_ttft_ms`), and a rejected one counts as infinite.
    /// Exact for this stream, where the screen's bound must allow for
    /// sampling. `None` for a pool without measured arrivals or with a
    /// per-batch step law (whose solo prefill is not shown to be fastest).
    pub floor_p99_ttft_ms: Vec<Option<f64>>,
    /// The P99 prefill backlog its measured requests find at the counts
    /// read at, s, the largest over the pools: the replication's hardness.
    pub backlog_p99_s: f64,
}

/// Read every replication's stream for `plan` at `counts` (one replay
/// each), or `None` when the streams cannot be read ahead of the DES (see
/// `sizing::replay_routed`: another router, pools sharing a context limit,
/// a warm-up by time, traces, closed loops).
pub fn read_streams(
    plan: &FleetPlan,
    counts: &[u32],
    workload: &WorkloadSpec,
    settings: &SizingSettings,
) -> anyhow::Result<Option<Vec<StreamReading>>> {
    let reps = settings.replications.max(1);
    let j = job(plan, counts, workload, settings, reps);
    let pools = &j.cfg.pools;
    let k = pools.len();
    let mut readings = Vec::with_capacity(reps as usize);
    for r in 0..reps {
        let mut measured = vec![0u64; k];
        let mut solo: Vec<Vec<f64>> = vec![Vec::new(); k];
        // The backlog of prefill work (warm-up requests' too), drained in
        // arrival time, that each measured request finds, its own included.
        let mut backlog_s = vec![0.0f64; k];
        let mut last_s = vec![0.0f64; k];
        let mut waits: Vec<Vec<f64>> = vec![Vec::new(); k];
        let replayed = replay_routed(&j, settings, r, |i, req, is_measured| {
            let p = &pools[i];
            let own_s = own_prefill_s(&p.profile, req.input_tokens.max(1), 0.0);
            let t = req.arrival_ns as f64 * 1e-9;
            backlog_s[i] =
                (backlog_s[i] - (t - last_s[i])).max(0.0) + own_s / p.instances.max(1) as f64;
            last_s[i] = t;
            if is_measured {
                measured[i] += 1;
                waits[i].push(backlog_s[i]);
                if p.profile.step_law.is_none() {
                    solo[i].push(own_s);
                }
            }
        })?;
        if !replayed {
            return Ok(None);
        }
        readings.push(StreamReading {
            measured_arrivals: measured,
            floor_p99_ttft_ms: solo
                .into_iter()
                .map(|mut s| (!s.is_empty()).then(|| nearest_rank_unsorted(&mut s, 0.99) * 1e3))
                .collect(),
            backlog_p99_s: waits
                .iter_mut()
                .filter(|w| !w.is_empty())
                .map(|w| nearest_rank_unsorted(w, 0.99))
                .fold(0.0, f64::max),
        });
    }
    Ok(Some(readings))
}

/// The hardest of these readings (the first of equals), or `None` with
/// fewer than two.
pub fn hardest_of(readings: &[StreamReading]) -> Option<u32> {
    if readings.len() < 2 {
        return None;
    }
    let mut best = 0;
    for (r, x) in readings.iter().enumerate() {
        if x.backlog_p99_s > readings[best].backlog_p99_s {
            best = r;
        }
    }
    Some(best as u32)
}

/// The replication whose streams look hardest for `plan` at `counts`
/// (see the module doc), or `None` with one replication or when the
/// streams cannot be read ahead.
pub fn hardest_replication(
    plan: &FleetPlan,
    counts: &[u32],
    workload: &WorkloadSpec,
    settings: &SizingSettings,
) -> anyhow::Result<Option<u32>> {
    if settings.replications < 2 {
        return Ok(None);
    }
    Ok(read_streams(plan, counts, workload, settings)?.and_then(|r| hardest_of(&r)))
}
