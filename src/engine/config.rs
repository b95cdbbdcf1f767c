//! Validated simulation configuration.

use kvfleet_routers::RouterSpec;
use serde::{Deserialize, Serialize};

use super::dispatch::DispatchPolicy;
use crate::profile::Profile;
use crate::rng::SimRng;
use crate::workload::{Category, RequestSource};

/// Which serving-instance engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// Iteration-exact with fast-forward over pure-decode runs.
    #[default]
    Fast,
    /// Naive reference: one event per step.
    Step,
}

impl EngineKind {
    /// Name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Fast => "fast",
            EngineKind::Step => "step",
        }
    }
}

/// Which model of a serving instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceModel {
    /// Iteration-level continuous batching.
    #[default]
    Iteration,
    /// M/G/c slots (the analytic layer's model).
    Slot,
}

/// One pool: N identical instances with a profile and a maximum context.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Pool id.
    pub id: String,
    /// Instance profile.
    pub profile: Profile,
    /// Number of instances.
    pub instances: u32,
    /// Largest ISL + OSL the pool accepts, tokens.
    pub max_ctx_tok: u32,
    /// Instance choice inside the pool.
    pub dispatch: DispatchPolicy,
    /// Maximum waiting requests per queue (per instance, or the central
    /// queue), whatever the bottleneck; a new arrival finding it full is a
    /// counted rejection. `Some(0)`: no queueing, a request is rejected unless
    /// its instance has room (slot and KV) and nothing else waits. `None`: unbounded.
    pub max_queue: Option<u32>,
    /// Override of the profile's `max_slots` as vLLM `max_num_seqs`.
    pub max_num_seqs: Option<u32>,
    /// Model ids served (for the `model` router; empty = any).
    pub models: Vec<String>,
}

impl PoolConfig {
    /// A pool of `instances` serving up to `max_ctx_tok` tokens, with JSQ
    /// dispatch, unbounded queues, the profile's `max_num_seqs`, serving any model.
    pub fn new(id: impl Into<String>, profile: Profile, instances: u32, max_ctx_tok: u32) -> Self {
        PoolConfig {
            id: id.into(),
            profile,
            instances,
            max_ctx_tok,
            dispatch: DispatchPolicy::Jsq,
            max_queue: None,
            max_num_seqs: None,
            models: Vec::new(),
        }
    }

    /// Running-sequence cap per instance.
    pub fn max_num_seqs(&self) -> u32 {
        self.max_num_seqs.unwrap_or(self.profile.max_slots)
    }

    /// Slots per instance at the pool's max context (slot model, analytic layer).
    pub fn n_slots(&self) -> u32 {
        self.profile.n_slots(self.max_ctx_tok)
    }

    /// GPUs in the pool.
    pub fn gpus(&self) -> u64 {
        self.instances as u64 * self.profile.gpus_per_instance as u64
    }
}

/// Service-level objectives.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// P99-style TTFT target per request, ms.
    pub ttft_ms: f64,
    /// Optional TPOT target per request, ms.
    pub tpot_ms: Option<f64>,
}

/// Which requests are excluded from statistics at the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Warmup {
    /// Fraction of requests (by arrival order) excluded, when the count is known.
    pub fraction: f64,
    /// Alternatively, requests arriving before this time are excluded.
    pub seconds: Option<f64>,
}

impl Default for Warmup {
    fn default() -> Self {
        Warmup {
            fraction: 0.1,
            seconds: None,
        }
    }
}

