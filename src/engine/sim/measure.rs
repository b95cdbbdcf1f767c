//! What is measured: the warm-up and measurement window, metric windows and
//! their snapshots, and saturation (the stability verdict).

use super::{Server, Sim};
use crate::engine::outcome::Verdict;
use crate::engine::recovery;

/// Waiting queues rising at this many consecutive checkpoints (above twice
/// the pool's slots) mean saturation.
const TREND_RISES: u32 = 12;

impl<S: Server> Sim<'_, S> {
    pub(super) fn snapshot(&mut self, index: usize) {
        let now = self.now;
        for p in 0..self.pools.len() {
            self.snapshots[index][p] = self.pools[p].total_stats(now);
        }
        if self.cfg.peak_held_window == Some(index / 2) {
            self.tracking_peak = index.is_multiple_of(2);
            if self.tracking_peak {
                // What every instance holds as the window opens.
                let held = self
                    .pools
                    .iter()
                    .flat_map(|p| (0..p.instances.len()).map(|i| p.dispatcher.loads.load(i)))
                    .max()
                    .unwrap_or(0);
                self.peak_held = Some(held as u64);
            }
        }
    }

    /// `SimConfig::end_at_recovery`, at each new queue-trace sample: once a
    /// sample after the event is back at the pre-event waiting level
    /// (`recovery::is_recovered`, the rule `recovery::recovery_s` applies to
    /// the finished trace), arrivals end `margin_s` later.
    pub(super) fn watch_recovery(&mut self) {
        let Some(r) = self.cfg.end_at_recovery else {
            return;
        };
        let Some(&(t_ns, waiting)) = self.queue_trace.last() else {
            return;
        };
        let t_s = t_ns as f64 * 1e-9;
        if self.arrivals_end_ns.is_some() || t_s < r.event_end_s {
            return;
        }
        let level = *self.recovery_level.get_or_insert_with(|| {
            let trace: Vec<(f64, u64)> = self
                .queue_trace
                .iter()
                .map(|&(t, w)| (t as f64 * 1e-9, w))
                .collect();
            recovery::recovery_level(&trace, r.event_start_s, r.pre_s)
        });
        if recovery::is_recovered(t_s, waiting, r.event_end_s, level) {
            self.arrivals_end_ns =
                Some(t_ns.saturating_add(crate::workload::secs_to_ns(r.margin_s)));
        }
    }

    pub(super) fn is_measured(&self, id: u64, arrival_ns: u64) -> bool {
        id >= self.warm_count && arrival_ns >= self.warm_ns
    }

    pub(super) fn open_window(&mut self) {
        if self.window_start.is_some() {
            return;
        }
        self.window_start = Some(self.now);
        for (pool, t) in self.pools.iter_mut().zip(&mut self.trend.pools) {
            for i in 0..pool.instances.len() {
                pool.warm_stats[i] = pool.stats(i, self.now);
            }
            t.waiting_at_window_start = pool.waiting;
        }
    }

    pub(super) fn close_window(&mut self) {
        if self.window_end.is_some() {
            return;
        }
        self.open_window();
        self.window_end = Some(self.now);
        for pool in &mut self.pools {
            for i in 0..pool.instances.len() {
                pool.end_stats[i] = pool.stats(i, self.now);
            }
        }
        self.check_backlog_growth();
    }

    /// A stable queue's backlog wanders by O(√n) over n arrivals; a backlog
    /// that grew by more than 4·√n over the measurement window (n: the pool's
    /// measured arrivals) is growing without bound, even if the run was too
    /// short for the checkpoint trend to notice.
    pub(super) fn check_backlog_growth(&mut self) {
        if self.verdict != Verdict::Stable {
            return;
        }
        for (p, t) in self.trend.pools.iter().enumerate() {
            let grew = self.pools[p].waiting as f64 - t.waiting_at_window_start as f64;
            let n = self.collectors[p].arrived as f64;
            if n > 0.0 && grew > 4.0 * n.sqrt() {
                self.verdict = Verdict::Unstable {
                    detected_at_s: self.now as f64 * 1e-9,
                    reason: format!(
                        "pool `{}`: waiting backlog grew by {grew:.0} requests over the measurement window ({n:.0} arrivals)",
                        self.cfg.pools[p].id
                    ),
                };
                return;
            }
        }
    }

    pub(super) fn in_window(&self, t: u64) -> bool {
        matches!(self.window_start, Some(s) if t >= s) && self.window_end.is_none_or(|e| t <= e)
    }

    pub(super) fn in_metric_window(&self, w: usize, arrival_ns: u64) -> bool {
        let (a, b) = self.win[w];
        arrival_ns >= a && arrival_ns < b
    }

    pub(super) fn check_saturation(&mut self, id: u64) {
        if self.cfg.run_to_completion && self.verdict != Verdict::Stable {
            // Already found unstable; the run goes on to the end.
            return;
        }
        if self.waiting_total > self.max_waiting {
            self.verdict = Verdict::Unstable {
                detected_at_s: self.now as f64 * 1e-9,
                reason: format!(
                    "{} requests waiting (limit {})",
                    self.waiting_total, self.max_waiting
                ),
            };
            self.stop_early = !self.cfg.run_to_completion;
            return;
        }
        // A queue that grows while capacity is reduced by a scheduled event
        // is a transient, not instability: the trend is judged only once the
        // last control change has taken effect (the hard limit still applies).
        if id < self.warm_count
            || !id.is_multiple_of(self.trend.every)
            || self.now < self.trend.settled_ns
        {
            return;
        }
        for (p, t) in self.trend.pools.iter_mut().enumerate() {
            let w = self.pools[p].waiting;
            t.rises = if w > t.last { t.rises + 1 } else { 0 };
            t.last = w;
            if t.rises >= TREND_RISES && w as u64 > 2 * t.capacity {
                self.verdict = Verdict::Unstable {
                    detected_at_s: self.now as f64 * 1e-9,
                    reason: format!(
                        "pool `{}`: waiting queue rose at {TREND_RISES} consecutive checkpoints to {w} requests",
                        self.cfg.pools[p].id
                    ),
                };
                self.stop_early = !self.cfg.run_to_completion;
                return;
            }
        }
    }

    /// One more measured request of watched pool `p` certain to count above
    /// the SLO in its P99 TTFT (rejected, or completed with a TTFT whose
    /// reported value exceeds it). Stops the run once the P99 is decided:
    /// the pool's measured arrivals at the end are at most those so far plus
    /// every arrival still to come, `n_max`, and the nearest-rank P99 of
    /// `n` values exceeds the SLO as soon as more than `n − ⌈0.99·n⌉` of them
    /// do — a count that does not fall as `n` grows, so reaching it for
    /// `n_max` decides it for the run's true count too.
    pub(super) fn count_ttft_miss(&mut self, p: usize) {
        let Some(misses) = self.ttft_misses[p].as_mut() else {
            return;
        };
        *misses += 1;
        let misses = *misses;
        let Some(expected) = self.expected_arrivals else {
            return;
        };
        if self.verdict != Verdict::Stable {
            return;
        }
        let so_far = self.collectors[p].arrived;
        let fleet_bound = so_far + expected.saturating_sub(self.arrived);
        // A known bound on the pool's own measured arrivals, when the
        // caller counted them (never below what already arrived).
        let n_max = match self.cfg.measured_arrivals_bound.get(p).copied().flatten() {
            Some(b) if b >= so_far => fleet_bound.min(b),
            _ => fleet_bound,
        };
        if p99_miss_decided(misses, n_max) {
            self.verdict = Verdict::SloMissed {
                detected_at_s: self.now as f64 * 1e-9,
                pool: Some(p),
                reason: format!(
                    "pool `{}`: {misses} measured requests above the {} ms TTFT SLO or rejected, more than 1% of the at most {n_max} it can reach: its P99 TTFT misses the SLO whatever follows",
                    self.cfg.pools[p].id, self.cfg.slo.ttft_ms
                ),
            };
            self.stop_early = true;
        }
    }
}

