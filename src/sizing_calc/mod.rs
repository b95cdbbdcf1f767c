//! NAT-compatible sizing calculator: from a sweep of measured (or, later,
//! simulated) concurrency levels to a GPU count for a target user load.
//!
//! The pipeline is deliberately split so that any producer of a sweep can
//! feed it:
//!
//! 1. [`input`] reads NAT `calc_runner_output.json` files, NAT job
//!    directories or a CSV into a plain `Vec<SweepPoint>`.
//! 2. [`analyze`] takes that vector and a validated [`SizingConfig`], fits
//!    each time metric against concurrency ([`fit`]) and turns the fits into
//!    GPU estimates ([`estimate`]).
//! 3. [`report`] holds the result; [`nat_json`] serialises it in NAT's
//!    schema plus a `kvfleet` section, [`table`] renders the human table
//!    and CSV, and [`plot`] draws SVG charts.

pub mod csv_input;
pub mod estimate;
pub mod fit;
pub mod input;
pub mod nat_json;
pub mod plot;
pub mod report;
pub mod simulate;
pub mod simulated_report;
pub mod table;

use crate::error::InputError;

pub use fit::FitConfig;
pub use report::SizingReport;

/// Per-item (per dataset entry) timings at one concurrency level.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemMetrics {
    /// The dataset entry id (NAT's `per_item_metrics` key).
    pub id: String,
    /// LLM latency of this item, seconds.
    pub llm_latency_s: f64,
    /// Workflow runtime of this item, seconds.
    pub workflow_runtime_s: f64,
}

/// One concurrency level of a sweep: the input of the calculator.
///
/// A p95 that is `None` (or zero) means "not measured"; such a point is
/// excluded from the fits, as NAT does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SweepPoint {
    /// Number of concurrent users (workflow runs in flight).
    pub concurrency: u32,
    /// 95th percentile LLM latency, seconds.
    pub llm_latency_p95_s: Option<f64>,
    /// 95th percentile workflow runtime, seconds.
    pub workflow_runtime_p95_s: Option<f64>,
    /// Time to process the whole dataset at this concurrency, seconds.
    pub total_runtime_s: Option<f64>,
    /// The run at this concurrency was cut short by a failure.
    pub workflow_interrupted: bool,
    /// Per-item timings, when the source has them (NAT JSON).
    pub items: Vec<ItemMetrics>,
}

/// The two time metrics the calculator fits against concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// p95 LLM latency.
    LlmLatency,
    /// p95 workflow runtime.
    WfRuntime,
}

impl Metric {
    /// Both metrics, in report order.
    pub const ALL: [Metric; 2] = [Metric::WfRuntime, Metric::LlmLatency];

    /// Human label.
    pub fn label(self) -> &'static str {
        match self {
            Metric::LlmLatency => "LLM latency",
            Metric::WfRuntime => "Workflow runtime",
        }
    }

    /// Short file-name-friendly name.
    pub fn slug(self) -> &'static str {
        match self {
            Metric::LlmLatency => "llm_latency",
            Metric::WfRuntime => "wf_runtime",
        }
    }

    /// The p95 of this metric at a sweep point.
    pub fn p95_s(self, point: &SweepPoint) -> Option<f64> {
        match self {
            Metric::LlmLatency => point.llm_latency_p95_s,
            Metric::WfRuntime => point.workflow_runtime_p95_s,
        }
    }

    /// The value of this metric for one item.
    pub fn item_s(self, item: &ItemMetrics) -> f64 {
        match self {
            Metric::LlmLatency => item.llm_latency_s,
            Metric::WfRuntime => item.workflow_runtime_s,
        }
    }
}

/// Validated targets and test parameters of one sizing calculation.
#[derive(Debug, Clone, PartialEq)]
pub struct SizingConfig {
    /// GPUs used while the sweep was measured.
    pub test_gpu_count: u32,
    /// Users the fleet must serve.
    pub target_users: u32,
    /// Target p95 workflow runtime, seconds (`None`: not a target).
    pub target_workflow_runtime_s: Option<f64>,
    /// Target p95 LLM latency, seconds (`None`: not a target).
    pub target_llm_latency_s: Option<f64>,
    /// Fit and outlier-removal parameters.
    pub fit: FitConfig,
}

