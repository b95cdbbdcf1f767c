//! Disaggregated prefill/decode planning: how many prefill and decode
//! instances (nP, nD), on which GPUs, meet P99 TTFT and P99 TPOT targets at
//! the lowest cost, and how that compares with aggregated fleets.
//!
//! 1. **Analytic screen.** From a sample of request lengths: the prefill
//!    pool's utilisation (busy time per request with full chunks), the no-queue
//!    P99 TTFT (prefill alone plus the KV transfer), and the decode pool's
//!    batch from Little's law, `b = λ·E[OSL−1]·step(b) / nD`, with its step time
//!    (the mean TPOT) and KV/slot utilisation. Pairs that violate a necessary
//!    condition (a utilisation ≥ 1, the no-queue TTFT or the mean TPOT above
//!    its SLO) are not simulated.
//! 2. **DES, decode side.** TPOT depends on nD (decode batch and KV
//!    queueing) and hardly on nP: the smallest nD whose worst-replication P99
//!    TPOT meets the SLO, by doubling and bisection, with a generous prefill pool.
//! 3. **DES, prefill side.** nP from its analytic lower bound upwards at that
//!    nD (one more decode instance if the pair misses TPOT) until both SLOs
//!    hold, then two more prefill steps for the cost/TTFT trade-off.
//! 4. **Aggregated fleets** of each GPU type, sized by the same DES rule on
//!    the same arrival streams.
//!
//! Every DES evaluation runs `replications` independent replications (common
//! random numbers across candidates); a candidate meets the SLOs only if every
//! replication is stable and within both targets.

use rayon::prelude::*;
use serde::Serialize;

use crate::analytic::calibration::{nearest_rank_unsorted, sample_lengths};
use crate::engine::dispatch::DispatchPolicy;
use crate::engine::{Disagg, LinkSpec, PoolConfig, SimConfig, Slo};
use crate::metrics::report::SimReport;
use crate::profile::Profile;
use crate::simulate::SimulateJob;
use crate::workload::spec::WorkloadSpec;

/// The reference tool's flat TTFT multiplier for disaggregation ("KV-transfer
/// overhead adds 1.8× to raw prefill time"), shown for comparison only.
pub const REFERENCE_TTFT_FACTOR: f64 = 1.8;

/// A disaggregation study.
#[derive(Debug, Clone)]
pub struct DisaggStudy {
    /// Workload with its Poisson rate and requests per simulation.
    pub workload: WorkloadSpec,
    /// Prefill instance profile.
    pub prefill: Profile,
    /// Decode instance profile.
    pub decode: Profile,
    /// Largest ISL + OSL served, tokens.
    pub max_ctx_tok: u32,
    /// P99 TTFT target, ms.
    pub slo_ttft_ms: f64,
    /// P99 TPOT target, ms.
    pub slo_tpot_ms: f64,
    /// Largest prefill pool searched.
    pub max_prefill: u32,
    /// Largest decode pool searched.
    pub max_decode: u32,
    /// KV-transfer link.
    pub link: LinkSpec,
    /// KV bytes per token of the model.
    pub kv_bytes_per_token: f64,
    /// GPU profiles of the aggregated fleets to compare with.
    pub aggregated: Vec<Profile>,
    /// Root seed (every candidate sees the same arrival streams).
    pub seed: u64,
    /// Replications per evaluation.
    pub replications: u32,
    /// Show a progress counter of DES evaluations on stderr.
    pub progress: bool,
    /// The arrival streams every evaluation shares, each drawn once.
    pub streams: std::sync::Arc<crate::workload::replay::StreamCache>,
}

/// DES result of one fleet (worst P99 over replications, mean throughput).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DesResult {
    /// Worst P99 TTFT over replications, taken over all arrivals (rejected
    /// and unfinished as infinite), ms (`null`: no arrivals, or infinite).
    pub p99_ttft_ms: Option<f64>,
    /// Worst P99 TPOT over replications, ms (infinite when more than 1% of
    /// arrivals were rejected or unfinished).
    pub p99_tpot_ms: Option<f64>,
    /// Largest fraction of arrivals rejected in a replication.
    pub rejected_fraction: f64,
    /// Mean completed requests per second.
    pub throughput_req_s: f64,
    /// Mean KV transfer time of measured requests, ms (disaggregated only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_transfer_ms: Option<f64>,
    /// Every replication ended stable.
    pub stable: bool,
    /// Replications run: the search stops at the first replication that
    /// misses a target; a fleet meeting both ran all of them, or all but
    /// the last when those predicted it would meet them too.
    pub replications: u32,
}

