//! Iteration-level continuous batching, with an exact
//! fast-forward over runs of pure-decode steps.
//!
//! Each step: (1) every decoding sequence gets one token, allocating a KV block
//! when its context crosses a block boundary; (2) prefilling sequences get
//! prefill tokens oldest first within the `chunk` budget; (3) waiting requests
//! are admitted FCFS while `running < max_num_seqs` and their first chunk's
//! blocks fit (not in a step that preempted). A sequence that needs a block
//! when none is free preempts the most recently admitted running sequence
//! (recompute: its KV is dropped and it returns to the head of the queue,
//! keeping the tokens it already emitted). Step time is
//! `W + H·Σctx/calibration_ctx (+ p·prefill tokens)`, or a computed profile's
//! per-batch law `W(b) + H(b)·Σctx` with prefill steps priced by the roofline
//! ([`StepCost`]).
//!
//! Decoding sequences are stored lazily: a sequence's context at step `s` is
//! `ctx_base + s`, so a pure-decode step costs `a + b·j` at its `j`-th step and
//! a run of `m` steps ends after the closed-form sum. The run stops at the
//! first completion (min-heap of finish steps), at the step whose block demand
//! would exceed the free blocks (per-phase counts of block boundaries), or —
//! cut short on arrival — at the end of the step in progress.

use super::lineheap::LineHeap;
use super::requests::{NEVER, ReqState, Requests};
use super::server::{Ctx, InstanceStats, PowerTable, Server, prefetch, prefetch_all, units_as_f64};
use super::units::{StepCost, ns_of, series_u, steps_before, units_of, walk_steps_before};
use crate::profile::Profile;

const NIL: u32 = u32::MAX;

/// Finish-heap key of a decoding sequence: `(finish step, slot,
/// generation)` packed so that integer order is the tuple's order.
#[inline(always)]
fn fin_key(step: u64, si: u32, generation: u32) -> u128 {
    ((step as u128) << 64) | ((si as u128) << 32) | generation as u128
}

/// The `(finish step, slot, generation)` of a finish-heap key.
#[inline(always)]
fn fin_parts(k: u128) -> (u64, u32, u32) {
    ((k >> 64) as u64, (k >> 32) as u32, k as u32)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Free,
    Prefill,
    Decode,
}

/// A running sequence: one aligned 64-byte cache line, so reading one (the
/// finishing sequence, a prefill chunk's, a list neighbour) is one miss.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Seq {
    req: u32,
    isl: u32,
    osl: u32,
    /// Tokens to prefill: ISL + tokens already generated (after a preemption).
    target: u32,
    prefilled: u32,
    /// Decoding: context at step `s` is `ctx_base + s`.
    ctx_base: i64,
    phase: Phase,
    /// Admission number (the instance's count of admissions when this
    /// sequence was admitted): running sequences in admission order are
    /// those in `stamp` order. Kept instead of list links, so a completion
    /// writes only its own sequence.
    stamp: u64,
    /// Bumped whenever the slot is released, to invalidate heap entries.
    generation: u32,
}

/// The work of the step or run in progress.
#[derive(Debug, Clone, Copy)]
struct Run {
    start_u: u128,
    /// Steps in the run: a pure-decode run, one step with prefill chunks,
    /// or several such steps ([`IterationInstance::msteps`]).
    m: u64,
    /// Duration of the first step, units.
    a: u128,
    /// Increase of the step duration per step, units.
    b: u128,
    /// A pure-decode run (block allocation applied at its end).
    pure: bool,
    /// Sequences in the batch.
    batch: u32,
    /// Prefill budget the run's last step leaves unused (what an
    /// admission could take at the boundary before it).
    left: u32,
    used_start: u64,
}

/// One step of a run of several steps with prefill chunks: each is what a
/// step-by-step run would plan at its boundary, and is accounted on its own
/// (the same floating-point sums, in the same order).
/// Sixteen bytes, four to a cache line: runs that would not fit are not
/// extended.
#[derive(Debug, Clone, Copy)]
struct MStep {
    /// End of the step from the run's start, units.
    end_rel: u64,
    /// KV blocks in use once the step has allocated.
    used_end: u32,
    /// Sequences in the step.
    batch: u32,
}

/// One serving instance under the iteration-level model.
pub struct IterationInstance {
    model: StepCost,
    chunk: u32,
    blk: u64,
    total_blks: u64,
    max_seqs: u32,
    fast_forward: bool,
    /// Prefill-only (disaggregated) instance: a request leaves after its prefill.
    prefill_only: bool,
    power: PowerTable,

    seqs: Vec<Seq>,
    free_seqs: Vec<u32>,
    /// Admissions so far (the next sequence's `stamp`).
    admitted: u64,
    n_running: u32,
    prefilling: Vec<u32>,
    n_dec: u32,
    sum_ctx_base: i64,
    /// Decoding sequences by the step residue (mod blk) at which they need a block.
    phase_cnt: Vec<u32>,
    /// Decoding sequences by finish step ([`fin_key`]).
    finish: LineHeap,
    /// Entries of `finish` whose sequence left decode early (preempted):
    /// while there are none, the top is valid without reading its sequence.
    finish_stale: u32,
    used: u64,
    /// Index of the next step to run.
    step: u64,
    /// End of the last step, units.
    time_u: u128,
    run: Option<Run>,
    /// Where the last KV-use probe of the run in progress found it: `(m,
    /// series(m))` with `series(m)` below that probe's elapsed units
    /// (`(0, 0)` at a run's start). Probes come in time order, so the next
    /// one walks on from here a step or two instead of solving for `m`.
    kv_probe: std::cell::Cell<(u64, u64)>,
    /// `(k, decode_demand(step, k))` at the last KV-use probe of the pure
    /// run in progress (`(0, 0)` at a run's start): the next probe, a step
    /// or two later, adds the steps between rather than summing them all.
    kv_demand: std::cell::Cell<(u64, u64)>,
    chunks: Vec<(u32, u32)>,
    /// The steps of a run of several steps with prefill chunks (`Run::m`
    /// of them): steps but the last give the whole budget to the oldest
    /// prefilling sequence, and none of their boundaries could admit,
    /// preempt, finish a prefill or complete a sequence, so the run needs
    /// no wake-up between them. The last step's chunks are `chunks`.
    msteps: Vec<MStep>,
    decode_alloc_done: bool,
    /// The sequence the next wake-up reads first (the finish heap's top),
    /// kept here so a prefetch finds it without reading the heap; a hint
    /// only (may be stale or `NIL`).
    hint_seq: u32,
    /// Requests the next wake-up reads (those whose prefill ends with the
    /// step in progress, the head of the queue), a hint as `hint_seq`.
    hint_reqs: [u32; 2],
    /// A step with prefill chunks (or admissions) whose end boundary is
    /// internal, planned together with the pure-decode run after it (that
    /// run is `run`): see [`IterationInstance::chain_pure_run`]. Its end's
    /// state changes (prefills finished) are already applied.
    /// While it lasts, `chunks` are its last step's.
    lead: Lead,
    /// Whether a step may be chained to the pure-decode run after it
    /// ([`Server::set_chain_steps`]).
    chain: bool,
    stats: InstanceStats,
    validate: bool,
}