/// Everything a run needs except the workload.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Pools in fleet order.
    pub pools: Vec<PoolConfig>,
    /// The router.
    pub router: RouterSpec,
    /// Fast or step engine.
    pub engine: EngineKind,
    /// Iteration or slot model.
    pub service_model: ServiceModel,
    /// Root seed.
    pub seed: u64,
    /// Warm-up exclusion.
    pub warmup: Warmup,
    /// SLOs.
    pub slo: Slo,
    /// Check instance invariants at every boundary (slow).
    pub validate: bool,
    /// Plan a step whose end changes nothing anyone sees (its prefills
    /// finish and go on decoding; nothing completes or can be admitted)
    /// together with the pure-decode run after it, saving that boundary's
    /// event (fast engine; results are the same either way). On by
    /// default; off only to check that sameness.
    pub chain_steps: bool,
    /// Keep a per-request record (differential tests).
    pub record_requests: bool,
    /// Stop as unstable when this many requests are waiting (default: derived from capacity).
    pub max_waiting: Option<u64>,
    /// Simulate every request to the end even when the fleet is found
    /// unstable: the verdict is still `unstable` (first detection), with the
    /// backlog trajectory in the report, but the run does not stop early.
    /// Memory stays bounded by the backlog (waiting queues hold slab indices).
    pub run_to_completion: bool,
    /// Pools whose P99 TTFT over their measured arrivals is watched: the run
    /// stops (verdict `slo-missed`) as soon as one of them is certain to
    /// exceed `slo.ttft_ms` whatever the rest of the run does — the measured
    /// requests already rejected or completed above the SLO outnumber 1% of
    /// the most arrivals the pool can still reach. A planner's pass/fail
    /// probe needs no more. Empty (the default): off.
    pub stop_on_ttft_miss: Vec<usize>,
    /// Per pool, its measured arrivals over the whole run when they are
    /// known beforehand (a planner counts them on the replayed stream; an
    /// upper bound is enough): a watched pool's miss is then decided once
    /// its misses outnumber 1% of these rather than of every arrival still
    /// to come to the fleet, which a pool with a small share of the traffic
    /// would otherwise never reach before the end. Empty (the default), or
    /// `None` for a pool: unknown.
    pub measured_arrivals_bound: Vec<Option<u64>>,
    /// A metric window whose P99 TTFT is watched the same way: the run
    /// stops (verdict `slo-missed`) once the window's arrivals already
    /// rejected or completed above the SLO outnumber 1% of all its arrivals
    /// (counted beforehand, [`window_arrivals`]). `None` (the default): off.
    pub stop_on_window_ttft_miss: Option<WindowMissWatch>,
    /// Stop offering arrivals a margin after the fleet has recovered from
    /// an event (`engine::recovery`); `None` (the default): every request
    /// of the workload arrives.
    pub end_at_recovery: Option<super::recovery::EndAtRecovery>,
    /// Index into `windows` of a window over which the run reports the most
    /// requests any instance held at once (`SimOutcome::peak_held`).
    pub peak_held_window: Option<usize>,
    /// Changes of a pool's running-sequence cap during the run, in time order.
    pub controls: Vec<ControlChange>,
    /// Arrival-time windows with their own metrics and energy (e.g. before, during and after an event).
    pub windows: Vec<MetricWindow>,
    /// Disaggregated prefill/decode: which pools prefill, which decode, and the KV link.
    pub disagg: Option<Disagg>,
}

impl SimConfig {
    /// A configuration with the usual defaults: `length` routing, the fast
    /// iteration engine, 10% warm-up, no TPOT SLO, no validation or per-request
    /// records, derived saturation limit, no controls or windows.
    pub fn new(pools: Vec<PoolConfig>, seed: u64, slo_ttft_ms: f64) -> Self {
        SimConfig {
            pools,
            router: RouterSpec::length(),
            engine: EngineKind::Fast,
            service_model: ServiceModel::Iteration,
            seed,
            warmup: Warmup::default(),
            slo: Slo {
                ttft_ms: slo_ttft_ms,
                tpot_ms: None,
            },
            validate: false,
            chain_steps: true,
            record_requests: false,
            max_waiting: None,
            run_to_completion: false,
            stop_on_ttft_miss: Vec::new(),
            measured_arrivals_bound: Vec::new(),
            stop_on_window_ttft_miss: None,
            end_at_recovery: None,
            peak_held_window: None,
            controls: Vec::new(),
            windows: Vec::new(),
            disagg: None,
        }
    }
}

/// Disaggregated serving: prefill-only pools hand each request's KV cache over
/// a link to a decode-only pool. Pools in no pair serve both phases.
#[derive(Debug, Clone, PartialEq)]
pub struct Disagg {
    /// `(prefill pool, decode pool)` index pairs. Routers see only the prefill
    /// (and unpaired) pools; decode pools are reached through the hand-off.
    pub pairs: Vec<(usize, usize)>,
    /// The KV-transfer link.
    pub link: LinkSpec,
    /// KV-cache bytes per token of the served model (whole model, all TP ranks).
    pub kv_bytes_per_token: f64,
}

impl Disagg {
    /// The decode pool that prefill pool `p` hands off to, if `p` is a prefill pool.
    pub fn decode_of(&self, p: usize) -> Option<usize> {
        self.pairs.iter().find(|&&(a, _)| a == p).map(|&(_, d)| d)
    }

