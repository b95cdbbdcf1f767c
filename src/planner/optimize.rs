//! `optimize`: which two-pool split (B, γ) is cheapest while meeting the
//! P99 TTFT SLO, verified and sized with the DES; the homogeneous baseline is
//! always included, and a reliability margin is applied last.

use rayon::prelude::*;
use serde::Serialize;

use super::plan::FleetPlan;
use super::screen::Screen;
use super::sizing::{SizedFleet, SizingSettings, size_fleet_screened};
use crate::error::InputError;
use crate::profile::Profile;
use crate::workload::spec::WorkloadSpec;

/// Node availability from a failure rate and repair time:
/// `A = 1 / (1 + r · MTTR / 24)` (r per node-day, MTTR in hours).
pub fn availability(failure_rate_per_day: f64, mttr_hours: f64) -> f64 {
    1.0 / (1.0 + failure_rate_per_day * mttr_hours / 24.0)
}

/// What to optimise.
#[derive(Debug, Clone)]
pub struct OptimizeConfig {
    /// Workload (CDF lengths and Poisson rate).
    pub workload: WorkloadSpec,
    /// Candidate short-pool thresholds B. B equal to `long_max_ctx` (every
    /// request fits the short pool: the reference's way to ask for a
    /// homogeneous fleet) is a homogeneous fleet of the short-pool profile.
    pub b_values: Vec<u32>,
    /// Candidate γ values (1 = plain length routing).
    pub gammas: Vec<f64>,
    /// Short-pool profile.
    pub gpu_short: Profile,
    /// Long-pool profile (also the homogeneous baseline's).
    pub gpu_long: Profile,
    /// Long-pool max context, tokens.
    pub long_max_ctx: u32,
    /// How many candidates (cheapest first by the analytic screen) the DES sizes.
    pub verify_top: usize,
    /// DES sizing settings.
    pub sizing: SizingSettings,
    /// Node availability A in (0, 1]; counts become ceil(n / A).
    pub availability: f64,
}

/// One fleet in the report.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Short-pool threshold (null for the homogeneous baseline).
    pub b_short: Option<u32>,
    /// γ.
    pub gamma: f64,
    /// Pools with their DES-minimal sizes and the production sizes after the reliability margin.
    pub pools: Vec<CandidatePool>,
    /// Analytic P99 TTFT per pool at the DES-minimal sizes (null until the analytic screen runs).
    pub analytic: AnalyticBlock,
    /// DES results at the DES-minimal sizes.
    pub des: DesBlock,
    /// Cost at production sizes.
    pub cost: CostBlock,
    /// Whether the DES confirms the SLO.
    pub slo_met: bool,
    /// Why the SLO cannot be met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A pool of a candidate.
#[derive(Debug, Clone, Serialize)]
pub struct CandidatePool {
    /// Pool id.
    pub id: String,
    /// Profile name.
    pub gpu: String,
    /// Max context, tokens.
    pub max_ctx: u32,
    /// Instances at production size (after the reliability margin).
    pub instances: u32,
    /// GPUs at production size.
    pub gpus: u64,
    /// DES-minimal instances (before the margin).
    pub slo_instances: u32,
}

/// Analytic estimates.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AnalyticBlock {
    /// P99 TTFT per pool, ms.
    pub p99_ttft_ms_by_pool: std::collections::BTreeMap<String, Option<f64>>,
    /// Pools where the cross-check and the DES P99 differ by more than the
    /// validated band (`planner::screen::P99_BAND`).
    pub disagrees: Vec<String>,
}

/// DES results.
#[derive(Debug, Clone, Serialize)]
pub struct DesBlock {
    /// P99 TTFT per pool over all its arrivals (rejected and unfinished as
    /// infinite), ms; null when infinite or without traffic.
    pub p99_ttft_ms_by_pool: std::collections::BTreeMap<String, Option<f64>>,
    /// Fleet P99 TTFT over all arrivals (router rejections as infinite), ms;
    /// null when infinite (more than 1% rejected or unfinished).
    pub fleet_p99_ttft_ms: Option<f64>,
    /// Fraction of all arrivals rejected (worst replication).
    pub rejected_fraction: f64,
    /// Fleet SLO attainment (mean over replications).
    pub attainment: Option<f64>,
    /// Replications behind the fleet's final check (the SLO held in each;
    /// fewer than asked when those run predicted the last would meet it too).
    pub replications: u32,
    /// Simulations run to size this fleet.
    pub evaluations: u32,
}

/// Cost.
#[derive(Debug, Clone, Serialize)]
pub struct CostBlock {
    /// $ per hour.
    pub per_hr_usd: f64,
    /// $ per year.
    pub per_year_usd: f64,
    /// GPUs.
    pub gpus: u64,
}

