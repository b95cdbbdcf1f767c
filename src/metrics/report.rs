//! The report of a simulation: the JSON contract of `simulate --json` and
//! the human table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::collector::Collector;
use super::latency::LatencySummary;
use crate::engine::server::InstanceStats;
use crate::engine::{PoolConfig, ServiceModel, SimConfig, SimOutcome, Verdict};

/// Request counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestCounts {
    /// Requests that arrived (including warm-up).
    pub arrived: u64,
    /// Requests completed.
    pub completed: u64,
    /// Requests rejected.
    pub rejected: u64,
    /// Requests still in flight when the run ended.
    pub in_flight: u64,
    /// Requests counted in statistics (after warm-up).
    pub measured: u64,
    /// Rejections by reason.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Requests restarted on another instance after theirs failed (fleet only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restarted_after_failure: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// SLO attainment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SloReport {
    /// TTFT target, ms.
    pub ttft_ms: f64,
    /// TPOT target, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<f64>,
    /// Fraction of measured requests meeting every SLO (rejected and unfinished are misses).
    pub attainment: Option<f64>,
    /// P99 TTFT over every measured arrival, ms, rejected and unfinished
    /// requests counted as infinite latency: this is the P99 a planner
    /// compares with the SLO. `null` with no arrivals, or when more than 1%
    /// of arrivals missed (infinite; see `missed_fraction`).
    #[serde(default)]
    pub p99_ttft_all_ms: Option<f64>,
    /// Fraction of measured arrivals rejected or unfinished (`null` with no arrivals).
    #[serde(default)]
    pub missed_fraction: Option<f64>,
}

impl SloReport {
    /// P99 TTFT over every measured arrival, ms: `f64::INFINITY` when more
    /// than 1% of arrivals were rejected or unfinished, `None` with no
    /// arrivals (also after a JSON round trip, where infinity is `null`).
    pub fn p99_ttft_over_arrivals_ms(&self) -> Option<f64> {
        match (self.p99_ttft_all_ms, self.missed_fraction) {
            (Some(p), _) => Some(p),
            (None, Some(_)) => Some(f64::INFINITY),
            (None, None) => None,
        }
    }
}

/// A measurement window shorter than this, ns, has no meaningful rate:
/// throughput and goodput are reported as 0 rather than divided by ~0.
pub const MIN_RATE_WINDOW_NS: f64 = 1e6;

/// Rates over the measurement window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    /// Completions per second.
    pub req_per_s: f64,
    /// Input tokens of completions per second.
    pub input_tok_per_s: f64,
    /// Output tokens of completions per second.
    pub output_tok_per_s: f64,
}

/// Energy over the measurement window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnergyReport {
    /// Energy, J.
    pub energy_j: f64,
    /// Average power, W.
    pub avg_power_w: f64,
    /// Output tokens per joule.
    pub output_tok_per_j: Option<f64>,
}

/// Cost of the fleet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostReport {
    /// $ per hour.
    pub per_hr_usd: f64,
    /// $ per year (8760 h).
    pub per_year_usd: f64,
    /// $ per million output tokens at the measured throughput.
    pub per_million_output_tok_usd: Option<f64>,
}

/// Metrics shared by the fleet and each pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricBlock {
    /// Time to first token, ms.
    pub ttft_ms: LatencySummary,
    /// Time per output token, ms.
    pub tpot_ms: LatencySummary,
    /// End-to-end latency, ms.
    pub e2e_ms: LatencySummary,
    /// Queue wait before first admission, ms.
    pub queue_wait_ms: LatencySummary,
    /// P(queue wait > 0).
    pub p_wait: Option<f64>,
    /// SLO attainment.
    pub slo: SloReport,
    /// Completions inside the window that met every SLO, per second of the
    /// window (never above `throughput.req_per_s`; 0 for a window under 1 ms).
    pub goodput_req_per_s: f64,
    /// Throughput.
    pub throughput: Throughput,
    /// Fraction of instance-time spent stepping.
    pub utilisation: f64,
    /// Mean running sequences per step while busy (iteration model); mean
    /// occupied slots per powered instance (slot model).
    pub mean_batch: f64,
    /// Mean fraction of KV blocks in use.
    pub kv_occupancy: f64,
    /// Recompute preemptions in the window.
    pub preemptions: u64,
    /// Energy.
    pub energy: EnergyReport,
    /// Cost.
    pub cost: CostReport,
}