/// Analytic screen of one (nP, nD) pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DisaggAnalytic {
    /// Prefill pool utilisation.
    pub rho_prefill: f64,
    /// KV-link utilisation (mean bytes per second over the links' bandwidth; 0 for an ideal link).
    pub rho_link: f64,
    /// Decode pool utilisation of its binding limit (slots or KV).
    pub rho_decode: f64,
    /// Mean decode step time at the Little's-law batch = mean TPOT, ms (`null`: unstable).
    pub tpot_ms: Option<f64>,
    /// P99 over requests of prefill alone plus KV transfer alone, ms.
    pub ttft_no_queue_p99_ms: f64,
    /// The reference's estimate: 1.8 × the P99 prefill time alone, ms.
    pub fixed_factor_ttft_ms: f64,
    /// No necessary condition is violated.
    pub feasible: bool,
}

/// Cost of a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cost {
    /// $ per hour.
    pub per_hr_usd: f64,
}

/// One (nP, nD) pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DisaggCandidate {
    /// Prefill instances.
    pub n_prefill: u32,
    /// Decode instances.
    pub n_decode: u32,
    /// GPUs.
    pub gpus: u64,
    /// Cost.
    pub cost: Cost,
    /// DES result (`null`: screened out analytically).
    pub des: Option<DesResult>,
    /// Analytic screen (`null` when the workload has no known rate and lengths).
    pub analytic: Option<DisaggAnalytic>,
    /// Both SLOs met in every replication.
    pub slo_met: bool,
    /// On the cost vs P99 TTFT frontier of SLO-meeting pairs.
    pub pareto: bool,
}

/// An aggregated fleet sized for the same SLOs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggregatedFleet {
    /// GPU profile.
    pub gpu: String,
    /// Instances.
    pub instances: u32,
    /// GPUs.
    pub gpus: u64,
    /// Cost.
    pub cost: Cost,
    /// DES result at that size.
    pub des: DesResult,
    /// Both SLOs met (false when no size up to the limit does).
    pub slo_met: bool,
}

/// The study's result.
#[derive(Debug, Clone, Serialize)]
pub struct DisaggReport {
    /// Prefill GPU.
    pub gpu_prefill: String,
    /// Decode GPU.
    pub gpu_decode: String,
    /// Link.
    pub link: String,
    /// Mean arrival rate, req/s (`null` for traces and closed loops).
    pub lam: Option<f64>,
    /// P99 TTFT target, ms.
    pub slo_ttft_ms: f64,
    /// P99 TPOT target, ms.
    pub slo_tpot_ms: f64,
    /// Mean prompt and output lengths of the workload, tokens.
    pub mean_isl_tok: f64,
    /// Mean output length, tokens.
    pub mean_osl_tok: f64,
    /// Every pair evaluated (simulated or screened), by (nP, nD).
    pub candidates: Vec<DisaggCandidate>,
    /// The cheapest pair meeting both SLOs.
    pub best: Option<DisaggCandidate>,
    /// Aggregated fleets per GPU type.
    pub aggregated: Vec<AggregatedFleet>,
    /// Replications per DES evaluation.
    pub replications: u32,
    /// DES evaluations run.
    pub evaluations: u32,
}

/// Step-time model of a profile in seconds.
struct StepCoef {
    w: f64,
    h_tok: f64,
    p_tok: f64,
    chunk: u32,
}

impl StepCoef {
    fn of(p: &Profile) -> Self {
        StepCoef {
            w: p.w_s,
            h_tok: p.h_s / p.calibration_ctx as f64,
            p_tok: p.prefill_s_per_token,
            chunk: p.chunk.max(1),
        }
    }

    /// Prefill of `isl` tokens alone, chunk by chunk, s.
    fn prefill_alone_s(&self, isl: u32) -> f64 {
        let mut done = 0u32;
        let mut t = 0.0;
        while done < isl {
            let k = self.chunk.min(isl - done);
            done += k;
            t += self.w + self.h_tok * done as f64 + self.p_tok * k as f64;
        }
        t
    }

