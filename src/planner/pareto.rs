//! `pareto`: the cost / latency frontier of short-pool thresholds.

use rayon::prelude::*;
use serde::Serialize;

use super::plan::FleetPlan;
use super::sizing::{SizingSettings, size_fleet};
use crate::workload::spec::WorkloadSpec;

/// One threshold (or the homogeneous baseline).
#[derive(Debug, Clone, Serialize)]
pub struct ParetoPoint {
    /// Short-pool threshold (null: homogeneous baseline).
    pub b_short: Option<u32>,
    /// Fraction of requests with ISL + OSL ≤ B (the short pool's share).
    pub alpha_short: Option<f64>,
    /// Instances per pool.
    pub counts: Vec<u32>,
    /// GPUs.
    pub gpus: u64,
    /// $ per year.
    pub cost_per_year_usd: f64,
    /// Saving against the homogeneous baseline (negative: dearer).
    pub saving_vs_baseline: Option<f64>,
    /// DES P99 TTFT per pool, ms.
    pub p99_ttft_ms_by_pool: Vec<Option<f64>>,
    /// Worst pool's P99 TTFT, ms.
    pub worst_p99_ttft_ms: Option<f64>,
    /// Whether the DES confirms the SLO.
    pub slo_met: bool,
    /// On the Pareto frontier of (cost, worst P99) among SLO-meeting points.
    pub pareto: bool,
    /// Why the SLO cannot be met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The threshold sweep.
#[derive(Debug, Clone, Serialize)]
pub struct ParetoReport {
    /// The homogeneous baseline.
    pub baseline: ParetoPoint,
    /// One point per threshold, ascending B.
    pub points: Vec<ParetoPoint>,
    /// The recommended threshold (null: the baseline).
    pub recommended_b_short: Option<u32>,
    /// Why.
    pub recommendation: String,
    /// SLO, ms.
    pub slo_ttft_ms: f64,
}

/// Size the baseline and a two-pool fleet per threshold, then mark the frontier.
/// `share(b)` gives the fraction of requests with ISL + OSL ≤ b.
pub fn pareto(
    base: &FleetPlan,
    thresholds: &[u32],
    workload: &WorkloadSpec,
    s: &SizingSettings,
    share: &(dyn Fn(u32) -> f64 + Sync),
    progress: bool,
) -> anyhow::Result<ParetoReport> {
    let mut plans = vec![FleetPlan::homogeneous(base.long.clone(), base.long_max_ctx)];
    plans.extend(thresholds.iter().map(|&b| FleetPlan {
        b_short: Some(b),
        gamma: 1.0,
        ..base.clone()
    }));
    let pb = crate::cli::progress::bar(progress, plans.len() as u64, "pareto sweep");
    let sized: Vec<_> = plans
        .par_iter()
        .map(|p| {
            let r = size_fleet(p, workload, s, None);
            if let Some(pb) = &pb {
                pb.inc(1);
            }
            r
        })
        .collect::<anyhow::Result<_>>()?;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    let mut pts: Vec<ParetoPoint> = plans
        .iter()
        .zip(&sized)
        .map(|(p, sf)| {
            let p99: Vec<Option<f64>> = sf.pools.iter().map(|x| x.p99_ttft_ms).collect();
            ParetoPoint {
                b_short: p.b_short,
                alpha_short: p.b_short.map(share),
                gpus: sf.gpus,
                cost_per_year_usd: sf.cost_per_hr * 8760.0,
                saving_vs_baseline: None,
                worst_p99_ttft_ms: p99.iter().flatten().copied().reduce(f64::max),
                p99_ttft_ms_by_pool: p99,
                counts: sf.counts.clone(),
                slo_met: sf.slo_met,
                pareto: false,
                reason: sf.reason.clone(),
            }
        })
        .collect();
    let base_cost = pts[0].cost_per_year_usd;
    let base_ok = pts[0].slo_met;
    for p in &mut pts {
        p.saving_vs_baseline = base_ok.then(|| 1.0 - p.cost_per_year_usd / base_cost);
    }
    // Frontier among SLO-meeting points (baseline included).
    let snapshot = pts.clone();
    for p in pts.iter_mut().filter(|p| p.slo_met) {
        let (c, w) = (p.cost_per_year_usd, p.worst_p99_ttft_ms.unwrap_or(0.0));
        p.pareto = !snapshot.iter().filter(|q| q.slo_met).any(|q| {
            let (qc, qw) = (q.cost_per_year_usd, q.worst_p99_ttft_ms.unwrap_or(0.0));
            qc <= c && qw <= w && (qc < c || qw < w)
        });
    }
    let baseline = pts.remove(0);
    let cheapest = pts.iter().filter(|p| p.slo_met).min_by(|a, b| {
        a.cost_per_year_usd.total_cmp(&b.cost_per_year_usd).then(
            a.worst_p99_ttft_ms
                .unwrap_or(0.0)
                .total_cmp(&b.worst_p99_ttft_ms.unwrap_or(0.0)),
        )
    });
    let (recommended_b_short, recommendation) = match cheapest {
        Some(c) if !baseline.slo_met || c.cost_per_year_usd < baseline.cost_per_year_usd => (
            c.b_short,
            format!(
                "B_short = {} is the cheapest SLO-meeting split ({} GPUs, ${:.0}K/yr){}",
                c.b_short.unwrap_or(0),
                c.gpus,
                c.cost_per_year_usd / 1e3,
                if baseline.slo_met {
                    format!(
                        ", {:.1}% below the homogeneous baseline",
                        100.0 * c.saving_vs_baseline.unwrap_or(0.0)
                    )
                } else {
                    ", and the homogeneous baseline misses the SLO".into()
                }
            ),
        ),
        Some(_) => (
            None,
            "no split beats the homogeneous baseline's cost: keep one pool".into(),
        ),
        None if baseline.slo_met => (
            None,
            "no split meets the SLO: keep the homogeneous pool".into(),
        ),
        None => (
            None,
            "neither the baseline nor any split meets the SLO".into(),
        ),
    };
    Ok(ParetoReport {
        baseline,
        points: pts,
        recommended_b_short,
        recommendation,
        slo_ttft_ms: s.slo_ttft_ms,
    })
}
