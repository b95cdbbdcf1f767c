//! JSON form of a [`SizingReport`]: NAT's `CalcRunnerOutput` schema
//! (`gpu_estimates`, `fit_results`, `calc_data`) so NAT tooling can read it,
//! plus one extra top-level object, `kvfleet`, with what NAT's schema has no
//! room for (targets, reasons, rejected fits, the recommendation, sources).
//!
//! NAT conventions kept: a missing p95 or total runtime is written as `0.0`;
//! a fit that is not accepted is `null` in `fit_results`; item counts are `0`
//! when there is no per-item data.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use super::estimate::SlopeEstimate;
use super::fit::{FitOutcome, FitStatus};
use super::report::{ConcurrencyRow, MetricResult, SizingReport};
use super::{Metric, SweepPoint};

#[derive(Serialize)]
struct GpuEstimates {
    gpu_estimate_by_wf_runtime: Option<f64>,
    gpu_estimate_by_llm_latency: Option<f64>,
}

#[derive(Serialize)]
struct NatFit<'a> {
    slope: f64,
    intercept: f64,
    r_squared: f64,
    outliers_removed: &'a [u32],
}

#[derive(Serialize)]
struct FitResults<'a> {
    llm_latency_fit: Option<NatFit<'a>>,
    wf_runtime_fit: Option<NatFit<'a>>,
}

#[derive(Serialize)]
struct CalcAlerts {
    outlier_workflow_runtime: bool,
    outlier_llm_latency: bool,
    num_items_greater_than_target_latency: u32,
    num_items_greater_than_target_runtime: u32,
}

#[derive(Serialize)]
struct SizingMetricsAlerts {
    workflow_interrupted: bool,
}

#[derive(Serialize)]
struct PerItem {
    llm_latency: f64,
    workflow_runtime: f64,
}

#[derive(Serialize)]
struct SizingMetrics<'a> {
    alerts: SizingMetricsAlerts,
    llm_latency_p95: f64,
    workflow_runtime_p95: f64,
    total_runtime: f64,
    per_item_metrics: BTreeMap<&'a str, PerItem>,
}

#[derive(Serialize)]
struct CalcData<'a> {
    gpu_estimates: GpuEstimates,
    alerts: CalcAlerts,
    sizing_metrics: SizingMetrics<'a>,
}

#[derive(Serialize)]
struct Targets {
    target_users: u32,
    test_gpu_count: u32,
    target_workflow_runtime_s: Option<f64>,
    target_llm_latency_s: Option<f64>,
}

#[derive(Serialize)]
struct KvFit<'a> {
    status: FitStatus,
    slope_s_per_user: Option<f64>,
    intercept_s: Option<f64>,
    r_squared: Option<f64>,
    outliers_removed: &'a [u32],
    points_used: &'a [u32],
    reason: Option<&'a str>,
}

#[derive(Serialize)]
struct KvMetric<'a> {
    target_s: Option<f64>,
    fit: KvFit<'a>,
    estimate: Option<&'a SlopeEstimate>,
}

#[derive(Serialize)]
struct KvRecommendation<'a> {
    gpu_count: Option<f64>,
    gpu_count_whole: Option<u64>,
    limited_by: Option<Metric>,
    reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Excluded<'a> {
    concurrency: u32,
    reason: &'a str,
}

#[derive(Serialize)]
struct KvSection<'a> {
    targets: Targets,
    recommendation: KvRecommendation<'a>,
    metrics: BTreeMap<&'static str, KvMetric<'a>>,
    excluded: Vec<Excluded<'a>>,
    sources: &'a BTreeMap<u32, String>,
    notes: &'a [String],
}

#[derive(Serialize)]
struct Document<'a> {
    gpu_estimates: GpuEstimates,
    fit_results: FitResults<'a>,
    calc_data: BTreeMap<u32, CalcData<'a>>,
    kvfleet: KvSection<'a>,
}

fn nat_fit(outcome: &FitOutcome) -> Option<NatFit<'_>> {
    match (outcome.status, outcome.fit) {
        (FitStatus::Accepted, Some(f)) => Some(NatFit {
            slope: f.slope_s_per_user,
            intercept: f.intercept_s,
            r_squared: f.r_squared,
            outliers_removed: &outcome.outliers_removed,
        }),
        _ => None,
    }
}

