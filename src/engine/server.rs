//! The interface between the fleet driver and one serving instance.

use std::collections::VecDeque;

use super::requests::Requests;

/// What an instance may touch while it advances: the request slab, its
/// waiting queue (its own, or the pool's central queue), and the list where
/// it reports completed requests.
pub struct Ctx<'a> {
    /// Requests in flight.
    pub reqs: &'a mut Requests,
    /// Waiting requests (slab indices), FCFS.
    pub waiting: &'a mut VecDeque<u32>,
    /// Completed requests are appended here (slab indices).
    pub done: &'a mut Vec<u32>,
    /// The waiting queue is a pool-wide central queue shared with other instances.
    pub central: bool,
    /// A step of this instance that ends exactly at `now` has not been
    /// processed yet: the event loop orders its wake-up after the current
    /// event (another instance's wake-up at the same time whose preemption
    /// refilled a central queue). A run cut now must still end at that step.
    pub boundary_pending_now: bool,
}

/// Time-integrated statistics of one instance since the start of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct InstanceStats {
    /// Time spent stepping (iteration model) or slot-busy time / slots (slot model), ns.
    pub busy_ns: f64,
    /// ∫ running sequences dt, sequence·ns.
    pub batch_ns: f64,
    /// ∫ KV blocks in use dt, block·ns.
    pub kv_blocks_ns: f64,
    /// Energy drawn while busy, J (idle energy is added by the report).
    pub busy_energy_j: f64,
    /// Steps executed.
    pub steps: u64,
    /// Recompute preemptions.
    pub preemptions: u64,
}

impl InstanceStats {
    /// Component-wise difference `self − earlier`.
    pub fn since(&self, earlier: &InstanceStats) -> InstanceStats {
        InstanceStats {
            busy_ns: self.busy_ns - earlier.busy_ns,
            batch_ns: self.batch_ns - earlier.batch_ns,
            kv_blocks_ns: self.kv_blocks_ns - earlier.kv_blocks_ns,
            busy_energy_j: self.busy_energy_j - earlier.busy_energy_j,
            steps: self.steps - earlier.steps,
            preemptions: self.preemptions - earlier.preemptions,
        }
    }

    /// Component-wise sum.
    pub fn add(&mut self, o: &InstanceStats) {
        self.busy_ns += o.busy_ns;
        self.batch_ns += o.batch_ns;
        self.kv_blocks_ns += o.kv_blocks_ns;
        self.busy_energy_j += o.busy_energy_j;
        self.steps += o.steps;
        self.preemptions += o.preemptions;
    }
}

/// A serving instance model (iteration-level batching or the slot model).
pub trait Server {
    /// The instance's scheduled wake-up time has come: finish the current
    /// step/run, report completions, plan the next one. Returns the next wake
    /// time, or `None` when the instance goes idle.
    fn on_wake(&mut self, now_ns: u64, cx: &mut Ctx<'_>) -> Option<u64>;

    /// A request was appended to `cx.waiting` (`was_empty`: the queue was empty
    /// before). Returns `Some(t)` if the instance's wake time changed to `t`
    /// (it was idle and started, or it cut a run short to admit), else `None`.
    fn on_enqueue(&mut self, now_ns: u64, was_empty: bool, cx: &mut Ctx<'_>) -> Option<u64>;

    /// Sequences currently running.
    fn running(&self) -> u32;

    /// KV blocks in use at `now_ns` (iteration model; slot model: busy slots).
    fn kv_used_blocks(&self, now_ns: u64) -> u64;

    /// Whether the instance could take a request now without waiting for a completion.
    fn has_room(&self) -> bool;

    /// Time-integrated statistics up to `now_ns`.
    fn stats_at(&self, now_ns: u64) -> InstanceStats;

    /// The running-sequence cap (`max_num_seqs`; slot model: slots).
    fn seq_cap(&self) -> u32;

    /// Change the running-sequence cap; it applies from the next step. Running
    /// sequences above a lowered cap are not preempted (as vLLM).
    fn set_max_num_seqs(&mut self, cap: u32);

    /// Check internal accounting (panics on a violated invariant).
    fn check_invariants(&self, cx: &Ctx<'_>);

    /// Check invariants at every step boundary (slow; for tests).
    fn set_validate(&mut self, on: bool);
}