/// The step (or run of prefill steps, [`IterationInstance::msteps`])
/// before a chained pure-decode run ([`IterationInstance::lead`]): accounted
/// on its own at the run's wake-up, as its own wake-up would have. It holds
/// only what the instance does not tell otherwise
/// ([`IterationInstance::lead_of`]): an arrival reads it from an instance
/// that at fleet scale is out of the cache, and 16 bytes keep the
/// instance's state in the cache lines it had before.
#[derive(Debug, Clone, Copy, Default)]
struct Lead {
    /// Steps (0: no lead).
    m: u32,
    /// KV blocks in use at its start.
    used_start: u32,
    /// Its duration, units.
    dur_u: u64,
}

impl IterationInstance {
    /// Record a fast-forwarded run's next step (its first, `step0`, before
    /// the first one recorded).
    #[inline]
    fn push_mstep(&mut self, step0: MStep, end_rel: u64, used_end: u32, batch: u32) {
        if self.msteps.is_empty() {
            self.msteps.push(step0);
        }
        self.msteps.push(MStep {
            end_rel,
            used_end,
            batch,
        });
    }

    /// An idle instance. `max_num_seqs` caps running sequences; `fast_forward`
    /// false gives the naive one-event-per-step reference engine.
    pub fn new(profile: &Profile, max_num_seqs: u32, fast_forward: bool) -> Self {
        let power = Self::power_table_of(profile, max_num_seqs);
        Self::with_power_table(profile, max_num_seqs, fast_forward, power)
    }

    /// The power table an instance of `profile` capped at `max_num_seqs` uses
    /// (build it once and share it among a pool's instances).
    pub fn power_table_of(profile: &Profile, max_num_seqs: u32) -> PowerTable {
        PowerTable::new(
            profile.power,
            profile.max_slots,
            max_num_seqs.max(profile.max_slots),
        )
    }

    /// As [`IterationInstance::new`], with a shared power table from
    /// [`IterationInstance::power_table_of`].
    pub fn with_power_table(
        profile: &Profile,
        max_num_seqs: u32,
        fast_forward: bool,
        power: PowerTable,
    ) -> Self {
        let blk = profile.blk_size.max(1) as u64;
        IterationInstance {
            model: StepCost::of(profile),
            chunk: profile.chunk.max(1),
            blk,
            total_blks: profile.total_kv_blks,
            max_seqs: max_num_seqs.max(1),
            fast_forward,
            prefill_only: false,
            power,
            seqs: Vec::new(),
            free_seqs: Vec::new(),
            admitted: 0,
            n_running: 0,
            prefilling: Vec::new(),
            n_dec: 0,
            sum_ctx_base: 0,
            phase_cnt: vec![0; blk as usize],
            finish: LineHeap::default(),
            finish_stale: 0,
            used: 0,
            step: 0,
            time_u: 0,
            run: None,
            kv_probe: std::cell::Cell::new((0, 0)),
            kv_demand: std::cell::Cell::new((0, 0)),
            chunks: Vec::new(),
            msteps: Vec::new(),
            decode_alloc_done: false,
            hint_seq: NIL,
            hint_reqs: [NIL; 2],
            lead: Lead::default(),
            chain: false,
            stats: InstanceStats::default(),
            validate: false,
        }
    }

    /// Make this a prefill-only instance of a disaggregated fleet: a request
    /// leaves after its prefill step with its first token computed
    /// (`generated = 1`), listed in `Ctx::handoffs` for the driver to transfer its KV.
    pub fn set_prefill_only(&mut self, on: bool) {
        self.prefill_only = on;
    }

    #[inline]
    fn blocks(&self, tok: u64) -> u64 {
        tok.div_ceil(self.blk)
    }

    /// Block phase of step `s` (`s mod blk`; a mask when blk is a power of two).
    #[inline]
    fn phase_of_step(&self, s: u64) -> usize {
        if self.blk.is_power_of_two() {
            (s & (self.blk - 1)) as usize
        } else {
            (s % self.blk) as usize
        }
    }

    #[inline]
    fn phase_key(&self, ctx_base: i64) -> usize {
        if self.blk.is_power_of_two() {
            ((1 - ctx_base) & (self.blk as i64 - 1)) as usize
        } else {
            (1 - ctx_base).rem_euclid(self.blk as i64) as usize
        }
    }

    /// Blocks demanded by decoding sequences over steps `s .. s+m`.
    fn decode_demand(&self, s: u64, m: u64) -> u64 {
        let (q, r) = (m / self.blk, m % self.blk);
        let mut d = q * self.n_dec as u64;
        // Phases s, s+1, ... (mod blk), walked without a division per step.
        let mut k = self.phase_of_step(s);
        for _ in 0..r {
            d += self.phase_cnt[k] as u64;
            k += 1;
            if k == self.phase_cnt.len() {
                k = 0;
            }
        }
        d
    }

    /// `decode_demand(self.step, k)` within the pure run in progress, walked
    /// on from the last probe's (`kv_demand`) when `k` is at most a block
    /// of steps past it: probes come in time order, a step or two apart.
    #[inline]
    fn demand_through(&self, k: u64) -> u64 {
        let (k0, d0) = self.kv_demand.get();
        let d = if k >= k0 && k - k0 <= self.blk {
            let mut d = d0;
            let mut ph = self.phase_of_step(self.step + k0);
            for _ in k0..k {
                d += self.phase_cnt[ph] as u64;
                ph += 1;
                if ph == self.phase_cnt.len() {
                    ph = 0;
                }
            }
            d
        } else {
            self.decode_demand(self.step, k)
        };
        debug_assert_eq!(d, self.decode_demand(self.step, k));
        self.kv_demand.set((k, d));
        d
    }

    /// Steps from `s` that decode can run before a step's block demand exceeds
    /// the free blocks (≥ 1 when step `s` itself fits).
    fn steps_until_kv_exhausted(&self, s: u64) -> u64 {
        let free = self.total_blks - self.used;
        let n = self.n_dec as u64;
        let q = free / n;
        let rem = free - q * n;
        let mut c = 0u64;
        // Phase of step s + q·blk + r is that of s + r.
        let mut k = self.phase_of_step(s);
        for r in 0..self.blk {
            c += self.phase_cnt[k] as u64;
            if c > rem {
                return q * self.blk + r;
            }
            k += 1;
            if k == self.phase_cnt.len() {
                k = 0;
            }
        }
        unreachable!("a full block cycle demands n_dec > rem blocks")
    }

    fn sum_decode_ctx(&self, s: u64) -> u64 {
        (self.sum_ctx_base + self.n_dec as i64 * s as i64) as u64
    }

    fn alloc_seq(&mut self, seq: Seq) -> u32 {
        if let Some(i) = self.free_seqs.pop() {
            let g = self.seqs[i as usize].generation;
            self.seqs[i as usize] = Seq {
                generation: g,
                ..seq
            };
            i
        } else {
            self.seqs.push(seq);
            (self.seqs.len() - 1) as u32
        }
    }

    /// Count `si` as running, the newest in admission order.
    fn link_tail(&mut self, si: u32) {
        self.seqs[si as usize].stamp = self.admitted;
        self.admitted += 1;
        self.n_running += 1;
    }

