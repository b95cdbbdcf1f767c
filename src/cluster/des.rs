//! The DES check of a sized plan: a sample of its instances with their
//! users as sessions in continuous time.
//!
//! Each user alternates turns and exponential think times. A turn starts
//! from the user's cached context (`--tokens-cached`), prefills its new
//! prompt tokens and decodes its output tokens, one per step, in its
//! instance's continuously batched decode (step times from the same
//! roofline step model the sizing and `simulate` use). An instance holds at
//! most `batch` users' KV in HBM; a user whose KV is not resident waits for
//! a slot (the least recently used thinking user is evicted; the tier keeps
//! its copy), then reloads its cached KV from its tier (host DRAM, NVMe or
//! storage servers, FIFO on the instance's path at that tier's bandwidth)
//! before its prefill — which delays its TTFT and loads the link.
//! Utilisation of compute (FLOPs over dense peak), the network (share of
//! time in collectives), storage (share of time the NVMe / storage tier is
//! reading) and the KV link (GPU↔host bytes over its capacity) is sampled in
//! 1-second bins; the report gives the average and p95 over bins.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp, Poisson};
use serde::Serialize;

use super::plan::{PlanEval, instance, window};
use super::sizing::{KvPlacement, SizingSpec};
use crate::profile::roofline::{Instance, StepMoments};
use crate::rng::SimRng;

/// How to run the check.
#[derive(Debug, Clone, Copy)]
pub struct DesSpec {
    /// Measured seconds (after the warm-up).
    pub seconds: f64,
    /// Warm-up seconds (not measured).
    pub warmup_s: f64,
    /// Instances simulated (a sample of the running ones; instances are independent).
    pub instances: u32,
    /// Mean think time between turns, s (0: the next turn follows at once).
    pub think_time_s: f64,
    /// Session arrivals per second over the whole cluster and mean session
    /// length, s (`None`: a closed population of the required users).
    pub sessions: Option<(f64, f64)>,
    /// Seed.
    pub seed: u64,
}

/// Average and p95 over time.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct AvgP95 {
    /// Average over the measured bins.
    pub avg: f64,
    /// 95th percentile over the measured bins.
    pub p95: f64,
}

/// Utilisation of the four resources.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Utilisation {
    /// Achieved FLOPs over dense peak of the active GPUs.
    pub compute: AvgP95,
    /// Share of time in collectives on the plan's link class.
    pub network: AvgP95,
    /// Share of time the NVMe / storage tier is reading.
    pub storage: AvgP95,
    /// GPU↔host bytes over the path's capacity.
    pub kv_link: AvgP95,
}

/// What the DES check measured.
#[derive(Debug, Clone, Serialize)]
pub struct DesReport {
    /// Users (or sessions) that took part.
    pub users_simulated: u64,
    /// Instances simulated.
    pub instances_simulated: u32,
    /// Measured seconds.
    pub seconds: f64,
    /// Turns completed in the window.
    pub turns: u64,
    /// P99 time to first token, ms.
    pub p99_ttft_ms: f64,
    /// Median TTFT, ms.
    pub p50_ttft_ms: f64,
    /// P99 time per output token, ms.
    pub p99_tpot_ms: f64,
    /// Median TPOT, ms.
    pub p50_tpot_ms: f64,
    /// Output tokens per second a user receives while generating.
    pub tok_s_per_user: f64,
    /// Reloads started in the window.
    pub reloads: u64,
    /// Reloads × one user's cached KV bytes.
    pub reload_volume_bytes: f64,
    /// Bytes the tiers delivered in the window (integrated over the bins).
    pub tier_bytes: f64,
    /// Time-average of users in a session per instance (session mode).
    pub mean_users_per_instance: f64,
    /// Utilisation over time.
    pub utilisation: Utilisation,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Thinking,
    WaitingSlot,
    Reloading,
    Ready,
    Decoding,
    Gone,
}

#[derive(Debug, Clone)]
struct User {
    state: State,
    resident: bool,
    last_used_ns: u64,
    turn_start_ns: u64,
    first_tok_ns: u64,
    generated: u64,
    leaving: bool,
    /// Reload time from its tier, ns, and whether the tier is NVMe/storage.
    reload_ns: u64,
    slow_tier: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    StepEnd,
    TurnStart(usize),
    ReloadDone(usize),
    SessionArrive,
    SessionEnd(usize),
}

struct Bins {
    start_ns: u64,
    width_ns: u64,
    v: Vec<f64>,
}

