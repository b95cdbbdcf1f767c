//! Scenario files (TOML): a workload, pools, a router and run settings in one
//! place. Paths inside are relative to the scenario file.
//!
//! ```toml
//! [workload]
//! cdf = "../data/azure_cdf.json"
//! lam = 100
//! n_requests = 200000
//!
//! [[pools]]
//! id = "short"
//! gpu = "h100"
//! instances = 2
//! max_ctx = 4096
//!
//! [router]
//! kind = "length"
//!
//! [sim]
//! seed = 7
//! slo_ttft_ms = 500
//! ```

use std::path::{Path, PathBuf};

use kvfleet_routers::RouterSpec;
use serde::Deserialize;

use crate::engine::dispatch::DispatchPolicy;
use crate::engine::{
    Control, ControlChange, Disagg, EngineKind, LinkSpec, MetricWindow, PoolConfig, ScaleMode,
    ServiceModel, SimConfig, Slo, Warmup,
};
use crate::error::InputError;
use crate::profile::{ProfileOverrides, resolve_profile};
use crate::simulate::SimulateJob;
use crate::workload::spec::WorkloadSpec;

/// One pool as written in a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Pool id.
    pub id: String,
    /// Preset name, `custom`, or a profile TOML path.
    pub gpu: String,
    /// Serving instances.
    pub instances: u32,
    /// Max context, tokens.
    pub max_ctx: u32,
    /// Dispatch policy (default `jsq`).
    #[serde(default)]
    pub dispatch: DispatchPolicy,
    /// Most waiting requests per instance (per pool with `central` dispatch);
    /// 0 = no queueing (reject unless the instance has room); unset = unbounded.
    #[serde(default)]
    pub max_queue: Option<u32>,
    /// Override of `max_num_seqs`.
    #[serde(default)]
    pub max_num_seqs: Option<u32>,
    /// Model ids served.
    #[serde(default)]
    pub models: Vec<String>,
    /// Profile field overrides (`w_ms`, `h_ms`, `kv_blocks`, ...).
    #[serde(default)]
    pub profile: ProfileOverrides,
}

/// Run settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Root seed.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `fast` or `step`.
    #[serde(default)]
    pub engine: EngineKind,
    /// `iteration` or `slot`.
    #[serde(default)]
    pub service_model: ServiceModel,
    /// Warm-up fraction of requests.
    #[serde(default = "default_warmup")]
    pub warmup: f64,
    /// Warm-up in seconds (instead of the fraction).
    #[serde(default)]
    pub warmup_s: Option<f64>,
    /// Replications.
    #[serde(default = "default_reps")]
    pub replications: u32,
    /// TTFT SLO, ms.
    #[serde(default = "default_slo")]
    pub slo_ttft_ms: f64,
    /// TPOT SLO, ms.
    #[serde(default)]
    pub slo_tpot_ms: Option<f64>,
    /// Simulate every request even when the fleet is unstable.
    #[serde(default)]
    pub run_to_completion: bool,
}

fn default_seed() -> u64 {
    42
}
fn default_warmup() -> f64 {
    0.1
}
fn default_reps() -> u32 {
    1
}
fn default_slo() -> f64 {
    500.0
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            seed: default_seed(),
            engine: EngineKind::Fast,
            service_model: ServiceModel::Iteration,
            warmup: default_warmup(),
            warmup_s: None,
            replications: 1,
            slo_ttft_ms: default_slo(),
            slo_tpot_ms: None,
            run_to_completion: false,
        }
    }
}

/// One pool's own traffic stream (multi-workload fleets): a CDF at a share
/// of the total arrival rate. Its requests carry the pool's id as their model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolWorkloadSpec {
    /// Total-token CDF file.
    pub cdf: PathBuf,
    /// Share of the total arrival rate `workload.lam`.
    pub lam_frac: f64,
}

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Free text: the planning question this scenario answers.
    #[serde(default)]
    pub description: Option<String>,
    /// The workload.
    #[serde(default)]
    pub workload: WorkloadSpec,
    /// Pools in fleet order.
    pub pools: Vec<PoolSpec>,
    /// The router (default: `length`).
    #[serde(default = "RouterSpec::length")]
    pub router: RouterSpec,
    /// Run settings.
    #[serde(default)]
    pub sim: RunSpec,
    /// Per-pool workloads keyed by pool id (instead of one shared stream).
    #[serde(default)]
    pub workloads: std::collections::BTreeMap<String, PoolWorkloadSpec>,
    /// Changes during the run: caps (with optional ramps) and instance counts.
    #[serde(default)]
    pub events: Vec<EventSpec>,
    /// Arrival-time windows reported separately (e.g. before, during, after an event).
    #[serde(default)]
    pub windows: Vec<MetricWindow>,
    /// Disaggregated prefill/decode: which pool prefills for which.
    #[serde(default)]
    pub disagg: Option<DisaggSpec>,
}

