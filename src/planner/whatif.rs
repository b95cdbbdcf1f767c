//! `whatif`: the fleet each arrival rate needs, and the rate at which each
//! fleet size stops meeting the SLO (when to add GPUs before a violation).

use rayon::prelude::*;
use serde::Serialize;

use super::optimize::{Candidate, candidate};
use super::plan::FleetPlan;
use super::screen::Screen;
use super::shard::{ShardItem, Sweep, field, opt_f64_from, opt_f64_to};
use super::sizing::{SizedFleet, SizingSettings, size_fleet_screened};
use super::threshold::{Sustained, max_sustained_lam};
use crate::workload::spec::WorkloadSpec;

/// One (GPU type, λ) point: an `optimize` candidate plus the sweep's columns.
#[derive(Debug, Clone, Serialize)]
pub struct WhatifPoint {
    /// The sized fleet (counts made monotone in λ), in `optimize`'s candidate shape.
    #[serde(flatten)]
    pub fleet: Candidate,
    /// Arrival rate, requests/s.
    pub lam: f64,
    /// The largest λ this fleet sustains within the SLO (DES bisection), requests/s.
    pub max_lam_within_slo: Option<f64>,
    /// Cost relative to the cheapest GPU type at this λ (0 for the cheapest).
    pub cost_vs_cheapest: Option<f64>,
}

impl WhatifPoint {
    /// Instances per pool, in fleet order.
    pub fn counts(&self) -> Vec<u32> {
        self.fleet.pools.iter().map(|p| p.instances).collect()
    }

    /// The GPU type (the long or homogeneous pool's profile).
    pub fn gpu(&self) -> &str {
        self.fleet
            .pools
            .last()
            .map(|p| p.gpu.as_str())
            .unwrap_or("")
    }
}

/// The what-if sweep. Its JSON form is the array of points.
#[derive(Debug, Clone)]
pub struct WhatifReport {
    /// Points, by GPU type then ascending λ.
    pub points: Vec<WhatifPoint>,
    /// Remarks (monotonicity repairs, infeasible points).
    pub notes: Vec<String>,
    /// SLO, ms.
    pub slo_ttft_ms: f64,
}

fn workload_at(w: &WorkloadSpec, lam: f64) -> WorkloadSpec {
    WorkloadSpec {
        lam: Some(lam),
        ..w.clone()
    }
}

/// One (GPU type, λ) item of the sweep: the DES-minimal fleet and its threshold.
impl ShardItem for (SizedFleet, Option<f64>) {
    fn to_shard(&self) -> serde_json::Value {
        serde_json::json!({ "sized": self.0.to_shard(), "threshold": opt_f64_to(self.1) })
    }
    fn from_shard(v: &serde_json::Value) -> Result<Self, String> {
        Ok((
            SizedFleet::from_shard(field(v, "sized")?)?,
            opt_f64_from(field(v, "threshold")?)?,
        ))
    }
}