impl Bins {
    fn new(start_ns: u64, end_ns: u64) -> Bins {
        let width_ns = 1_000_000_000;
        let n = (end_ns.saturating_sub(start_ns)).div_ceil(width_ns) as usize;
        Bins {
            start_ns,
            width_ns,
            v: vec![0.0; n.max(1)],
        }
    }

    /// Spread `amount` uniformly over [a, b) ns.
    fn add(&mut self, a: u64, b: u64, amount: f64) {
        if b <= a {
            return;
        }
        let rate = amount / (b - a) as f64;
        let (lo, hi) = (a.max(self.start_ns), b);
        let mut t = lo;
        while t < hi {
            let i = ((t - self.start_ns) / self.width_ns) as usize;
            if i >= self.v.len() {
                break;
            }
            let edge = (self.start_ns + (i as u64 + 1) * self.width_ns).min(hi);
            self.v[i] += rate * (edge - t) as f64;
            t = edge;
        }
    }

    fn stats(&self, scale: f64) -> AvgP95 {
        let mut xs: Vec<f64> = self.v.iter().map(|x| x * scale).collect();
        let avg = xs.iter().sum::<f64>() / xs.len() as f64;
        xs.sort_by(f64::total_cmp);
        AvgP95 {
            avg,
            p95: quantile(&xs, 0.95),
        }
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

struct Sim<'a> {
    inst: Instance,
    spec: &'a SizingSpec,
    ev: &'a PlanEval,
    extra_comm_s: f64,
    users: Vec<User>,
    /// Users whose KV is in HBM (at most `batch`).
    residents: Vec<usize>,
    /// Users ready for prefill or decoding.
    active: Vec<usize>,
    heap: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    stepping: bool,
    step_users: Vec<usize>,
    waiting: VecDeque<usize>,
    link_free_ns: u64,
    rng: SimRng,
    think: Option<Exp<f64>>,
    session_life: Option<Exp<f64>>,
    arrival_gap: Option<Exp<f64>>,
    kv: &'a KvPlacement,
    slow_tier_share: f64,
    warm_ns: u64,
    end_ns: u64,
    // measurements
    ttft_ms: Vec<f64>,
    tpot_ms: Vec<f64>,
    decode_tok: f64,
    decode_s: f64,
    turns: u64,
    reloads: u64,
    flops: Bins,
    comm: Bins,
    slow_busy: Bins,
    link_bytes: Bins,
    tier_bytes: Bins,
    open_area: f64,
    last_open_ns: u64,
}

impl Sim<'_> {
    fn push(&mut self, t: u64, e: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, e)));
    }

    fn resident_count(&self) -> usize {
        self.residents.len()
    }

    fn evict(&mut self, v: usize) {
        self.users[v].resident = false;
        self.residents.retain(|&x| x != v);
    }

    fn open_users(&self) -> usize {
        self.users.iter().filter(|u| u.state != State::Gone).count()
    }

    fn new_user(&mut self, now: u64, resident: bool) -> usize {
        let slow = self.rng.random::<f64>() < self.slow_tier_share;
        let ms = if slow {
            self.kv.reload_ms()
        } else {
            self.kv.reload_host_ms
        };
        self.users.push(User {
            state: State::Thinking,
            resident,
            last_used_ns: now,
            turn_start_ns: now,
            first_tok_ns: now,
            generated: 0,
            leaving: false,
            reload_ns: (ms * 1e6).round() as u64,
            slow_tier: slow,
        });
        let u = self.users.len() - 1;
        if resident {
            self.residents.push(u);
        }
        u
    }

    fn think_ns(&mut self) -> u64 {
        match &self.think {
            Some(d) => (d.sample(&mut self.rng) * 1e9) as u64,
            None => 0,
        }
    }

    fn turn_start(&mut self, now: u64, u: usize) {
        if self.users[u].state == State::Gone {
            return;
        }
        self.users[u].turn_start_ns = now;
        if self.users[u].resident {
            self.users[u].state = State::Ready;
            self.active.push(u);
            self.kick(now);
        } else {
            self.users[u].state = State::WaitingSlot;
            self.waiting.push_back(u);
            self.admit(now);
        }
    }

    /// Give slots to waiting users: a free slot, or the LRU thinking resident.
    fn admit(&mut self, now: u64) {
        while let Some(&u) = self.waiting.front() {
            if self.resident_count() >= self.ev.plan.batch as usize {
                let victim = self
                    .residents
                    .iter()
                    .copied()
                    .filter(|&x| matches!(self.users[x].state, State::Thinking | State::Gone))
                    .min_by_key(|&x| (self.users[x].last_used_ns, x));
                match victim {
                    Some(v) => self.evict(v),
                    None => return,
                }
            }
            self.waiting.pop_front();
            self.users[u].resident = true;
            self.residents.push(u);
            self.users[u].state = State::Reloading;
            let start = now.max(self.link_free_ns);
            let done = start + self.users[u].reload_ns;
            self.link_free_ns = done;
            let bytes = self.spec.user_kv_bytes();
            if start < self.end_ns && start >= self.warm_ns {
                self.reloads += 1;
            }
            // Every GPU of the instance loads its share: host-path bytes incl. replication.
            let path_bytes = self.spec.tokens_cached as f64
                * self.inst.kv_bytes_per_token_per_gpu()
                * self.inst.gpus() as f64;
            self.link_bytes.add(start, done, path_bytes);
            self.tier_bytes.add(start, done, bytes);
            if self.users[u].slow_tier {
                self.slow_busy.add(start, done, (done - start) as f64);
            }
            self.push(done, Ev::ReloadDone(u));
        }
    }

    fn kick(&mut self, now: u64) {
        if !self.stepping {
            self.start_step(now);
        }
    }

    fn start_step(&mut self, now: u64) {
        let spec = self.spec;
        let t = spec.tokens_cached as f64;
        let mut mom = StepMoments::default();
        let w = window(&self.inst.model);
        let mut members = Vec::new();
        let (mut n, mut ctx) = (0.0, 0.0);
        let mut budget = 8192u64;
        for &i in &self.active {
            let u = &self.users[i];
            match u.state {
                State::Decoding => {
                    n += 1.0;
                    ctx += t + spec.turn_input_tok as f64 + u.generated as f64;
                    members.push(i);
                }
                State::Ready if budget > 0 => {
                    budget = budget.saturating_sub(spec.turn_input_tok.max(1));
                    members.push(i);
                }
                _ => {}
            }
        }
        if members.is_empty() {
            self.stepping = false;
            return;
        }
        if n > 0.0 {
            mom.add_decode(n, ctx, w);
        }
        for &i in &members {
            if self.users[i].state == State::Ready {
                mom.add_chunk(t, spec.turn_input_tok.max(1) as f64, w);
            }
        }
        let st = self.inst.step_moments(&mom);
        let step_s = st.step_s + self.extra_comm_s;
        let dur = (step_s * 1e9).round().max(1.0) as u64;
        self.flops.add(now, now + dur, st.flops);
        self.comm
            .add(now, now + dur, (st.comm_s + self.extra_comm_s) * 1e9);
        self.stepping = true;
        self.step_users = members;
        self.push(now + dur, Ev::StepEnd);
    }

    fn step_end(&mut self, now: u64) {
        let members = std::mem::take(&mut self.step_users);
        let out = self.spec.turn_output_tok.max(1);
        for u in members {
            let measured = now >= self.warm_ns;
            let user = &mut self.users[u];
            user.last_used_ns = now;
            match user.state {
                State::Ready => {
                    user.first_tok_ns = now;
                    user.generated = 1;
                    user.state = State::Decoding;
                    if measured {
                        self.ttft_ms.push((now - user.turn_start_ns) as f64 / 1e6);
                    }
                }
                State::Decoding => user.generated += 1,
                _ => {}
            }
            let user = &mut self.users[u];
            if user.state == State::Decoding && user.generated >= out {
                if measured && out > 1 {
                    let d = (now - user.first_tok_ns) as f64;
                    self.tpot_ms.push(d / 1e6 / (out - 1) as f64);
                    self.decode_tok += (out - 1) as f64;
                    self.decode_s += d / 1e9;
                }
                if measured {
                    self.turns += 1;
                }
                self.active.retain(|&x| x != u);
                if user.leaving {
                    self.leave(now, u);
                } else {
                    self.users[u].state = State::Thinking;
                    let th = self.think_ns();
                    self.push(now + th, Ev::TurnStart(u));
                }
            }
        }
        self.stepping = false;
        self.admit(now);
        self.start_step(now);
    }

    fn leave(&mut self, now: u64, u: usize) {
        self.track_open(now);
        self.users[u].state = State::Gone;
        self.evict(u);
        self.admit(now);
    }

    fn track_open(&mut self, now: u64) {
        let lo = self.last_open_ns.max(self.warm_ns);
        let hi = now.min(self.end_ns);
        if hi > lo {
            self.open_area += self.open_users() as f64 * (hi - lo) as f64 / 1e9;
        }
        self.last_open_ns = now;
    }
}