/// A change to one pool during the run:
///
/// ```toml
/// [[events]]            # a failure of 2 instances at t = 600 s
/// at_s = 600
/// pool = "chat"
/// instances = 6
/// mode = "fail"         # or "drain" (default)
///
/// [[events]]            # a cap ramp (demand response)
/// at_s = 900
/// pool = "chat"
/// max_num_seqs = 32
/// ramp_s = 60
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// When, seconds since the start of the run.
    pub at_s: f64,
    /// Pool id.
    pub pool: String,
    /// New active instance count.
    #[serde(default)]
    pub instances: Option<u32>,
    /// How removed instances leave (`drain` or `fail`; default `drain`).
    #[serde(default)]
    pub mode: Option<ScaleMode>,
    /// New running-sequence cap per instance.
    #[serde(default)]
    pub max_num_seqs: Option<u32>,
    /// Reach the new cap linearly over this many seconds.
    #[serde(default)]
    pub ramp_s: Option<f64>,
}

/// Disaggregated serving in a scenario: the prefill pool hands KV caches to
/// the decode pool over `link`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisaggSpec {
    /// Prefill pool id.
    pub prefill: String,
    /// Decode pool id.
    pub decode: String,
    /// Link: `nvlink`, `ib`, `roce`, `ethernet`, `inf`, or `GBPS[:LATENCY_US]` (default `ib`).
    #[serde(default = "default_link")]
    pub link: String,
    /// KV bytes per token (default: from a computed decode spec, else 327,680).
    #[serde(default)]
    pub kv_bytes_per_token: Option<f64>,
}

/// How far per-pool `lam_frac` shares may sum from 1 (rounding in a file).
pub const LAM_FRAC_SUM_TOLERANCE: f64 = 1e-6;

fn default_link() -> String {
    "ib".into()
}