    /// Running sequences, oldest admitted first (a scan and a sort: only
    /// preemption, eviction and checks walk the batch in this order).
    fn running_in_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.seqs.len() as u32)
            .filter(|&i| self.seqs[i as usize].phase != Phase::Free)
            .collect();
        order.sort_unstable_by_key(|&i| self.seqs[i as usize].stamp);
        order
    }

    /// The most recently admitted running sequence (the preemption victim).
    fn newest(&self) -> u32 {
        (0..self.seqs.len() as u32)
            .filter(|&i| self.seqs[i as usize].phase != Phase::Free)
            .max_by_key(|&i| self.seqs[i as usize].stamp)
            .expect("a preemption needs a running sequence")
    }

    fn unlink_and_free(&mut self, si: u32) {
        self.n_running -= 1;
        let s = &mut self.seqs[si as usize];
        s.phase = Phase::Free;
        s.generation = s.generation.wrapping_add(1);
        self.free_seqs.push(si);
    }

    fn leave_decode(&mut self, si: u32) {
        let cb = self.seqs[si as usize].ctx_base;
        self.n_dec -= 1;
        self.sum_ctx_base -= cb;
        let k = self.phase_key(cb);
        self.phase_cnt[k] -= 1;
    }

    /// Recompute-preempt a running sequence at the boundary before step `self.step`.
    fn preempt(&mut self, si: u32, cx: &mut Ctx<'_>) {
        let s = self.seqs[si as usize];
        let held = match s.phase {
            Phase::Prefill => {
                self.prefilling.retain(|&x| x != si);
                self.blocks(s.prefilled as u64)
            }
            Phase::Decode => {
                let g = (s.ctx_base + self.step as i64 - s.isl as i64) as u64;
                cx.reqs[s.req].generated = g as u32;
                self.leave_decode(si);
                // Its finish entry stays in the heap, stale.
                self.finish_stale += 1;
                let held_tok = s.isl as u64 + g - if self.decode_alloc_done { 0 } else { 1 };
                self.blocks(held_tok)
            }
            Phase::Free => unreachable!("preempting a free sequence"),
        };
        self.used -= held;
        self.unlink_and_free(si);
        // Recompute preemption drops the KV cache, transferred or not.
        cx.reqs[s.req].kv_ready = false;
        cx.waiting.push_front(s.req);
        self.stats.preemptions += 1;
    }

    fn complete(&mut self, si: u32, now_ns: u64, cx: &mut Ctx<'_>) {
        let s = self.seqs[si as usize];
        if s.phase == Phase::Decode {
            self.leave_decode(si);
        }
        self.used -= self.blocks(s.isl as u64 + s.osl as u64 - 1);
        self.unlink_and_free(si);
        let r = &mut cx.reqs[s.req];
        r.generated = s.osl;
        r.done_ns = now_ns;
        cx.done.push(s.req);
    }

    /// Prefill of `si` finished with step `s`: emit a token, then decode or complete.
    #[inline(always)]
    fn finish_prefill(&mut self, si: u32, s: u64, now_ns: u64, cx: &mut Ctx<'_>) {
        let seq = self.seqs[si as usize];
        let r = &mut cx.reqs[seq.req];
        let g = r.generated + 1;
        r.generated = g;
        if self.prefill_only && g < seq.osl {
            // Hand-off: the KV cache leaves with the request.
            self.used -= self.blocks(seq.prefilled as u64);
            self.unlink_and_free(si);
            cx.handoffs.push(seq.req);
            return;
        }
        if r.first_token_ns == NEVER {
            r.first_token_ns = now_ns;
        }
        if g >= seq.osl {
            self.complete(si, now_ns, cx);
            return;
        }
        let ctx_base = seq.isl as i64 + g as i64 - (s as i64 + 1);
        let finish_step = s + (seq.osl - g) as u64;
        let k = self.phase_key(ctx_base);
        let sq = &mut self.seqs[si as usize];
        sq.phase = Phase::Decode;
        sq.ctx_base = ctx_base;
        let generation = sq.generation;
        self.n_dec += 1;
        self.sum_ctx_base += ctx_base;
        self.phase_cnt[k] += 1;
        self.finish.push(fin_key(finish_step, si, generation));
    }

    /// Drop stale heap entries from the top.
    #[inline(always)]
    fn clean_finish_top(&mut self) {
        if self.finish_stale != 0 {
            self.drop_stale_finish_top();
        }
    }

    /// [`IterationInstance::clean_finish_top`] when there are stale entries.
    #[cold]
    fn drop_stale_finish_top(&mut self) {
        while let Some(k) = self.finish.peek() {
            let (_, si, g) = fin_parts(k);
            let s = &self.seqs[si as usize];
            if s.generation == g && s.phase == Phase::Decode {
                break;
            }
            self.finish.pop();
            self.finish_stale -= 1;
        }
    }

    /// Could the head of the queue be admitted at a step whose free blocks
    /// (after decode allocation) leave `used_after_decode` in use?
    #[inline]
    fn admissible(&self, used_after_decode: u64, cx: &Ctx<'_>) -> bool {
        let Some(&r) = cx.waiting.front() else {
            return false;
        };
        if !cx.accepting || self.n_running >= self.max_seqs {
            return false;
        }
        if cx.central {
            return true;
        }
        used_after_decode + self.admission_blocks(&cx.reqs[r]) <= self.total_blks
    }

    /// Blocks a waiting request needs to be admitted: its first prefill
    /// chunk, or its whole transferred KV cache plus the next token's slot.
    fn admission_blocks(&self, req: &ReqState) -> u64 {
        if req.kv_ready {
            self.blocks(req.isl as u64 + req.generated as u64)
        } else {
            let target = req.isl as u64 + req.generated as u64;
            self.blocks(target.min(self.chunk as u64))
        }
    }

    /// Admit a request whose KV cache was transferred in straight into
    /// decode at step `s`: it decodes in this very step (context ISL + g).
    fn admit_transferred(&mut self, r: u32, req: &ReqState, s: u64, now_ns: u64, cx: &mut Ctx<'_>) {
        let g = req.generated;
        let ctx_base = req.isl as i64 + g as i64 - s as i64;
        let si = self.alloc_seq(Seq {
            req: r,
            isl: req.isl,
            osl: req.osl,
            target: req.isl + g,
            prefilled: req.isl + g,
            ctx_base,
            phase: Phase::Decode,
            stamp: 0,
            generation: 0,
        });
        self.link_tail(si);
        self.used += self.admission_blocks(req);
        self.n_dec += 1;
        self.sum_ctx_base += ctx_base;
        let k = self.phase_key(ctx_base);
        self.phase_cnt[k] += 1;
        let generation = self.seqs[si as usize].generation;
        self.finish
            .push(fin_key(s + (req.osl - g) as u64 - 1, si, generation));
        if cx.reqs[r].first_admit_ns == NEVER {
            cx.reqs[r].first_admit_ns = now_ns;
        }
    }

    /// Note the requests the next wake-up reads first (see `hint_reqs`).
    #[inline]
    fn set_hint_reqs(&mut self, cx: &Ctx<'_>) {
        let mut h = [NIL; 2];
        let mut n = 0;
        // A chained run's `chunks` are its lead's, done with.
        let chunks: &[(u32, u32)] = if self.lead.m > 0 { &[] } else { &self.chunks };
        for &(si, _) in chunks {
            let sq = &self.seqs[si as usize];
            if sq.prefilled == sq.target && n < h.len() {
                h[n] = sq.req;
                n += 1;
            }
        }
        if n < h.len()
            && let Some(&r) = cx.waiting.front()
        {
            h[n] = r;
        }
        self.hint_reqs = h;
    }

    /// `steps_before(run.a, run.b, x)` for the run in progress, walking on
    /// from the last probe (`kv_probe`) when `x` is at or past it, a few
    /// steps at most, else solving afresh. The same `m` either way: the
    /// largest with `series(m) < x`.
    fn steps_done(&self, run: &Run, x: u128) -> u64 {
        let (m, s) = self.kv_probe.get();
        let (m, s) = (x > s as u128)
            .then(|| walk_steps_before(run.a, run.b, x, m, s as u128, 4))
            .flatten()
            .unwrap_or_else(|| {
                let m = steps_before(run.a, run.b, x);
                (m, series_u(run.a, run.b, m))
            });
        if let Ok(s) = u64::try_from(s) {
            self.kv_probe.set((m, s));
        }
        m
    }

    /// Duration of a run, units.
    #[inline]
    fn dur_u(&self, run: &Run) -> u128 {
        if !run.pure && run.m > 1 {
            self.msteps[run.m as usize - 1].end_rel as u128
        } else {
            series_u(run.a, run.b, run.m)
        }
    }

    #[inline]
    fn start_run(&mut self, run: Run) -> Option<u64> {
        let end = run.start_u + self.dur_u(&run);
        self.run = Some(run);
        self.kv_probe.set((0, 0));
        self.kv_demand.set((0, 0));
        self.hint_seq = self.finish.peek().map_or(NIL, |k| fin_parts(k).1);
        Some(ns_of(end))
    }

    /// Plan the next step (or pure-decode run) starting at `self.time_u`.
    fn plan(&mut self, now_ns: u64, cx: &mut Ctx<'_>) -> Option<u64> {
        if self.n_running == 0 && (cx.waiting.is_empty() || !cx.accepting) {
            self.run = None;
            return None;
        }
        self.decode_alloc_done = false;
        if self.prefilling.is_empty() && self.n_dec > 0 {
            let d0 = self.phase_cnt[self.phase_of_step(self.step)] as u64;
            if self.used + d0 <= self.total_blks && !self.admissible(self.used + d0, cx) {
                return self.start_pure_run(cx);
            }
        }
        self.naive_step(now_ns, cx)
    }

    /// Start the pure-decode run from step `self.step`: nothing prefills,
    /// something decodes, its decode tokens fit and nothing can be admitted.
    #[inline(always)]
    fn start_pure_run(&mut self, cx: &Ctx<'_>) -> Option<u64> {
        let s = self.step;
        self.clean_finish_top();
        let Some(k) = self.finish.peek() else {
            unreachable!("decoding sequences without finish entries")
        };
        let (f, _, _) = fin_parts(k);
        let to_finish = f + 1 - s;
        // Each decoding sequence needs at most ceil(m / blk) blocks in
        // m steps: when even that fits, KV cannot end the run first.
        let worst = self.n_dec as u64 * to_finish.div_ceil(self.blk);
        let mut m = if worst <= self.total_blks - self.used {
            to_finish
        } else {
            to_finish.min(self.steps_until_kv_exhausted(s))
        };
        if !self.fast_forward {
            m = 1;
        }
        let (a, b) = self.model.decode_ab(self.n_dec, self.sum_decode_ctx(s));
        let run = Run {
            start_u: self.time_u,
            m,
            a,
            b,
            pure: true,
            batch: self.n_dec,
            left: 0,
            used_start: self.used,
        };
        self.set_hint_reqs(cx);
        self.start_run(run)
    }

    /// The step (or run of prefill steps) just planned, `lead`, ends at a
    /// boundary where nothing happens that anyone sees: every prefilling
    /// sequence finishes its prefill there and goes on decoding, no sequence
    /// completes, and the step after it is a pure-decode step that cannot
    /// admit. Then that boundary needs no wake-up: its changes are made now
    /// (with its time) and the pure-decode run after it is planned as
    /// `plan` would plan it there; the lead is kept as `self.lead` and
    /// accounted on its own when the run ends. An arrival that could be
    /// admitted at that boundary cuts the run there, and one that could be
    /// admitted at a boundary inside the lead undoes the chaining first
    /// ([`IterationInstance::unchain`]) and cuts the lead as it would be
    /// cut alone ([`Server::on_enqueue`]). Returns `None` when the boundary
    /// is not of this kind (having at most dropped stale finish entries).
    fn chain_pure_run(&mut self, lead: &Run, cx: &mut Ctx<'_>) -> Option<Option<u64>> {
        if !self.chain
            || !self.fast_forward
            || self.prefill_only
            || lead.pure
            || self.used.max(lead.used_start) > u32::MAX as u64
            || lead.m > u32::MAX as u64
        {
            return None;
        }
        // The lead's last step.
        let s = self.step + lead.m - 1;
        let next = self.phase_of_step(s + 1);
        // Decode tokens the step after demands: those already decoding plus
        // the sequences whose prefill ends now.
        let mut d0 = self.phase_cnt[next] as u64;
        for &si in &self.prefilling {
            let sq = &self.seqs[si as usize];
            if sq.prefilled != sq.target {
                return None;
            }
            let g = cx.reqs[sq.req].generated + 1;
            if g >= sq.osl {
                return None;
            }
            let ctx_base = sq.isl as i64 + g as i64 - (s as i64 + 1);
            d0 += (self.phase_key(ctx_base) == next) as u64;
        }
        if self.n_dec as usize + self.prefilling.len() == 0 {
            return None;
        }
        self.clean_finish_top();
        if self.finish.peek().is_some_and(|k| fin_parts(k).0 <= s) {
            return None;
        }
        if self.used + d0 > self.total_blks || self.admissible(self.used + d0, cx) {
            return None;
        }
        let Ok(dur_u) = u64::try_from(self.dur_u(lead)) else {
            return None;
        };
        let end_u = lead.start_u + dur_u as u128;
        let end_ns = ns_of(end_u);
        debug_assert_eq!(lead.left, if lead.m > 1 { lead.left } else { 0 });
        let planned = *lead;
        let lead = Lead {
            m: lead.m as u32,
            dur_u,
            used_start: lead.used_start as u32,
        };
        self.step = s + 1;
        self.time_u = end_u;
        // Every prefilling sequence has its last chunk in the last step
        // (`chunks`, oldest first, as `prefilling`), kept for `unchain`.
        debug_assert_eq!(self.chunks.len(), self.prefilling.len());
        for k in 0..self.chunks.len() {
            self.finish_prefill(self.chunks[k].0, s, end_ns, cx);
        }
        self.prefilling.clear();
        self.decode_alloc_done = false;
        self.lead = lead;
        let next = self.start_pure_run(cx);
        debug_assert!(
            self.run
                .and_then(|tail| self.lead_of(&tail))
                .is_some_and(|(l, d, _)| (l.batch, l.left, l.a, d)
                    == (planned.batch, planned.left, planned.a, dur_u as u128)),
            "the lead is not told back as planned"
        );
        Some(next)
    }

    /// The chained lead of `tail` (the run in progress) as it was planned,
    /// its duration and the KV use it ends with; `None` without one. What
    /// [`Lead`] does not hold follows: the lead ends where the run starts,
    /// with the KV use the run starts with; a single step's batch is the
    /// run's (its prefills all went on decoding) and it left no budget (as
    /// `naive_step` plans it); several steps are in `msteps` and their last
    /// one's chunks still in `chunks`.
    fn lead_of(&self, tail: &Run) -> Option<(Run, u128, u64)> {
        let l = self.lead;
        if l.m == 0 {
            return None;
        }
        let dur_u = l.dur_u as u128;
        let (a, batch, left) = if l.m > 1 {
            let used: u32 = self.chunks.iter().map(|&(_, k)| k).sum();
            let first = &self.msteps[0];
            (first.end_rel as u128, first.batch, self.chunk - used)
        } else {
            (dur_u, tail.batch, 0)
        };
        let run = Run {
            start_u: tail.start_u - dur_u,
            m: l.m as u64,
            a,
            b: 0,
            pure: false,
            batch,
            left,
            used_start: l.used_start as u64,
        };
        Some((run, dur_u, tail.used_start))
    }

    /// Undo [`IterationInstance::chain_pure_run`]: back to the lead step in
    /// progress, its end's changes not yet made (the sequences whose
    /// prefill it finishes prefilling again, their finish entries stale),
    /// so that it can be cut as an unchained run is.
    fn unchain(&mut self, cx: &mut Ctx<'_>) {
        let tail = self.run.expect("a chained run");
        let (lead, _, _) = self.lead_of(&tail).expect("a chained run");
        self.lead = Lead::default();
        for k in 0..self.chunks.len() {
            let si = self.chunks[k].0;
            let sq = self.seqs[si as usize];
            debug_assert_eq!(sq.phase, Phase::Decode);
            self.leave_decode(si);
            let q = &mut self.seqs[si as usize];
            q.phase = Phase::Prefill;
            // Its finish entry must stay stale once it decodes again.
            q.generation = q.generation.wrapping_add(1);
            self.finish_stale += 1;
            let r = &mut cx.reqs[sq.req];
            r.generated -= 1;
            if r.generated == 0 {
                // Its first token came from this prefill.
                r.first_token_ns = NEVER;
            }
            self.prefilling.push(si);
        }
        self.step -= lead.m;
        self.time_u = lead.start_u;
        // As `naive_step` left it for the lead.
        self.decode_alloc_done = true;
        self.run = Some(lead);
        self.kv_probe.set((0, 0));
        self.kv_demand.set((0, 0));
    }

    fn naive_step(&mut self, now_ns: u64, cx: &mut Ctx<'_>) -> Option<u64> {
        let s = self.step;
        let used_start = self.used;
        let mut preempted = false;
        // (1) decode tokens: one block each at a boundary.
        let demand = self.phase_cnt[self.phase_of_step(s)] as u64;
        if self.used + demand <= self.total_blks {
            self.used += demand;
        } else {
            // In admission order; victims are the newest, from the end.
            let order = self.running_in_order();
            let (mut j, mut end) = (0, order.len());
            while j < end {
                let cur = order[j];
                let sq = self.seqs[cur as usize];
                if sq.phase == Phase::Decode && self.phase_key(sq.ctx_base) == self.phase_of_step(s)
                {
                    let mut self_preempted = false;
                    while self.used >= self.total_blks {
                        end -= 1;
                        let victim = order[end];
                        self.preempt(victim, cx);
                        preempted = true;
                        if victim == cur {
                            self_preempted = true;
                            break;
                        }
                    }
                    if self_preempted {
                        break;
                    }
                    self.used += 1;
                }
                j += 1;
            }
        }
        self.decode_alloc_done = true;
        // (2) prefill chunks, oldest first.
        let mut budget = self.chunk;
        self.chunks.clear();
        let mut i = 0;
        while i < self.prefilling.len() && budget > 0 {
            let si = self.prefilling[i];
            let sq = self.seqs[si as usize];
            let k = budget.min(sq.target - sq.prefilled);
            let need = self.blocks((sq.prefilled + k) as u64) - self.blocks(sq.prefilled as u64);
            let mut self_preempted = false;
            while self.used + need > self.total_blks {
                let victim = self.newest();
                self.preempt(victim, cx);
                preempted = true;
                if victim == si {
                    self_preempted = true;
                    break;
                }
            }
            if self_preempted {
                continue;
            }
            self.used += need;
            self.seqs[si as usize].prefilled += k;
            budget -= k;
            self.chunks.push((si, k));
            i += 1;
        }
        // (3) admission, FCFS, not in a step that preempted.
        if cx.accepting && (!preempted || self.n_running == 0) {
            while self.n_running < self.max_seqs {
                let Some(&r) = cx.waiting.front() else { break };
                let req = cx.reqs[r];
                if req.kv_ready {
                    if self.used + self.admission_blocks(&req) > self.total_blks {
                        break;
                    }
                    cx.waiting.pop_front();
                    self.admit_transferred(r, &req, s, now_ns, cx);
                    continue;
                }
                if budget == 0 {
                    break;
                }
                let target = req.isl + req.generated;
                let k = budget.min(target);
                let need = self.blocks(k as u64);
                if self.used + need > self.total_blks {
                    break;
                }
                cx.waiting.pop_front();
                let si = self.alloc_seq(Seq {
                    req: r,
                    isl: req.isl,
                    osl: req.osl,
                    target,
                    prefilled: k,
                    ctx_base: 0,
                    phase: Phase::Prefill,
                    stamp: 0,
                    generation: 0,
                });
                self.link_tail(si);
                self.prefilling.push(si);
                self.used += need;
                budget -= k;
                self.chunks.push((si, k));
                if cx.reqs[r].first_admit_ns == NEVER {
                    cx.reqs[r].first_admit_ns = now_ns;
                }
            }
        }
        if self.n_dec == 0 && self.chunks.is_empty() {
            debug_assert!(
                cx.waiting.is_empty() || self.n_running > 0,
                "head request can never be admitted"
            );
            self.run = None;
            return None;
        }
        let seqs = &self.seqs;
        let chunks = self.chunks.iter().map(|&(si, k)| {
            let after = seqs[si as usize].prefilled as u64;
            (after.saturating_sub(k as u64), k as u64)
        });
        let a = self
            .model
            .mixed_u(self.n_dec, self.sum_decode_ctx(s), chunks);
        let mut run = Run {
            start_u: self.time_u,
            m: 1,
            a,
            b: 0,
            pure: false,
            batch: self.n_dec + self.chunks.len() as u32,
            left: 0,
            used_start,
        };
        if self.fast_forward {
            self.extend_prefill_run(&mut run, cx);
        }
        if let Some(next) = self.chain_pure_run(&run, cx) {
            return next;
        }
        self.set_hint_reqs(cx);
        self.start_run(run)
    }

    /// Could a step whose prefill chunks leave `left` of the budget admit
    /// the head of the queue (conservatively: KV is not checked)?
    #[inline]
    fn may_admit(&self, left: u32, cx: &Ctx<'_>) -> bool {
        cx.accepting
            && self.n_running < self.max_seqs
            && cx
                .waiting
                .front()
                .is_some_and(|&r| left > 0 || cx.reqs[r].kv_ready)
    }

    /// Extend the step just planned (step `self.step`, one chunk taking
    /// the whole budget) by the steps that follow it while their boundaries
    /// are internal: no sequence completes or finishes its prefill there,
    /// the next step's decode tokens and chunks fit without preempting (and
    /// leave a block free, so `has_room` reads the same all along), and it
    /// could not admit (its chunks take the whole budget, or nothing
    /// waits). Each step is planned exactly as `naive_step` would plan it
    /// at its boundary; the last may finish prefills. An arrival that could
    /// be admitted at a later boundary cuts the run there (`on_enqueue`).
    fn extend_prefill_run(&mut self, run: &mut Run, cx: &Ctx<'_>) {
        let &[(x, k0)] = self.chunks.as_slice() else {
            return;
        };
        let sx = self.seqs[x as usize];
        if k0 != self.chunk
            || sx.prefilled >= sx.target
            || self.used >= self.total_blks
            || self.total_blks > u32::MAX as u64
            || run.a > u64::MAX as u128
        {
            return;
        }
        if self.may_admit(0, cx) {
            return;
        }
        debug_assert_eq!(self.prefilling.first(), Some(&x));
        self.clean_finish_top();
        let f_top = self.finish.peek().map_or(u64::MAX, |k| fin_parts(k).0);
        let s = self.step;
        let budget = self.chunk;
        // Step 0 is stored once a step follows it.
        self.msteps.clear();
        let step0 = MStep {
            end_rel: run.a as u64,
            used_end: self.used as u32,
            batch: run.batch,
        };
        let mut total = run.a;
        let mut j = 1u64;
        let sum_ctx0 = self.sum_decode_ctx(s);
        loop {
            // The boundary before step s + j: a sequence finishing with step
            // s + j − 1 completes there.
            if f_top < s + j {
                break;
            }
            let d = self.phase_cnt[self.phase_of_step(s + j)] as u64;
            let mut used = self.used + d;
            if used > self.total_blks {
                break;
            }
            let sum_dec = sum_ctx0 + self.n_dec as u64 * j;
            let sx = self.seqs[x as usize];
            let rem = sx.target - sx.prefilled;
            if rem > budget {
                let need =
                    self.blocks((sx.prefilled + budget) as u64) - self.blocks(sx.prefilled as u64);
                used += need;
                if used >= self.total_blks {
                    break;
                }
                let dur = self.model.mixed_u(
                    self.n_dec,
                    sum_dec,
                    std::iter::once((sx.prefilled as u64, budget as u64)),
                );
                if total + dur > u64::MAX as u128 {
                    break;
                }
                self.seqs[x as usize].prefilled += budget;
                self.used = used;
                total += dur;
                self.push_mstep(step0, total as u64, used as u32, self.n_dec + 1);
                j += 1;
                continue;
            }
            // The step that finishes `x`'s prefill: the budget left goes to
            // the next prefilling sequences, oldest first.
            let mut left = budget;
            let mut n = 0;
            let mut fits = true;
            while n < self.prefilling.len() && left > 0 {
                let sq = self.seqs[self.prefilling[n] as usize];
                let k = left.min(sq.target - sq.prefilled);
                used += self.blocks((sq.prefilled + k) as u64) - self.blocks(sq.prefilled as u64);
                if used > self.total_blks {
                    fits = false;
                    break;
                }
                left -= k;
                n += 1;
            }
            if !fits || used >= self.total_blks || self.may_admit(left, cx) {
                break;
            }
            let seqs = &self.seqs;
            let chunks = self.prefilling[..n].iter().scan(budget, |left, &si| {
                let sq = &seqs[si as usize];
                let k = (*left).min(sq.target - sq.prefilled);
                *left -= k;
                Some((sq.prefilled as u64, k as u64))
            });
            let dur = self.model.mixed_u(self.n_dec, sum_dec, chunks);
            if total + dur > u64::MAX as u128 {
                break;
            }
            self.chunks.clear();
            let mut left = budget;
            for &si in &self.prefilling[..n] {
                let sq = &mut self.seqs[si as usize];
                let k = left.min(sq.target - sq.prefilled);
                sq.prefilled += k;
                self.chunks.push((si, k));
                left -= k;
            }
            self.used = used;
            total += dur;
            self.push_mstep(step0, total as u64, used as u32, self.n_dec + n as u32);
            run.left = left;
            j += 1;
            break;
        }
        run.m = j;
    }

    /// Of a run of several prefill steps, the steps whose boundary (their
    /// end) is over at `cut_ns` (ends before it, in ns).
    fn msteps_over(&self, run: &Run, cut_ns: u64) -> usize {
        let cut_u = units_of(cut_ns);
        self.msteps[..run.m as usize]
            .iter()
            .take_while(|st| run.start_u + (st.end_rel as u128) < cut_u)
            .count()
    }

    /// Cut a run of several prefill steps after its step `j` (< m − 1):
    /// undo the later steps' chunks and blocks.
    fn truncate_prefill_run(&mut self, j: usize, cx: &Ctx<'_>) -> u64 {
        let run = self.run.as_mut().expect("a run in progress");
        let m = run.m as usize;
        debug_assert!(j + 1 < m);
        let x = self.prefilling[0];
        for &(si, k) in &self.chunks {
            self.seqs[si as usize].prefilled -= k;
        }
        self.seqs[x as usize].prefilled -= self.chunk * (m - 2 - j) as u32;
        self.chunks.clear();
        self.chunks.push((x, self.chunk));
        self.used = self.msteps[j].used_end as u64;
        run.m = j as u64 + 1;
        run.left = 0;
        let end = run.start_u + self.msteps[j].end_rel as u128;
        self.msteps.truncate(j + 1);
        self.set_hint_reqs(cx);
        ns_of(end)
    }

    /// Account a whole run lasting `dur_u` into `st`, KV use ending at
    /// `used_end`: a run of several prefill steps step by step, as a
    /// wake-up per step would have.
    #[inline]
    fn account_whole(&self, st: &mut InstanceStats, run: &Run, dur_u: u128, used_end: u64) {
        if !run.pure && run.m > 1 {
            self.account_msteps(st, run, used_end);
        } else {
            self.account_into(st, run.batch, run.used_start, used_end, dur_u, run.m);
        }
    }

    /// [`IterationInstance::account_whole`] of a run of several prefill steps.
    fn account_msteps(&self, st: &mut InstanceStats, run: &Run, used_end: u64) {
        let (mut start, mut used) = (0u128, run.used_start);
        for ms in &self.msteps[..run.m as usize] {
            let (end, used_end) = (ms.end_rel as u128, ms.used_end as u64);
            self.account_into(st, ms.batch, used, used_end, end - start, 1);
            start = end;
            used = used_end;
        }
        debug_assert_eq!(used, used_end);
    }

    /// Account `steps` steps of `batch` sequences lasting `dur_u`, KV use
    /// going from `used_start` to `used_end`, into `st`.
    #[inline]
    fn account_into(
        &self,
        st: &mut InstanceStats,
        batch: u32,
        used_start: u64,
        used_end: u64,
        dur_u: u128,
        steps: u64,
    ) {
        let dur_ns = units_as_f64(dur_u) / 65536.0;
        st.busy_ns += dur_ns;
        st.batch_ns += batch as f64 * dur_ns;
        st.kv_blocks_ns += (used_start + used_end) as f64 / 2.0 * dur_ns;
        st.busy_energy_j += self.power.power_w(batch) * dur_ns * 1e-9;
        st.steps += steps;
    }

    /// Account the steps of a run of several prefill steps that are over
    /// at `now_ns` (all but the last, which is always in progress until its
    /// wake-up) into `st`; returns how many, with the start and KV use of
    /// the step in progress (units from the run's start, blocks).
    fn account_msteps_over(
        &self,
        st: &mut InstanceStats,
        run: &Run,
        now_ns: u64,
    ) -> (u64, u128, u64) {
        let m = run.m as usize;
        let over = self.msteps_over(run, now_ns + 1).min(m - 1);
        let (mut start, mut used) = (0u128, run.used_start);
        for ms in &self.msteps[..over] {
            let (end, used_end) = (ms.end_rel as u128, ms.used_end as u64);
            self.account_into(st, ms.batch, used, used_end, end - start, 1);
            start = end;
            used = used_end;
        }
        (over as u64, start, used)
    }
}

