//! Which replication a search should simulate first.
//!
//! A size meets the SLO only if every replication does, so an evaluation
//! that fails is decided by its first failing replication; running the
//! hardest one first makes a failing evaluation cost one simulation instead
//! of several. On common random numbers the same stream tends to be the
//! hardest at every size and for every candidate, and a cheap look at the
//! streams themselves finds it before any simulation: per pool, the
//! backlog of prefill work (each request's own chunked prefill spread over
//! the pool's instances, drained in arrival time) that every request of a
//! replication would find, its P99 over the measured requests, relative to
//! the SLO. The order changes no decision, only how soon one is reached.

use super::plan::FleetPlan;
use super::sizing::{SizingSettings, job, replay_routed};
use crate::analytic::calibration::nearest_rank_unsorted;
use crate::analytic::iteration_model::own_prefill_s;
use crate::workload::spec::WorkloadSpec;

/// The replication whose streams look hardest for `plan` at `counts`
/// (see the module doc), or `None` with one replication or when the
/// streams cannot be read ahead (see `sizing::replay_routed`).
pub fn hardest_replication(
    plan: &FleetPlan,
    counts: &[u32],
    workload: &WorkloadSpec,
    settings: &SizingSettings,
) -> anyhow::Result<Option<u32>> {
    let reps = settings.replications.max(1);
    if reps < 2 {
        return Ok(None);
    }
    let j = job(plan, counts, workload, settings, reps);
    let pools = &j.cfg.pools;
    let mut best: Option<(f64, u32)> = None;
    for r in 0..reps {
        // Per pool: the backlog of prefill work (warm-up requests' too),
        // drained in arrival time, that each measured request finds on
        // arrival, its own included.
        let mut backlog_s = vec![0.0f64; pools.len()];
        let mut last_s = vec![0.0f64; pools.len()];
        let mut waits: Vec<Vec<f64>> = vec![Vec::new(); pools.len()];
        let replayed = replay_routed(&j, settings, r, |i, req, measured| {
            let t = req.arrival_ns as f64 * 1e-9;
            let p = &pools[i];
            let work =
                own_prefill_s(&p.profile, req.input_tokens.max(1), 0.0) / p.instances.max(1) as f64;
            backlog_s[i] = (backlog_s[i] - (t - last_s[i])).max(0.0) + work;
            last_s[i] = t;
            if measured {
                waits[i].push(backlog_s[i]);
            }
        })?;
        if !replayed {
            return Ok(None);
        }
        let score = waits
            .iter_mut()
            .filter(|w| !w.is_empty())
            .map(|w| nearest_rank_unsorted(w, 0.99))
            .fold(0.0, f64::max);
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, r));
        }
    }
    Ok(best.map(|(_, r)| r))
}
