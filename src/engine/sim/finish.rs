//! The end of a run: requests still in flight, window statistics, and the
//! raw outcome.

use super::{Server, Sim};
use crate::engine::outcome::{PoolOutcome, RequestRecord, SimOutcome, WindowOutcome};
use crate::engine::requests::{NEVER, ReqCold, ReqState};
use crate::engine::server::InstanceStats;

impl<S: Server> Sim<'_, S> {
    pub(super) fn finish(
        mut self,
        wall_s: f64,
        skipped: crate::workload::SkipCounts,
    ) -> SimOutcome {
        // Requests still in flight: measured ones count as SLO misses, and a
        // missing first token is recorded as a lower bound (now − arrival).
        let now = self.now;
        let live: Vec<(ReqState, ReqCold)> = self.reqs.iter_live().map(|(r, c)| (*r, c)).collect();
        for (r, c) in &live {
            self.record(r, c);
            let ttft = if r.first_token_ns == NEVER {
                now - r.arrival_ns
            } else {
                r.first_token_ns - r.arrival_ns
            };
            if r.measured {
                let c = &mut self.collectors[r.home as usize];
                c.unfinished += 1;
                c.ttft.record(ttft);
            }
            for w in 0..self.win.len() {
                if self.in_metric_window(w, r.arrival_ns) {
                    self.win_collectors[w].unfinished += 1;
                    self.win_collectors[w].ttft.record(ttft);
                }
            }
        }
        // A window whose end was never reached ends now.
        for w in 0..self.win.len() {
            if self.win[w].1 > now {
                self.snapshot(2 * w + 1);
            }
            if self.win[w].0 > now {
                self.snapshot(2 * w);
            }
        }
        // The run is over: its collectors move into the outcome (cloning
        // them copied every histogram).
        let mut win_collectors = std::mem::take(&mut self.win_collectors);
        let windows: Vec<WindowOutcome> = self
            .cfg
            .windows
            .iter()
            .enumerate()
            .map(|(w, mw)| WindowOutcome {
                name: mw.name.clone(),
                start_s: mw.start_s,
                end_s: self.win[w].1.min(now).max(self.win[w].0) as f64 * 1e-9,
                metrics: std::mem::take(&mut win_collectors[w]),
                stats_by_pool: self.snapshots[2 * w + 1]
                    .iter()
                    .zip(&self.snapshots[2 * w])
                    .map(|(e, b)| e.since(b))
                    .collect(),
            })
            .collect();
        sort_by_id(&mut self.records);
        let mut fleet = std::mem::take(&mut self.fleet_rejects);
        fleet.arrived += fleet.rejected_total();
        let collectors = std::mem::take(&mut self.collectors);
        let pools: Vec<PoolOutcome> = self
            .pools
            .iter()
            .zip(collectors)
            .map(|(pool, c)| {
                fleet.merge(&c);
                let mut window_stats = InstanceStats::default();
                let mut total_stats = InstanceStats::default();
                for i in 0..pool.instances.len() {
                    window_stats.add(&pool.end_stats[i].since(&pool.warm_stats[i]));
                    total_stats.add(&pool.stats(i, now));
                }
                PoolOutcome {
                    metrics: c,
                    window_stats,
                    total_stats,
                }
            })
            .collect();
        let ws = self.window_start.unwrap_or(0) as f64 * 1e-9;
        let we = self.window_end.unwrap_or(now) as f64 * 1e-9;
        SimOutcome {
            pools,
            fleet,
            arrived: self.arrived,
            completed: self.completed,
            rejected: self.rejected,
            in_flight: live.len() as u64,
            measured: self.measured,
            window_s: (ws, we),
            end_s: now as f64 * 1e-9,
            verdict: self.verdict,
            events: self.events.popped() - self.stale_events,
            wall_s,
            router: (self.router.name().to_string(), self.router.stats()),
            skipped,
            records: self.records,
            windows,
            queue_trace: self
                .queue_trace
                .iter()
                .map(|&(t, w)| (t as f64 * 1e-9, w))
                .collect(),
            waiting_at_end: self.waiting_total,
            peak_held: self
                .peak_held
                .filter(|_| self.pools.iter().all(|p| !p.central)),
            arrivals_ended_s: self
                .arrivals_ended
                .then(|| self.arrivals_end_ns.map(|t| t as f64 * 1e-9))
                .flatten(),
            evicted: self.evicted,
            kv_transfer: self.handoff.map(|mut h| {
                h.out.link_busy_s = h.links.iter().map(|l| l.busy_ns).sum::<f64>() * 1e-9;
                h.out
            }),
        }
    }
}

/// Sort request records by id: placed by index when the ids are exactly
/// `0..n` (every arrival recorded once, the usual case: O(n) instead of a
/// sort of the whole table), else sorted.
fn sort_by_id(records: &mut Vec<RequestRecord>) {
    let n = records.len();
    let mut placed: Vec<Option<RequestRecord>> = vec![None; n];
    for r in records.iter() {
        match placed.get_mut(r.id as usize) {
            Some(slot) if slot.is_none() => *slot = Some(*r),
            _ => {
                records.sort_unstable_by_key(|r| r.id);
                return;
            }
        }
    }
    // n records, distinct ids below n: every slot is filled.
    records.clear();
    records.extend(placed.into_iter().flatten());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64) -> RequestRecord {
        RequestRecord {
            id,
            arrival_ns: id * 10,
            first_token_ns: 0,
            done_ns: 0,
            pool: 0,
            instance: 0,
            user: 0,
        }
    }

    #[test]
    fn records_come_out_in_id_order_whether_placed_or_sorted() {
        for ids in [
            vec![3, 0, 2, 1], // a permutation: placed
            vec![5, 0, 9, 1], // gaps: sorted
            vec![1, 0, 1],    // a repeat: sorted
            vec![],
        ] {
            let mut v: Vec<_> = ids.iter().map(|&i| rec(i)).collect();
            let mut want = v.clone();
            want.sort_unstable_by_key(|r| r.id);
            sort_by_id(&mut v);
            assert_eq!(v, want, "{ids:?}");
        }
    }
}
