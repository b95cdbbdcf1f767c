//! The same estimate from the simulator: closed-loop fixed-concurrency
//! sweeps in the DES, fed to the identical fit, plus the DES's direct answer
//! (the smallest fleet whose simulated p95 at the target users meets the
//! targets, found by search).
//!
//! At concurrency C, C users each run workflows of K sequential LLM calls
//! back to back (each call issued when the previous one completes, after an
//! optional exponential think time). "LLM latency" is a call's end-to-end
//! latency; "workflow runtime" is the time from a workflow's first call to
//! its last call's completion. Each user's first workflow (the synchronised
//! start) is excluded as warm-up.

use rayon::prelude::*;
use serde::Serialize;

use super::fit::quantile_linear;
use super::{SizingConfig, SweepPoint};
use crate::engine::requests::NEVER;
use crate::engine::{self, Arrivals, ClosedLoop, PoolConfig, SimConfig, Warmup};
use crate::error::InputError;
use crate::profile::Profile;
use crate::workload::lengths::{CategoryMix, LengthModel};

/// A simulated concurrency sweep.
#[derive(Debug, Clone)]
pub struct SweepSimulation {
    /// Instance profile.
    pub profile: Profile,
    /// Max context of the pool, tokens.
    pub max_ctx_tok: u32,
    /// GPUs of the simulated test fleet.
    pub test_gpu_count: u32,
    /// Concurrency levels.
    pub concurrencies: Vec<u32>,
    /// Workflows to simulate per level (at least 2 per user are run).
    pub workflows_per_level: u32,
    /// LLM calls per workflow (K).
    pub calls_per_workflow: u32,
    /// Mean think time between calls, s (0: none).
    pub think_time_s: f64,
    /// Call lengths.
    pub lengths: LengthModel,
    /// Call categories.
    pub categories: CategoryMix,
    /// Root seed.
    pub seed: u64,
}

/// p95s of one simulated level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LevelP95 {
    /// p95 LLM-call latency, s.
    pub llm_latency_p95_s: Option<f64>,
    /// p95 workflow runtime, s.
    pub workflow_runtime_p95_s: Option<f64>,
}

/// The DES's direct answer for the target users.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectAnswer {
    /// Smallest GPU count meeting every target (`None`: not found up to the search cap).
    pub gpus: Option<u32>,
    /// Instances at that size.
    pub instances: Option<u32>,
    /// p95s at that size.
    pub at_answer: Option<LevelP95>,
    /// p95s with one instance fewer (showing minimality), if that is ≥ 1 instance.
    pub one_instance_fewer: Option<LevelP95>,
    /// Fleet sizes simulated during the search.
    pub evaluations: u32,
    /// Why there is no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Largest fleet the direct search tries, in instances.
const SEARCH_CAP_INSTANCES: u32 = 1 << 14;

impl SweepSimulation {
    /// Validate the settings.
    pub fn validate(&self) -> Result<(), InputError> {
        let g = self.profile.gpus_per_instance;
        if self.test_gpu_count == 0 || !self.test_gpu_count.is_multiple_of(g) {
            return Err(InputError::field(
                "--test-gpu-count",
                format!(
                    "expected a positive multiple of the profile's {g} GPUs per instance, got {}",
                    self.test_gpu_count
                ),
            ));
        }
        if self.concurrencies.is_empty() || self.concurrencies.contains(&0) {
            return Err(InputError::field(
                "--concurrencies",
                "expected a list of positive integers, e.g. 1,2,4,8",
            ));
        }
        if self.calls_per_workflow == 0 || self.workflows_per_level == 0 {
            return Err(InputError::field(
                "--calls-per-workflow",
                "calls per workflow and workflows per level must be ≥ 1",
            ));
        }
        if !(self.think_time_s.is_finite() && self.think_time_s >= 0.0) {
            return Err(InputError::field(
                "--think-time-s",
                format!("expected seconds ≥ 0, got {}", self.think_time_s),
            ));
        }
        Ok(())
    }

    fn config(&self, instances: u32) -> SimConfig {
        SimConfig {
            warmup: Warmup {
                fraction: 0.0,
                seconds: None,
            },
            record_requests: true,
            ..SimConfig::new(
                vec![PoolConfig::new(
                    "pool",
                    self.profile.clone(),
                    instances,
                    self.max_ctx_tok,
                )],
                self.seed,
                1e12,
            )
        }
    }