    /// Instance busy time a prompt costs in full chunks (W shared by the chunk), s.
    fn prefill_busy_s(&self, isl: u32) -> f64 {
        let mut done = 0u32;
        let mut t = 0.0;
        while done < isl {
            let k = self.chunk.min(isl - done);
            done += k;
            t += self.h_tok * done as f64;
        }
        t + isl as f64 * (self.w / self.chunk as f64 + self.p_tok)
    }
}

/// Workload statistics the screen needs.
struct Shape {
    lam: f64,
    /// Mean prefill busy time per request, s.
    prefill_busy_s: f64,
    /// P99 of prefill alone + transfer alone, s.
    ttft_no_queue_p99_s: f64,
    /// P99 of prefill alone, s.
    prefill_p99_s: f64,
    /// Mean KV bytes moved per second, B/s.
    kv_bytes_per_s: f64,
    /// Bandwidth of one link, B/s.
    link_bw: f64,
    /// E[OSL − 1].
    decode_tokens: f64,
    /// Time-average context of a decoding sequence, tokens.
    decode_ctx: f64,
}

/// Nearest-rank `q` quantile (0 when empty).
/// Utilisation of prefill and link at which the decode-side search's
/// prefill pool counts as generous.
const GENEROUS_RHO: f64 = 0.5;

fn percentile(mut v: Vec<f64>, q: f64) -> f64 {
    nearest_rank_unsorted(&mut v, q)
}

impl DisaggStudy {
    /// Workload statistics for the screen; `None` for traces and closed
    /// loops (no known rate or length model): the DES then does all the work.
    fn shape(&self) -> Option<Shape> {
        let lam = self.workload.mean_rate()?;
        let lengths = self
            .workload
            .length_model()
            .ok()
            .flatten()
            .map(|m| sample_lengths(&m, 20_000, self.seed))?;
        let lengths: Vec<(u32, u32)> = lengths
            .into_iter()
            .filter(|&(i, o)| i as u64 + o as u64 <= self.max_ctx_tok as u64)
            .collect();
        let n = lengths.len().max(1) as f64;
        let pc = StepCoef::of(&self.prefill);
        let link_bw = self.link.instance_bandwidth(
            self.prefill
                .gpus_per_instance
                .min(self.decode.gpus_per_instance),
        );
        let transfer_s =
            |isl: u32| isl as f64 * self.kv_bytes_per_token / link_bw + self.link.latency_s;
        let prefill_busy_s = lengths
            .iter()
            .map(|&(i, _)| pc.prefill_busy_s(i))
            .sum::<f64>()
            / n;
        let alone: Vec<f64> = lengths
            .iter()
            .map(|&(i, _)| pc.prefill_alone_s(i))
            .collect();
        let with_transfer: Vec<f64> = lengths
            .iter()
            .zip(&alone)
            .map(|(&(i, _), a)| a + transfer_s(i))
            .collect();
        let decode_tokens = lengths
            .iter()
            .map(|&(_, o)| o.saturating_sub(1) as f64)
            .sum::<f64>()
            / n;
        // Each decode step of a request is weighted equally: E[Σ ctx] / E[steps].
        let ctx_sum: f64 = lengths
            .iter()
            .map(|&(i, o)| {
                let m = o.saturating_sub(1) as f64;
                m * (i as f64 + 1.0) + m * (m - 1.0) / 2.0
            })
            .sum();
        let steps: f64 = lengths
            .iter()
            .map(|&(_, o)| o.saturating_sub(1) as f64)
            .sum();
        Some(Shape {
            lam,
            prefill_busy_s,
            ttft_no_queue_p99_s: percentile(with_transfer, 0.99),
            prefill_p99_s: percentile(alone, 0.99),
            kv_bytes_per_s: lam * lengths.iter().map(|&(i, _)| i as f64).sum::<f64>() / n
                * self.kv_bytes_per_token,
            link_bw,
            decode_tokens,
            decode_ctx: if steps > 0.0 { ctx_sum / steps } else { 0.0 },
        })
    }

