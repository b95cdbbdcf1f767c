//! From fits and measurements to GPU counts.
//!
//! Slope-based estimate (the one to use):
//! `concurrency* = (target − intercept) / slope`,
//! `GPUs = target_users / concurrency* × test_gpu_count`.
//!
//! Rough per-concurrency estimate (informational, as in NAT):
//! `GPUs = (target_users / C) · (observed / target) · test_gpu_count`, only at
//! a concurrency whose observed p95 meets every target that is set.

use serde::Serialize;

use super::fit::{FitOutcome, FitStatus};
use super::{Metric, SizingConfig, SweepPoint};

/// The slope-based estimate for one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SlopeEstimate {
    /// The target is reachable.
    Estimate {
        /// Concurrency the test GPUs sustain at exactly the target.
        concurrency_at_target: f64,
        /// GPUs needed for the target users.
        gpu_count: f64,
    },
    /// The fit is fine but no concurrency meets the target.
    Infeasible {
        /// Why, with the numbers.
        reason: String,
    },
    /// There is no usable fit for this metric.
    NoFit {
        /// Why (too few points, poor fit).
        reason: String,
    },
}

impl SlopeEstimate {
    /// The GPU count, if there is one.
    pub fn gpu_count(&self) -> Option<f64> {
        match self {
            SlopeEstimate::Estimate { gpu_count, .. } => Some(*gpu_count),
            _ => None,
        }
    }
}

/// Turn a fit into a GPU estimate for `target_s`.
pub fn slope_estimate(
    metric: Metric,
    outcome: &FitOutcome,
    target_s: f64,
    target_users: u32,
    test_gpu_count: u32,
) -> SlopeEstimate {
    let name = metric.label().to_lowercase();
    let fit = match (outcome.status, outcome.fit) {
        (FitStatus::Accepted, Some(fit)) => fit,
        _ => {
            let why = outcome.reason.clone().unwrap_or_else(|| "no fit".into());
            return SlopeEstimate::NoFit {
                reason: format!("no usable {name} fit: {why}"),
            };
        }
    };
    if fit.slope_s_per_user <= 0.0 {
        return SlopeEstimate::Infeasible {
            reason: format!(
                "infeasible target: fitted {name} slope is {:.4} s/user (<= 0), so the \
                 measurements give no concurrency limit to extrapolate from",
                fit.slope_s_per_user
            ),
        };
    }
    if target_s <= fit.intercept_s {
        return SlopeEstimate::Infeasible {
            reason: format!(
                "infeasible target: {name} target {target_s} s is at or below the fitted \
                 intercept {:.4} s (the time at zero load); no number of GPUs of the \
                 tested kind meets it",
                fit.intercept_s
            ),
        };
    }
    let concurrency = (target_s - fit.intercept_s) / fit.slope_s_per_user;
    SlopeEstimate::Estimate {
        concurrency_at_target: concurrency,
        gpu_count: f64::from(target_users) / concurrency * f64::from(test_gpu_count),
    }
}

/// Rough per-concurrency GPU estimates for both metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RoughEstimates {
    /// By workflow runtime (when that is a target and all targets are met).
    pub by_wf_runtime: Option<f64>,
    /// By LLM latency (when that is a target and all targets are met).
    pub by_llm_latency: Option<f64>,
}

/// The rough estimate at one (valid) concurrency. Following NAT, a
/// concurrency whose p95 exceeds any target that is set gets none at all.
pub fn rough_estimate(point: &SweepPoint, config: &SizingConfig) -> RoughEstimates {
    let mut targets = Vec::new();
    for metric in Metric::ALL {
        if let Some(target) = config.target_s(metric) {
            match metric.p95_s(point) {
                Some(observed) if observed <= target => targets.push((metric, observed, target)),
                _ => return RoughEstimates::default(),
            }
        }
    }
    let mut out = RoughEstimates::default();
    for (metric, observed, target) in targets {
        let gpus = f64::from(config.target_users) / f64::from(point.concurrency)
            * (observed / target)
            * f64::from(config.test_gpu_count);
        match metric {
            Metric::WfRuntime => out.by_wf_runtime = Some(gpus),
            Metric::LlmLatency => out.by_llm_latency = Some(gpus),
        }
    }
    out
}

