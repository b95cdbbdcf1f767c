//! The fleet driver: the event loop, routing, dispatch, completions,
//! warm-up, saturation detection and the raw outcome of one replication.

mod controls;
mod finish;
mod handoff;
mod measure;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use kvfleet_routers::{Decision, FleetView, PoolView, RequestView, Router};
use rand_distr::{Distribution, Exp};

use super::config::{
    Arrivals, Control, EngineKind, MetricWindow, ScaleMode, ServiceModel, SimConfig,
};
use super::dispatch::{DispatchPolicy, Dispatcher};
use super::events::{EventKind, EventQueue};
use super::iteration::IterationInstance;
use super::outcome::{RequestRecord, SimOutcome, Verdict};
use super::requests::{NEVER, ReqCold, ReqState, Requests};
use super::server::{Ctx, InstanceStats, Server};
use super::slot::SlotInstance;
use crate::error::InputError;
use crate::metrics::Collector;
use crate::rng::{Purpose, SimRng, Streams};
use crate::workload::Request;
use controls::allocated_instances;
use handoff::Handoff;

/// Whether a request handed to a pool is a new arrival (bounded by the
/// pool's `max_queue`) or one the fleet has already accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// A new arrival (possibly after a router delay).
    New,
    /// Moved off a removed instance, or landing after a KV hand-off.
    Accepted,
}

/// From this many instances, an instance's state has usually left the
/// cache between two of its events, and the driver prefetches it. Below
/// it the fleet's state fits in a 1 MB L2 cache and the prefetches only
/// cost instructions: measured (Azure CDF, H100, best of 5–7 user times on
/// the 2-core VM) prefetching was 5–10% slower at 40 instances (26% and
/// 78% load) and 5% slower at 80 instances, and 8–9% faster at 160 and
/// 400 instances (78% load).
const PREFETCH_MIN_INSTANCES: usize = 128;

struct PoolRt<S> {
    instances: Vec<S>,
    epochs: Vec<u32>,
    queues: Vec<VecDeque<u32>>,
    dispatcher: Dispatcher,
    central: bool,
    max_queue: Option<u32>,
    base: u32,
    running: u32,
    waiting: u32,
    warm_stats: Vec<InstanceStats>,
    end_stats: Vec<InstanceStats>,
    /// Instances `0..active` take requests; the others are leaving or off.
    active: u32,
    /// Per instance: powered on, time on before the current period, start of the current period.
    powered: Vec<bool>,
    powered_acc_ns: Vec<f64>,
    powered_since: Vec<u64>,
}

impl<S: Server> PoolRt<S> {
    /// Instance `i`'s statistics at `now_ns`, with its powered time.
    fn stats(&self, i: usize, now_ns: u64) -> InstanceStats {
        let mut st = self.instances[i].stats_at(now_ns);
        st.powered_ns = self.powered_acc_ns[i]
            + if self.powered[i] {
                now_ns.saturating_sub(self.powered_since[i]) as f64
            } else {
                0.0
            };
        st
    }

    fn set_powered(&mut self, i: usize, now_ns: u64, on: bool) {
        if self.powered[i] == on {
            return;
        }
        if self.powered[i] {
            self.powered_acc_ns[i] += now_ns.saturating_sub(self.powered_since[i]) as f64;
        }
        self.powered[i] = on;
        self.powered_since[i] = now_ns;
    }

    /// Sum of every instance's statistics at `now_ns`.
    fn total_stats(&self, now_ns: u64) -> InstanceStats {
        let mut sum = InstanceStats::default();
        for i in 0..self.instances.len() {
            sum.add(&self.stats(i, now_ns));
        }
        sum
    }
}