fn kv_metric(m: &MetricResult) -> KvMetric<'_> {
    KvMetric {
        target_s: m.target_s,
        fit: KvFit {
            status: m.fit.status,
            slope_s_per_user: m.fit.fit.map(|f| f.slope_s_per_user),
            intercept_s: m.fit.fit.map(|f| f.intercept_s),
            r_squared: m.fit.fit.map(|f| f.r_squared),
            outliers_removed: &m.fit.outliers_removed,
            points_used: &m.fit.points_used,
            reason: m.fit.reason.as_deref(),
        },
        estimate: m.estimate.as_ref(),
    }
}

fn sizing_metrics(p: &SweepPoint) -> SizingMetrics<'_> {
    SizingMetrics {
        alerts: SizingMetricsAlerts {
            workflow_interrupted: p.workflow_interrupted,
        },
        llm_latency_p95: p.llm_latency_p95_s.unwrap_or(0.0),
        workflow_runtime_p95: p.workflow_runtime_p95_s.unwrap_or(0.0),
        total_runtime: p.total_runtime_s.unwrap_or(0.0),
        per_item_metrics: p
            .items
            .iter()
            .map(|i| {
                (
                    i.id.as_str(),
                    PerItem {
                        llm_latency: i.llm_latency_s,
                        workflow_runtime: i.workflow_runtime_s,
                    },
                )
            })
            .collect(),
    }
}

fn calc_data(row: &ConcurrencyRow) -> CalcData<'_> {
    CalcData {
        gpu_estimates: GpuEstimates {
            gpu_estimate_by_wf_runtime: row.rough.by_wf_runtime,
            gpu_estimate_by_llm_latency: row.rough.by_llm_latency,
        },
        alerts: CalcAlerts {
            outlier_workflow_runtime: row.outlier_wf_runtime,
            outlier_llm_latency: row.outlier_llm_latency,
            num_items_greater_than_target_latency: row.items_over_target_latency.unwrap_or(0),
            num_items_greater_than_target_runtime: row.items_over_target_runtime.unwrap_or(0),
        },
        sizing_metrics: sizing_metrics(&row.point),
    }
}

impl Serialize for SizingReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let est = |m: Metric| {
            self.metric(m)
                .estimate
                .as_ref()
                .and_then(SlopeEstimate::gpu_count)
        };
        let rec = &self.recommendation;
        let doc = Document {
            gpu_estimates: GpuEstimates {
                gpu_estimate_by_wf_runtime: est(Metric::WfRuntime),
                gpu_estimate_by_llm_latency: est(Metric::LlmLatency),
            },
            fit_results: FitResults {
                llm_latency_fit: nat_fit(&self.metric(Metric::LlmLatency).fit),
                wf_runtime_fit: nat_fit(&self.metric(Metric::WfRuntime).fit),
            },
            calc_data: self
                .rows
                .iter()
                .map(|r| (r.point.concurrency, calc_data(r)))
                .collect(),
            kvfleet: KvSection {
                targets: Targets {
                    target_users: self.config.target_users,
                    test_gpu_count: self.config.test_gpu_count,
                    target_workflow_runtime_s: self.config.target_workflow_runtime_s,
                    target_llm_latency_s: self.config.target_llm_latency_s,
                },
                recommendation: KvRecommendation {
                    gpu_count: rec.gpu_count,
                    gpu_count_whole: rec.gpu_count.map(|g| g.ceil() as u64),
                    limited_by: rec.limited_by,
                    reason: rec.reason.as_deref(),
                },
                metrics: self
                    .metrics
                    .iter()
                    .map(|m| (m.metric.slug(), kv_metric(m)))
                    .collect(),
                excluded: self
                    .rows
                    .iter()
                    .filter_map(|r| {
                        r.excluded.as_deref().map(|reason| Excluded {
                            concurrency: r.point.concurrency,
                            reason,
                        })
                    })
                    .collect(),
                sources: &self.sources,
                notes: &self.notes,
            },
        };
        doc.serialize(serializer)
    }
}
