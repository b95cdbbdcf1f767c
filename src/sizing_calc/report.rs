//! The result of a sizing calculation, built from a plain sweep.
//! Rendering lives in [`super::nat_json`] (JSON) and [`super::table`]
//! (human table, CSV).

use std::collections::BTreeMap;

use super::estimate::{
    RoughEstimates, SlopeEstimate, items_over_target, rough_estimate, slope_estimate,
};
use super::fit::{FitOutcome, fit_metric};
use super::{Metric, SizingConfig, SweepPoint, exclusion_reason};

/// One concurrency level with everything the calculator derived for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConcurrencyRow {
    /// The measurements.
    pub point: SweepPoint,
    /// Why the point takes no part in the fits (interrupted, missing p95).
    pub excluded: Option<String>,
    /// Removed as an outlier by the LLM-latency fit.
    pub outlier_llm_latency: bool,
    /// Removed as an outlier by the workflow-runtime fit.
    pub outlier_wf_runtime: bool,
    /// Items over the LLM-latency target (`None`: no target or no per-item data).
    pub items_over_target_latency: Option<u32>,
    /// Items over the workflow-runtime target (`None`: no target or no per-item data).
    pub items_over_target_runtime: Option<u32>,
    /// Rough single-concurrency GPU estimates (informational).
    pub rough: RoughEstimates,
}

/// Fit and estimate for one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricResult {
    /// Which metric.
    pub metric: Metric,
    /// The target for this metric, seconds, if it is one.
    pub target_s: Option<f64>,
    /// The fit (always attempted, as NAT does, even without a target).
    pub fit: FitOutcome,
    /// The slope-based estimate, when the metric has a target.
    pub estimate: Option<SlopeEstimate>,
}

/// The final answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// The larger of the GPU estimates of all targets, when every target has one.
    pub gpu_count: Option<f64>,
    /// The metric whose estimate is the larger one.
    pub limited_by: Option<Metric>,
    /// Why there is no recommendation.
    pub reason: Option<String>,
}

/// A complete sizing calculation.
#[derive(Debug, Clone, PartialEq)]
pub struct SizingReport {
    /// Targets and test parameters.
    pub config: SizingConfig,
    /// Per-concurrency rows, ascending concurrency, unique.
    pub rows: Vec<ConcurrencyRow>,
    /// Workflow runtime first, then LLM latency.
    pub metrics: Vec<MetricResult>,
    /// The GPU count to plan for.
    pub recommendation: Recommendation,
    /// Where each concurrency's measurements came from (file paths), if known.
    pub sources: BTreeMap<u32, String>,
    /// Remarks about the input (e.g. dropped duplicates).
    pub notes: Vec<String>,
}

impl SizingReport {
    /// The result for a metric.
    pub fn metric(&self, metric: Metric) -> &MetricResult {
        self.metrics
            .iter()
            .find(|m| m.metric == metric)
            .expect("both metrics are always present")
    }
}

/// Build the report (see [`super::analyze`]).
pub fn build(mut points: Vec<SweepPoint>, config: &SizingConfig) -> SizingReport {
    points.sort_by_key(|p| p.concurrency);
    let mut notes = Vec::new();
    let mut rows: Vec<ConcurrencyRow> = Vec::with_capacity(points.len());
    for point in points {
        if rows
            .last()
            .is_some_and(|r| r.point.concurrency == point.concurrency)
        {
            notes.push(format!(
                "concurrency {} appears more than once; the first occurrence is used",
                point.concurrency
            ));
            continue;
        }
        rows.push(ConcurrencyRow {
            excluded: exclusion_reason(&point),
            point,
            outlier_llm_latency: false,
            outlier_wf_runtime: false,
            items_over_target_latency: None,
            items_over_target_runtime: None,
            rough: RoughEstimates::default(),
        });
    }

    let mut metrics = Vec::new();
    for metric in Metric::ALL {
        let data: Vec<(u32, f64)> = rows
            .iter()
            .filter(|r| r.excluded.is_none())
            .filter_map(|r| metric.p95_s(&r.point).map(|v| (r.point.concurrency, v)))
            .collect();
        let fit = fit_metric(&data, &config.fit);
        for row in &mut rows {
            if fit.outliers_removed.contains(&row.point.concurrency) {
                match metric {
                    Metric::LlmLatency => row.outlier_llm_latency = true,
                    Metric::WfRuntime => row.outlier_wf_runtime = true,
                }
            }
        }
        let target_s = config.target_s(metric);
        let estimate = target_s
            .map(|t| slope_estimate(metric, &fit, t, config.target_users, config.test_gpu_count));
        metrics.push(MetricResult {
            metric,
            target_s,
            fit,
            estimate,
        });
    }

    for row in rows.iter_mut().filter(|r| r.excluded.is_none()) {
        row.rough = rough_estimate(&row.point, config);
        row.items_over_target_latency = config
            .target_llm_latency_s
            .and_then(|t| items_over_target(&row.point, Metric::LlmLatency, t));
        row.items_over_target_runtime = config
            .target_workflow_runtime_s
            .and_then(|t| items_over_target(&row.point, Metric::WfRuntime, t));
    }

    let recommendation = recommend(&metrics);
    SizingReport {
        config: config.clone(),
        rows,
        metrics,
        recommendation,
        sources: BTreeMap::new(),
        notes,
    }
}

