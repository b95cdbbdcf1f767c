//! Router comparison: the same fleet and the same arrival stream (common
//! random numbers: arrivals, lengths and categories come from seed streams
//! that do not depend on the router) under several routers. With R > 1
//! replications, each pair of routers is compared by a paired 95% CI on the
//! per-replication difference of P99 TTFT.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::bail;
use kvfleet_routers::RouterSpec;
use rayon::prelude::*;
use serde::Serialize;

use crate::metrics::LatencySummary;
use crate::metrics::report::{RequestCounts, SimReport, SloReport};
use crate::metrics::stats::mean_ci95;
use crate::report_format::{CsvReport, HumanReport};
use crate::simulate::{SimulateJob, aggregate, run_replications};

/// One router's results.
#[derive(Debug, Clone, Serialize)]
pub struct RouterRow {
    /// Router kind.
    pub router: String,
    /// The router's spec as run.
    pub spec: RouterSpec,
    /// `stable` or `unstable`.
    pub verdict: String,
    /// Time to first token, ms.
    pub ttft_ms: LatencySummary,
    /// Time per output token, ms.
    pub tpot_ms: LatencySummary,
    /// End-to-end latency, ms.
    pub e2e_ms: LatencySummary,
    /// SLO attainment.
    pub slo: SloReport,
    /// Request counts.
    pub requests: RequestCounts,
    /// Requests routed per pool.
    pub routed: BTreeMap<String, u64>,
    /// Fraction of routed requests sent to the pool with the smallest context.
    pub frac_short: Option<f64>,
    /// Requests compressed.
    pub compressed: u64,
    /// Requests spilled to a larger pool.
    pub spilled: u64,
    /// Utilisation (fraction of time stepping) per pool.
    pub utilisation_by_pool: BTreeMap<String, f64>,
    /// Mean running sequences per step, per pool.
    pub mean_batch_by_pool: BTreeMap<String, f64>,
    /// P99 TTFT per pool, ms.
    pub p99_ttft_ms_by_pool: BTreeMap<String, Option<f64>>,
    /// 95% CI half-widths of headline metrics (with replications).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci95: Option<BTreeMap<String, Option<f64>>>,
}

/// A paired comparison of two routers' P99 TTFT.
#[derive(Debug, Clone, Serialize)]
pub struct PairComparison {
    /// First router.
    pub a: String,
    /// Second router.
    pub b: String,
    /// Mean over replications of P99 TTFT(a) − P99 TTFT(b), ms.
    pub p99_ttft_diff_ms: f64,
    /// 95% CI half-width of that mean difference, ms.
    pub ci95_ms: Option<f64>,
    /// Whether the CI excludes 0.
    pub distinguishable: Option<bool>,
}

/// The comparison report.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    /// What was simulated.
    pub workload: String,
    /// Requests in the arrival stream (identical for every router; a run
    /// that stopped early as unstable saw fewer).
    pub arrivals: u64,
    /// Replications per router.
    pub replications: u32,
    /// Pool ids in fleet order.
    pub pools: Vec<String>,
    /// One row per router.
    pub routers: Vec<RouterRow>,
    /// Paired P99 TTFT comparisons (with replications ≥ 2).
    pub comparisons: Vec<PairComparison>,
}

fn row(spec: &RouterSpec, r: &SimReport) -> RouterRow {
    let smallest = r
        .pools
        .iter()
        .min_by_key(|p| p.max_ctx)
        .map(|p| p.id.clone());
    let total: u64 = r.router.routed.values().sum();
    RouterRow {
        router: spec.kind().to_string(),
        spec: spec.clone(),
        verdict: r.verdict.clone(),
        ttft_ms: r.fleet.ttft_ms,
        tpot_ms: r.fleet.tpot_ms,
        e2e_ms: r.fleet.e2e_ms,
        slo: r.fleet.slo.clone(),
        requests: r.requests.clone(),
        routed: r.router.routed.clone(),
        frac_short: smallest
            .filter(|_| total > 0)
            .map(|id| r.router.routed.get(&id).copied().unwrap_or(0) as f64 / total as f64),
        compressed: r.router.compressed,
        spilled: r.router.spilled,
        utilisation_by_pool: r
            .pools
            .iter()
            .map(|p| (p.id.clone(), p.metrics.utilisation))
            .collect(),
        mean_batch_by_pool: r
            .pools
            .iter()
            .map(|p| (p.id.clone(), p.metrics.mean_batch))
            .collect(),
        p99_ttft_ms_by_pool: r
            .pools
            .iter()
            .map(|p| (p.id.clone(), p.metrics.ttft_ms.p99))
            .collect(),
        ci95: r.replications.as_ref().map(|x| x.ci95.clone()),
    }
}