fn rebase(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl Scenario {
    /// Load and validate a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, InputError> {
        let text = crate::input_file::read_text(path)?;
        let mut s: Scenario = toml::from_str(&text).map_err(|e| InputError::File {
            path: path.to_path_buf(),
            reason: e.to_string().trim().replace('\n', " "),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for w in s.workloads.values_mut() {
            w.cdf = rebase(base, &w.cdf);
        }
        if let Some(c) = &s.workload.cdf {
            s.workload.cdf = Some(rebase(base, c));
        }
        if let Some(t) = &mut s.workload.trace {
            t.path = rebase(base, &t.path);
        }
        for p in &mut s.pools {
            if p.gpu.ends_with(".toml") {
                p.gpu = rebase(base, Path::new(&p.gpu))
                    .to_string_lossy()
                    .into_owned();
            }
        }
        if s.pools.is_empty() {
            return Err(InputError::File {
                path: path.to_path_buf(),
                reason: "`pools`: expected at least one [[pools]] table".into(),
            });
        }
        s.check_pools_and_shares(path)?;
        Ok(s)
    }

    /// Refuse what a fleet file cannot mean: two pools with one id (the
    /// second would get no traffic but be billed) and per-pool `lam_frac`
    /// shares that do not sum to 1 (the total rate would silently change).
    /// Errors name `path` and the key.
    pub fn check_pools_and_shares(&self, path: &Path) -> Result<(), InputError> {
        let file_err = |reason: String| InputError::File {
            path: path.to_path_buf(),
            reason,
        };
        for (i, p) in self.pools.iter().enumerate() {
            if let Some(j) = self.pools[..i].iter().position(|q| q.id == p.id) {
                return Err(file_err(format!(
                    "`pools[{i}].id`: duplicate pool id `{}` (also pools[{j}].id); pool ids must be unique",
                    p.id
                )));
            }
        }
        if !self.workloads.is_empty() {
            let sum: f64 = self.workloads.values().map(|w| w.lam_frac).sum();
            if !(sum.is_finite() && (sum - 1.0).abs() <= LAM_FRAC_SUM_TOLERANCE) {
                let shares: Vec<String> = self
                    .workloads
                    .iter()
                    .map(|(id, w)| format!("{id}={}", w.lam_frac))
                    .collect();
                return Err(file_err(format!(
                    "`workloads.*.lam_frac`: shares sum to {sum} ({}); expected them to sum to 1",
                    shares.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Resolve into a simulation job.
    pub fn into_job(self) -> Result<SimulateJob, InputError> {
        let pools = self
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let field = format!("pools[{i}].gpu");
                let profile = resolve_profile(&field, &p.gpu, &p.profile)?;
                pool_config(
                    &scenario_pool_field(i),
                    p.id.clone(),
                    profile,
                    p.instances,
                    p.max_ctx,
                    p.dispatch,
                    p.max_queue,
                    p.max_num_seqs,
                    p.models.clone(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let controls = self.controls(&pools)?;
        let disagg = self.disagg_config()?;
        for (k, w) in self.windows.iter().enumerate() {
            if !(w.start_s.is_finite()
                && w.end_s.is_finite()
                && 0.0 <= w.start_s
                && w.start_s < w.end_s)
            {
                return Err(InputError::field(
                    format!("windows[{k}]"),
                    format!(
                        "expected 0 ≤ start_s < end_s, got {} and {}",
                        w.start_s, w.end_s
                    ),
                ));
            }
        }
        let per_pool = self.pool_workloads()?;
        if per_pool.is_empty() {
            self.workload.validate()?;
        }
        let sim = self.sim;
        check_sim(sim.warmup, sim.slo_ttft_ms, sim.replications)?;
        Ok(SimulateJob {
            cfg: SimConfig {
                router: self.router,
                engine: sim.engine,
                service_model: sim.service_model,
                warmup: Warmup {
                    fraction: sim.warmup,
                    seconds: sim.warmup_s,
                },
                controls,
                windows: self.windows,
                disagg,
                slo: Slo {
                    ttft_ms: sim.slo_ttft_ms,
                    tpot_ms: sim.slo_tpot_ms,
                },
                run_to_completion: sim.run_to_completion,
                ..SimConfig::new(pools, sim.seed, sim.slo_ttft_ms)
            },
            workload: self.workload,
            per_pool,
            replications: sim.replications,
            timing: true,
            progress: true,
            streams: None,
        })
    }
}

impl Scenario {
    fn pool_index(&self, field: &str, id: &str) -> Result<usize, InputError> {
        self.pools.iter().position(|p| p.id == id).ok_or_else(|| {
            let ids: Vec<&str> = self.pools.iter().map(|p| p.id.as_str()).collect();
            InputError::field(
                field,
                format!("no pool `{id}`; pools are {}", ids.join(", ")),
            )
        })
    }

    /// The events as engine control changes, in time order.
    fn controls(&self, pools: &[PoolConfig]) -> Result<Vec<ControlChange>, InputError> {
        let mut out = Vec::new();
        // In time order, so a ramp starts from the cap in force at its time
        // whatever order the file lists the events in.
        let mut order: Vec<usize> = (0..self.events.len()).collect();
        order.sort_by(|&a, &b| self.events[a].at_s.total_cmp(&self.events[b].at_s));
        for k in order {
            let e = &self.events[k];
            let field = |f: &str| format!("events[{k}].{f}");
            let p = self.pool_index(&field("pool"), &e.pool)?;
            if !(e.at_s.is_finite() && e.at_s >= 0.0) {
                return Err(InputError::field(
                    field("at_s"),
                    format!("expected a time ≥ 0 s, got {}", e.at_s),
                ));
            }
            match (e.instances, e.max_num_seqs) {
                (Some(n), None) => {
                    if !(1..=MAX_INSTANCES_PER_POOL).contains(&n) || e.ramp_s.is_some() {
                        return Err(InputError::field(
                            field("instances"),
                            format!(
                                "expected 1 to {MAX_INSTANCES_PER_POOL} instances (and no ramp_s), got {n}"
                            ),
                        ));
                    }
                    out.push(ControlChange::instances(
                        e.at_s,
                        p,
                        n,
                        e.mode.unwrap_or(ScaleMode::Drain),
                    ));
                }
                (None, Some(cap)) => {
                    if !(1..=MAX_NUM_SEQS).contains(&cap) || e.mode.is_some() {
                        return Err(InputError::field(
                            field("max_num_seqs"),
                            format!("expected 1 to {MAX_NUM_SEQS} (and no mode), got {cap}"),
                        ));
                    }
                    let ramp = e.ramp_s.unwrap_or(0.0);
                    if !(ramp.is_finite() && ramp >= 0.0) {
                        return Err(InputError::field(
                            field("ramp_s"),
                            format!("expected seconds ≥ 0, got {ramp}"),
                        ));
                    }
                    // A ramp starts from the cap in force just before the event.
                    let from = out
                        .iter()
                        .rev()
                        .find_map(|c: &ControlChange| match c.action {
                            Control::MaxNumSeqs(c0) if c.pool == p => Some(c0),
                            _ => None,
                        })
                        .unwrap_or(pools[p].max_num_seqs());
                    out.extend(ControlChange::ramp(p, e.at_s, ramp, from, cap));
                }
                _ => {
                    return Err(InputError::field(
                        field("instances"),
                        "an event sets exactly one of `instances` or `max_num_seqs`",
                    ));
                }
            }
        }
        out.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        Ok(out)
    }

    fn disagg_config(&self) -> Result<Option<Disagg>, InputError> {
        let Some(d) = &self.disagg else {
            return Ok(None);
        };
        let p = self.pool_index("disagg.prefill", &d.prefill)?;
        let q = self.pool_index("disagg.decode", &d.decode)?;
        let link = LinkSpec::parse(&d.link).map_err(|e| InputError::field("disagg.link", e))?;
        let kv_bytes_per_token = match d.kv_bytes_per_token {
            Some(v) => crate::engine::config::check_kv_bytes_per_token(v)
                .map_err(|e| InputError::field("disagg.kv_bytes_per_token", e))?,
            None => crate::profile::computed::handoff_kv_bytes(
                ("disagg.prefill", &self.pools[p].gpu),
                ("disagg.decode", &self.pools[q].gpu),
            )?,
        };
        Ok(Some(Disagg {
            pairs: vec![(p, q)],
            link,
            kv_bytes_per_token,
        }))
    }

    /// The per-pool workloads as (pool index, workload spec), validated
    /// against the pools; the total rate comes from `workload.lam`.
    pub fn pool_workloads(&self) -> Result<Vec<(usize, WorkloadSpec)>, InputError> {
        if self.workloads.is_empty() {
            return Ok(Vec::new());
        }
        let Some(lam) = self.workload.lam else {
            return Err(InputError::field(
                "lam",
                "per-pool workloads need a total arrival rate (`--lam` or `workload.lam`)",
            ));
        };
        let mut out = Vec::new();
        for (id, w) in &self.workloads {
            let Some(i) = self.pools.iter().position(|p| &p.id == id) else {
                let ids: Vec<&str> = self.pools.iter().map(|p| p.id.as_str()).collect();
                return Err(InputError::field(
                    format!("workloads.{id}"),
                    format!("no pool `{id}`; pools are {}", ids.join(", ")),
                ));
            };
            if !(w.lam_frac.is_finite() && w.lam_frac > 0.0) {
                return Err(InputError::field(
                    format!("workloads.{id}.lam_frac"),
                    format!("expected a positive share, got {}", w.lam_frac),
                ));
            }
            let spec = WorkloadSpec {
                cdf: Some(w.cdf.clone()),
                lam: Some(lam * w.lam_frac),
                n_requests: self.workload.n_requests,
                input_frac: self.workload.input_frac,
                categories: self.workload.categories.clone(),
                ..WorkloadSpec::default()
            };
            spec.validate()?;
            out.push((i, spec));
        }
        Ok(out)
    }
}

/// Names of the run settings in errors: `[warm-up, TTFT SLO, replications]`.
pub type SimFieldNames = [&'static str; 3];

/// The run settings as scenario keys.
pub const SCENARIO_SIM_NAMES: SimFieldNames = ["sim.warmup", "sim.slo_ttft_ms", "sim.replications"];

/// The run settings as command-line flags.
pub const FLAG_SIM_NAMES: SimFieldNames = ["--warmup", "--slo", "--replications"];

/// Validate run settings, naming them as scenario keys.
pub fn check_sim(warmup: f64, slo_ttft_ms: f64, replications: u32) -> Result<(), InputError> {
    check_sim_named(warmup, slo_ttft_ms, replications, SCENARIO_SIM_NAMES)
}

/// Validate run settings (warm-up fraction in [0, 1), SLO a positive finite
/// number of ms, 1 to [`crate::simulate::MAX_REPLICATIONS`] replications).
pub fn check_sim_named(
    warmup: f64,
    slo_ttft_ms: f64,
    replications: u32,
    names: SimFieldNames,
) -> Result<(), InputError> {
    if !(0.0..1.0).contains(&warmup) {
        return Err(InputError::field(
            names[0],
            format!("expected a fraction in [0, 1), got {warmup}"),
        ));
    }
    check_slo_ms(names[1], slo_ttft_ms)?;
    let max = crate::simulate::MAX_REPLICATIONS;
    if !(1..=max).contains(&replications) {
        return Err(InputError::field(
            names[2],
            format!("expected 1 to {max}, got {replications}"),
        ));
    }
    Ok(())
}

/// Longest SLO accepted, ms (one day: beyond it no latency target is meaningful).
pub const MAX_SLO_MS: f64 = 86_400_000.0;

/// Check an SLO: a number of ms in (0, [`MAX_SLO_MS`]].
pub fn check_slo_ms(field: &str, ms: f64) -> Result<(), InputError> {
    if ms.is_finite() && ms > 0.0 && ms <= MAX_SLO_MS {
        Ok(())
    } else {
        Err(InputError::field(
            field,
            format!("expected a number of ms in (0, {MAX_SLO_MS:e}], got {ms}"),
        ))
    }
}

/// Most instances in one pool (each is simulated individually).
pub const MAX_INSTANCES_PER_POOL: u32 = 100_000;

/// Largest running-sequence cap (`max_num_seqs`) accepted.
pub const MAX_NUM_SEQS: u32 = 1_000_000;

/// How a pool's settings are named in errors: the scenario key
/// (`pools[1].instances`) or the flag the user typed (`--n-gpus`).
pub type PoolFieldNames<'a> = &'a dyn Fn(&str) -> String;

/// Names of pool `index`'s keys in a scenario file (`pools[1].max_ctx`).
pub fn scenario_pool_field(index: usize) -> impl Fn(&str) -> String {
    move |key| format!("pools[{index}].{key}")
}

/// Build and validate one pool; `field` names its keys (`instances`,
/// `max_ctx`, `max_num_seqs`, `max_queue`) in errors.
#[allow(clippy::too_many_arguments)]
pub fn pool_config(
    field: PoolFieldNames<'_>,
    id: String,
    profile: crate::profile::Profile,
    instances: u32,
    max_ctx: u32,
    dispatch: DispatchPolicy,
    max_queue: Option<u32>,
    max_num_seqs: Option<u32>,
    models: Vec<String>,
) -> Result<PoolConfig, InputError> {
    if !(1..=MAX_INSTANCES_PER_POOL).contains(&instances) {
        return Err(InputError::field(
            field("instances"),
            format!("expected 1 to {MAX_INSTANCES_PER_POOL} instances, got {instances}"),
        ));
    }
    if max_ctx < 2 {
        return Err(InputError::field(
            field("max_ctx"),
            "expected at least 2 tokens",
        ));
    }
    if let Some(n) = max_num_seqs
        && !(1..=MAX_NUM_SEQS).contains(&n)
    {
        return Err(InputError::field(
            field("max_num_seqs"),
            format!("expected 1 to {MAX_NUM_SEQS}, got {n}"),
        ));
    }
    Ok(PoolConfig {
        id,
        profile,
        instances,
        max_ctx_tok: max_ctx,
        dispatch,
        max_queue,
        max_num_seqs,
        models,
    })
}

#[cfg(test)]
mod event_tests {
    use super::*;
    use crate::profile::Profile;

    #[test]
    fn a_ramp_starts_from_the_cap_in_force_at_its_time() {
        // Listed out of time order: the ramp at 100 s follows the cap of 8 set at 50 s.
        let s: Scenario = toml::from_str(
            r#"
            [[pools]]
            id = "p"
            gpu = "h100"
            instances = 1
            max_ctx = 8192

            [[events]]
            at_s = 100
            pool = "p"
            max_num_seqs = 4
            ramp_s = 4

            [[events]]
            at_s = 50
            pool = "p"
            max_num_seqs = 8
            "#,
        )
        .expect("parses");
        let pools = vec![PoolConfig::new(
            "p",
            Profile::preset("h100").unwrap(),
            1,
            8192,
        )];
        let caps: Vec<(f64, Control)> = s
            .controls(&pools)
            .expect("valid")
            .iter()
            .map(|c| (c.at_s, c.action))
            .collect();
        assert_eq!(
            caps,
            vec![
                (50.0, Control::MaxNumSeqs(8)),
                (101.0, Control::MaxNumSeqs(7)),
                (102.0, Control::MaxNumSeqs(6)),
                (103.0, Control::MaxNumSeqs(5)),
                (104.0, Control::MaxNumSeqs(4)),
            ]
        );
    }
}