impl Server for IterationInstance {
    fn on_wake(&mut self, now_ns: u64, cx: &mut Ctx<'_>) -> Option<u64> {
        // Start loading the sequences this wake-up reads (the finishing one,
        // the prefill chunks') at once rather than one miss after another;
        // the finishing one (prefetched an event ahead from `hint_seq`)
        // names the request its completion writes and the driver then reads.
        let seqs = self.seqs.as_ptr();
        if let Some(k) = self.finish.peek() {
            let si = fin_parts(k).1 as usize;
            prefetch(seqs.wrapping_add(si));
            if let Some(sq) = self.seqs.get(si) {
                cx.reqs.prefetch(sq.req);
            }
        }
        for &(si, _) in &self.chunks {
            prefetch(seqs.wrapping_add(si as usize));
        }
        let run = self.run.take().expect("wake without a run in progress");
        if let Some((lead, dur_u, used_end)) = self.lead_of(&run) {
            // The chained step first, as its own wake-up would have; its
            // end's changes are made.
            self.lead = Lead::default();
            let mut st = self.stats;
            self.account_whole(&mut st, &lead, dur_u, used_end);
            self.stats = st;
            self.chunks.clear();
        }
        let dur_u = self.dur_u(&run);
        let end_u = run.start_u + dur_u;
        debug_assert_eq!(ns_of(end_u), now_ns);
        let s_first = self.step;
        if run.pure {
            self.used += self.decode_demand(s_first, run.m);
        }
        // A chained run cut at its first boundary (`m` = 0) did not run.
        if run.m > 0 {
            let mut st = self.stats;
            self.account_whole(&mut st, &run, dur_u, self.used);
            self.stats = st;
        }
        self.step += run.m;
        self.time_u = end_u;
        let last = self.step.wrapping_sub(1);
        let chunks = std::mem::take(&mut self.chunks);
        for &(si, _) in &chunks {
            let sq = self.seqs[si as usize];
            if sq.phase == Phase::Prefill && sq.prefilled == sq.target {
                self.finish_prefill(si, last, now_ns, cx);
            }
        }
        if !chunks.is_empty() {
            let seqs = &self.seqs;
            self.prefilling
                .retain(|&x| seqs[x as usize].phase == Phase::Prefill);
        }
        self.chunks = chunks;
        self.chunks.clear();
        while let Some(k) = self.finish.peek() {
            let (f, si, g) = fin_parts(k);
            if f >= self.step {
                break;
            }
            self.finish.pop();
            let sq = self.seqs[si as usize];
            if sq.generation == g && sq.phase == Phase::Decode {
                self.complete(si, now_ns, cx);
            } else {
                self.finish_stale -= 1;
            }
        }
        if self.validate {
            self.check_invariants(cx);
        }
        self.plan(now_ns, cx)
    }