/// Run `base` once per router spec (all other settings identical).
pub fn compare(
    base: &SimulateJob,
    routers: &[RouterSpec],
    reporter: &dyn crate::progress::Reporter,
) -> anyhow::Result<CompareReport> {
    if routers.is_empty() {
        bail!("no routers to compare");
    }
    let pb = crate::progress::bar(reporter, base.progress, routers.len() as u64, "routers");
    let per_router: Vec<Vec<SimReport>> = routers
        .par_iter()
        .map(|spec| {
            let mut job = base.clone();
            job.cfg.router = spec.clone();
            job.progress = false;
            let reps = run_replications(&job, crate::progress::SILENT);
            if let Some(pb) = &pb {
                pb.inc(1);
            }
            reps
        })
        .collect::<anyhow::Result<_>>()?;
    if let Some(pb) = &pb {
        pb.finish();
    }
    // Streams are identical by construction; a run that stopped early as
    // unstable has simply seen fewer of them.
    let arrivals = per_router
        .iter()
        .map(|r| r[0].requests.arrived)
        .max()
        .unwrap_or(0);
    let closed_loop = base.workload.users.is_some();
    for (spec, reps) in routers.iter().zip(&per_router) {
        if !closed_loop && reps[0].verdict == "stable" && reps[0].requests.arrived != arrivals {
            bail!(
                "router `{}` saw {} arrivals, not {arrivals}: arrival streams differ",
                spec.kind(),
                reps[0].requests.arrived
            );
        }
    }
    let mut comparisons = Vec::new();
    if base.replications >= 2 {
        for i in 0..routers.len() {
            for j in i + 1..routers.len() {
                let d: Option<Vec<f64>> = per_router[i]
                    .iter()
                    .zip(&per_router[j])
                    .map(|(a, b)| Some(a.fleet.ttft_ms.p99? - b.fleet.ttft_ms.p99?))
                    .collect();
                if let Some(d) = d {
                    let (mean, half) = mean_ci95(&d);
                    comparisons.push(PairComparison {
                        a: routers[i].kind().to_string(),
                        b: routers[j].kind().to_string(),
                        p99_ttft_diff_ms: mean,
                        ci95_ms: half,
                        distinguishable: half.map(|h| mean.abs() > h),
                    });
                }
            }
        }
    }
    let workload = per_router[0][0].workload.clone();
    let rows = routers
        .iter()
        .zip(per_router)
        .map(|(spec, reps)| Ok(row(spec, &aggregate(reps)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CompareReport {
        workload,
        arrivals,
        replications: base.replications.max(1),
        pools: base.cfg.pools.iter().map(|p| p.id.clone()).collect(),
        routers: rows,
        comparisons,
    })
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "—".into(),
    }
}

impl HumanReport for CompareReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Workload: {}", self.workload);
        let _ = writeln!(
            s,
            "Arrivals: {} per router (identical streams), replications: {}",
            self.arrivals, self.replications
        );
        let pools = &self.pools;
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        let mut header = vec![
            "router".to_string(),
            "P50 TTFT".into(),
            "P99 TTFT".into(),
            "P99 TPOT".into(),
            "P99 E2E".into(),
            "SLO".into(),
        ];
        header.extend(pools.iter().map(|p| format!("{p} util/batch")));
        header.extend([
            "short %".to_string(),
            "compressed".into(),
            "spilled".into(),
            "rejected".into(),
            "verdict".into(),
        ]);
        t.set_header(header);
        for r in &self.routers {
            let mut cells = vec![
                r.router.clone(),
                ms(r.ttft_ms.p50),
                ms(r.ttft_ms.p99),
                ms(r.tpot_ms.p99),
                ms(r.e2e_ms.p99),
                r.slo
                    .attainment
                    .map(|a| format!("{:.2}%", 100.0 * a))
                    .unwrap_or_else(|| "—".into()),
            ];
            cells.extend(pools.iter().map(|p| {
                let u = r.utilisation_by_pool.get(p).copied().unwrap_or(0.0);
                let b = r.mean_batch_by_pool.get(p).copied().unwrap_or(0.0);
                format!("{:.0}% / {b:.1}", 100.0 * u)
            }));
            cells.push(
                r.frac_short
                    .map(|f| format!("{:.1}%", 100.0 * f))
                    .unwrap_or_else(|| "—".into()),
            );
            cells.push(r.compressed.to_string());
            cells.push(r.spilled.to_string());
            cells.push(r.requests.rejected.to_string());
            cells.push(r.verdict.clone());
            t.add_row(cells);
        }
        let _ = writeln!(s, "{t}");
        let _ = writeln!(
            s,
            "Latencies in ms; SLO: TTFT ≤ {} ms (rejected and unfinished count as misses).",
            self.routers[0].slo.ttft_ms
        );
        for c in &self.comparisons {
            let verdict = match c.distinguishable {
                Some(true) => "distinguishable",
                Some(false) => "NOT statistically distinguishable",
                None => "undetermined",
            };
            let _ = writeln!(
                s,
                "P99 TTFT {} − {}: {:+.1} ms ± {} (paired 95% CI): {verdict}",
                c.a,
                c.b,
                c.p99_ttft_diff_ms,
                c.ci95_ms
                    .map(|h| format!("{h:.1}"))
                    .unwrap_or_else(|| "—".into())
            );
        }
        s
    }
}

impl CsvReport for CompareReport {
    fn csv(&self) -> String {
        let mut s = String::from(
            "router,p50_ttft_ms,p99_ttft_ms,p99_tpot_ms,p99_e2e_ms,slo_attainment,frac_short,compressed,spilled,rejected,verdict\n",
        );
        let f = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        for r in &self.routers {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{}",
                r.router,
                f(r.ttft_ms.p50),
                f(r.ttft_ms.p99),
                f(r.tpot_ms.p99),
                f(r.e2e_ms.p99),
                f(r.slo.attainment),
                f(r.frac_short),
                r.compressed,
                r.spilled,
                r.requests.rejected,
                r.verdict
            );
        }
        s
    }
}