impl SizingConfig {
    /// Validate raw values. A target of 0 means "not a target" (as in NAT);
    /// at least one target must be set.
    pub fn new(
        test_gpu_count: u32,
        target_users: u32,
        target_workflow_runtime_s: Option<f64>,
        target_llm_latency_s: Option<f64>,
    ) -> Result<Self, InputError> {
        if test_gpu_count == 0 {
            return Err(InputError::field(
                "--test-gpu-count",
                "must be at least 1 (the GPUs the sweep was measured on)",
            ));
        }
        if target_users == 0 {
            return Err(InputError::field("--target-users", "must be at least 1"));
        }
        let wf = check_target("--target-workflow-runtime", target_workflow_runtime_s)?;
        let llm = check_target("--target-llm-latency", target_llm_latency_s)?;
        if wf.is_none() && llm.is_none() {
            return Err(InputError::field(
                "--target-workflow-runtime",
                "give --target-workflow-runtime and/or --target-llm-latency (seconds, > 0)",
            ));
        }
        Ok(SizingConfig {
            test_gpu_count,
            target_users,
            target_workflow_runtime_s: wf,
            target_llm_latency_s: llm,
            fit: FitConfig::default(),
        })
    }

    /// The target of a metric, if it is one.
    pub fn target_s(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::LlmLatency => self.target_llm_latency_s,
            Metric::WfRuntime => self.target_workflow_runtime_s,
        }
    }
}

fn check_target(flag: &str, value: Option<f64>) -> Result<Option<f64>, InputError> {
    match value {
        None => Ok(None),
        Some(v) if !v.is_finite() || v < 0.0 => Err(InputError::field(
            flag,
            format!("expected seconds >= 0 (0 = not a target), got {v}"),
        )),
        Some(0.0) => Ok(None),
        Some(v) => Ok(Some(v)),
    }
}

/// Why a sweep point takes no part in the fits, or `None` if it does.
pub fn exclusion_reason(point: &SweepPoint) -> Option<String> {
    if point.workflow_interrupted {
        return Some("workflow interrupted".to_string());
    }
    let usable = |v: Option<f64>| v.is_some_and(|v| v.is_finite() && v > 0.0);
    match (
        usable(point.llm_latency_p95_s),
        usable(point.workflow_runtime_p95_s),
    ) {
        (true, true) => None,
        (false, true) => Some("llm_latency_p95 missing or zero".to_string()),
        (true, false) => Some("workflow_runtime_p95 missing or zero".to_string()),
        (false, false) => {
            Some("llm_latency_p95 and workflow_runtime_p95 missing or zero".to_string())
        }
    }
}

/// Run the calculator on a sweep. Points are sorted by concurrency; a
/// repeated concurrency keeps its first occurrence and reports the others as
/// excluded. Never fails: too few points, poor fits and infeasible targets are
/// reported in the result.
pub fn analyze(points: Vec<SweepPoint>, config: &SizingConfig) -> SizingReport {
    report::build(points, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rejects_bad_values() {
        assert!(SizingConfig::new(0, 10, Some(1.0), None).is_err());
        assert!(SizingConfig::new(8, 0, Some(1.0), None).is_err());
        assert!(SizingConfig::new(8, 10, None, None).is_err());
        assert!(SizingConfig::new(8, 10, Some(0.0), Some(0.0)).is_err());
        assert!(SizingConfig::new(8, 10, Some(-1.0), None).is_err());
        assert!(SizingConfig::new(8, 10, Some(f64::NAN), None).is_err());
        let c = SizingConfig::new(8, 10, Some(0.0), Some(2.0)).unwrap();
        assert_eq!(c.target_workflow_runtime_s, None);
        assert_eq!(c.target_llm_latency_s, Some(2.0));
    }

    #[test]
    fn exclusion_reasons() {
        let ok = SweepPoint {
            concurrency: 1,
            llm_latency_p95_s: Some(1.0),
            workflow_runtime_p95_s: Some(2.0),
            ..Default::default()
        };
        assert_eq!(exclusion_reason(&ok), None);
        let interrupted = SweepPoint {
            workflow_interrupted: true,
            ..ok.clone()
        };
        assert_eq!(
            exclusion_reason(&interrupted).as_deref(),
            Some("workflow interrupted")
        );
        let zero = SweepPoint {
            llm_latency_p95_s: Some(0.0),
            ..ok.clone()
        };
        assert!(exclusion_reason(&zero).unwrap().contains("llm_latency_p95"));
        let missing = SweepPoint {
            workflow_runtime_p95_s: None,
            ..ok
        };
        assert!(
            exclusion_reason(&missing)
                .unwrap()
                .contains("workflow_runtime_p95")
        );
    }
}