    fn on_enqueue(&mut self, now_ns: u64, was_empty: bool, cx: &mut Ctx<'_>) -> Option<u64> {
        if self.lead.m > 0
            && was_empty
            && self.n_running < self.max_seqs
            && let Some(tail) = self.run
            && let Some((lead, dur_u, _)) = self.lead_of(&tail)
        {
            // A chained run: the lead's boundaries come first (the last one
            // could admit the arrival), then the pure run's.
            let cut_ns = if cx.boundary_pending_now {
                now_ns
            } else {
                now_ns + 1
            };
            if ns_of(lead.start_u + dur_u) >= cut_ns {
                let last = lead.m as usize - 1;
                if lead.m > 1
                    && self.msteps_over(&lead, cut_ns) < last
                    && self.may_admit(lead.left, cx)
                {
                    // A boundary inside the lead could admit it: cut there,
                    // as the lead alone would be cut.
                    self.unchain(cx);
                    return self.on_enqueue(now_ns, was_empty, cx);
                }
                let run = self.run.as_mut().expect("a chained run");
                if run.m == 0 {
                    return None;
                }
                run.m = 0;
                return Some(ns_of(run.start_u));
            }
        }
        match self.run {
            None => {
                self.time_u = self.time_u.max(units_of(now_ns));
                self.plan(now_ns, cx)
            }
            Some(ref mut run)
                if run.pure && run.m > 1 && was_empty && self.n_running < self.max_seqs =>
            {
                // Steps whose wake-up time is ≤ now are over (< now when that
                // wake-up is still pending); the run ends with the step in progress.
                let cut_ns = if cx.boundary_pending_now {
                    now_ns
                } else {
                    now_ns + 1
                };
                let x = units_of(cut_ns).saturating_sub(run.start_u);
                let new_m = steps_before(run.a, run.b, x) + 1;
                if new_m < run.m {
                    run.m = new_m;
                    Some(ns_of(run.start_u + series_u(run.a, run.b, new_m)))
                } else {
                    None
                }
            }
            Some(run) if !run.pure && run.m > 1 => {
                // The boundaries still to come (ends at or after the cut, as
                // above) plan their steps with this queue: cut the run at the
                // first whose next step could admit its head.
                let cut_ns = if cx.boundary_pending_now {
                    now_ns
                } else {
                    now_ns + 1
                };
                // Only the last step can leave budget: a waiting request
                // needs it, unless its KV cache was transferred in.
                let last = run.m as usize - 1;
                let first = self.msteps_over(&run, cut_ns);
                if first >= last || !self.may_admit(run.left, cx) {
                    return None;
                }
                let kv_ready = cx.waiting.front().is_some_and(|&r| cx.reqs[r].kv_ready);
                Some(self.truncate_prefill_run(if kv_ready { first } else { last - 1 }, cx))
            }
            Some(_) => None,
        }
    }