/// The max over the targets' estimates; none if any target lacks one (an
/// unmet target cannot be ignored by taking the max of the others).
fn recommend(metrics: &[MetricResult]) -> Recommendation {
    let mut best: Option<(f64, Metric)> = None;
    let mut problems = Vec::new();
    for m in metrics {
        match &m.estimate {
            None => {}
            Some(SlopeEstimate::Estimate { gpu_count, .. })
                if best.is_none_or(|(g, _)| *gpu_count > g) =>
            {
                best = Some((*gpu_count, m.metric));
            }
            Some(SlopeEstimate::Estimate { .. }) => {}
            Some(SlopeEstimate::Infeasible { reason } | SlopeEstimate::NoFit { reason }) => {
                problems.push(reason.clone());
            }
        }
    }
    match (best, problems.is_empty()) {
        (Some((g, metric)), true) => Recommendation {
            gpu_count: Some(g),
            limited_by: Some(metric),
            reason: None,
        },
        _ => Recommendation {
            gpu_count: None,
            limited_by: None,
            reason: Some(problems.join("; ")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::fit::FitStatus;
    use super::*;

    fn golden_points() -> Vec<SweepPoint> {
        let c = [1, 2, 4, 8, 16, 32];
        let llm = [1.14981, 1.3591, 1.50682, 2.10668, 3.30196, 6.57847];
        let wf = [4.03488, 4.71197, 5.67581, 7.90895, 12.677, 24.5307];
        let total = [8.06977, 9.32298, 11.1683, 15.6193, 25.3173, 43.9806];
        (0..6)
            .map(|i| SweepPoint {
                concurrency: c[i],
                llm_latency_p95_s: Some(llm[i]),
                workflow_runtime_p95_s: Some(wf[i]),
                total_runtime_s: Some(total[i]),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn golden_example_from_seed() {
        let cfg = SizingConfig::new(8, 100, Some(10.0), None).unwrap();
        let r = build(golden_points(), &cfg);
        let wf = r.metric(Metric::WfRuntime);
        let fit = wf.fit.fit.unwrap();
        assert!((fit.slope_s_per_user - 0.6568).abs() < 5e-5);
        assert!((fit.intercept_s - 3.0264).abs() < 5e-5);
        assert!((fit.r_squared - 0.9955).abs() < 5e-5);
        let gpus = wf.estimate.as_ref().unwrap().gpu_count().unwrap();
        assert_eq!(format!("{gpus:.1}"), "75.4");
        assert_eq!(r.recommendation.gpu_count, Some(gpus));
        assert_eq!(r.recommendation.limited_by, Some(Metric::WfRuntime));
        let rough: Vec<Option<f64>> = r.rows.iter().map(|r| r.rough.by_wf_runtime).collect();
        let want = [322.79, 188.479, 113.516, 79.0895];
        for (got, want) in rough.iter().zip(want) {
            assert!((got.unwrap() - want).abs() < 5e-4, "{got:?} vs {want}");
        }
        assert_eq!(rough[4], None);
        assert_eq!(rough[5], None);
        let llm = r.metric(Metric::LlmLatency);
        assert_eq!(llm.fit.status, FitStatus::Accepted);
        assert_eq!(llm.fit.outliers_removed, vec![32]);
        assert!(llm.estimate.is_none());
        assert!(r.rows[5].outlier_llm_latency);
        assert!(!r.rows[5].outlier_wf_runtime);
    }

    #[test]
    fn interrupted_and_missing_points_are_excluded() {
        let mut pts = golden_points();
        pts[2].workflow_interrupted = true;
        pts[3].llm_latency_p95_s = None;
        let cfg = SizingConfig::new(8, 100, Some(10.0), None).unwrap();
        let r = build(pts, &cfg);
        assert_eq!(r.rows[2].excluded.as_deref(), Some("workflow interrupted"));
        assert!(r.rows[3].excluded.is_some());
        assert_eq!(r.rows[2].rough.by_wf_runtime, None);
        let used = &r.metric(Metric::WfRuntime).fit.points_used;
        assert!(!used.contains(&4) && !used.contains(&8));
    }

    #[test]
    fn duplicates_keep_first_and_are_noted() {
        let mut pts = golden_points();
        let mut dup = pts[0].clone();
        dup.workflow_runtime_p95_s = Some(99.0);
        pts.push(dup);
        let cfg = SizingConfig::new(8, 100, Some(10.0), None).unwrap();
        let r = build(pts, &cfg);
        assert_eq!(r.rows.len(), 6);
        assert_eq!(r.rows[0].point.workflow_runtime_p95_s, Some(4.03488));
        assert_eq!(r.notes.len(), 1);
    }

    #[test]
    fn one_infeasible_target_blocks_the_recommendation() {
        // latency target 0.5 s is below the latency intercept ≈ 1.0 s
        let cfg = SizingConfig::new(8, 100, Some(10.0), Some(0.5)).unwrap();
        let r = build(golden_points(), &cfg);
        assert!(
            r.metric(Metric::WfRuntime)
                .estimate
                .as_ref()
                .unwrap()
                .gpu_count()
                .is_some()
        );
        assert!(matches!(
            r.metric(Metric::LlmLatency).estimate,
            Some(SlopeEstimate::Infeasible { .. })
        ));
        assert_eq!(r.recommendation.gpu_count, None);
        assert!(
            r.recommendation
                .reason
                .as_ref()
                .unwrap()
                .contains("intercept")
        );
    }

    #[test]
    fn recommendation_is_the_max_of_both() {
        let cfg = SizingConfig::new(8, 100, Some(10.0), Some(2.0)).unwrap();
        let r = build(golden_points(), &cfg);
        let wf = r
            .metric(Metric::WfRuntime)
            .estimate
            .as_ref()
            .unwrap()
            .gpu_count()
            .unwrap();
        let llm = r
            .metric(Metric::LlmLatency)
            .estimate
            .as_ref()
            .unwrap()
            .gpu_count()
            .unwrap();
        assert_eq!(r.recommendation.gpu_count, Some(wf.max(llm)));
        assert!(llm > wf);
        assert_eq!(r.recommendation.limited_by, Some(Metric::LlmLatency));
    }
}