    fn screen(&self, sh: &Shape, np: u32, nd: u32) -> DisaggAnalytic {
        let rho_prefill = sh.lam * sh.prefill_busy_s / np.max(1) as f64;
        let links = if self.link.shared {
            1.0
        } else {
            np.max(1) as f64
        };
        let rho_link = sh.kv_bytes_per_s / (links * sh.link_bw);
        let dc = StepCoef::of(&self.decode);
        // b = λ·E[m]·(W + h·b·c̄)/nD  ⇒  b = λE·W / (nD − λE·h·c̄).
        let le = sh.lam * sh.decode_tokens;
        let denom = nd as f64 - le * dc.h_tok * sh.decode_ctx;
        let limit = (self.decode.max_slots as f64)
            .min(self.decode.kv_capacity_tok() as f64 / sh.decode_ctx.max(1.0));
        let (rho_decode, tpot_ms) = if denom > 0.0 {
            let b = le * dc.w / denom;
            (b / limit, Some((dc.w + dc.h_tok * b * sh.decode_ctx) * 1e3))
        } else {
            (f64::INFINITY, None)
        };
        let ttft_no_queue_p99_ms = sh.ttft_no_queue_p99_s * 1e3;
        let feasible = rho_prefill < 1.0
            && rho_link < 1.0
            && rho_decode < 1.0
            && tpot_ms.is_some_and(|t| t <= self.slo_tpot_ms)
            && ttft_no_queue_p99_ms <= self.slo_ttft_ms;
        DisaggAnalytic {
            rho_prefill,
            rho_link,
            rho_decode,
            tpot_ms,
            ttft_no_queue_p99_ms,
            fixed_factor_ttft_ms: REFERENCE_TTFT_FACTOR * sh.prefill_p99_s * 1e3,
            feasible,
        }
    }

    fn pool(&self, id: &str, profile: &Profile, n: u32, dispatch: DispatchPolicy) -> PoolConfig {
        PoolConfig {
            dispatch,
            ..PoolConfig::new(id, profile.clone(), n, self.max_ctx_tok)
        }
    }

    /// Simulate `pools` (and `disagg`) once per replication. With
    /// `stop_on_miss`, a replication stops once its fleet is certain to
    /// miss the TTFT target (`SimConfig::stop_on_ttft_miss`; its result then
    /// only says so: not stable, and its P99s read so far).
    fn simulate(
        &self,
        pools: Vec<PoolConfig>,
        disagg: Option<Disagg>,
        stop_on_miss: bool,
    ) -> anyhow::Result<DesResult> {
        let mut cfg = SimConfig::new(pools, self.seed, self.slo_ttft_ms);
        cfg.slo = Slo {
            ttft_ms: self.slo_ttft_ms,
            tpot_ms: Some(self.slo_tpot_ms),
        };
        cfg.disagg = disagg;
        if stop_on_miss {
            cfg.stop_on_ttft_miss = (0..cfg.pools.len()).collect();
        }
        let job = SimulateJob {
            cfg,
            workload: self.workload.clone(),
            per_pool: Vec::new(),
            replications: self.replications.max(1),
            timing: false,
            progress: false,
            streams: Some(self.streams.clone()),
        };
        // Replications one after another; the first that misses a target
        // decides (a fleet meets them only if it does in every replication).
        anyhow::ensure!(
            job.replications <= crate::simulate::MAX_REPLICATIONS,
            crate::error::InputError::field(
                "replications",
                format!(
                    "expected at most {}, got {}",
                    crate::simulate::MAX_REPLICATIONS,
                    job.replications
                )
            )
        );
        // The last replication is not run when those before it all meet
        // both targets by a margin that predicts it meets them too.
        let mut reps: Vec<SimReport> = Vec::with_capacity(job.replications as usize);
        for r in 0..job.replications {
            reps.push(crate::simulate::run_one_replication(&job, r)?);
            let d = Self::summarise(&reps);
            if !(self.ttft_ok(&d) && self.tpot_ok(&d)) {
                return Ok(d);
            }
            if r + 2 == job.replications && self.clear_of_targets(&reps) {
                break;
            }
        }
        Ok(Self::summarise(&reps))
    }

    /// Whether replications that all met both targets predict that one
    /// more meets them too: every one stable, and the upper 97.5% Student-t
    /// prediction bounds of the next replication's fleet P99 TTFT (over all
    /// arrivals) and P99 TPOT within their SLOs, with enough arrivals to
    /// trust them (the test of [`crate::planner::sizing::clear_of_slo`],
    /// with TPOT beside TTFT).
    fn clear_of_targets(&self, reps: &[SimReport]) -> bool {
        use crate::planner::sizing::{MIN_PREDICTING_ARRIVALS, next_p99_within};
        let ttft: Vec<Option<f64>> = reps
            .iter()
            .map(|r| r.fleet.slo.p99_ttft_over_arrivals_ms())
            .collect();
        let tpot: Vec<Option<f64>> = reps.iter().map(|r| r.fleet.tpot_ms.p99).collect();
        reps.iter()
            .all(|r| r.verdict == "stable" && r.requests.measured >= MIN_PREDICTING_ARRIVALS)
            && next_p99_within(&ttft, self.slo_ttft_ms)
            && next_p99_within(&tpot, self.slo_tpot_ms)
    }