struct Sim<'c, S: Server> {
    cfg: &'c SimConfig,
    pools: Vec<PoolRt<S>>,
    where_is: Vec<(u16, u32)>,
    events: EventQueue,
    reqs: Requests,
    done: Vec<u32>,
    /// Requests a prefill-only instance just handed off (see `Ctx::handoffs`).
    handoffs: Vec<u32>,
    router: Box<dyn Router>,
    views: Vec<PoolView>,
    dispatch_rng: SimRng,
    collectors: Vec<Collector>,
    fleet_rejects: Collector,
    arrived: u64,
    completed: u64,
    rejected: BTreeMap<String, u64>,
    measured: u64,
    warm_count: u64,
    warm_ns: u64,
    window_start: Option<u64>,
    window_end: Option<u64>,
    now: u64,
    slo_ttft_ns: u64,
    slo_tpot_ns: Option<u64>,
    records: Vec<RequestRecord>,
    /// Pools whose central queue just went from empty to non-empty.
    kick: Vec<usize>,
    /// Metric windows (arrival-time bounds, ns) and their collectors.
    win: Vec<(u64, u64)>,
    win_collectors: Vec<Collector>,
    /// Per snapshot (window start and end), per pool, summed instance statistics.
    snapshots: Vec<Vec<InstanceStats>>,
    /// (time, waiting requests) sampled at most every 100 ms of simulated time.
    queue_trace: Vec<(u64, u64)>,
    waiting_total: u64,
    max_waiting: u64,
    trend: Trend,
    verdict: Verdict,
    /// Saturation detected while arrivals continue: stop now (bounded memory).
    stop_early: bool,
    /// Per pool, for pools in `SimConfig::stop_on_ttft_miss`: measured
    /// requests already certain to count above the SLO in its P99 TTFT.
    ttft_misses: Vec<Option<u64>>,
    /// Requests the run will offer in all (`None`: unknown).
    expected_arrivals: Option<u64>,
    /// Arrivals of the watched window (`SimConfig::stop_on_window_ttft_miss`)
    /// rejected or completed above the SLO so far.
    window_misses: u64,
    /// `SimConfig::end_at_recovery`: the waiting level to recover to (set
    /// at the first queue sample after the event) and the time arrivals end.
    recovery_level: Option<u64>,
    arrivals_end_ns: Option<u64>,
    /// An arrival was not offered because of `arrivals_end_ns`.
    arrivals_ended: bool,
    /// `SimConfig::peak_held_window`: the most requests an instance held
    /// (`Some` from the window's start) and whether the window is open.
    peak_held: Option<u64>,
    tracking_peak: bool,
    /// Cancelled wake-ups skipped (not counted as processed events).
    stale_events: u64,
    /// Requests restarted because their instance failed.
    evicted: u64,
    /// Prefetch the next instances' state (fleets too large for the cache).
    prefetch: bool,
    /// Global index of the instance whose wake-up is being processed.
    waking: Option<u32>,
    /// Router view index → pool index (decode-only pools are not routable).
    entry: Vec<usize>,
    /// Disaggregated hand-offs (`None` when every pool serves both phases).
    handoff: Option<Handoff>,
    /// Store the requests' cold parts (only hand-offs and per-request
    /// records read them).
    keep_cold: bool,
    // closed loop
    think: Option<Exp<f64>>,
    think_rng: SimRng,
    issued: u64,
    to_issue: u64,
    arrival_seq: u64,
}

/// Detects a pool whose waiting queue keeps growing (checked every `every`
/// arrivals after warm-up, per pool, so one drowning pool is not hidden by
/// healthy ones).
struct Trend {
    every: u64,
    /// Time of the last control change, ns (no trend verdicts before it).
    settled_ns: u64,
    pools: Vec<PoolTrend>,
}

struct PoolTrend {
    last: u32,
    rises: u32,
    /// Waiting requests when the measurement window opened.
    waiting_at_window_start: u32,
    /// Concurrent sequences the pool can run.
    capacity: u64,
}

/// Indices of the pools a router can choose: all of them, except the
/// decode-only pools of a disaggregated fleet.
pub fn entry_pools(cfg: &SimConfig) -> Vec<usize> {
    (0..cfg.pools.len())
        .filter(|&p| !cfg.disagg.as_ref().is_some_and(|d| d.is_decode(p)))
        .collect()
}

/// Concurrent sequences pool `p` can run.
fn pool_slots(cfg: &SimConfig, p: usize) -> u32 {
    let pc = &cfg.pools[p];
    match cfg.service_model {
        ServiceModel::Iteration => pc.instances * pc.max_num_seqs(),
        ServiceModel::Slot => pc.instances * pc.n_slots(),
    }
}

/// The read-only pool views routers see, for a fleet configuration (in
/// [`entry_pools`] order: decode-only pools are not routable).
pub fn pool_views(cfg: &SimConfig) -> Vec<PoolView> {
    entry_pools(cfg)
        .into_iter()
        .map(|pi| {
            let p = &cfg.pools[pi];
            PoolView {
                id: p.id.clone(),
                max_ctx_tok: p.max_ctx_tok,
                instances: p.instances,
                slots: pool_slots(cfg, pi),
                running: 0,
                waiting: 0,
                kv_capacity_tok: p.profile.kv_capacity_tok(),
                models: p.models.clone(),
            }
        })
        .collect()
}

/// Record a completed request into a collector: TTFT, E2E, queue wait, TPOT
/// (for OSL > 1) and whether it met every SLO.
fn record_completed(c: &mut Collector, r: &ReqState, slo_ttft_ns: u64, slo_tpot_ns: Option<u64>) {
    let ttft = r.first_token_ns - r.arrival_ns;
    let e2e = r.done_ns - r.arrival_ns;
    c.completed += 1;
    c.ttft.record(ttft);
    c.e2e.record(e2e);
    c.queue_wait
        .record(r.first_admit_ns.saturating_sub(r.dispatch_ns));
    if r.osl > 1 {
        c.tpot.record((e2e - ttft) / (r.osl as u64 - 1));
    }
    c.slo_met += meets_slo(r, slo_ttft_ns, slo_tpot_ns) as u64;
}