    fn running(&self) -> u32 {
        self.n_running
    }

    fn seq_cap(&self) -> u32 {
        self.max_seqs
    }

    fn set_max_num_seqs(&mut self, cap: u32) {
        self.max_seqs = cap.max(1);
    }

    fn kv_used_blocks(&self, now_ns: u64) -> u64 {
        let mut in_progress = self.run;
        if let Some(tail) = self.run
            && let Some((lead, dur_u, _)) = self.lead_of(&tail)
            && (now_ns < ns_of(lead.start_u + dur_u) || tail.m == 0)
        {
            if lead.m == 1 {
                // The chained step in progress has allocated.
                return self.used;
            }
            in_progress = Some(lead);
        }
        match in_progress {
            Some(run) if run.pure => {
                let done = self.steps_done(&run, units_of(now_ns + 1).saturating_sub(run.start_u));
                self.used + self.demand_through((done + 1).min(run.m))
            }
            Some(run) if run.m > 1 => {
                // The step in progress has allocated (as a step of its own).
                let over = self.msteps_over(&run, now_ns + 1).min(run.m as usize - 1);
                self.msteps[over].used_end as u64
            }
            _ => self.used,
        }
    }

    fn has_room(&self) -> bool {
        self.n_running < self.max_seqs && self.used < self.total_blks
    }