/// Run the DES check of a sized plan; `users_per_instance` users (closed
/// population) or the sessions of `spec.sessions`, on `running` instances.
pub fn run(
    spec: &SizingSpec,
    ev: &PlanEval,
    kv: &KvPlacement,
    running: u64,
    des: &DesSpec,
) -> DesReport {
    let inst = instance(&spec.plan_inputs(), &ev.plan);
    let extra = ev.comm_s
        - inst
            .step_moments(&{
                let mut m = StepMoments::default();
                let b = ev.plan.batch as f64;
                m.add_decode(b, b * spec.context_tok() as f64, window(&spec.model));
                m
            })
            .comm_s;
    let offloaded = kv.host_bytes + kv.nvme_bytes + kv.storage_bytes;
    let slow_share = if offloaded > 0.0 {
        (kv.nvme_bytes + kv.storage_bytes) / offloaded
    } else {
        0.0
    };
    let n_inst = (des.instances as u64).min(running.max(1)).max(1) as u32;
    let warm_ns = (des.warmup_s * 1e9) as u64;
    let end_ns = warm_ns + (des.seconds * 1e9) as u64;
    let mut all = Vec::new();
    let mut users_simulated = 0u64;
    for i in 0..n_inst {
        let mut sim = Sim {
            inst: inst.clone(),
            spec,
            ev,
            extra_comm_s: extra.max(0.0),
            users: Vec::new(),
            residents: Vec::new(),
            active: Vec::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            stepping: false,
            step_users: Vec::new(),
            waiting: VecDeque::new(),
            link_free_ns: 0,
            rng: SimRng::seed_from_u64(des.seed.wrapping_mul(0x9e37_79b9).wrapping_add(i as u64)),
            think: (des.think_time_s > 0.0)
                .then(|| Exp::new(1.0 / des.think_time_s).expect("think > 0")),
            session_life: des
                .sessions
                .map(|(_, s)| Exp::new(1.0 / s).expect("length > 0")),
            arrival_gap: des
                .sessions
                .map(|(l, _)| Exp::new(l / running.max(1) as f64).expect("rate > 0")),
            kv,
            slow_tier_share: slow_share,
            warm_ns,
            end_ns,
            ttft_ms: Vec::new(),
            tpot_ms: Vec::new(),
            decode_tok: 0.0,
            decode_s: 0.0,
            turns: 0,
            reloads: 0,
            flops: Bins::new(warm_ns, end_ns),
            comm: Bins::new(warm_ns, end_ns),
            slow_busy: Bins::new(warm_ns, end_ns),
            link_bytes: Bins::new(warm_ns, end_ns),
            tier_bytes: Bins::new(warm_ns, end_ns),
            open_area: 0.0,
            last_open_ns: 0,
        };
        let b = ev.plan.batch as usize;
        // First turns spread over one turn-and-think cycle (no synchronised start).
        let turn_guess_ns =
            ((spec.turn_output_tok as f64 * ev.step_s + des.think_time_s) * 1e9) as u64;
        if let Some((rate, len)) = des.sessions {
            // Start in the stationary state: Poisson(λ_i·S) sessions already
            // open (their remaining lengths are exponential again: memoryless).
            let mean = rate / running.max(1) as f64 * len;
            let open = if mean > 0.0 {
                Poisson::new(mean).map_or(0, |d| d.sample(&mut sim.rng) as usize)
            } else {
                0
            };
            for k in 0..open {
                let u = sim.new_user(0, k < b);
                let life = sim.session_life.expect("session mode").sample(&mut sim.rng);
                sim.push((life * 1e9) as u64, Ev::SessionEnd(u));
                let t0 = sim.rng.random_range(0..turn_guess_ns.max(1));
                sim.push(t0, Ev::TurnStart(u));
            }
            let g = sim.arrival_gap.expect("session mode").sample(&mut sim.rng);
            sim.push((g * 1e9) as u64, Ev::SessionArrive);
        } else {
            // The users of instance i of `running`: an even share.
            let share =
                spec.users / running.max(1) + u64::from((i as u64) < spec.users % running.max(1));
            for k in 0..share as usize {
                let u = sim.new_user(0, k < b);
                let t0 = sim.rng.random_range(0..turn_guess_ns.max(1));
                sim.push(t0, Ev::TurnStart(u));
            }
        }
        while let Some(Reverse((t, _, e))) = sim.heap.pop() {
            if t >= end_ns {
                break;
            }
            match e {
                Ev::StepEnd => sim.step_end(t),
                Ev::TurnStart(u) => sim.turn_start(t, u),
                Ev::ReloadDone(u) => {
                    if sim.users[u].state == State::Reloading {
                        sim.users[u].state = State::Ready;
                        sim.active.push(u);
                        sim.kick(t);
                    }
                }
                Ev::SessionArrive => {
                    sim.track_open(t);
                    let u = sim.new_user(t, false);
                    let life = sim.session_life.expect("session mode").sample(&mut sim.rng);
                    sim.push(t + (life * 1e9) as u64, Ev::SessionEnd(u));
                    sim.turn_start(t, u);
                    let g = sim.arrival_gap.expect("session mode").sample(&mut sim.rng);
                    sim.push(t + (g * 1e9) as u64, Ev::SessionArrive);
                }
                Ev::SessionEnd(u) => match sim.users[u].state {
                    State::Thinking => sim.leave(t, u),
                    State::Gone => {}
                    _ => sim.users[u].leaving = true,
                },
            }
        }
        sim.track_open(end_ns);
        users_simulated += sim.users.len() as u64;
        all.push(sim);
    }
    summarise(spec, ev, &inst, kv, all, users_simulated, des)
}

