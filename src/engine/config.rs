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
    /// Iteration-level continuous batching (DESIGN §5).
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
    /// Maximum waiting requests per queue (per instance, or the central queue); overflow is a counted rejection.
    pub max_queue: Option<u32>,
    /// Override of the profile's `max_slots` as vLLM `max_num_seqs`.
    pub max_num_seqs: Option<u32>,
    /// Model ids served (for the `model` router; empty = any).
    pub models: Vec<String>,
}

impl PoolConfig {
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
    /// Keep a per-request record (differential tests).
    pub record_requests: bool,
    /// Stop as unstable when this many requests are waiting (default: derived from capacity).
    pub max_waiting: Option<u64>,
    /// Changes of a pool's running-sequence cap during the run, in time order.
    pub controls: Vec<ControlChange>,
    /// Arrival-time windows with their own metrics and energy (e.g. before, during and after an event).
    pub windows: Vec<MetricWindow>,
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
            record_requests: false,
            max_waiting: None,
            controls: Vec::new(),
            windows: Vec::new(),
        }
    }
}

/// A pool's `max_num_seqs` cap set to `max_num_seqs` at `at_s` (e.g. a
/// demand-response event; a ramp is a sequence of such changes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ControlChange {
    /// When, seconds since the start of the run.
    pub at_s: f64,
    /// Pool index.
    pub pool: usize,
    /// New running-sequence cap per instance.
    pub max_num_seqs: u32,
}

impl ControlChange {
    /// A linear ramp of `pool`'s cap from `from` to `to` over `[start_s, start_s + ramp_s]`,
    /// one change per integer step (a single change when `ramp_s` is 0).
    pub fn ramp(pool: usize, start_s: f64, ramp_s: f64, from: u32, to: u32) -> Vec<ControlChange> {
        if ramp_s <= 0.0 || from == to {
            return vec![ControlChange {
                at_s: start_s,
                pool,
                max_num_seqs: to,
            }];
        }
        let steps = from.abs_diff(to);
        (1..=steps)
            .map(|k| {
                let cap = if to > from { from + k } else { from - k };
                ControlChange {
                    at_s: start_s + ramp_s * k as f64 / steps as f64,
                    pool,
                    max_num_seqs: cap,
                }
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