    /// The worst case over replications' reports (see [`DesResult`]).
    fn summarise(reps: &[SimReport]) -> DesResult {
        let worst =
            |f: &dyn Fn(&SimReport) -> Option<f64>| reps.iter().filter_map(f).reduce(f64::max);
        let n = reps.len().max(1) as f64;
        let transfers: Vec<f64> = reps
            .iter()
            .filter_map(|r| r.kv_transfer.as_ref().and_then(|k| k.transfer_ms.mean))
            .collect();
        DesResult {
            // Over all arrivals: rejected and unfinished requests miss both targets.
            p99_ttft_ms: worst(&|r| r.fleet.slo.p99_ttft_over_arrivals_ms()),
            p99_tpot_ms: worst(&|r| {
                if r.fleet.slo.missed_fraction.is_some_and(|m| m > 0.01) {
                    Some(f64::INFINITY)
                } else {
                    r.fleet.tpot_ms.p99
                }
            }),
            rejected_fraction: reps
                .iter()
                .map(|r| r.requests.rejected as f64 / r.requests.arrived.max(1) as f64)
                .fold(0.0, f64::max),
            throughput_req_s: reps
                .iter()
                .map(|r| r.fleet.throughput.req_per_s)
                .sum::<f64>()
                / n,
            mean_transfer_ms: (!transfers.is_empty())
                .then(|| transfers.iter().sum::<f64>() / transfers.len() as f64),
            stable: reps.iter().all(|r| r.verdict == "stable"),
            replications: reps.len() as u32,
        }
    }

    /// Simulate the pair (nP prefill, nD decode instances) once per replication.
    pub fn simulate_pair(&self, np: u32, nd: u32) -> anyhow::Result<DesResult> {
        self.simulate(
            vec![
                self.pool("prefill", &self.prefill, np, DispatchPolicy::Jsq),
                self.pool("decode", &self.decode, nd, DispatchPolicy::FreeKv),
            ],
            Some(Disagg {
                pairs: vec![(0, 1)],
                link: self.link.clone(),
                kv_bytes_per_token: self.kv_bytes_per_token,
            }),
            false,
        )
    }

    fn ttft_ok(&self, d: &DesResult) -> bool {
        d.stable && d.p99_ttft_ms.is_some_and(|t| t <= self.slo_ttft_ms)
    }

    fn tpot_ok(&self, d: &DesResult) -> bool {
        d.stable && d.p99_tpot_ms.is_none_or(|t| t <= self.slo_tpot_ms)
    }

    fn cost(&self, np: u32, nd: u32) -> (u64, f64) {
        let gpus = np as u64 * self.prefill.gpus_per_instance as u64
            + nd as u64 * self.decode.gpus_per_instance as u64;
        let usd = np as f64 * self.prefill.cost_per_hr + nd as f64 * self.decode.cost_per_hr;
        (gpus, usd)
    }

    fn candidate(
        &self,
        sh: Option<&Shape>,
        np: u32,
        nd: u32,
        des: Option<DesResult>,
    ) -> DisaggCandidate {
        let (gpus, usd) = self.cost(np, nd);
        let slo_met = des
            .as_ref()
            .is_some_and(|d| self.ttft_ok(d) && self.tpot_ok(d));
        DisaggCandidate {
            n_prefill: np,
            n_decode: nd,
            gpus,
            cost: Cost { per_hr_usd: usd },
            des,
            analytic: sh.map(|sh| self.screen(sh, np, nd)),
            slo_met,
            pareto: false,
        }
    }

    /// Run the study, showing nothing.
    pub fn run(&self) -> anyhow::Result<DisaggReport> {
        self.run_with(crate::progress::SILENT)
    }