    fn stats_at(&self, now_ns: u64) -> InstanceStats {
        let mut st = self.stats;
        let mut in_progress = self.run;
        if let Some(tail) = self.run
            && let Some((lead, dur_u, used_end)) = self.lead_of(&tail)
        {
            if now_ns < ns_of(lead.start_u + dur_u) {
                // The chained step is the one in progress.
                in_progress = Some(lead);
            } else {
                self.account_whole(&mut st, &lead, dur_u, used_end);
            }
        }
        if let Some(mut run) = in_progress {
            if !run.pure && run.m > 1 {
                // Steps over are accounted as their wake-ups would have; the
                // one in progress is a run of its own.
                let (over, start, used) = self.account_msteps_over(&mut st, &run, now_ns);
                let ms = self.msteps[over as usize];
                run = Run {
                    start_u: run.start_u + start,
                    m: 1,
                    a: ms.end_rel as u128 - start,
                    b: 0,
                    pure: false,
                    batch: ms.batch,
                    left: 0,
                    used_start: used,
                };
            }
            let dur_u = self.dur_u(&run);
            let el_u = units_of(now_ns).saturating_sub(run.start_u).min(dur_u);
            let el_ns = units_as_f64(el_u) / 65536.0;
            st.busy_ns += el_ns;
            st.batch_ns += run.batch as f64 * el_ns;
            st.kv_blocks_ns += run.used_start as f64 * el_ns;
            st.busy_energy_j += self.power.power_w(run.batch) * el_ns * 1e-9;
        }
        st
    }