/// One pool's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolReport {
    /// Pool id.
    pub id: String,
    /// Profile name.
    pub gpu: String,
    /// Serving instances.
    pub instances: u32,
    /// GPUs.
    pub gpus: u64,
    /// Max context, tokens.
    pub max_ctx: u32,
    /// Dispatch policy.
    pub dispatch: String,
    /// Running-sequence cap per instance.
    pub max_num_seqs: u32,
    /// Slots per instance at max context (slot model and analytic layer).
    pub n_slots: u32,
    /// Measured requests that reached this pool.
    pub requests: RequestCounts,
    /// Metrics.
    #[serde(flatten)]
    pub metrics: MetricBlock,
}

/// Engine counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineReport {
    /// `fast` or `step`.
    pub name: String,
    /// `iteration` or `slot`.
    pub service_model: String,
    /// Events processed.
    pub events: u64,
    /// Wall-clock seconds (null with `--no-timing`).
    pub wall_s: Option<f64>,
    /// Simulated requests per wall-clock second (null with `--no-timing`).
    pub sim_requests_per_s: Option<f64>,
}

/// Router counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouterReport {
    /// Router name.
    pub name: String,
    /// Requests routed per pool id.
    pub routed: BTreeMap<String, u64>,
    /// Compressed requests.
    pub compressed: u64,
    /// Spilled requests.
    pub spilled: u64,
    /// Router rejections by reason.
    pub rejected: BTreeMap<String, u64>,
}

/// The report of one simulation (or the mean of replications).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimReport {
    /// What was simulated.
    pub workload: String,
    /// `stable`, `unstable`, `no-data` (no request was measured, e.g. the
    /// warm-up covered the whole run), `all-rejected` (every measured
    /// request was rejected) or `slo-missed` (a planner's probe stopped once
    /// a watched pool's P99 TTFT was certain to miss the SLO). Only `stable`
    /// can meet an SLO.
    pub verdict: String,
    /// Why the verdict is `no-data`, `all-rejected` or `slo-missed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict_reason: Option<String>,
    /// With `slo-missed`: the pool whose certain miss stopped the run
    /// (`None` for a metric window's). Not reported.
    #[serde(skip)]
    pub slo_missed_pool: Option<usize>,
    /// When and why the run was found unstable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unstable: Option<Unstable>,
    /// Request counts (fleet).
    pub requests: RequestCounts,
    /// Fleet metrics.
    #[serde(flatten)]
    pub fleet: MetricBlock,
    /// Total instances.
    pub instances: u64,
    /// Total GPUs.
    pub gpus: u64,
    /// Per-pool reports.
    pub pools: Vec<PoolReport>,
    /// Router counters.
    pub router: RouterReport,
    /// Engine counters.
    pub engine: EngineReport,
    /// Measurement window, s.
    pub window_s: [f64; 2],
    /// Simulated time at the end, s.
    pub sim_end_s: f64,
    /// Trace rows skipped.
    pub skipped_rows: crate::workload::SkipCounts,
    /// Replication statistics (present with `--replications R > 1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replications: Option<Replications>,
    /// KV hand-offs of a disaggregated fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_transfer: Option<KvTransferReport>,
    /// Metrics of requests arriving in each configured window (e.g. before,
    /// during and after an event), with the fleet's energy over the window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowReport>,
}

/// Requests that arrived in one time window (no warm-up exclusion).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowReport {
    /// Window name.
    pub name: String,
    /// Start, s.
    pub start_s: f64,
    /// End, s (the end of the run if it came first).
    pub end_s: f64,
    /// Request counts of the window's arrivals.
    pub requests: RequestCounts,
    /// TTFT of the window's arrivals (unfinished ones as lower bounds).
    pub ttft_ms: LatencySummary,
    /// TPOT of the window's arrivals.
    pub tpot_ms: LatencySummary,
    /// SLO attainment of the window's arrivals.
    pub slo_attainment: Option<f64>,
    /// Fleet energy over the window, J (busy power, plus idle power while
    /// powered), up to the end of the run.
    pub energy_j: f64,
    /// Why the window has no latencies (e.g. "no arrivals: the run ended at 20.1 s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What the KV-transfer links of a disaggregated fleet carried.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KvTransferReport {
    /// Link name.
    pub link: String,
    /// Transfers completed (all requests).
    pub transfers: u64,
    /// Data carried, GB.
    pub gb: f64,
    /// Transfer time (sharing and latency) of measured requests, ms.
    pub transfer_ms: LatencySummary,
    /// Arrival → end of prefill of measured requests, ms (TTFT = this + transfer).
    pub prefill_phase_ms: LatencySummary,
    /// Links (one per prefill instance, or one shared).
    pub links: usize,
    /// Mean fraction of time a link carried at least one transfer (whole run).
    pub link_busy_fraction: f64,
}