/// The optimisation result.
#[derive(Debug, Clone, Serialize)]
pub struct OptimizeReport {
    /// The homogeneous baseline.
    pub baseline: Candidate,
    /// DES-verified candidates, cheapest first.
    pub candidates: Vec<Candidate>,
    /// The cheapest SLO-meeting fleet (a candidate or the baseline).
    pub best: Option<Candidate>,
    /// Remarks (e.g. the recommendation costs more than the baseline).
    pub notes: Vec<String>,
    /// Node availability applied.
    pub availability: f64,
    /// SLO, ms.
    pub slo_ttft_ms: f64,
}

/// The report form of a DES-sized fleet, with the reliability margin applied.
pub fn candidate(plan: &FleetPlan, sized: &SizedFleet, availability: f64) -> Candidate {
    let prod: Vec<u32> = sized
        .counts
        .iter()
        .map(|&n| (n as f64 / availability - 1e-9).ceil() as u32)
        .collect();
    let pools = plan
        .pools(&prod)
        .iter()
        .zip(&sized.counts)
        .map(|(p, &slo_n)| CandidatePool {
            id: p.id.clone(),
            gpu: p.profile.name.clone(),
            max_ctx: p.max_ctx_tok,
            instances: p.instances,
            gpus: p.gpus(),
            slo_instances: slo_n,
        })
        .collect();
    let per_hr = plan.cost_per_hr(&prod);
    Candidate {
        b_short: plan.b_short,
        gamma: plan.gamma,
        pools,
        analytic: AnalyticBlock::default(),
        des: DesBlock {
            p99_ttft_ms_by_pool: sized
                .pools
                .iter()
                .map(|p| (p.id.clone(), p.p99_ttft_ms))
                .collect(),
            fleet_p99_ttft_ms: sized.fleet_p99_ttft_ms,
            rejected_fraction: sized.rejected_fraction,
            attainment: sized.attainment,
            evaluations: sized.evaluations,
            replications: sized.replications,
        },
        cost: CostBlock {
            per_hr_usd: per_hr,
            per_year_usd: per_hr * 8760.0,
            gpus: plan.gpus(&prod),
        },
        slo_met: sized.slo_met,
        reason: sized.reason.clone(),
    }
}

impl Candidate {
    /// Fill the analytic block: the analytic P99 TTFT per pool at the
    /// DES-minimal sizes (the cross-check), and the pools where it differs
    /// from the DES by more than the validated band
    /// ([`super::screen::P99_BAND`]).
    pub fn attach_analytic(&mut self, screen: &Screen, plan: &FleetPlan) {
        let counts: Vec<u32> = self.pools.iter().map(|p| p.slo_instances).collect();
        let analytic = screen.p99_ttft_ms(plan, &counts);
        let des = self.des_p99_in_fleet_order();
        self.analytic.disagrees.clear();
        for ((pool, a), d) in self.pools.iter().zip(&analytic).zip(&des) {
            self.analytic
                .p99_ttft_ms_by_pool
                .insert(pool.id.clone(), *a);
            let differs = d.is_some() && super::screen::p99_disagrees(*a, *d);
            if differs {
                self.analytic.disagrees.push(pool.id.clone());
            }
        }
    }

    /// The SLO cell of a table: ✓, ✗, or ✗ with the share of traffic
    /// rejected when that alone rules the SLO out.
    pub fn slo_cell(&self) -> String {
        if self.slo_met {
            "✓".into()
        } else if self.des.rejected_fraction > 0.01 {
            format!("✗ rejects {:.0}%", 100.0 * self.des.rejected_fraction)
        } else {
            "✗".into()
        }
    }

    /// DES P99 TTFT per pool in fleet order (the map is keyed by pool id).
    pub fn des_p99_in_fleet_order(&self) -> Vec<Option<f64>> {
        self.pools
            .iter()
            .map(|p| self.des.p99_ttft_ms_by_pool.get(&p.id).copied().flatten())
            .collect()
    }
}

impl OptimizeConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<(), InputError> {
        if !(self.availability > 0.0 && self.availability <= 1.0) {
            return Err(InputError::field(
                "--node-avail",
                format!(
                    "expected an availability in (0, 1], got {}",
                    self.availability
                ),
            ));
        }
        if let Some(b) = self.b_values.iter().find(|&&b| b > self.long_max_ctx) {
            return Err(InputError::field(
                "--b-short",
                format!(
                    "expected a threshold at most --long-max-ctx ({}; equal means one homogeneous pool), got {b}",
                    self.long_max_ctx
                ),
            ));
        }
        if self.gammas.iter().any(|&g| g.is_nan() || g < 1.0) {
            return Err(InputError::field("--gamma-max", "expected γ ≥ 1"));
        }
        Ok(())
    }

    /// The candidate plans (B × γ), in order.
    pub fn plans(&self) -> Vec<FleetPlan> {
        let mut out = Vec::new();
        for &b in &self.b_values {
            if b == self.long_max_ctx {
                // Every request fits the short pool: a homogeneous fleet of
                // its profile (the baseline already covers the long profile).
                if self.gpu_short != self.gpu_long {
                    out.push(FleetPlan::homogeneous(
                        self.gpu_short.clone(),
                        self.long_max_ctx,
                    ));
                }
                continue;
            }
            for &g in &self.gammas {
                out.push(FleetPlan {
                    b_short: Some(b),
                    gamma: g,
                    short: self.gpu_short.clone(),
                    long: self.gpu_long.clone(),
                    long_max_ctx: self.long_max_ctx,
                });
            }
        }
        out
    }
}