    /// Run the study, reporting progress to `reporter` (when `progress` is set).
    pub fn run_with(
        &self,
        reporter: &dyn crate::progress::Reporter,
    ) -> anyhow::Result<DisaggReport> {
        let shape = self.shape();
        let sh = shape.as_ref();
        let pb =
            crate::progress::spinner(reporter, self.progress, "disagg: simulating (nP, nD) pairs");
        let mut evaluations = 0u32;
        let mut cands: Vec<DisaggCandidate> = Vec::new();
        // Analytic lower bounds (necessary conditions only).
        let (np_lb, nd_lb) = match sh {
            Some(sh) => (
                (1..=self.max_prefill)
                    .find(|&np| {
                        let a = self.screen(sh, np, self.max_decode);
                        a.rho_prefill < 1.0 && a.rho_link < 1.0
                    })
                    .unwrap_or(self.max_prefill),
                (1..=self.max_decode)
                    .find(|&nd| {
                        let a = self.screen(sh, self.max_prefill, nd);
                        a.rho_decode < 1.0 && a.tpot_ms.is_some_and(|t| t <= self.slo_tpot_ms)
                    })
                    .unwrap_or(self.max_decode),
            ),
            None => (1, 1),
        };
        // Pairs below the bounds are recorded as screened out.
        if np_lb > 1 {
            cands.push(self.candidate(sh, np_lb - 1, nd_lb, None));
        }
        if nd_lb > 1 {
            cands.push(self.candidate(sh, np_lb, nd_lb - 1, None));
        }
        // The aggregated fleets do not depend on the pairs: sized beside them.
        let (pairs, aggregated) = rayon::join(
            || self.search_pairs(sh, np_lb, nd_lb, cands, pb.as_deref()),
            || -> anyhow::Result<Vec<(AggregatedFleet, u32)>> {
                self.aggregated
                    .par_iter()
                    .map(|p| self.size_aggregated(p))
                    .collect()
            },
        );
        let (mut cands, pair_evaluations) = pairs?;
        let aggregated = aggregated?;
        evaluations += pair_evaluations;
        cands.sort_by_key(|c| (c.n_prefill, c.n_decode));
        mark_pareto(&mut cands);
        let best = cands
            .iter()
            .filter(|c| c.slo_met)
            .min_by(|a, b| {
                a.cost
                    .per_hr_usd
                    .total_cmp(&b.cost.per_hr_usd)
                    .then(ttft(a).total_cmp(&ttft(b)))
            })
            .cloned();
        evaluations += aggregated.iter().map(|(_, e)| e).sum::<u32>();
        if let Some(pb) = pb {
            pb.finish();
        }
        Ok(DisaggReport {
            gpu_prefill: self.prefill.name.clone(),
            gpu_decode: self.decode.name.clone(),
            link: self.link.name.clone(),
            lam: self.workload.mean_rate(),
            slo_ttft_ms: self.slo_ttft_ms,
            slo_tpot_ms: self.slo_tpot_ms,
            mean_isl_tok: self.workload.mean_isl().unwrap_or(0.0),
            mean_osl_tok: self.workload.mean_osl().unwrap_or(0.0),
            candidates: cands,
            best,
            aggregated: aggregated.into_iter().map(|(a, _)| a).collect(),
            replications: self.replications.max(1),
            evaluations,
        })
    }