/// Instability details.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unstable {
    /// Simulated time of detection, s.
    pub detected_at_s: f64,
    /// Why.
    pub reason: String,
    /// Waiting requests over the run, for a run simulated to completion
    /// (`--run-to-completion`): up to 24 evenly spaced samples and the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<Vec<BacklogPoint>>,
}

/// One sample of a run's backlog.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BacklogPoint {
    /// Simulated time, s.
    pub t_s: f64,
    /// Requests waiting (all pools).
    pub waiting: u64,
}

/// The backlog trajectory of a run: up to 24 of its queue samples, evenly
/// spaced in sample index, then the end of the run.
fn backlog_trajectory(out: &SimOutcome) -> Vec<BacklogPoint> {
    const POINTS: usize = 24;
    let q = &out.queue_trace;
    let mut v: Vec<BacklogPoint> = (0..POINTS.min(q.len()))
        .map(|k| {
            let (t_s, waiting) = q[k * q.len() / POINTS.min(q.len())];
            BacklogPoint { t_s, waiting }
        })
        .collect();
    v.push(BacklogPoint {
        t_s: out.end_s,
        waiting: out.waiting_at_end,
    });
    v
}

/// Replication statistics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replications {
    /// Number of replications.
    pub count: u32,
    /// Replications found unstable.
    pub unstable: u32,
    /// 95% CI half-width of each headline metric, keyed by its JSON path.
    pub ci95: BTreeMap<String, Option<f64>>,
}

fn metric_block(
    c: &Collector,
    st: &InstanceStats,
    pools: &[&PoolConfig],
    window_ns: f64,
    cfg: &SimConfig,
) -> MetricBlock {
    let instances: f64 = pools.iter().map(|p| p.instances as f64).sum();
    let inst_ns = (instances * window_ns).max(1.0);
    let kv_cap: f64 = pools
        .iter()
        .map(|p| p.instances as f64 * p.profile.total_kv_blks as f64)
        .sum();
    let idle_w: f64 = pools
        .iter()
        .map(|p| p.instances as f64 * p.profile.power.p_idle_w)
        .sum();
    let per_hr: f64 = pools
        .iter()
        .map(|p| p.instances as f64 * p.profile.cost_per_hr)
        .sum();
    let window_s = (window_ns * 1e-9).max(1e-12);
    // Rates over a window of (almost) no length are not rates.
    let rate = |n: u64| {
        if window_ns >= MIN_RATE_WINDOW_NS {
            n as f64 / window_s
        } else {
            0.0
        }
    };
    // Idle energy: each instance draws idle power while powered on and not
    // stepping (instances removed by a control change power off once empty).
    let idle_frac_ns = (st.powered_ns - st.busy_ns).max(0.0);
    let mean_idle_w = if instances > 0.0 {
        idle_w / instances
    } else {
        0.0
    };
    let energy_j = st.busy_energy_j + mean_idle_w * idle_frac_ns * 1e-9;
    let out_tok_s = rate(c.window_output_tok);
    MetricBlock {
        ttft_ms: c.ttft.summary_ms(),
        tpot_ms: c.tpot.summary_ms(),
        e2e_ms: c.e2e.summary_ms(),
        queue_wait_ms: c.queue_wait.summary_ms(),
        p_wait: c.queue_wait.fraction_positive(),
        slo: SloReport {
            ttft_ms: cfg.slo.ttft_ms,
            tpot_ms: cfg.slo.tpot_ms,
            attainment: c.attainment(),
            p99_ttft_all_ms: c.ttft_percentile_all_ns(99.0).map(|v| v / 1e6),
            missed_fraction: c.missed_fraction(),
        },
        goodput_req_per_s: rate(c.window_slo_met),
        throughput: Throughput {
            req_per_s: rate(c.window_completions),
            input_tok_per_s: rate(c.window_input_tok),
            output_tok_per_s: out_tok_s,
        },
        utilisation: if st.powered_ns > 0.0 {
            st.busy_ns / st.powered_ns
        } else {
            st.busy_ns / inst_ns
        },
        mean_batch: match cfg.service_model {
            // A slot instance's busy time is weighted by occupancy, so
            // batch / busy would be the slot count: report mean occupancy.
            ServiceModel::Slot if st.powered_ns > 0.0 => st.batch_ns / st.powered_ns,
            ServiceModel::Slot => st.batch_ns / inst_ns,
            ServiceModel::Iteration if st.busy_ns > 0.0 => st.batch_ns / st.busy_ns,
            ServiceModel::Iteration => 0.0,
        },
        kv_occupancy: if kv_cap > 0.0 {
            st.kv_blocks_ns / (kv_cap * window_ns.max(1.0))
        } else {
            0.0
        },
        preemptions: st.preemptions,
        energy: EnergyReport {
            energy_j,
            avg_power_w: energy_j / window_s,
            output_tok_per_j: (energy_j > 0.0).then(|| c.window_output_tok as f64 / energy_j),
        },
        cost: CostReport {
            per_hr_usd: per_hr,
            per_year_usd: per_hr * 8760.0,
            per_million_output_tok_usd: (out_tok_s > 0.0)
                .then(|| per_hr / (out_tok_s * 3600.0) * 1e6),
        },
    }
}