    /// True if `p` is a decode-only pool.
    pub fn is_decode(&self, p: usize) -> bool {
        self.pairs.iter().any(|&(_, d)| d == p)
    }

    /// Check the pairs against the fleet; the error names what is wrong.
    pub fn validate(&self, pools: &[PoolConfig]) -> Result<(), String> {
        if self.pairs.is_empty() {
            return Err("disagg: at least one (prefill, decode) pool pair is needed".into());
        }
        for &(p, d) in &self.pairs {
            let (Some(pp), Some(dp)) = (pools.get(p), pools.get(d)) else {
                return Err(format!(
                    "disagg: pool pair ({p}, {d}) names a pool that does not exist"
                ));
            };
            if p == d || self.is_decode(p) || self.decode_of(d).is_some() {
                return Err(format!(
                    "disagg: pool `{}` cannot both prefill and decode",
                    pp.id
                ));
            }
            if dp.max_ctx_tok < pp.max_ctx_tok {
                return Err(format!(
                    "disagg: decode pool `{}` max context {} is below its prefill pool `{}` max context {}",
                    dp.id, dp.max_ctx_tok, pp.id, pp.max_ctx_tok
                ));
            }
            if dp.profile.kv_capacity_tok() < dp.max_ctx_tok as u64 {
                return Err(format!(
                    "disagg: decode pool `{}` holds {} KV tokens per instance, less than its max context {}",
                    dp.id,
                    dp.profile.kv_capacity_tok(),
                    dp.max_ctx_tok
                ));
            }
        }
        for (k, &(p, _)) in self.pairs.iter().enumerate() {
            if self.pairs[..k].iter().any(|&(q, _)| q == p) {
                return Err(format!(
                    "disagg: prefill pool `{}` is paired with more than one decode pool",
                    pools[p].id
                ));
            }
        }
        self.link.validate()?;
        check_kv_bytes_per_token(self.kv_bytes_per_token)
            .map_err(|e| format!("disagg: kv_bytes_per_token: {e}"))?;
        Ok(())
    }
}

/// Largest KV size per token accepted, bytes (100 MB; a 405B-parameter
/// model in FP16 holds about 0.5 MB per token).
pub const MAX_KV_BYTES_PER_TOKEN: f64 = 1e8;

/// Check a KV size per token: a number of bytes in (0, [`MAX_KV_BYTES_PER_TOKEN`]].
pub fn check_kv_bytes_per_token(v: f64) -> Result<f64, String> {
    if v.is_finite() && v > 0.0 && v <= MAX_KV_BYTES_PER_TOKEN {
        Ok(v)
    } else {
        Err(format!(
            "{v}: expected a number of bytes in (0, {MAX_KV_BYTES_PER_TOKEN:e}]"
        ))
    }
}

/// The link that carries KV caches from prefill to decode instances.
/// Concurrent transfers on one link share its bandwidth equally (processor
/// sharing); each transfer then pays the fixed latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkSpec {
    /// Name shown in reports (`nvlink`, `ib`, `ethernet`, `inf`, or the custom spec).
    pub name: String,
    /// Bandwidth, bytes per second (per GPU when `per_gpu`; `f64::INFINITY` for an ideal link).
    pub bandwidth_bytes_per_s: f64,
    /// The bandwidth scales with the GPUs of an instance (one NIC or NVLink port per GPU).
    pub per_gpu: bool,
    /// Fixed latency per transfer, seconds.
    pub latency_s: f64,
    /// One link for the whole fleet instead of one per prefill instance.
    pub shared: bool,
}

impl LinkSpec {
    /// Names of the built-in links.
    pub const PRESETS: [&str; 5] = ["nvlink", "ib", "roce", "ethernet", "inf"];