/// Whether a completed request met the TTFT (and TPOT, if set) targets.
fn meets_slo(r: &ReqState, slo_ttft_ns: u64, slo_tpot_ns: Option<u64>) -> bool {
    let ttft = r.first_token_ns - r.arrival_ns;
    let tpot_ok = match slo_tpot_ns {
        Some(t) if r.osl > 1 => (r.done_ns - r.first_token_ns) / (r.osl as u64 - 1) <= t,
        _ => true,
    };
    ttft <= slo_ttft_ns && tpot_ok
}

/// Run one replication with the router of `cfg.router`. `replication`
/// selects the independent seed stream.
pub fn run(
    cfg: &SimConfig,
    arrivals: Arrivals,
    replication: u32,
    progress: Option<&dyn crate::progress::Task>,
) -> Result<SimOutcome, InputError> {
    let seed = Streams::new(cfg.seed, replication).seed_for(Purpose::Router);
    let router = kvfleet_routers::build(&cfg.router, &pool_views(cfg), seed)
        .map_err(|e| InputError::field("router", e.to_string()))?;
    run_with_router(cfg, arrivals, replication, progress, router)
}

/// Run one replication with any router, e.g. a user-defined one built over
/// [`pool_views`] (`cfg.router` is then ignored).
pub fn run_with_router(
    cfg: &SimConfig,
    arrivals: Arrivals,
    replication: u32,
    progress: Option<&dyn crate::progress::Task>,
    router: Box<dyn Router>,
) -> Result<SimOutcome, InputError> {
    let fast = cfg.engine == EngineKind::Fast;
    for (k, c) in cfg.controls.iter().enumerate() {
        if c.pool >= cfg.pools.len() {
            return Err(InputError::field(
                format!("controls[{k}].pool"),
                format!(
                    "pool {} does not exist (the fleet has {})",
                    c.pool,
                    cfg.pools.len()
                ),
            ));
        }
        if matches!(c.action, Control::Instances { count: 0, .. }) {
            return Err(InputError::field(
                format!("controls[{k}].count"),
                "a pool keeps at least 1 instance",
            ));
        }
        if !(c.at_s.is_finite() && c.at_s >= 0.0) {
            return Err(InputError::field(
                format!("controls[{k}].at_s"),
                format!("expected a time ≥ 0 s, got {}", c.at_s),
            ));
        }
    }
    if let Some(d) = &cfg.disagg {
        d.validate(&cfg.pools)
            .map_err(|e| InputError::field("disagg", e))?;
        if cfg.service_model != ServiceModel::Iteration {
            return Err(InputError::field(
                "disagg",
                "disaggregated prefill/decode needs the iteration service model, not the slot model",
            ));
        }
    }
    match cfg.service_model {
        ServiceModel::Iteration => {
            // One power table per pool, shared by its instances.
            let tables: Vec<_> = cfg
                .pools
                .iter()
                .map(|p| IterationInstance::power_table_of(&p.profile, p.max_num_seqs()))
                .collect();
            run_with(cfg, arrivals, replication, progress, router, |pi| {
                let p = &cfg.pools[pi];
                let mut s = IterationInstance::with_power_table(
                    &p.profile,
                    p.max_num_seqs(),
                    fast,
                    tables[pi].clone(),
                );
                s.set_validate(cfg.validate);
                // Steps are chained only where nothing but the instance's own
                // events reads or changes it (see `Server::set_chain_steps`).
                s.set_chain_steps(
                    fast && cfg.chain_steps
                        && p.dispatch != DispatchPolicy::Central
                        && cfg.disagg.is_none()
                        && !cfg.controls.iter().any(|c| {
                            matches!(
                                c.action,
                                Control::Instances {
                                    mode: ScaleMode::Fail,
                                    ..
                                }
                            )
                        }),
                );
                s.set_prefill_only(
                    cfg.disagg
                        .as_ref()
                        .is_some_and(|d| d.decode_of(pi).is_some()),
                );
                s
            })
        }
        ServiceModel::Slot => run_with(cfg, arrivals, replication, progress, router, |pi| {
            let p = &cfg.pools[pi];
            SlotInstance::new(&p.profile, p.n_slots())
        }),
    }
}

