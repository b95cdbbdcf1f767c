//! The end of a run: requests still in flight, window statistics, and the
//! raw outcome.

use super::{Server, Sim};
use crate::engine::outcome::{PoolOutcome, SimOutcome, WindowOutcome};
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
        self.records.sort_unstable_by_key(|r| r.id);
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