    fn evict_all(&mut self, now_ns: u64, cx: &mut Ctx<'_>) {
        // A chained step has applied its end's changes ahead of time, which
        // an eviction inside it would have to undo: the driver does not
        // chain steps in fleets that can fail (`Server::set_chain_steps`).
        debug_assert_eq!(self.lead.m, 0, "eviction during a chained step");
        // Steps of a pure-decode run that ended by now count as done (as in a
        // cut: a step ending exactly now was processed before this event).
        let mut done = 0u64;
        // Start of the step in progress, units.
        let mut time_u = self.time_u;
        if let Some(run) = self.run
            && run.pure
        {
            let el = units_of(now_ns + 1).saturating_sub(run.start_u);
            done = steps_before(run.a, run.b, el).min(run.m - 1);
        }
        let mut st = self.stats_at(now_ns);
        st.steps += done;
        if let Some(run) = self.run
            && !run.pure
            && run.m > 1
        {
            // `stats_at` counted the steps over (as their wake-ups would have).
            let mut scratch = InstanceStats::default();
            let (over, start, _) = self.account_msteps_over(&mut scratch, &run, now_ns);
            done = over;
            time_u = run.start_u + start;
        }
        self.stats = st;
        self.time_u = time_u;
        let step = self.step + done;
        for &cur in self.running_in_order().iter().rev() {
            let s = self.seqs[cur as usize];
            let r = &mut cx.reqs[s.req];
            if s.phase == Phase::Decode {
                r.generated = (s.ctx_base + step as i64 - s.isl as i64) as u32;
            }
            r.kv_ready = false;
            cx.waiting.push_front(s.req);
        }
        self.seqs.clear();
        self.free_seqs.clear();
        self.n_running = 0;
        self.prefilling.clear();
        self.n_dec = 0;
        self.sum_ctx_base = 0;
        self.phase_cnt.iter_mut().for_each(|c| *c = 0);
        self.finish.clear();
        self.finish_stale = 0;
        self.used = 0;
        self.step = step;
        self.time_u = self.time_u.max(units_of(now_ns));
        self.run = None;
        self.chunks.clear();
        self.decode_alloc_done = false;
    }

    fn check_invariants(&self, _cx: &Ctx<'_>) {
        // Called between runs: decoding sequences hold blocks for ISL + g − 1 tokens.
        let (mut held, mut n, mut n_dec, mut sum_cb) = (0u64, 0u32, 0u32, 0i64);
        let mut phase = vec![0u32; self.blk as usize];
        for cur in self.running_in_order() {
            let s = self.seqs[cur as usize];
            n += 1;
            match s.phase {
                Phase::Prefill => {
                    held += self.blocks(s.prefilled as u64);
                    assert!(
                        self.prefilling.contains(&cur),
                        "prefilling list misses a sequence"
                    );
                }
                Phase::Decode => {
                    let g = s.ctx_base + self.step as i64 - s.isl as i64;
                    assert!(
                        g >= 1 && (g as u32) < s.osl,
                        "decode progress out of range: g={g}"
                    );
                    held += self.blocks(s.isl as u64 + g as u64 - 1);
                    n_dec += 1;
                    sum_cb += s.ctx_base;
                    phase[self.phase_key(s.ctx_base)] += 1;
                }
                Phase::Free => panic!("free sequence in the running list"),
            }
        }
        assert_eq!(n, self.n_running, "running count");
        assert_eq!(n_dec, self.n_dec, "decode count");
        assert_eq!(sum_cb, self.sum_ctx_base, "context sum");
        assert_eq!(phase, self.phase_cnt, "block phase counts");
        assert_eq!(held, self.used, "KV blocks in use");
        let stale = self
            .finish
            .keys()
            .filter(|&k| {
                let (_, si, g) = fin_parts(k);
                let s = &self.seqs[si as usize];
                !(s.generation == g && s.phase == Phase::Decode)
            })
            .count();
        assert_eq!(stale as u32, self.finish_stale, "stale finish entries");
        // `n_running` may exceed a cap lowered mid-run (no preemption); admission checks the cap.
        assert!(self.used <= self.total_blks, "KV over capacity");
    }

    fn set_fleet_scale(&mut self, on: bool) {
        self.finish.set_cold(on);
    }

    fn set_validate(&mut self, on: bool) {
        self.validate = on;
    }

    fn set_chain_steps(&mut self, on: bool) {
        self.chain = on;
    }

    fn prefetch(&self, deep: bool, reqs: &Requests) {
        prefetch_all(self);
        if deep {
            // What the next wake-up reads through this instance's pointers:
            // the finish heap's upper levels (a completion's pop walks
            // them), the sequence at its top and the requests noted when
            // the run was planned (`hint_seq`, `hint_reqs`), the prefill
            // chunks, the block phases. Only the pointers and hints are
            // read (this instance's state was prefetched an event earlier),
            // never what they point to, which may not be cached.
            self.finish.prefetch_top(4);
            if self.hint_seq != NIL {
                prefetch(self.seqs.as_ptr().wrapping_add(self.hint_seq as usize));
            }
            for &r in &self.hint_reqs {
                if r != NIL {
                    reqs.prefetch(r);
                }
            }
            prefetch(self.chunks.as_ptr());
            if let Some(run) = &self.run
                && !run.pure
                && run.m > 1
            {
                prefetch(self.msteps.as_ptr());
            }
            prefetch(self.prefilling.as_ptr());
            prefetch(self.phase_cnt.as_ptr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(req: u32) -> Seq {
        Seq {
            req,
            isl: 10,
            osl: 10,
            target: 10,
            prefilled: 0,
            ctx_base: 0,
            phase: Phase::Prefill,
            stamp: 0,
            generation: 0,
        }
    }

    /// Admission order survives slot reuse: a sequence admitted into a
    /// freed low slot is still the newest (the preemption victim), and the
    /// batch walks oldest first whatever the slots.
    #[test]
    fn admission_order_is_kept_across_slot_reuse() {
        let profile = Profile::preset("h100").expect("h100 preset");
        let mut inst = IterationInstance::new(&profile, 8, true);
        let admit = |inst: &mut IterationInstance, req: u32| {
            let si = inst.alloc_seq(seq(req));
            inst.link_tail(si);
            si
        };
        let a = admit(&mut inst, 0);
        let b = admit(&mut inst, 1);
        let c = admit(&mut inst, 2);
        assert_eq!(inst.running_in_order(), vec![a, b, c]);
        assert_eq!(inst.newest(), c);
        inst.unlink_and_free(a);
        let d = admit(&mut inst, 3);
        assert_eq!(d, a, "the freed slot is reused");
        assert_eq!(inst.running_in_order(), vec![b, c, d]);
        assert_eq!(inst.newest(), d);
        inst.unlink_and_free(d);
        assert_eq!(inst.newest(), c);
        assert_eq!(inst.n_running, 2);
    }
}