    /// Simulate `users` concurrent users on `instances` instances.
    pub fn run_level(&self, users: u32, instances: u32) -> Result<SweepPoint, InputError> {
        let k = self.calls_per_workflow as u64;
        let workflows = (self.workflows_per_level as u64).max(2 * users as u64);
        let (lengths, cats) = (self.lengths.clone(), self.categories.clone());
        let arrivals = Arrivals::Closed(ClosedLoop {
            users,
            think_time_mean_s: self.think_time_s,
            n_requests: workflows * k,
            sampler: Box::new(move |rng| {
                let (i, o) = lengths.sample(rng);
                (i, o, cats.sample(rng))
            }),
        });
        let out = engine::run(&self.config(instances), arrivals, 0, None)?;
        // Group each user's calls (in arrival order) into workflows of K.
        let mut recs = out.records.clone();
        recs.sort_by_key(|r| (r.user, r.arrival_ns));
        let (mut llm, mut wf) = (Vec::new(), Vec::new());
        for user_calls in recs.chunk_by(|a, b| a.user == b.user) {
            for (w, calls) in user_calls.chunks(k as usize).enumerate() {
                let complete =
                    calls.len() == k as usize && calls.iter().all(|c| c.done_ns != NEVER);
                if w == 0 || !complete {
                    continue;
                }
                llm.extend(
                    calls
                        .iter()
                        .map(|c| (c.done_ns - c.arrival_ns) as f64 * 1e-9),
                );
                let last = calls.iter().map(|c| c.done_ns).max().unwrap_or(0);
                wf.push((last - calls[0].arrival_ns) as f64 * 1e-9);
            }
        }
        let p95 = |v: &[f64]| (!v.is_empty()).then(|| quantile_linear(v, 0.95));
        Ok(SweepPoint {
            concurrency: users,
            llm_latency_p95_s: p95(&llm),
            workflow_runtime_p95_s: p95(&wf),
            total_runtime_s: Some(out.end_s),
            workflow_interrupted: out.rejected_total() > 0
                || out.verdict != engine::Verdict::Stable,
            items: Vec::new(),
        })
    }

    /// The sweep at every concurrency level on the test fleet (levels in parallel).
    pub fn run_sweep(&self) -> Result<Vec<SweepPoint>, InputError> {
        let instances = self.test_gpu_count / self.profile.gpus_per_instance;
        self.concurrencies
            .par_iter()
            .map(|&c| self.run_level(c, instances))
            .collect()
    }

    fn meets(&self, p: &SweepPoint, cfg: &SizingConfig) -> bool {
        let ok = |got: Option<f64>, target: Option<f64>| match target {
            None => true,
            Some(t) => got.is_some_and(|g| g <= t),
        };
        !p.workflow_interrupted
            && ok(p.workflow_runtime_p95_s, cfg.target_workflow_runtime_s)
            && ok(p.llm_latency_p95_s, cfg.target_llm_latency_s)
    }

    /// The smallest fleet whose simulated p95s at `cfg.target_users` meet the
    /// targets: doubling, then bisection on the instance count (the same seed
    /// at every size, so sizes are compared on common random numbers).
    pub fn direct_search(&self, cfg: &SizingConfig) -> Result<DirectAnswer, InputError> {
        let users = cfg.target_users;
        let level = |p: &SweepPoint| LevelP95 {
            llm_latency_p95_s: p.llm_latency_p95_s,
            workflow_runtime_p95_s: p.workflow_runtime_p95_s,
        };
        let mut evaluations = 0;
        let mut eval = |n: u32| -> Result<SweepPoint, InputError> {
            evaluations += 1;
            self.run_level(users, n)
        };
        let (mut lo, mut hi) = (0u32, 1u32);
        let mut at_hi = eval(hi)?;
        while !self.meets(&at_hi, cfg) {
            if hi >= SEARCH_CAP_INSTANCES {
                return Ok(DirectAnswer {
                    gpus: None,
                    instances: None,
                    at_answer: None,
                    one_instance_fewer: None,
                    evaluations,
                    reason: Some(format!(
                        "no fleet up to {SEARCH_CAP_INSTANCES} instances meets the targets at {users} users"
                    )),
                });
            }
            lo = hi;
            hi *= 2;
            at_hi = eval(hi)?;
        }
        // Invariant: hi meets, lo does not (or is 0).
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let p = eval(mid)?;
            if self.meets(&p, cfg) {
                hi = mid;
                at_hi = p;
            } else {
                lo = mid;
            }
        }
        let fewer = if hi > 1 {
            Some(level(&eval(hi - 1)?))
        } else {
            None
        };
        Ok(DirectAnswer {
            gpus: Some(hi * self.profile.gpus_per_instance),
            instances: Some(hi),
            at_answer: Some(level(&at_hi)),
            one_instance_fewer: fewer,
            evaluations,
            reason: None,
        })
    }
}