    /// Parse `nvlink`, `ib` (InfiniBand), `roce`, `ethernet`, `inf`, or
    /// `GBPS[:LATENCY_US]` (gigabytes per second per instance). A `shared:`
    /// prefix makes it one link for the whole fleet.
    ///
    /// Preset figures (per GPU, one direction):
    /// - `nvlink`: 450 GB/s, 2 µs — NVIDIA H100 SXM datasheet, NVLink 4 at 900 GB/s bidirectional;
    /// - `ib`: 50 GB/s, 10 µs — NDR InfiniBand 400 Gb/s, one ConnectX-7 per GPU as in DGX H100;
    /// - `roce`: 25 GB/s, 20 µs — 200 GbE RoCE NIC per GPU (assumption: common cloud layout);
    /// - `ethernet`: 12.5 GB/s per instance, 50 µs — one 100 GbE NIC per server, TCP (assumption).
    ///
    /// Latencies include transfer set-up and are assumptions of the right order, not measurements.
    pub fn parse(spec: &str) -> Result<LinkSpec, String> {
        let (shared, body) = match spec.strip_prefix("shared:") {
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        let preset = |name: &str, gb_s: f64, per_gpu: bool, lat_us: f64| LinkSpec {
            name: name.to_string(),
            bandwidth_bytes_per_s: gb_s * 1e9,
            per_gpu,
            latency_s: lat_us * 1e-6,
            shared,
        };
        let link = match body.to_ascii_lowercase().as_str() {
            "nvlink" => preset("nvlink", 450.0, true, 2.0),
            "ib" | "infiniband" => preset("ib", 50.0, true, 10.0),
            "roce" => preset("roce", 25.0, true, 20.0),
            "ethernet" | "eth" => preset("ethernet", 12.5, false, 50.0),
            "inf" | "infinite" | "ideal" => LinkSpec {
                name: "inf".into(),
                bandwidth_bytes_per_s: f64::INFINITY,
                per_gpu: false,
                latency_s: 0.0,
                shared,
            },
            other => {
                let mut parts = other.split(':');
                let bw = parts.next().unwrap_or("");
                let lat = parts.next();
                let bad = || {
                    format!(
                        "expected nvlink, ib, roce, ethernet, inf or GBPS[:LATENCY_US], got `{spec}`"
                    )
                };
                if parts.next().is_some() {
                    return Err(bad());
                }
                let gb_s: f64 = bw.parse().map_err(|_| bad())?;
                let lat_us: f64 = match lat {
                    Some(l) => l.parse().map_err(|_| bad())?,
                    None => 0.0,
                };
                LinkSpec {
                    name: body.to_string(),
                    ..preset(body, gb_s, false, lat_us)
                }
            }
        };
        link.validate()?;
        Ok(link)
    }

    /// Slowest link accepted, bytes/s (1 MB/s: below it a KV hand-off of
    /// one request takes minutes and no plan is meaningful).
    pub const MIN_BANDWIDTH_BYTES_PER_S: f64 = 1e6;
    /// Largest fixed latency accepted, s (one minute).
    pub const MAX_LATENCY_S: f64 = 60.0;

    /// Check the numbers: bandwidth ≥ 1 MB/s (or infinite), latency in [0, 60 s].
    pub fn validate(&self) -> Result<(), String> {
        if self.bandwidth_bytes_per_s.is_nan()
            || self.bandwidth_bytes_per_s < Self::MIN_BANDWIDTH_BYTES_PER_S
        {
            return Err(format!(
                "link `{}`: bandwidth {} GB/s; expected at least {} GB/s (or `inf`)",
                self.name,
                self.bandwidth_bytes_per_s / 1e9,
                Self::MIN_BANDWIDTH_BYTES_PER_S / 1e9
            ));
        }
        if !(self.latency_s.is_finite() && (0.0..=Self::MAX_LATENCY_S).contains(&self.latency_s)) {
            return Err(format!(
                "link `{}`: latency {} µs; expected 0 to {} µs",
                self.name,
                self.latency_s * 1e6,
                Self::MAX_LATENCY_S * 1e6
            ));
        }
        Ok(())
    }

    /// Bandwidth of one link serving instances of `gpus` GPUs, bytes per second.
    pub fn instance_bandwidth(&self, gpus: u32) -> f64 {
        if self.per_gpu {
            self.bandwidth_bytes_per_s * gpus.max(1) as f64
        } else {
            self.bandwidth_bytes_per_s
        }
    }
}

/// A change to one pool at a given time: its running-sequence cap (e.g. a
/// demand-response event; a ramp is a sequence of such changes) or its
/// instance count (autoscaling, failures).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ControlChange {
    /// When, seconds since the start of the run.
    pub at_s: f64,
    /// Pool index.
    pub pool: usize,
    /// What changes.
    pub action: Control,
}