/// How many items at this concurrency exceed `target_s` for `metric`;
/// `None` when the source has no per-item data.
pub fn items_over_target(point: &SweepPoint, metric: Metric, target_s: f64) -> Option<u32> {
    if point.items.is_empty() {
        return None;
    }
    let n = point
        .items
        .iter()
        .filter(|item| metric.item_s(item) > target_s)
        .count();
    Some(u32::try_from(n).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::super::ItemMetrics;
    use super::super::fit::LinearFit;
    use super::*;

    fn accepted(slope: f64, intercept: f64) -> FitOutcome {
        FitOutcome {
            status: FitStatus::Accepted,
            fit: Some(LinearFit {
                slope_s_per_user: slope,
                intercept_s: intercept,
                r_squared: 0.99,
            }),
            outliers_removed: vec![],
            points_used: vec![1, 2, 3],
            reason: None,
        }
    }

    #[test]
    fn seed_worked_example() {
        // slope 0.6, intercept 3.5, target 10 s, 100 users, 8 GPUs → ≈ 73.9
        let e = slope_estimate(Metric::WfRuntime, &accepted(0.6, 3.5), 10.0, 100, 8);
        let SlopeEstimate::Estimate {
            concurrency_at_target,
            gpu_count,
        } = e
        else {
            panic!("{e:?}")
        };
        assert!((concurrency_at_target - 10.8333).abs() < 1e-3);
        assert!((gpu_count - 73.846).abs() < 1e-3);
    }

    #[test]
    fn target_at_or_below_intercept_is_infeasible() {
        for target in [3.5, 2.0] {
            let e = slope_estimate(Metric::WfRuntime, &accepted(0.6, 3.5), target, 100, 8);
            let SlopeEstimate::Infeasible { reason } = e else {
                panic!("{e:?}")
            };
            assert!(reason.contains("intercept 3.5000"), "{reason}");
        }
    }

    #[test]
    fn non_positive_slope_is_infeasible() {
        for slope in [0.0, -0.2] {
            let e = slope_estimate(Metric::LlmLatency, &accepted(slope, 1.0), 5.0, 100, 8);
            let SlopeEstimate::Infeasible { reason } = e else {
                panic!("{e:?}")
            };
            assert!(reason.contains("slope"), "{reason}");
        }
    }

    #[test]
    fn rejected_fit_gives_no_estimate() {
        let mut poor = accepted(0.6, 3.5);
        poor.status = FitStatus::PoorFit;
        poor.reason = Some("poor linear fit".into());
        let e = slope_estimate(Metric::WfRuntime, &poor, 10.0, 100, 8);
        assert!(matches!(e, SlopeEstimate::NoFit { ref reason } if reason.contains("poor")));
    }

    fn point(c: u32, llm: f64, wf: f64) -> SweepPoint {
        SweepPoint {
            concurrency: c,
            llm_latency_p95_s: Some(llm),
            workflow_runtime_p95_s: Some(wf),
            ..Default::default()
        }
    }

    #[test]
    fn rough_estimate_needs_every_target_met() {
        let cfg = SizingConfig::new(8, 100, Some(10.0), None).unwrap();
        let r = rough_estimate(&point(8, 2.1, 7.90895), &cfg);
        assert!((r.by_wf_runtime.unwrap() - 79.0895).abs() < 1e-9);
        assert_eq!(r.by_llm_latency, None);
        assert_eq!(
            rough_estimate(&point(16, 3.3, 12.677), &cfg),
            RoughEstimates::default()
        );
        let both = SizingConfig::new(8, 100, Some(10.0), Some(2.0)).unwrap();
        // runtime met, latency missed → nothing
        assert_eq!(
            rough_estimate(&point(8, 2.1, 7.9), &both),
            RoughEstimates::default()
        );
        let r = rough_estimate(&point(4, 1.5, 5.0), &both);
        assert!((r.by_wf_runtime.unwrap() - 100.0).abs() < 1e-9);
        assert!((r.by_llm_latency.unwrap() - 150.0).abs() < 1e-9);
    }

    #[test]
    fn counts_items_strictly_over_target() {
        let mut p = point(2, 1.0, 5.0);
        assert_eq!(items_over_target(&p, Metric::WfRuntime, 5.0), None);
        p.items = [(0.5, 4.0), (1.5, 5.0), (2.5, 6.0)]
            .iter()
            .enumerate()
            .map(|(i, &(l, w))| ItemMetrics {
                id: i.to_string(),
                llm_latency_s: l,
                workflow_runtime_s: w,
            })
            .collect();
        assert_eq!(items_over_target(&p, Metric::WfRuntime, 5.0), Some(1));
        assert_eq!(items_over_target(&p, Metric::LlmLatency, 1.0), Some(2));
    }
}
