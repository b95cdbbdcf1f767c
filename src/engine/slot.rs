//! The slot model: each instance has `n_slots(max_ctx)` servers; a
//! request holds one slot for its whole service time
//! `(ceil(ISL/chunk) + OSL) · step(n_slots sequences of ISL+OSL tokens)`, and
//! its first token comes after the `ceil(ISL/chunk)` prefill steps. This is the
//! M/G/c queue the analytic layer assumes (with a central queue, M/G/(c·N)).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::requests::NEVER;
use super::server::{Ctx, InstanceStats, Server};
use super::units::StepModel;
use crate::profile::{PowerCurve, Profile};

/// One serving instance under the slot model.
pub struct SlotInstance {
    model: StepModel,
    chunk: u64,
    slots: u32,
    /// Slots at the pool's max context (the cap can only lower them).
    base_slots: u32,
    busy: u32,
    ends: BinaryHeap<Reverse<(u64, u32)>>,
    wake: Option<u64>,
    power: PowerCurve,
    power_slots: u32,
    last_ns: u64,
    stats: InstanceStats,
}

impl SlotInstance {
    /// An idle instance with `slots` servers.
    pub fn new(profile: &Profile, slots: u32) -> Self {
        SlotInstance {
            model: StepModel::of(profile),
            chunk: profile.chunk.max(1) as u64,
            slots: slots.max(1),
            base_slots: slots.max(1),
            busy: 0,
            ends: BinaryHeap::new(),
            wake: None,
            power: profile.power,
            power_slots: profile.max_slots,
            last_ns: 0,
            stats: InstanceStats::default(),
        }
    }

    fn advance_stats(&mut self, now_ns: u64) {
        let dt = now_ns.saturating_sub(self.last_ns) as f64;
        if self.busy > 0 {
            let frac = self.busy as f64 / self.slots as f64;
            self.stats.busy_ns += frac * dt;
            self.stats.batch_ns += self.busy as f64 * dt;
            self.stats.kv_blocks_ns += self.busy as f64 * dt;
            self.stats.busy_energy_j += self.power.power_w(self.busy, self.power_slots) * dt * 1e-9;
        }
        self.last_ns = self.last_ns.max(now_ns);
    }

    /// Start service for waiting requests while slots are free.
    fn start_waiting(&mut self, now_ns: u64, cx: &mut Ctx<'_>) {
        while cx.accepting && self.busy < self.slots {
            let Some(r) = cx.waiting.pop_front() else {
                break;
            };
            let req = &mut cx.reqs[r];
            let prefill_steps = (req.isl as u64).div_ceil(self.chunk);
            let step_u = self
                .model
                .step_u(self.slots as u64 * (req.isl as u64 + req.osl as u64), 0);
            let prefill_u =
                prefill_steps as u128 * step_u + self.model.p_u as u128 * req.isl as u128;
            let service_u = prefill_u + req.osl as u128 * step_u;
            req.first_admit_ns = if req.first_admit_ns == NEVER {
                now_ns
            } else {
                req.first_admit_ns
            };
            req.first_token_ns = now_ns + (prefill_u >> 16) as u64;
            let end = now_ns + (service_u >> 16) as u64;
            self.ends.push(Reverse((end, r)));
            self.busy += 1;
            self.stats.steps += prefill_steps + req.osl as u64;
        }
    }

    fn next_wake(&mut self) -> Option<u64> {
        self.wake = self.ends.peek().map(|&Reverse((t, _))| t);
        self.wake
    }
}

impl Server for SlotInstance {
    fn on_wake(&mut self, now_ns: u64, cx: &mut Ctx<'_>) -> Option<u64> {
        self.advance_stats(now_ns);
        while let Some(&Reverse((t, r))) = self.ends.peek() {
            if t > now_ns {
                break;
            }
            self.ends.pop();
            self.busy -= 1;
            let req = &mut cx.reqs[r];
            req.generated = req.osl;
            req.done_ns = t;
            cx.done.push(r);
        }
        self.start_waiting(now_ns, cx);
        self.next_wake()
    }

    fn on_enqueue(&mut self, now_ns: u64, _was_empty: bool, cx: &mut Ctx<'_>) -> Option<u64> {
        if self.busy >= self.slots {
            return None;
        }
        self.advance_stats(now_ns);
        let before = self.wake;
        self.start_waiting(now_ns, cx);
        let after = self.next_wake();
        if after != before { after } else { None }
    }

    fn running(&self) -> u32 {
        self.busy
    }

    fn seq_cap(&self) -> u32 {
        self.slots
    }

    fn set_max_num_seqs(&mut self, cap: u32) {
        self.slots = cap.clamp(1, self.base_slots);
    }

    fn kv_used_blocks(&self, _now_ns: u64) -> u64 {
        self.busy as u64
    }

    fn has_room(&self) -> bool {
        self.busy < self.slots
    }

    fn stats_at(&self, now_ns: u64) -> InstanceStats {
        let mut st = self.stats;
        let dt = now_ns.saturating_sub(self.last_ns) as f64;
        if self.busy > 0 {
            st.busy_ns += self.busy as f64 / self.slots as f64 * dt;
            st.batch_ns += self.busy as f64 * dt;
            st.kv_blocks_ns += self.busy as f64 * dt;
            st.busy_energy_j += self.power.power_w(self.busy, self.power_slots) * dt * 1e-9;
        }
        st
    }

    fn evict_all(&mut self, now_ns: u64, cx: &mut Ctx<'_>) {
        self.advance_stats(now_ns);
        let mut ends: Vec<(u64, u32)> = self.ends.drain().map(|Reverse(e)| e).collect();
        // Back to the queue in order of their (unknown) admission: by end time.
        ends.sort_unstable();
        for &(_, r) in ends.iter().rev() {
            let req = &mut cx.reqs[r];
            if req.first_token_ns > now_ns {
                req.first_token_ns = NEVER;
            }
            req.kv_ready = false;
            cx.waiting.push_front(r);
        }
        self.busy = 0;
        self.wake = None;
    }

    fn check_invariants(&self, _cx: &Ctx<'_>) {
        assert_eq!(
            self.busy as usize,
            self.ends.len(),
            "busy slots vs scheduled ends"
        );
        assert!(self.busy <= self.slots, "slots over capacity");
    }

    fn set_validate(&mut self, _on: bool) {}
}
