//! `pareto`: the cost / latency frontier of short-pool thresholds.

use rayon::prelude::*;
use serde::Serialize;

use super::optimize::{Candidate, candidate};
use super::plan::FleetPlan;
use super::screen::Screen;
use super::sizing::{SizingSettings, size_fleet};
use crate::workload::spec::WorkloadSpec;

/// One threshold (or the homogeneous baseline): an `optimize` candidate plus
/// the sweep's columns.
#[derive(Debug, Clone, Serialize)]
pub struct ParetoPoint {
    /// The sized fleet, in `optimize`'s candidate shape.
    #[serde(flatten)]
    pub fleet: Candidate,
    /// Fraction of requests with ISL + OSL ≤ B (the short pool's share).
    pub alpha_short: Option<f64>,
    /// Saving against the homogeneous baseline (negative: dearer).
    pub saving_vs_baseline: Option<f64>,
    /// Worst pool's DES P99 TTFT, ms.
    pub worst_p99_ttft_ms: Option<f64>,
    /// On the Pareto frontier of (cost, worst P99) among SLO-meeting points.
    pub pareto: bool,
    /// The recommended point.
    pub recommended: bool,
}

impl ParetoPoint {
    fn cost(&self) -> f64 {
        self.fleet.cost.per_year_usd
    }
}

/// The threshold sweep. Its JSON form is an array of points, the
/// homogeneous baseline (`b_short: null`) first.
#[derive(Debug, Clone)]
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
    let screen = Screen::new(workload, s.seed)?;
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
        .map(|(p, sf)| ParetoPoint {
            fleet: {
                let mut c = candidate(p, sf, 1.0);
                c.attach_analytic(&screen, p);
                c
            },
            alpha_short: p.b_short.map(share),
            saving_vs_baseline: None,
            worst_p99_ttft_ms: sf
                .pools
                .iter()
                .filter_map(|x| x.p99_ttft_ms)
                .reduce(f64::max),
            pareto: false,
            recommended: false,
        })
        .collect();
    let base_cost = pts[0].cost();
    let base_ok = pts[0].fleet.slo_met;
    for p in &mut pts {
        p.saving_vs_baseline = base_ok.then(|| 1.0 - p.cost() / base_cost);
    }
    // Frontier among SLO-meeting points (baseline included).
    let snap: Vec<(bool, f64, f64)> = pts
        .iter()
        .map(|p| {
            (
                p.fleet.slo_met,
                p.cost(),
                p.worst_p99_ttft_ms.unwrap_or(0.0),
            )
        })
        .collect();
    for p in pts.iter_mut().filter(|p| p.fleet.slo_met) {
        let (c, w) = (p.cost(), p.worst_p99_ttft_ms.unwrap_or(0.0));
        p.pareto = !snap
            .iter()
            .any(|&(ok, qc, qw)| ok && qc <= c && qw <= w && (qc < c || qw < w));
    }
    let key = |p: &ParetoPoint| (p.cost(), p.worst_p99_ttft_ms.unwrap_or(0.0));
    let cheapest = (1..pts.len())
        .filter(|&i| pts[i].fleet.slo_met)
        .min_by(|&a, &b| {
            key(&pts[a])
                .partial_cmp(&key(&pts[b]))
                .expect("finite costs")
        });
    let (rec, recommendation) = match cheapest {
        Some(i) if !base_ok || pts[i].cost() < base_cost => {
            let p = &pts[i];
            let vs = if base_ok {
                format!(
                    ", {:.1}% below the homogeneous baseline",
                    100.0 * p.saving_vs_baseline.unwrap_or(0.0)
                )
            } else {
                ", and the homogeneous baseline misses the SLO".into()
            };
            let text = format!(
                "B_short = {} is the cheapest SLO-meeting split ({} GPUs, ${:.0}K/yr){vs}",
                p.fleet.b_short.unwrap_or(0),
                p.fleet.cost.gpus,
                p.cost() / 1e3
            );
            (Some(i), text)
        }
        Some(_) => (
            Some(0),
            "no split beats the homogeneous baseline's cost: keep one pool".into(),
        ),
        None if base_ok => (
            Some(0),
            "no split meets the SLO: keep the homogeneous pool".into(),
        ),
        None => (
            None,
            "neither the baseline nor any split meets the SLO".into(),
        ),
    };
    if let Some(i) = rec {
        pts[i].recommended = true;
    }
    let recommended_b_short = rec.and_then(|i| pts[i].fleet.b_short);
    let baseline = pts.remove(0);
    Ok(ParetoReport {
        baseline,
        points: pts,
        recommended_b_short,
        recommendation,
        slo_ttft_ms: s.slo_ttft_ms,
    })
}

impl Serialize for ParetoReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(std::iter::once(&self.baseline).chain(&self.points))
    }
}
