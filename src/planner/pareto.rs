//! `pareto`: the cost / latency frontier of short-pool thresholds.

use serde::Serialize;

use super::optimize::{Candidate, candidate};
use super::plan::FleetPlan;
use super::screen::Screen;
use super::shard::Sweep;
use super::sizing::{SizedFleet, SizingSettings, size_fleet_screened};
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
    /// Worst DES P99 TTFT over all arrivals, of the pools and of the fleet
    /// (router rejections as infinite), ms; null when infinite.
    pub worst_p99_ttft_ms: Option<f64>,
    /// When the sweep had more thresholds than [`MAX_THRESHOLDS`]: the
    /// thresholds this point stands for (merged into it, not simulated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergedThresholds>,
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

/// Thresholds simulated at most: a CDF with more breakpoints (2M would never
/// finish) is thinned to this many, evenly spaced in the short pool's share.
pub const MAX_THRESHOLDS: usize = 32;

/// The thresholds one simulated threshold stands for after thinning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergedThresholds {
    /// Thresholds merged into this one (itself included).
    pub count: usize,
    /// Smallest merged threshold, tokens.
    pub from_tok: u32,
    /// Largest merged threshold (this point's B), tokens.
    pub to_tok: u32,
}

/// Thin ascending `thresholds` to at most `max`: the first threshold whose
/// share `share(b)` reaches each of `max` evenly spaced targets between the
/// smallest and largest share (the largest threshold always kept). Each
/// kept threshold stands for the dropped ones between it and the previous
/// kept one. Returns the thresholds unchanged, with no groups, when there
/// are at most `max`.
pub fn thin_thresholds(
    thresholds: &[u32],
    share: &dyn Fn(u32) -> f64,
    max: usize,
) -> (Vec<u32>, Vec<Option<MergedThresholds>>) {
    let n = thresholds.len();
    if n <= max || max == 0 {
        return (thresholds.to_vec(), vec![None; n]);
    }
    let shares: Vec<f64> = thresholds.iter().map(|&b| share(b)).collect();
    let (lo, hi) = (shares[0], shares[n - 1]);
    let mut keep: Vec<usize> = (1..=max)
        .map(|k| {
            let target = lo + (hi - lo) * k as f64 / max as f64;
            shares.partition_point(|&a| a < target).min(n - 1)
        })
        .collect();
    keep.dedup();
    let mut groups = Vec::with_capacity(keep.len());
    let mut first = 0;
    for &i in &keep {
        groups.push(Some(MergedThresholds {
            count: i + 1 - first,
            from_tok: thresholds[first],
            to_tok: thresholds[i],
        }));
        first = i + 1;
    }
    (keep.iter().map(|&i| thresholds[i]).collect(), groups)
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
    /// Thresholds before thinning (equal to `points.len()` when none were merged).
    pub thresholds_given: usize,
}

/// Size the baseline and a two-pool fleet per threshold, then mark the frontier.
/// `share(b)` gives the fraction of requests with ISL + OSL ≤ b. More than
/// [`MAX_THRESHOLDS`] thresholds are thinned first ([`thin_thresholds`]).
pub fn pareto(
    base: &FleetPlan,
    thresholds: &[u32],
    workload: &WorkloadSpec,
    s: &SizingSettings,
    share: &(dyn Fn(u32) -> f64 + Sync),
    progress: &dyn crate::progress::Reporter,
    sweep: &Sweep,
) -> anyhow::Result<ParetoReport> {
    let screen = Screen::new(workload, s.seed)?;
    let (thresholds, merged) = thin_thresholds(thresholds, share, MAX_THRESHOLDS);
    let thresholds_given = merged
        .iter()
        .map(|m| m.as_ref().map_or(1, |g| g.count))
        .sum();
    let mut merged = std::iter::once(None).chain(merged);
    let mut plans = vec![FleetPlan::homogeneous(base.long.clone(), base.long_max_ctx)];
    plans.extend(thresholds.iter().map(|&b| FleetPlan {
        b_short: Some(b),
        gamma: 1.0,
        ..base.clone()
    }));
    let pb = crate::progress::bar(progress, true, plans.len() as u64, "pareto sweep");
    let sized = sweep.map(&plans, |_, p| {
        let r = size_fleet_screened(p, workload, s, &screen);
        if let Some(pb) = &pb {
            pb.inc(1);
        }
        r
    });
    if let Some(pb) = &pb {
        pb.finish();
    }
    let sized: Vec<SizedFleet> = sized?;
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
                .map(|x| x.p99_ttft_ms)
                .chain([sf.fleet_p99_ttft_ms.or(Some(f64::INFINITY))])
                .flatten()
                .reduce(f64::max),
            merged: merged.next().flatten(),
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
        thresholds_given,
    })
}

impl Serialize for ParetoReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(std::iter::once(&self.baseline).chain(&self.points))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_largest_and_accounts_for_every_threshold() {
        let th: Vec<u32> = (1..=1000).collect();
        let share = |b: u32| b as f64 / 1000.0;
        let (kept, groups) = thin_thresholds(&th, &share, 10);
        assert_eq!(kept.len(), 10);
        assert_eq!(kept.last(), Some(&1000));
        let total: usize = groups.iter().flatten().map(|g| g.count).sum();
        assert_eq!(total, 1000);
        assert!(
            groups
                .iter()
                .zip(&kept)
                .all(|(g, &k)| g.as_ref().expect("group").to_tok == k)
        );
        let (same, none) = thin_thresholds(&th[..5], &share, 10);
        assert_eq!(same, th[..5]);
        assert!(none.iter().all(Option::is_none));
    }
}