    /// Steps 2 and 3 of the study: the decode side (the smallest nD meeting
    /// TPOT with a generous prefill pool), then the prefill side at that nD.
    /// Returns every pair evaluated (with `cands`, the screened-out ones)
    /// and the number of DES evaluations.
    fn search_pairs(
        &self,
        sh: Option<&Shape>,
        np_lb: u32,
        nd_lb: u32,
        mut cands: Vec<DisaggCandidate>,
        pb: Option<&dyn crate::progress::Task>,
    ) -> anyhow::Result<(Vec<DisaggCandidate>, u32)> {
        // 2. Decode side: the smallest nD meeting TPOT with a generous
        //    prefill pool, one the screen finds at most half loaded (prefill
        //    and link), so it passes arrivals on to decode nearly as they
        //    come. It is usually one the prefill side then needs anyway.
        let np_gen = sh
            .and_then(|sh| {
                (np_lb..=self.max_prefill).find(|&np| {
                    let a = self.screen(sh, np, self.max_decode);
                    a.rho_prefill <= GENEROUS_RHO && a.rho_link <= GENEROUS_RHO
                })
            })
            .unwrap_or((np_lb * 2).max(np_lb + 2).min(self.max_prefill));
        let known = |cands: &[DisaggCandidate], np: u32, nd: u32| -> Option<DesResult> {
            cands
                .iter()
                .find(|c| c.n_prefill == np && c.n_decode == nd && c.des.is_some())
                .and_then(|c| c.des)
        };
        let record = |cands: &mut Vec<DisaggCandidate>, np: u32, nd: u32, d: DesResult| {
            cands.retain(|c| !(c.n_prefill == np && c.n_decode == nd));
            cands.push(self.candidate(sh, np, nd, Some(d)));
        };
        let simulate = |np: u32, nd: u32| -> anyhow::Result<DesResult> {
            if let Some(pb) = &pb {
                pb.set_message(&format!("disagg: simulating nP = {np}, nD = {nd}"));
            }
            let d = self.simulate_pair(np, nd)?;
            if let Some(pb) = &pb {
                pb.inc(1);
            }
            Ok(d)
        };
        let eval =
            |np: u32, nd: u32, cands: &mut Vec<DisaggCandidate>| -> anyhow::Result<DesResult> {
                if let Some(d) = known(cands, np, nd) {
                    return Ok(d);
                }
                let d = simulate(np, nd)?;
                record(cands, np, nd, d);
                Ok(d)
            };
        let mut hi = nd_lb;
        let mut lo = nd_lb - 1; // lo fails (or is below the screen)
        loop {
            let d = eval(np_gen, hi, &mut cands)?;
            if self.tpot_ok(&d) {
                break;
            }
            if hi >= self.max_decode {
                hi = self.max_decode + 1; // nothing meets TPOT
                break;
            }
            lo = hi;
            hi = (hi * 2).min(self.max_decode);
        }
        if hi <= self.max_decode {
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if self.tpot_ok(&eval(np_gen, mid, &mut cands)?) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            // 3. Prefill side at that nD, from the smallest nP up to the
            //    first that meets both targets (the cheapest at this nD; a
            //    larger nP costs more and only lowers TTFT). The next two nP
            //    are simulated side by side: the second is wasted only when
            //    the first meets both.
            let nd_star = hi;
            let mut first_ok: Option<u32> = None;
            let mut np = np_lb;
            while np <= self.max_prefill && first_ok.is_none() {
                let batch: Vec<u32> = (np..=(np + 1).min(self.max_prefill)).collect();
                let fresh: Vec<u32> = batch
                    .iter()
                    .copied()
                    .filter(|&n| known(&cands, n, nd_star).is_none())
                    .collect();
                let ran: Vec<(u32, DesResult)> = fresh
                    .par_iter()
                    .map(|&n| Ok((n, simulate(n, nd_star)?)))
                    .collect::<anyhow::Result<_>>()?;
                for (n, d) in ran {
                    record(&mut cands, n, nd_star, d);
                }
                for &n in &batch {
                    if first_ok.is_some() {
                        break;
                    }
                    let mut nd = nd_star;
                    let mut d = eval(n, nd, &mut cands)?;
                    if self.ttft_ok(&d) && !self.tpot_ok(&d) && nd < self.max_decode {
                        nd += 1;
                        d = eval(n, nd, &mut cands)?;
                    }
                    if first_ok.is_none() && self.ttft_ok(&d) && self.tpot_ok(&d) {
                        first_ok = Some(n);
                    }
                }
                np += batch.len() as u32;
            }
        }
        // Every pair simulated once: the candidates with DES results.
        let evaluations = cands.iter().filter(|c| c.des.is_some()).count() as u32;
        Ok((cands, evaluations))
    }