fn run_with<S: Server>(
    cfg: &SimConfig,
    arrivals: Arrivals,
    replication: u32,
    progress: Option<&dyn crate::progress::Task>,
    router: Box<dyn Router>,
    make: impl Fn(usize) -> S,
) -> Result<SimOutcome, InputError> {
    let wall = Instant::now();
    let streams = Streams::new(cfg.seed, replication);
    let views = pool_views(cfg);
    let mut pools = Vec::new();
    let mut where_is = Vec::new();
    for (pi, p) in cfg.pools.iter().enumerate() {
        let n0 = p.instances as usize;
        let n = allocated_instances(cfg, pi);
        let central = p.dispatch == DispatchPolicy::Central;
        let base = where_is.len() as u32;
        where_is.extend((0..n as u32).map(|i| (pi as u16, i)));
        let mut dispatcher = Dispatcher::new(p.dispatch, n);
        for i in n0..n {
            dispatcher.loads.disable(i);
        }
        pools.push(PoolRt {
            instances: (0..n).map(|_| make(pi)).collect(),
            epochs: vec![0; n],
            queues: (0..if central { 1 } else { n })
                .map(|_| VecDeque::new())
                .collect(),
            dispatcher,
            central,
            max_queue: p.max_queue,
            base,
            running: 0,
            waiting: 0,
            warm_stats: vec![InstanceStats::default(); n],
            end_stats: vec![InstanceStats::default(); n],
            active: n0 as u32,
            powered: (0..n).map(|i| i < n0).collect(),
            powered_acc_ns: vec![0.0; n],
            powered_since: vec![0; n],
        });
    }
    let capacity: u64 = (0..cfg.pools.len())
        .map(|p| pool_slots(cfg, p) as u64)
        .sum::<u64>()
        .max(1);
    let pool_trends: Vec<PoolTrend> = (0..cfg.pools.len())
        .map(|p| PoolTrend {
            last: 0,
            rises: 0,
            waiting_at_window_start: 0,
            capacity: pool_slots(cfg, p).max(1) as u64,
        })
        .collect();
    let handoff = cfg.disagg.as_ref().map(|d| Handoff::new(cfg, d));
    let len_hint = match &arrivals {
        Arrivals::Open(src) => src.len_hint(),
        Arrivals::Closed(c) => Some(c.n_requests),
    };
    let warm_count = match (cfg.warmup.seconds, len_hint) {
        (Some(_), _) => 0,
        (None, Some(n)) => (cfg.warmup.fraction * n as f64).floor() as u64,
        (None, None) => 0,
    };
    let trend_every = len_hint.map(|n| (n / 64).max(256)).unwrap_or(4096);
    let mut sim = Sim {
        cfg,
        pools,
        prefetch: where_is.len() >= PREFETCH_MIN_INSTANCES,
        where_is,
        events: EventQueue::default(),
        reqs: Requests::default(),
        done: Vec::new(),
        handoffs: Vec::new(),
        router,
        views,
        dispatch_rng: streams.stream(Purpose::Dispatch),
        collectors: vec![Collector::default(); cfg.pools.len()],
        fleet_rejects: Collector::default(),
        arrived: 0,
        completed: 0,
        rejected: BTreeMap::new(),
        measured: 0,
        warm_count,
        warm_ns: cfg
            .warmup
            .seconds
            .map(crate::workload::secs_to_ns)
            .unwrap_or(0),
        window_start: None,
        window_end: None,
        now: 0,
        slo_ttft_ns: (cfg.slo.ttft_ms * 1e6).round() as u64,
        slo_tpot_ns: cfg.slo.tpot_ms.map(|t| (t * 1e6).round() as u64),
        records: Vec::new(),
        kick: Vec::new(),
        win: cfg.windows.iter().map(MetricWindow::bounds_ns).collect(),
        win_collectors: vec![Collector::default(); cfg.windows.len()],
        snapshots: vec![vec![InstanceStats::default(); cfg.pools.len()]; 2 * cfg.windows.len()],
        queue_trace: Vec::new(),
        waiting_total: 0,
        max_waiting: cfg.max_waiting.unwrap_or((capacity * 64).max(50_000)),
        trend: Trend {
            every: trend_every,
            settled_ns: cfg
                .controls
                .iter()
                .map(|c| crate::workload::secs_to_ns(c.at_s))
                .max()
                .unwrap_or(0),
            pools: pool_trends,
        },
        verdict: Verdict::Stable,
        stop_early: false,
        ttft_misses: (0..cfg.pools.len())
            .map(|p| cfg.stop_on_ttft_miss.contains(&p).then_some(0))
            .collect(),
        expected_arrivals: len_hint,
        window_misses: 0,
        recovery_level: None,
        arrivals_end_ns: None,
        arrivals_ended: false,
        peak_held: None,
        tracking_peak: false,
        stale_events: 0,
        waking: None,
        evicted: 0,
        entry: entry_pools(cfg),
        keep_cold: cfg.record_requests || handoff.is_some(),
        handoff,
        think: None,
        think_rng: streams.stream(Purpose::ThinkTime),
        issued: 0,
        to_issue: 0,
        arrival_seq: 0,
    };
    if sim.prefetch {
        sim.events.set_fleet_scale(true);
        for inst in sim.pools.iter_mut().flat_map(|p| p.instances.iter_mut()) {
            inst.set_fleet_scale(true);
        }
    }

    for (k, c) in cfg.controls.iter().enumerate() {
        sim.events.push(
            crate::workload::secs_to_ns(c.at_s),
            k as u64,
            EventKind::Control { index: k as u32 },
        );
    }
    for (w, &(a, b)) in sim.win.clone().iter().enumerate() {
        sim.events.push(
            a,
            (1 << 32) + 2 * w as u64,
            EventKind::Snapshot {
                index: 2 * w as u32,
            },
        );
        sim.events.push(
            b,
            (1 << 32) + 2 * w as u64 + 1,
            EventKind::Snapshot {
                index: 2 * w as u32 + 1,
            },
        );
    }
    // Prime the arrival stream.
    let mut pending: Option<Request> = None;
    let mut lengths_rng = streams.stream(Purpose::Lengths);
    let (mut open_src, mut closed_sampler) = match arrivals {
        Arrivals::Open(src) => (Some(src), None),
        Arrivals::Closed(c) => {
            sim.to_issue = c.n_requests;
            if c.think_time_mean_s > 0.0 {
                sim.think = Exp::new(1.0 / c.think_time_mean_s).ok();
            }
            for u in 0..c.users.min(c.n_requests.min(u32::MAX as u64) as u32) {
                let t = sim.think_delay();
                sim.schedule_user(u, t);
            }
            (None, Some(c.sampler))
        }
    };
    if let Some(src) = open_src.as_mut() {
        pending = src.next_request()?;
        if let Some(r) = &pending {
            sim.events.push(r.arrival_ns, 0, EventKind::Arrival);
        }
    }

    let mut since_progress = 0u64;
    while let Some(ev) = sim.events.pop() {
        // Window boundaries do not keep an idle simulation alive: once every
        // request has arrived and finished, later windows end with the run.
        if matches!(ev.kind, EventKind::Snapshot { .. })
            && pending.is_none()
            && sim.reqs.live() == 0
            && sim.arrived >= sim.issued
        {
            // Cancelled wake-ups before it would have been popped (and
            // skipped) first: the clock ends at the latest of them.
            if let Some(t) = sim.events.stale_until(sim.now, ev.time_ns) {
                sim.now = sim.now.max(t);
            }
            break;
        }
        if ev.time_ns > crate::workload::MAX_SIM_TIME_NS {
            return Err(InputError::field(
                "workload",
                format!(
                    "the run reaches {:.3e} s of simulated time; expected at most {:e} s \
                     (arrivals too sparse, or times too large)",
                    ev.time_ns as f64 / 1e9,
                    crate::workload::MAX_SIM_TIME_S
                ),
            ));
        }
        sim.now = ev.time_ns;
        match ev.kind {
            EventKind::Wake { instance, epoch } => {
                let (p, i) = sim.where_is[instance as usize];
                let (p, i) = (p as usize, i as usize);
                if sim.pools[p].epochs[i] != epoch {
                    sim.stale_events += 1;
                    continue;
                }
                if sim.prefetch {
                    sim.prefetch_next_wakes();
                }
                sim.waking = Some(instance);
                let next = sim.call(p, i, |s, now, cx| s.on_wake(now, cx));
                sim.pools[p].epochs[i] += 1;
                if let Some(t) = next {
                    sim.push_wake(p, i, t);
                }
                sim.drain_done(p, i);
                while let Some(p) = sim.kick.pop() {
                    sim.notify_central(p, true);
                }
                sim.waking = None;
                sim.power_off_if_idle(p, i);
            }
            EventKind::Arrival => {
                let src = open_src.as_mut().expect("open arrivals have a source");
                let req = pending
                    .take()
                    .expect("an arrival event has a pending request");
                if sim.arrivals_end_ns.is_some_and(|t| req.arrival_ns >= t) {
                    // Recovered from the event: the workload ends here.
                    sim.arrivals_ended = true;
                    sim.close_window();
                    continue;
                }
                pending = src.next_request()?;
                match &pending {
                    Some(r) => {
                        let t = r.arrival_ns.max(req.arrival_ns);
                        sim.events.push(t, sim.arrived + 1, EventKind::Arrival);
                    }
                    None => sim.close_window(),
                }
                sim.arrive(&req, u32::MAX);
                since_progress += 1;
            }
            EventKind::UserArrival { user } => {
                let sampler = closed_sampler.as_mut().expect("closed loop has a sampler");
                let (isl, osl, cat) = sampler(&mut lengths_rng);
                let mut req = Request::new(ev.time_ns, isl, osl);
                req.category = cat;
                if sim.issued >= sim.to_issue {
                    sim.close_window();
                }
                sim.arrive(&req, user);
                since_progress += 1;
            }
            EventKind::Delayed { req } => sim.dispatch(req, Admission::New),
            EventKind::LinkDone { link, epoch } => sim.link_done(link as usize, epoch),
            EventKind::Landed { req } => sim.land(req),
            EventKind::Control { index } => sim.apply_control(index as usize),
            EventKind::Snapshot { index } => sim.snapshot(index as usize),
        }
        if since_progress >= 1 << 16 {
            if let Some(pb) = progress {
                pb.inc(since_progress);
            }
            since_progress = 0;
        }
        if sim.stop_early {
            break;
        }
    }
    if let Some(pb) = progress {
        pb.inc(since_progress);
    }
    sim.close_window();
    let skipped = open_src.as_ref().map(|s| s.skipped()).unwrap_or_default();
    Ok(sim.finish(wall.elapsed().as_secs_f64(), skipped))
}

