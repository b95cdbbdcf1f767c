//! SVG charts: concurrency against a p95 time metric, with the points the
//! fit used, the outliers it removed (red crosses), the fitted line and the
//! target as a dashed horizontal line. Points excluded from the fits
//! (interrupted, missing) are not drawn, as in NAT.

use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::prelude::*;

use super::report::SizingReport;
use super::{Metric, fit::FitStatus};

/// File name (without directory) of the chart for a metric.
pub fn file_name(metric: Metric) -> String {
    format!("concurrency_vs_p95_{}.svg", metric.slug())
}

/// Render the chart of one metric as SVG text.
pub fn render_svg(report: &SizingReport, metric: Metric) -> anyhow::Result<String> {
    let result = report.metric(metric);
    let pts: Vec<(f64, f64, bool)> = report
        .rows
        .iter()
        .filter(|r| r.excluded.is_none())
        .filter_map(|r| {
            let c = r.point.concurrency;
            metric
                .p95_s(&r.point)
                .map(|y| (f64::from(c), y, result.fit.outliers_removed.contains(&c)))
        })
        .collect();
    let x_max = pts.iter().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let fit = result.fit.fit;
    let mut y_max = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    if let Some(t) = result.target_s {
        y_max = y_max.max(t);
    }
    if let Some(f) = fit {
        y_max = y_max.max(f.predict_s(x_max)).max(f.intercept_s);
    }
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let y_min = fit.map_or(0.0, |f| f.intercept_s.min(0.0));

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut caption = format!("Concurrency vs p95 {}", metric.label());
        if let Some(f) = fit {
            caption.push_str(&format!(
                " (slope {:.4} s/user, intercept {:.3} s, R² {:.3})",
                f.slope_s_per_user, f.intercept_s, f.r_squared
            ));
        }
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, y_min..y_max)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("concurrency")
            .y_desc(format!(
                "p95 {} (s)",
                metric.label().replace("Workflow", "workflow")
            ))
            .draw()
            .map_err(plot_err)?;

        let used: Vec<(f64, f64)> = pts.iter().filter(|p| !p.2).map(|p| (p.0, p.1)).collect();
        chart
            .draw_series(
                used.iter()
                    .map(|&(x, y)| Circle::new((x, y), 5, BLUE.filled())),
            )
            .map_err(plot_err)?
            .label("measured p95")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, BLUE.filled()));
        let outliers: Vec<(f64, f64)> = pts.iter().filter(|p| p.2).map(|p| (p.0, p.1)).collect();
        if !outliers.is_empty() {
            chart
                .draw_series(
                    outliers
                        .iter()
                        .map(|&(x, y)| Cross::new((x, y), 7, RED.stroke_width(3))),
                )
                .map_err(plot_err)?
                .label("outlier (removed from fit)")
                .legend(|(x, y)| Cross::new((x + 10, y), 6, RED.stroke_width(3)));
        }
        if let Some(f) = fit {
            let (label, color) = match result.fit.status {
                FitStatus::Accepted => ("linear fit", GREEN),
                _ => ("linear fit (rejected)", MAGENTA),
            };
            chart
                .draw_series(LineSeries::new(
                    [(0.0, f.intercept_s), (x_max, f.predict_s(x_max))],
                    color.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
        if let Some(t) = result.target_s {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, t), (x_max, t)],
                    8,
                    6,
                    RED.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(format!("target {t} s"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing chart: {e}")
}

/// Write one SVG per metric into `dir` (created if needed); returns the paths.
pub fn write_plots(report: &SizingReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for metric in Metric::ALL {
        let svg = render_svg(report, metric)?;
        let path = dir.join(file_name(metric));
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::super::{SizingConfig, SweepPoint, analyze};
    use super::*;

    #[test]
    fn golden_latency_chart_marks_the_outlier() {
        let c = [1, 2, 4, 8, 16, 32];
        let llm = [1.14981, 1.3591, 1.50682, 2.10668, 3.30196, 6.57847];
        let points = (0..6)
            .map(|i| SweepPoint {
                concurrency: c[i],
                llm_latency_p95_s: Some(llm[i]),
                workflow_runtime_p95_s: Some(f64::from(c[i]) + 3.0),
                ..Default::default()
            })
            .collect();
        let cfg = SizingConfig::new(8, 100, Some(10.0), Some(2.0)).unwrap();
        let r = analyze(points, &cfg);
        let svg = render_svg(&r, Metric::LlmLatency).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("outlier (removed from fit)"));
        assert!(svg.contains("target 2 s"));
        assert!(svg.contains("linear fit"));
        let wf = render_svg(&r, Metric::WfRuntime).unwrap();
        assert!(!wf.contains("outlier"));
    }

    #[test]
    fn empty_sweep_still_draws() {
        let cfg = SizingConfig::new(8, 100, Some(10.0), None).unwrap();
        let r = analyze(Vec::new(), &cfg);
        assert!(render_svg(&r, Metric::WfRuntime).unwrap().contains("<svg"));
    }
}