/// Energy of pools over a span, J: each pool's busy energy plus its idle
/// power for the time its instances were powered on and not stepping.
pub fn pools_energy_j(pools: &[PoolConfig], stats: &[InstanceStats]) -> f64 {
    pools
        .iter()
        .zip(stats)
        .map(|(p, st)| {
            st.busy_energy_j
                + p.profile.power.p_idle_w * (st.powered_ns - st.busy_ns).max(0.0) * 1e-9
        })
        .sum()
}

fn counts(arrived: u64, c: &Collector, in_flight: u64) -> RequestCounts {
    RequestCounts {
        arrived,
        completed: c.completed,
        rejected: c.rejected_total(),
        in_flight,
        measured: c.arrived,
        rejected_by_reason: c.rejected.clone(),
        restarted_after_failure: 0,
    }
}

/// `no-data` or `all-rejected`, with the reason, when a run measured nothing
/// a latency could be taken from.
fn measured_verdict(out: &SimOutcome) -> Option<(&'static str, String)> {
    if out.measured == 0 {
        return Some((
            "no-data",
            format!(
                "0 of {} arrivals were measured (the warm-up covered the whole run): nothing was measured",
                out.arrived
            ),
        ));
    }
    let rejected = out.fleet.rejected_total();
    if rejected >= out.fleet.arrived && out.fleet.arrived > 0 {
        let why: Vec<String> = out
            .fleet
            .rejected
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        return Some((
            "all-rejected",
            format!(
                "every one of the {} measured requests was rejected ({})",
                out.fleet.arrived,
                why.join(", ")
            ),
        ));
    }
    None
}

impl SimReport {
    /// True when nothing was measured (`no-data`) or every measured request
    /// was rejected (`all-rejected`): the report's latencies describe nothing.
    pub fn measured_nothing(&self) -> bool {
        matches!(self.verdict.as_str(), "no-data" | "all-rejected")
    }