/// Size the baseline and the candidates with the DES and pick the cheapest
/// SLO-meeting fleet. `screen` orders candidates before DES verification
/// (cheapest analytic estimate first) and returns at most `verify_top`.
pub fn optimize(
    cfg: &OptimizeConfig,
    progress: &dyn crate::progress::Reporter,
) -> anyhow::Result<OptimizeReport> {
    cfg.validate()?;
    // Analytic screen: rank every (B, γ) plan by its analytic cost; infeasible last.
    let screen = Screen::new(&cfg.workload, cfg.sizing.seed)?;
    let mut ranked: Vec<(f64, FleetPlan)> = cfg
        .plans()
        .into_iter()
        .map(|p| {
            let cost = screen
                .size(&p, cfg.sizing.slo_ttft_ms)
                .map(|c| p.cost_per_hr(&c))
                .unwrap_or(f64::INFINITY);
            (cost, p)
        })
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    let screened = ranked.len();
    let verify: Vec<FleetPlan> = ranked
        .into_iter()
        .take(cfg.verify_top.max(1))
        .map(|(_, p)| p)
        .collect();
    let base_plan = FleetPlan::homogeneous(cfg.gpu_long.clone(), cfg.long_max_ctx);
    let pb = crate::progress::bar(
        progress,
        true,
        verify.len() as u64 + 1,
        "sizing fleets with the DES",
    );
    let mut all = vec![base_plan.clone()];
    all.extend(verify);
    let sized: Vec<(FleetPlan, SizedFleet)> = all
        .into_par_iter()
        .map(|p| {
            let s = size_fleet_screened(&p, &cfg.workload, &cfg.sizing, &screen);
            if let Some(pb) = &pb {
                pb.inc(1);
            }
            s.map(|s| (p, s))
        })
        .collect::<anyhow::Result<_>>()?;
    if let Some(pb) = &pb {
        pb.finish();
    }
    let with_analytic = |p: &FleetPlan, s: &SizedFleet| {
        let mut c = candidate(p, s, cfg.availability);
        c.attach_analytic(&screen, p);
        c
    };
    let mut it = sized.iter();
    let (bp, bs) = it.next().expect("baseline is always sized");
    let baseline = with_analytic(bp, bs);
    let mut candidates: Vec<Candidate> = it.map(|(p, s)| with_analytic(p, s)).collect();
    candidates.sort_by(|a, b| {
        (!a.slo_met, a.cost.per_hr_usd)
            .partial_cmp(&(!b.slo_met, b.cost.per_hr_usd))
            .expect("finite costs")
    });
    let mut notes = vec![format!(
        "{screened} (B, γ) plans ranked by the analytic screen (the cross-check of the iteration engine); the cheapest {} sized with the DES, each search started at the screen's answer",
        candidates.len()
    )];
    if cfg.b_values.contains(&cfg.long_max_ctx) {
        notes.push(format!(
            "B = {} equals --long-max-ctx: every request fits one pool, so this is a homogeneous fleet (the baseline{})",
            cfg.long_max_ctx,
            if cfg.gpu_short != cfg.gpu_long {
                ", and a homogeneous fleet of the short-pool GPU"
            } else {
                ""
            }
        ));
    }
    for c in std::iter::once(&baseline).chain(&candidates) {
        if !c.analytic.disagrees.is_empty() {
            notes.push(format!(
                "{}: analytic and DES P99 TTFT differ by more than {:.0}% in pool(s) {}",
                c.b_short
                    .map(|b| format!("B={b}, γ={}", c.gamma))
                    .unwrap_or_else(|| "homogeneous".into()),
                100.0 * super::screen::P99_BAND,
                c.analytic.disagrees.join(", ")
            ));
        }
    }
    let best_candidate = candidates.iter().find(|c| c.slo_met).cloned();
    let best = match (best_candidate, baseline.slo_met) {
        (Some(c), true) if c.cost.per_hr_usd >= baseline.cost.per_hr_usd => {
            notes.push(format!(
                "the cheapest two-pool fleet (${:.2}/hr) does not beat the homogeneous baseline (${:.2}/hr): the simpler baseline is recommended",
                c.cost.per_hr_usd, baseline.cost.per_hr_usd
            ));
            Some(baseline.clone())
        }
        (Some(c), _) => Some(c),
        (None, true) => Some(baseline.clone()),
        (None, false) => {
            notes.push("no fleet shape tried meets the SLO".into());
            None
        }
    };
    Ok(OptimizeReport {
        baseline,
        candidates,
        best,
        notes,
        availability: cfg.availability,
        slo_ttft_ms: cfg.sizing.slo_ttft_ms,
    })
}