impl<S: Server> Sim<'_, S> {
    fn think_delay(&mut self) -> u64 {
        match &self.think {
            Some(d) => crate::workload::secs_to_ns(d.sample(&mut self.think_rng)),
            None => 0,
        }
    }

    fn schedule_user(&mut self, user: u32, delay_ns: u64) {
        if self.issued >= self.to_issue {
            return;
        }
        self.issued += 1;
        self.arrival_seq += 1;
        self.events.push(
            self.now.saturating_add(delay_ns),
            self.arrival_seq,
            EventKind::UserArrival { user },
        );
    }

    /// Start loading the state of the instances woken next (at large fleets
    /// an instance's state has left the cache between two of its events).
    #[inline]
    fn prefetch_next_wakes(&self) {
        for (k, w) in self.events.next_wakes().enumerate() {
            let (p, i) = self.where_is[w as usize];
            self.pools[p as usize].instances[i as usize].prefetch(k == 0, &self.reqs);
        }
    }

    #[inline(always)]
    fn push_wake(&mut self, p: usize, i: usize, t: u64) {
        let pool = &self.pools[p];
        let instance = pool.base + i as u32;
        let epoch = pool.epochs[i];
        self.events.set_wake(t, instance, epoch);
    }

    /// Call into instance `i` of pool `p`, keeping pool totals in step.
    fn call(
        &mut self,
        p: usize,
        i: usize,
        f: impl FnOnce(&mut S, u64, &mut Ctx<'_>) -> Option<u64>,
    ) -> Option<u64> {
        let pool = &mut self.pools[p];
        let q = if pool.central { 0 } else { i };
        let run0 = pool.instances[i].running();
        let wait0 = pool.queues[q].len();
        let mut cx = Ctx {
            reqs: &mut self.reqs,
            waiting: &mut pool.queues[q],
            done: &mut self.done,
            handoffs: &mut self.handoffs,
            central: pool.central,
            boundary_pending_now: self.waking.is_some_and(|w| pool.base + i as u32 > w),
            accepting: !(pool.central && i as u32 >= pool.active),
        };
        let next = f(&mut pool.instances[i], self.now, &mut cx);
        let wait1 = pool.queues[q].len();
        if pool.central && wait0 == 0 && wait1 > 0 {
            // A preemption refilled the shared queue: other instances may take it.
            self.kick.push(p);
        }
        pool.running = pool.running + pool.instances[i].running() - run0;
        pool.waiting = (pool.waiting as usize + wait1 - wait0) as u32;
        self.waiting_total = self.waiting_total + wait1 as u64 - wait0 as u64;
        next
    }

    fn reject(&mut self, reason: &str, measured: bool, pool: Option<usize>, arrival_ns: u64) {
        *self.rejected.entry(reason.to_string()).or_default() += 1;
        for w in 0..self.win.len() {
            if self.in_metric_window(w, arrival_ns) {
                self.win_collectors[w].reject(reason);
                if self.watches_window(w) {
                    self.count_window_miss();
                }
            }
        }
        if measured {
            match pool {
                Some(p) => {
                    self.collectors[p].reject(reason);
                    if self.ttft_misses[p].is_some() {
                        self.count_ttft_miss(p);
                    }
                }
                None => self.fleet_rejects.reject(reason),
            }
        }
    }

    fn record(&mut self, r: &ReqState, c: &ReqCold) {
        if self.cfg.record_requests {
            self.records.push(RequestRecord {
                id: c.id,
                arrival_ns: r.arrival_ns,
                first_token_ns: r.first_token_ns,
                done_ns: r.done_ns,
                pool: r.pool,
                instance: c.instance,
                user: r.user,
            });
        }
    }

    fn arrive(&mut self, req: &Request, user: u32) {
        let id = self.arrived;
        self.arrived += 1;
        let measured = self.is_measured(id, req.arrival_ns);
        if measured {
            self.open_window();
            self.measured += 1;
        }
        for w in 0..self.win.len() {
            if self.in_metric_window(w, req.arrival_ns) {
                self.win_collectors[w].arrived += 1;
            }
        }
        if self
            .queue_trace
            .last()
            .is_none_or(|&(t, _)| self.now >= t + 100_000_000)
        {
            self.queue_trace.push((self.now, self.waiting_total));
            self.watch_recovery();
        }
        for (v, &p) in self.views.iter_mut().zip(&self.entry) {
            v.running = self.pools[p].running;
            v.waiting = self.pools[p].waiting;
        }
        let extra = req.extra.as_deref();
        let view = RequestView {
            id,
            arrival_s: req.arrival_ns as f64 * 1e-9,
            input_tokens: req.input_tokens,
            output_tokens: req.output_tokens,
            predicted_output_tokens: extra.and_then(|e| e.predicted_output_tokens),
            category: req.category_str(),
            model: extra.and_then(|e| e.model.as_deref()),
            labels: extra.map(|e| e.labels.as_slice()).unwrap_or(&[]),
            prefix_hashes: extra.map(|e| e.prefix_hashes.as_slice()).unwrap_or(&[]),
        };
        let fleet = FleetView {
            now_s: self.now as f64 * 1e-9,
            pools: &self.views,
        };
        let (choice, isl, delay) = match self.router.route(&view, &fleet) {
            Decision::Route { pool } => (pool, req.input_tokens, 0),
            Decision::RouteTransformed { pool, transform } => {
                (pool, transform.input_tokens, transform.added_latency_ns)
            }
            Decision::Reject { reason } => {
                self.reject(reason.as_str(), measured, None, req.arrival_ns);
                self.rejected_request(id, req.arrival_ns, u16::MAX, user);
                return;
            }
        };
        let Some(&pool) = self.entry.get(choice) else {
            self.reject("router_chose_unknown_pool", measured, None, req.arrival_ns);
            self.rejected_request(id, req.arrival_ns, u16::MAX, user);
            return;
        };
        if measured {
            self.collectors[pool].arrived += 1;
        }
        let total = isl as u64 + req.output_tokens as u64;
        if !self.views[choice].fits(total) {
            self.reject("exceeds_pool_ctx", measured, Some(pool), req.arrival_ns);
            self.rejected_request(id, req.arrival_ns, pool as u16, user);
            return;
        }
        let slab = self.reqs.insert(ReqState {
            arrival_ns: req.arrival_ns,
            isl: isl.max(1),
            osl: req.output_tokens.max(1),
            generated: 0,
            first_admit_ns: NEVER,
            dispatch_ns: req.arrival_ns + delay,
            first_token_ns: NEVER,
            done_ns: NEVER,
            pool: pool as u16,
            home: pool as u16,
            kv_ready: false,
            measured,
            user,
        });
        if self.keep_cold {
            let cold = ReqCold {
                id,
                handoff_ns: NEVER,
                instance: 0,
            };
            self.reqs.set_cold(slab, cold);
        }
        if delay > 0 {
            self.events
                .push(self.now + delay, id, EventKind::Delayed { req: slab });
        } else {
            self.dispatch(slab, Admission::New);
        }
        self.check_saturation(id);
    }

    fn rejected_request(&mut self, id: u64, arrival_ns: u64, pool: u16, user: u32) {
        if self.cfg.record_requests {
            self.records.push(RequestRecord {
                id,
                arrival_ns,
                first_token_ns: NEVER,
                done_ns: NEVER,
                pool,
                instance: u32::MAX,
                user,
            });
        }
        if user != u32::MAX {
            let t = self.think_delay();
            self.schedule_user(user, t);
        }
    }

    /// Hand a routed request to an instance of its pool. A new arrival
    /// (`Admission::New`) is bounded by the pool's `max_queue`: it is rejected
    /// (`queue_full`) when its queue (the instance's, or the pool's central
    /// queue) already holds `max_queue` waiting requests, whatever the
    /// bottleneck (slots, KV or prefill); with `max_queue = 0` (a loss system,
    /// as Erlang-B) it is admitted only when nothing else waits there and an
    /// instance has room for it (a free sequence slot and KV), so it starts
    /// at the next step boundary. Requests already accepted (moved off a
    /// removed instance, or landing after a KV hand-off) are not rejected.
    fn dispatch(&mut self, slab: u32, admission: Admission) {
        let p = self.reqs[slab].pool as usize;
        let pool = &mut self.pools[p];
        let i = pool.dispatcher.choose(
            &pool.instances[..pool.active as usize],
            self.now,
            &mut self.dispatch_rng,
        );
        let q = if pool.central { 0 } else { i };
        let cap = match admission {
            Admission::New => pool.max_queue,
            Admission::Accepted => None,
        };
        let full = match cap {
            None => false,
            Some(0) => {
                let room = if pool.central {
                    pool.instances[..pool.active as usize]
                        .iter()
                        .any(|s| s.has_room())
                } else {
                    pool.instances[i].has_room()
                };
                !(pool.queues[q].is_empty() && room)
            }
            Some(cap) => pool.queues[q].len() >= cap as usize,
        };
        if full {
            self.reject_queue_full(slab, p);
            return;
        }
        let was_empty = pool.queues[q].is_empty();
        pool.queues[q].push_back(slab);
        pool.waiting += 1;
        self.waiting_total += 1;
        if pool.central {
            self.notify_central(p, was_empty);
            while let Some(p) = self.kick.pop() {
                self.notify_central(p, true);
            }
        } else {
            if let Some(c) = self.reqs.cold_mut(slab) {
                c.instance = i as u32;
            }
            pool.dispatcher.loads.inc(i);
            if self.tracking_peak {
                let held = pool.dispatcher.loads.load(i) as u64;
                self.peak_held = self.peak_held.max(Some(held));
            }
            if let Some(t) = self.call(p, i, |s, now, cx| s.on_enqueue(now, was_empty, cx)) {
                self.pools[p].epochs[i] += 1;
                self.push_wake(p, i, t);
            }
            self.drain_done(p, i);
        }
    }

    /// Reject a new arrival that found its queue full.
    fn reject_queue_full(&mut self, slab: u32, p: usize) {
        let r = self.reqs.remove(slab);
        // Only a per-request record reads `c.id`, and records keep cold parts.
        let c = self.reqs.cold(slab);
        self.reject(
            "queue_full",
            r.measured,
            Some(r.home as usize),
            r.arrival_ns,
        );
        self.rejected_request(c.id, r.arrival_ns, p as u16, r.user);
    }

    /// Offer the central queue of pool `p` to its instances, in index order,
    /// until it is empty; instances mid-run cut the run at the current step.
    fn notify_central(&mut self, p: usize, was_empty: bool) {
        for j in 0..self.pools[p].active as usize {
            if self.pools[p].queues[0].is_empty() {
                break;
            }
            if !self.pools[p].instances[j].has_room() {
                continue;
            }
            if let Some(t) = self.call(p, j, |s, now, cx| s.on_enqueue(now, was_empty, cx)) {
                self.pools[p].epochs[j] += 1;
                self.push_wake(p, j, t);
            }
            self.drain_done(p, j);
        }
    }

    fn drain_done(&mut self, p: usize, i: usize) {
        while let Some(slab) = self.handoffs.pop() {
            // A prefill-only instance finished the prompt: hand it off.
            if !self.pools[p].central {
                self.pools[p].dispatcher.loads.dec(i);
            }
            self.start_transfer(p, i, slab);
        }
        while let Some(slab) = self.done.pop() {
            if !self.pools[p].central {
                self.pools[p].dispatcher.loads.dec(i);
            }
            let r = self.reqs.remove(slab);
            self.completed += 1;
            if self.cfg.record_requests {
                let c = ReqCold {
                    instance: i as u32,
                    ..self.reqs.cold(slab)
                };
                self.record(&r, &c);
            }
            let home = r.home as usize;
            if self.in_window(r.done_ns) {
                let c = &mut self.collectors[home];
                c.window_completions += 1;
                c.window_input_tok += r.isl as u64;
                c.window_output_tok += r.osl as u64;
                c.window_slo_met += meets_slo(&r, self.slo_ttft_ns, self.slo_tpot_ns) as u64;
            }
            if r.measured {
                record_completed(
                    &mut self.collectors[home],
                    &r,
                    self.slo_ttft_ns,
                    self.slo_tpot_ns,
                );
                if self.ttft_misses[home].is_some() {
                    let reported = self.collectors[home]
                        .ttft
                        .reported_ns(r.first_token_ns - r.arrival_ns);
                    if reported as f64 / 1e6 > self.cfg.slo.ttft_ms {
                        self.count_ttft_miss(home);
                    }
                }
            }
            for w in 0..self.win.len() {
                if self.in_metric_window(w, r.arrival_ns) {
                    let watched = self.watches_window(w);
                    let c = &mut self.win_collectors[w];
                    record_completed(c, &r, self.slo_ttft_ns, self.slo_tpot_ns);
                    if watched {
                        let reported = c.ttft.reported_ns(r.first_token_ns - r.arrival_ns);
                        if reported as f64 / 1e6 > self.cfg.slo.ttft_ms {
                            self.count_window_miss();
                        }
                    }
                }
            }
            if r.user != u32::MAX {
                let t = self.think_delay();
                self.schedule_user(r.user, t);
            }
        }
    }
}