    /// The smallest aggregated fleet of `profile` meeting both SLOs (doubling, then bisection).
    fn size_aggregated(&self, profile: &Profile) -> anyhow::Result<(AggregatedFleet, u32)> {
        let limit = self.max_prefill + self.max_decode;
        let mut evals = 0u32;
        // A size certain to miss TTFT stops early: only the size found is
        // reported, and if none is found it is simulated whole (below).
        let sim = |n: u32, stop_on_miss: bool| {
            self.simulate(
                vec![self.pool("aggregated", profile, n, DispatchPolicy::Jsq)],
                None,
                stop_on_miss,
            )
        };
        let mut run = |n: u32| -> anyhow::Result<DesResult> {
            evals += 1;
            sim(n, true)
        };
        let ok = |d: &DesResult| self.ttft_ok(d) && self.tpot_ok(d);
        // Start at the cross-check's answer for the TTFT target (one
        // instance when it has none); from there grow by one, then double.
        let start = crate::planner::screen::Screen::new(&self.workload, self.seed)
            .ok()
            .and_then(|s| {
                s.size(
                    &crate::planner::FleetPlan::homogeneous(profile.clone(), self.max_ctx_tok),
                    self.slo_ttft_ms,
                )
            })
            .and_then(|c| c.first().copied())
            .unwrap_or(1)
            .clamp(1, limit.max(1));
        let (mut lo, mut hi) = (0u32, start);
        let mut at_hi = run(hi)?;
        let mut step = 1;
        while !ok(&at_hi) && hi < limit {
            lo = hi;
            hi = (hi + step).min(limit);
            step = step.max(hi / 2);
            at_hi = run(hi)?;
        }
        if ok(&at_hi) {
            // A start that meets both targets is probed one below first.
            let mut first = hi == start && start > 1;
            while hi - lo > 1 {
                let mid = if first { hi - 1 } else { lo + (hi - lo) / 2 };
                first = false;
                let d = run(mid)?;
                if ok(&d) {
                    hi = mid;
                    at_hi = d;
                } else {
                    lo = mid;
                }
            }
        }
        if !ok(&at_hi) {
            // Nothing up to the limit meets the targets: the largest size's
            // P99s are shown, so they are measured to the end.
            at_hi = sim(hi, false)?;
            evals += 1;
        }
        let gpus = hi as u64 * profile.gpus_per_instance as u64;
        Ok((
            AggregatedFleet {
                gpu: profile.name.clone(),
                instances: hi,
                gpus,
                cost: Cost {
                    per_hr_usd: hi as f64 * profile.cost_per_hr,
                },
                slo_met: ok(&at_hi),
                des: at_hi,
            },
            evals,
        ))
    }
}

fn ttft(c: &DisaggCandidate) -> f64 {
    c.des.and_then(|d| d.p99_ttft_ms).unwrap_or(f64::INFINITY)
}

/// Mark the SLO-meeting candidates no other SLO-meeting candidate beats on
/// both cost and P99 TTFT.
fn mark_pareto(cands: &mut [DisaggCandidate]) {
    let ok: Vec<(f64, f64)> = cands
        .iter()
        .filter(|c| c.slo_met)
        .map(|c| (c.cost.per_hr_usd, ttft(c)))
        .collect();
    for c in cands.iter_mut().filter(|c| c.slo_met) {
        let (cost, t) = (c.cost.per_hr_usd, ttft(c));
        c.pareto = !ok
            .iter()
            .any(|&(oc, ot)| oc <= cost && ot <= t && (oc < cost || ot < t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefill_time_alone_is_the_chunked_sum() {
        let p = Profile {
            chunk: 100,
            w_s: 0.01,
            h_s: 0.0008192,
            calibration_ctx: 8192,
            prefill_s_per_token: 1e-4,
            ..Profile::preset("h100").expect("preset")
        };
        let c = StepCoef::of(&p);
        // 250 tokens: chunks 100, 100, 50 with contexts 100, 200, 250.
        let want = 3.0 * 0.01 + 1e-7 * (100.0 + 200.0 + 250.0) + 1e-4 * 250.0;
        assert!((c.prefill_alone_s(250) - want).abs() < 1e-12);
        let busy = 250.0 * (0.01 / 100.0 + 1e-4) + 1e-7 * 550.0;
        assert!((c.prefill_busy_s(250) - busy).abs() < 1e-12);
    }

    #[test]
    fn pareto_keeps_only_undominated_feasible_pairs() {
        let mk = |np, cost, t: f64, ok| DisaggCandidate {
            n_prefill: np,
            n_decode: 1,
            gpus: 1,
            cost: Cost { per_hr_usd: cost },
            des: Some(DesResult {
                p99_ttft_ms: Some(t),
                p99_tpot_ms: Some(1.0),
                rejected_fraction: 0.0,
                throughput_req_s: 1.0,
                mean_transfer_ms: None,
                stable: true,
                replications: 1,
            }),
            analytic: None,
            slo_met: ok,
            pareto: false,
        };
        let mut c = vec![
            mk(1, 1.0, 300.0, true),
            mk(2, 2.0, 200.0, true),
            mk(3, 3.0, 250.0, true),
            mk(4, 0.5, 10.0, false),
        ];
        mark_pareto(&mut c);
        let p: Vec<bool> = c.iter().map(|c| c.pareto).collect();
        assert_eq!(p, vec![true, true, false, false]);
    }
}