/// What a [`ControlChange`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// Set every instance's running-sequence cap (`max_num_seqs`); a lowered
    /// cap never preempts, it stops admissions until the batch drains below it.
    MaxNumSeqs(u32),
    /// Set the pool's active instance count (≥ 1). Added instances start idle;
    /// removed ones (the highest-numbered) stop taking requests as `mode` says
    /// and are powered off once they hold no work.
    Instances {
        /// Active instances from now on.
        count: u32,
        /// How removed instances leave.
        mode: ScaleMode,
    },
}

/// How instances leave a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleMode {
    /// Scale-in: queued requests move to the remaining instances, running
    /// ones finish where they are.
    Drain,
    /// Failure: running and queued requests restart on the remaining
    /// instances (their KV cache is lost; tokens already streamed are kept,
    /// as after a recompute preemption).
    Fail,
}

impl ControlChange {
    /// `pool`'s running-sequence cap set to `cap` at `at_s`.
    pub fn cap(at_s: f64, pool: usize, cap: u32) -> Self {
        ControlChange {
            at_s,
            pool,
            action: Control::MaxNumSeqs(cap),
        }
    }

    /// `pool`'s active instance count set to `count` at `at_s`.
    pub fn instances(at_s: f64, pool: usize, count: u32, mode: ScaleMode) -> Self {
        ControlChange {
            at_s,
            pool,
            action: Control::Instances { count, mode },
        }
    }

    /// A linear ramp of `pool`'s cap from `from` to `to` over `[start_s, start_s + ramp_s]`,
    /// one change per integer step (a single change when `ramp_s` is 0).
    pub fn ramp(pool: usize, start_s: f64, ramp_s: f64, from: u32, to: u32) -> Vec<ControlChange> {
        if ramp_s <= 0.0 || from == to {
            return vec![ControlChange::cap(start_s, pool, to)];
        }
        let steps = from.abs_diff(to);
        (1..=steps)
            .map(|k| {
                let cap = if to > from { from + k } else { from - k };
                ControlChange::cap(start_s + ramp_s * k as f64 / steps as f64, pool, cap)
            })
            .collect()
    }
}

/// A window of arrival times with its own metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricWindow {
    /// Name shown in reports (`before`, `event`, `after`).
    pub name: String,
    /// Start, seconds since the start of the run.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
}

impl MetricWindow {
    /// The window's arrival times, `[start, end)` in ns.
    pub fn bounds_ns(&self) -> (u64, u64) {
        (
            crate::workload::secs_to_ns(self.start_s),
            crate::workload::secs_to_ns(self.end_s),
        )
    }
}

/// A metric window watched for a certain P99 TTFT miss
/// (`SimConfig::stop_on_window_ttft_miss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowMissWatch {
    /// Index into `SimConfig::windows`.
    pub window: usize,
    /// Requests arriving in the window over the whole run (the rank of its
    /// P99 needs the count): [`window_arrivals`] of the run's source.
    pub arrivals: u64,
}

/// Requests of `src` arriving in `window`: read (by arrival time only, so
/// `src` is spent) up to the first arrival at or after its end. `None` when the source is out of time order before
/// then (a later request could still fall in the window).
pub fn window_arrivals(
    src: &mut dyn RequestSource,
    window: &MetricWindow,
) -> Result<Option<u64>, crate::error::InputError> {
    let (start, end) = window.bounds_ns();
    let (mut n, mut last) = (0u64, 0u64);
    while let Some(t) = src.next_arrival_only_ns()? {
        if t < last {
            return Ok(None);
        }
        last = t;
        if last >= end {
            break;
        }
        n += (last >= start) as u64;
    }
    Ok(Some(n))
}

/// Draws (ISL, OSL, category) for one closed-loop request.
pub type RequestSampler = Box<dyn FnMut(&mut SimRng) -> (u32, u32, Category) + Send>;

/// A closed-loop user population: each user issues a request, waits for it to
/// finish (or be rejected), thinks for an exponential time, and repeats.
pub struct ClosedLoop {
    /// Number of users.
    pub users: u32,
    /// Mean think time, seconds (0: the next request is issued at completion).
    pub think_time_mean_s: f64,
    /// Total requests to issue.
    pub n_requests: u64,
    /// Draws (ISL, OSL, category) for each request.
    pub sampler: RequestSampler,
}

/// Where the requests of a run come from.
pub enum Arrivals {
    /// An open stream in arrival order.
    Open(Box<dyn RequestSource>),
    /// A closed loop of users.
    Closed(ClosedLoop),
}
