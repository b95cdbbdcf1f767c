//! Control changes during a run: a pool's running-sequence cap, and its
//! instance count (scale-out, drain, failure) with powering off.

use super::{Server, Sim};
use crate::engine::config::{Control, ScaleMode, ServiceModel, SimConfig};

/// Instances allocated for pool `p`: its initial count or the largest count
/// any control change asks for.
pub(super) fn allocated_instances(cfg: &SimConfig, p: usize) -> usize {
    cfg.controls
        .iter()
        .filter(|c| c.pool == p)
        .filter_map(|c| match c.action {
            Control::Instances { count, .. } => Some(count),
            Control::MaxNumSeqs(_) => None,
        })
        .chain(std::iter::once(cfg.pools[p].instances))
        .max()
        .unwrap_or(1) as usize
}

impl<S: Server> Sim<'_, S> {
    /// Apply a cap change to every instance of its pool; a raised cap may make
    /// queued requests admissible, so instances with waiting work are cut at
    /// their current step (exactly as an arrival does).
    pub(super) fn apply_control(&mut self, index: usize) {
        let c = self.cfg.controls[index];
        let p = c.pool;
        let cap = match c.action {
            Control::MaxNumSeqs(cap) => cap,
            Control::Instances { count, mode } => {
                self.set_instances(p, count, mode);
                return;
            }
        };
        for s in &mut self.pools[p].instances {
            s.set_max_num_seqs(cap);
        }
        self.offer_queues(p);
    }

    /// Offer pool `p`'s queued requests to its instances again (the cap or
    /// the instance set changed): instances with waiting work are cut at
    /// their current step, exactly as an arrival does.
    pub(super) fn offer_queues(&mut self, p: usize) {
        if self.pools[p].central {
            if !self.pools[p].queues[0].is_empty() {
                self.notify_central(p, true);
            }
        } else {
            for i in 0..self.pools[p].active as usize {
                if self.pools[p].queues[i].is_empty() {
                    continue;
                }
                if let Some(t) = self.call(p, i, |s, now, cx| s.on_enqueue(now, true, cx)) {
                    self.pools[p].epochs[i] += 1;
                    self.push_wake(p, i, t);
                }
                self.drain_done(p, i);
            }
        }
        while let Some(p) = self.kick.pop() {
            self.notify_central(p, true);
        }
    }

    /// Set pool `p`'s active instance count. Added instances power on idle;
    /// removed ones (the highest-numbered) leave as `mode` says: their queued
    /// (and, on failure, running) requests are dispatched again to the
    /// remaining instances, and they power off once they hold no work.
    pub(super) fn set_instances(&mut self, p: usize, count: u32, mode: ScaleMode) {
        let now = self.now;
        let old = self.pools[p].active;
        let count = count.clamp(1, self.pools[p].instances.len() as u32);
        self.pools[p].active = count;
        for i in old.min(count)..old.max(count) {
            let i = i as usize;
            if count > old {
                self.pools[p].dispatcher.loads.enable(i);
                self.pools[p].set_powered(i, now, true);
            } else {
                self.pools[p].dispatcher.loads.disable(i);
            }
        }
        self.refresh_view(p);
        let mut moved: Vec<u32> = Vec::new();
        for i in count as usize..old as usize {
            if mode == ScaleMode::Fail {
                let q = if self.pools[p].central { 0 } else { i };
                let before = self.pools[p].queues[q].len();
                self.call(p, i, |s, now, cx| {
                    s.evict_all(now, cx);
                    None
                });
                // Cancel the wake-up of the step that was in progress.
                self.pools[p].epochs[i] += 1;
                self.evicted += (self.pools[p].queues[q].len() - before) as u64;
            }
            if !self.pools[p].central {
                // Queued (and evicted) requests go back through dispatch.
                let q = std::mem::take(&mut self.pools[p].queues[i]);
                let n = q.len();
                self.pools[p].waiting -= n as u32;
                self.waiting_total -= n as u64;
                for _ in 0..n {
                    self.pools[p].dispatcher.loads.dec(i);
                }
                moved.extend(q);
            }
            self.power_off_if_idle(p, i);
        }
        for slab in moved {
            self.dispatch(slab, super::Admission::Accepted);
        }
        self.offer_queues(p);
    }

    /// A removed instance with no work left powers off.
    pub(super) fn power_off_if_idle(&mut self, p: usize, i: usize) {
        let pool = &self.pools[p];
        if i as u32 >= pool.active
            && pool.instances[i].running() == 0
            && (pool.central || pool.queues[i].is_empty())
        {
            let now = self.now;
            self.pools[p].set_powered(i, now, false);
        }
    }

    /// Keep the router's view of pool `p` in step with its active instances.
    pub(super) fn refresh_view(&mut self, p: usize) {
        if let Some(v) = self.entry.iter().position(|&e| e == p) {
            let pc = &self.cfg.pools[p];
            let n = self.pools[p].active;
            self.views[v].instances = n;
            self.views[v].slots = n * match self.cfg.service_model {
                ServiceModel::Iteration => pc.max_num_seqs(),
                ServiceModel::Slot => pc.n_slots(),
            };
        }
    }
}