    /// Build the report of one replication.
    pub fn from_outcome(
        cfg: &SimConfig,
        out: &SimOutcome,
        workload: &str,
        timing: bool,
    ) -> SimReport {
        let window_ns = ((out.window_s.1 - out.window_s.0) * 1e9).max(1.0);
        let all: Vec<&PoolConfig> = cfg.pools.iter().collect();
        let mut fleet_stats = InstanceStats::default();
        let pools: Vec<PoolReport> = cfg
            .pools
            .iter()
            .zip(&out.pools)
            .map(|(p, o)| {
                fleet_stats.add(&o.window_stats);
                PoolReport {
                    id: p.id.clone(),
                    gpu: p.profile.name.clone(),
                    instances: p.instances,
                    gpus: p.gpus(),
                    max_ctx: p.max_ctx_tok,
                    dispatch: p.dispatch.as_str().to_string(),
                    max_num_seqs: p.max_num_seqs(),
                    n_slots: p.n_slots(),
                    requests: counts(o.metrics.arrived, &o.metrics, o.metrics.unfinished),
                    metrics: metric_block(&o.metrics, &o.window_stats, &[p], window_ns, cfg),
                }
            })
            .collect();
        let (router_name, rs) = &out.router;
        let (verdict, unstable) = match &out.verdict {
            Verdict::Stable => ("stable", None),
            Verdict::Unstable {
                detected_at_s,
                reason,
            } => (
                "unstable",
                Some(Unstable {
                    detected_at_s: *detected_at_s,
                    reason: reason.clone(),
                    backlog: cfg.run_to_completion.then(|| backlog_trajectory(out)),
                }),
            ),
            Verdict::SloMissed { .. } => ("slo-missed", None),
        };
        let (verdict, verdict_reason) = match (&out.verdict, measured_verdict(out)) {
            (Verdict::SloMissed { reason, .. }, _) => (verdict, Some(reason.clone())),
            (_, Some((v, why))) if verdict == "stable" => (v, Some(why)),
            _ => (verdict, None),
        };
        SimReport {
            workload: workload.to_string(),
            verdict: verdict.to_string(),
            verdict_reason,
            slo_missed_pool: match &out.verdict {
                Verdict::SloMissed { pool, .. } => *pool,
                _ => None,
            },
            unstable,
            requests: RequestCounts {
                arrived: out.arrived,
                completed: out.completed,
                rejected: out.rejected_total(),
                in_flight: out.in_flight,
                measured: out.measured,
                rejected_by_reason: out.rejected.clone(),
                restarted_after_failure: out.evicted,
            },
            fleet: {
                let mut f = metric_block(&out.fleet, &fleet_stats, &all, window_ns, cfg);
                // Pools differ in idle power: fleet energy is the sum of the pools' energies.
                let e: f64 = pools.iter().map(|p| p.metrics.energy.energy_j).sum();
                let window_s = (window_ns * 1e-9).max(1e-12);
                f.energy.energy_j = e;
                f.energy.avg_power_w = e / window_s;
                f.energy.output_tok_per_j =
                    (e > 0.0).then(|| out.fleet.window_output_tok as f64 / e);
                f
            },
            instances: cfg.pools.iter().map(|p| p.instances as u64).sum(),
            gpus: cfg.pools.iter().map(|p| p.gpus()).sum(),
            pools,
            router: RouterReport {
                name: router_name.clone(),
                routed: crate::engine::entry_pools(cfg)
                    .into_iter()
                    .zip(&rs.routed)
                    .map(|(p, n)| (cfg.pools[p].id.clone(), *n))
                    .collect(),
                compressed: rs.compressed,
                spilled: rs.spilled,
                rejected: rs
                    .rejected
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect(),
            },
            engine: EngineReport {
                name: cfg.engine.as_str().to_string(),
                service_model: format!("{:?}", cfg.service_model).to_lowercase(),
                events: out.events,
                wall_s: timing.then_some(out.wall_s),
                sim_requests_per_s: timing.then(|| out.arrived as f64 / out.wall_s.max(1e-9)),
            },
            window_s: [out.window_s.0, out.window_s.1],
            sim_end_s: out.end_s,
            skipped_rows: out.skipped.clone(),
            replications: None,
            windows: out
                .windows
                .iter()
                .map(|w| WindowReport {
                    name: w.name.clone(),
                    start_s: w.start_s,
                    end_s: w.end_s,
                    requests: counts(w.metrics.arrived, &w.metrics, w.metrics.unfinished),
                    ttft_ms: w.metrics.ttft.summary_ms(),
                    tpot_ms: w.metrics.tpot.summary_ms(),
                    slo_attainment: w.metrics.attainment(),
                    energy_j: pools_energy_j(&cfg.pools, &w.stats_by_pool),
                    note: (w.metrics.arrived == 0).then(|| {
                        if w.start_s >= out.end_s {
                            format!("no arrivals: the run ended at {:.1} s", out.end_s)
                        } else {
                            "no arrivals".to_string()
                        }
                    }),
                })
                .collect(),
            kv_transfer: out.kv_transfer.as_ref().map(|k| KvTransferReport {
                link: cfg
                    .disagg
                    .as_ref()
                    .map(|d| d.link.name.clone())
                    .unwrap_or_default(),
                transfers: k.transfers,
                gb: k.bytes * 1e-9,
                transfer_ms: k.transfer.summary_ms(),
                prefill_phase_ms: k.prefill_phase.summary_ms(),
                links: k.links,
                link_busy_fraction: if k.links > 0 && out.end_s > 0.0 {
                    k.link_busy_s / (k.links as f64 * out.end_s)
                } else {
                    0.0
                },
            }),
        }
    }
}