impl<S: Server> Sim<'_, S> {
    /// Whether metric window `w` is the one `SimConfig::stop_on_window_ttft_miss` watches.
    #[inline]
    pub(super) fn watches_window(&self, w: usize) -> bool {
        self.cfg
            .stop_on_window_ttft_miss
            .is_some_and(|x| x.window == w)
    }

    /// One more arrival of the watched window certain to count above the
    /// SLO in its P99 TTFT (as [`Sim::count_ttft_miss`], over the window's
    /// arrivals, counted beforehand). Stops the run once the P99 is decided.
    pub(super) fn count_window_miss(&mut self) {
        self.window_misses += 1;
        let Some(watch) = self.cfg.stop_on_window_ttft_miss else {
            return;
        };
        if self.verdict != Verdict::Stable || !p99_miss_decided(self.window_misses, watch.arrivals)
        {
            return;
        }
        let name = self
            .cfg
            .windows
            .get(watch.window)
            .map_or("?", |w| w.name.as_str());
        self.verdict = Verdict::SloMissed {
            detected_at_s: self.now as f64 * 1e-9,
            pool: None,
            reason: format!(
                "window `{name}`: {} of its {} arrivals above the {} ms TTFT SLO or rejected, more than 1%: its P99 TTFT misses the SLO whatever follows",
                self.window_misses, watch.arrivals, self.cfg.slo.ttft_ms
            ),
        };
        self.stop_early = true;
    }
}

/// Whether `misses` values certain to exceed the SLO (rejected, or
/// recorded above it) decide that the nearest-rank P99 of `n` values
/// exceeds it: more than `n − ⌈0.99·n⌉` of them, the rank
/// `Collector::ttft_percentile_all_ns(99.0)` reads. That count does not fall
/// as `n` grows, so deciding it for an upper bound of `n` decides it too.
fn p99_miss_decided(misses: u64, n: u64) -> bool {
    if n == 0 {
        return false;
    }
    let rank = ((99.0 / 100.0 * n as f64).ceil() as u64).clamp(1, n);
    misses > n - rank
}