fn summarise(
    spec: &SizingSpec,
    ev: &PlanEval,
    inst: &Instance,
    _kv: &KvPlacement,
    sims: Vec<Sim>,
    users_simulated: u64,
    des: &DesSpec,
) -> DesReport {
    let n = sims.len() as f64;
    let mut ttft: Vec<f64> = sims
        .iter()
        .flat_map(|s| s.ttft_ms.iter().copied())
        .collect();
    let mut tpot: Vec<f64> = sims
        .iter()
        .flat_map(|s| s.tpot_ms.iter().copied())
        .collect();
    ttft.sort_by(f64::total_cmp);
    tpot.sort_by(f64::total_cmp);
    fn merge<'a>(sims: &'a [Sim<'a>], f: impl Fn(&'a Sim<'a>) -> &'a Bins) -> Bins {
        let mut b = Bins::new(sims[0].warm_ns, sims[0].end_ns);
        for s in sims {
            for (x, y) in b.v.iter_mut().zip(&f(s).v) {
                *x += y;
            }
        }
        b
    }
    let g = inst.gpus() as f64;
    let peak = inst.hw.peak_flops(inst.weight_dtype) * g;
    let bin_s = 1.0;
    let p = &spec.preset;
    let host_cap = p.host_link_gbps_per_gpu * 1e9 * g * bin_s;
    let (dtok, ds): (f64, f64) = sims
        .iter()
        .fold((0.0, 0.0), |a, s| (a.0 + s.decode_tok, a.1 + s.decode_s));
    let tier = merge(&sims, |s| &s.tier_bytes);
    let reloads: u64 = sims.iter().map(|s| s.reloads).sum();
    let _ = ev;
    DesReport {
        users_simulated,
        instances_simulated: sims.len() as u32,
        seconds: des.seconds,
        turns: sims.iter().map(|s| s.turns).sum(),
        p99_ttft_ms: quantile(&ttft, 0.99),
        p50_ttft_ms: quantile(&ttft, 0.5),
        p99_tpot_ms: quantile(&tpot, 0.99),
        p50_tpot_ms: quantile(&tpot, 0.5),
        tok_s_per_user: if ds > 0.0 { dtok / ds } else { 0.0 },
        reloads,
        reload_volume_bytes: reloads as f64 * spec.user_kv_bytes(),
        tier_bytes: tier.v.iter().sum(),
        mean_users_per_instance: sims.iter().map(|s| s.open_area).sum::<f64>()
            / n
            / des.seconds.max(1e-9),
        utilisation: Utilisation {
            compute: merge(&sims, |s| &s.flops).stats(1.0 / (peak * bin_s * n)),
            network: merge(&sims, |s| &s.comm).stats(1.0 / (1e9 * bin_s * n)),
            storage: merge(&sims, |s| &s.slow_busy).stats(1.0 / (1e9 * bin_s * n)),
            kv_link: merge(&sims, |s| &s.link_bytes).stats(1.0 / (host_cap * n)),
        },
    }
}