/// Size `plans` (one per GPU type) at every λ, make counts monotone in λ,
/// and find each fleet's step threshold.
pub fn whatif(
    plans: &[FleetPlan],
    lams: &[f64],
    workload: &WorkloadSpec,
    s: &SizingSettings,
    progress: &dyn crate::progress::Reporter,
    sweep: &Sweep,
) -> anyhow::Result<WhatifReport> {
    let mut lams = lams.to_vec();
    lams.sort_by(f64::total_cmp);
    let jobs: Vec<(usize, f64)> = (0..plans.len())
        .flat_map(|g| lams.iter().map(move |&l| (g, l)))
        .collect();
    let pb = crate::progress::bar(progress, true, jobs.len() as u64 * 2, "what-if sweep");
    // Per (GPU type, λ), independently: the DES-minimal fleet and, when it
    // meets the SLO, the rate at which it stops meeting it.
    // Larger rates size larger fleets: they start first.
    let sized: anyhow::Result<Vec<(SizedFleet, Option<f64>)>> = sweep.map_costliest_first(
        &jobs,
        |&(_, lam)| lam,
        |_, &(g, lam)| {
            let screen = Screen::new(&workload_at(workload, lam), s.seed)?;
            let sf = size_fleet_screened(&plans[g], &workload_at(workload, lam), s, &screen)?;
            if let Some(pb) = &pb {
                pb.inc(1);
            }
            let t = if sf.slo_met {
                let des: Vec<Option<f64>> = sf.pools.iter().map(|p| p.p99_ttft_ms).collect();
                Some(max_sustained_lam(
                    &plans[g],
                    &sf.counts,
                    workload,
                    s,
                    &screen,
                    Sustained {
                        lam,
                        p99_ttft_ms: Some(&des),
                        hardest_replication: sf.hardest_replication,
                    },
                    0.01,
                )?)
            } else {
                None
            };
            if let Some(pb) = &pb {
                pb.inc(1);
            }
            Ok((sf, t))
        },
    );
    let sized = match sized {
        Ok(v) => v,
        Err(e) => {
            if let Some(pb) = &pb {
                pb.finish();
            }
            return Err(e);
        }
    };
    let mut notes = Vec::new();
    // (GPU type, point, its threshold, whether monotone repair raised its counts).
    let mut points: Vec<(usize, WhatifPoint, Option<f64>, bool)> = Vec::new();
    for (g, plan) in plans.iter().enumerate() {
        let mut running: Vec<u32> = vec![0; plan.shapes().len()];
        for ((_, lam), (sf, threshold)) in jobs.iter().zip(&sized).filter(|((jg, _), _)| *jg == g) {
            let mut counts = sf.counts.clone();
            for (i, c) in counts.iter_mut().enumerate() {
                if *c < running[i] {
                    notes.push(format!(
                        "{} at λ = {lam}: pool {} raised from {} to {} instances to keep counts monotone in λ (the DES minimum at this λ was within noise of the smaller rate's)",
                        plan.long.name,
                        plan.shapes()[i].id,
                        *c,
                        running[i]
                    ));
                    *c = running[i];
                }
                running[i] = *c;
            }
            if let Some(r) = &sf.reason {
                notes.push(format!("{} at λ = {lam}: {r}", plan.long.name));
            }
            let raised = counts != sf.counts;
            let repaired = SizedFleet {
                counts,
                ..sf.clone()
            };
            points.push((
                g,
                WhatifPoint {
                    fleet: {
                        let mut c = candidate(plan, &repaired, 1.0);
                        c.attach_analytic(
                            &Screen::new(&workload_at(workload, *lam), s.seed)?,
                            plan,
                        );
                        c
                    },
                    lam: *lam,
                    max_lam_within_slo: None,
                    cost_vs_cheapest: None,
                },
                *threshold,
                raised,
            ));
        }
    }
    // Step thresholds: a fleet whose counts monotone repair raised is
    // searched again at its new size (in parallel); the others keep theirs.
    let thresholds: Vec<Option<f64>> = points
        .par_iter()
        .map(|(g, p, t, raised)| {
            if *raised && p.fleet.slo_met {
                let screen = Screen::new(&workload_at(workload, p.lam), s.seed)?;
                max_sustained_lam(
                    &plans[*g],
                    &p.counts(),
                    workload,
                    s,
                    &screen,
                    Sustained {
                        lam: p.lam,
                        p99_ttft_ms: None,
                        hardest_replication: 0,
                    },
                    0.01,
                )
                .map(Some)
            } else {
                Ok(*t)
            }
        })
        .collect::<anyhow::Result<_>>()?;
    if let Some(pb) = &pb {
        pb.finish();
    }
    let mut out: Vec<WhatifPoint> = points
        .into_iter()
        .zip(thresholds)
        .map(|((_, mut p, _, _), t)| {
            p.max_lam_within_slo = t;
            p
        })
        .collect();
    // Cost relative to the cheapest GPU type at each λ.
    for &lam in &lams {
        let cheapest = out
            .iter()
            .filter(|p| p.lam == lam && p.fleet.slo_met)
            .map(|p| p.fleet.cost.per_hr_usd)
            .fold(f64::INFINITY, f64::min);
        for p in out.iter_mut().filter(|p| p.lam == lam) {
            p.cost_vs_cheapest = (cheapest.is_finite() && p.fleet.slo_met)
                .then(|| p.fleet.cost.per_hr_usd / cheapest - 1.0);
        }
    }
    Ok(WhatifReport {
        points: out,
        notes,
        slo_ttft_ms: s.slo_ttft_ms,
    })
}

impl Serialize for WhatifReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(&self.points)
    }
}
