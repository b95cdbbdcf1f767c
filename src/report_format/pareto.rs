//! `pareto`: the frontier table, its CSV and the cost/latency chart (SVG).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::{CsvReport, HumanReport};
use crate::planner::pareto::{ParetoPoint, ParetoReport};

fn row(p: &ParetoPoint) -> Vec<String> {
    if p.fleet.reason.is_some() {
        // The search stopped without a feasible size: counts and cost are meaningless.
        let mut r = vec![
            p.fleet
                .b_short
                .map(|b| b.to_string())
                .unwrap_or_else(|| "homo".into()),
            p.alpha_short
                .map(|a| format!("{:.1}%", 100.0 * a))
                .unwrap_or_else(|| "—".into()),
            "infeasible".into(),
        ];
        r.extend(["—", "—", "—"].map(String::from));
        r.push(super::optimize::p99_cell(&p.fleet));
        r.extend(["✗".to_string(), String::new()]);
        return r;
    }
    vec![
        p.fleet
            .b_short
            .map(|b| b.to_string())
            .unwrap_or_else(|| "homo".into()),
        p.alpha_short
            .map(|a| format!("{:.1}%", 100.0 * a))
            .unwrap_or_else(|| "—".into()),
        p.fleet
            .pools
            .iter()
            .map(|c| c.instances.to_string())
            .collect::<Vec<_>>()
            .join(" + "),
        p.fleet.cost.gpus.to_string(),
        format!("${:.0}K", p.fleet.cost.per_year_usd / 1e3),
        p.saving_vs_baseline
            .map(|s| format!("{:+.1}%", 100.0 * s))
            .unwrap_or_else(|| "—".into()),
        super::optimize::p99_cell(&p.fleet),
        p.fleet.slo_cell(),
        if p.pareto {
            "★".into()
        } else {
            String::new()
        },
    ]
}

impl HumanReport for ParetoReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "B_short",
            "α-short",
            "instances (short + long)",
            "GPUs",
            "$/yr",
            "saving",
            "P99 TTFT ms (short / long)",
            "SLO",
            "Pareto",
        ]);
        t.add_row(row(&self.baseline));
        for p in &self.points {
            t.add_row(row(p));
        }
        let _ = writeln!(s, "{t}");
        let _ = writeln!(
            s,
            "Every fleet is DES-minimal for P99 TTFT ≤ {} ms in each pool. Recommendation: {}",
            self.slo_ttft_ms, self.recommendation
        );
        if self.thresholds_given > self.points.len() {
            let merged: Vec<String> = self
                .points
                .iter()
                .filter_map(|p| p.merged.as_ref())
                .filter(|m| m.count > 1)
                .map(|m| format!("{}–{} → {}", m.from_tok, m.to_tok, m.to_tok))
                .collect();
            let _ = writeln!(
                s,
                "Note: {} CDF thresholds thinned to {} (at most {}, evenly spaced in α-short); merged: {}",
                self.thresholds_given,
                self.points.len(),
                crate::planner::pareto::MAX_THRESHOLDS,
                merged.join(", ")
            );
        }
        for p in std::iter::once(&self.baseline).chain(&self.points) {
            if let Some(r) = &p.fleet.reason {
                let _ = writeln!(
                    s,
                    "  {}: {r}",
                    p.fleet
                        .b_short
                        .map(|b| format!("B={b}"))
                        .unwrap_or_else(|| "homogeneous".into())
                );
            }
        }
        s
    }
}

impl CsvReport for ParetoReport {
    fn csv(&self) -> String {
        let mut s = String::from(
            "b_short,alpha_short,instances,gpus,cost_per_year_usd,saving_vs_baseline,worst_p99_ttft_ms,slo_met,pareto\n",
        );
        let f = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        for p in std::iter::once(&self.baseline).chain(&self.points) {
            let _ = writeln!(
                s,
                "{},{},{},{},{:.2},{},{},{},{}",
                p.fleet
                    .b_short
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "homo".into()),
                f(p.alpha_short),
                p.fleet
                    .pools
                    .iter()
                    .map(|c| c.instances.to_string())
                    .collect::<Vec<_>>()
                    .join("+"),
                p.fleet.cost.gpus,
                p.fleet.cost.per_year_usd,
                f(p.saving_vs_baseline),
                f(p.worst_p99_ttft_ms),
                p.fleet.slo_met,
                p.pareto
            );
        }
        s
    }
}

pub(super) fn plot(r: &ParetoReport, path: &Path) -> anyhow::Result<()> {
    let all: Vec<&ParetoPoint> = std::iter::once(&r.baseline)
        .chain(&r.points)
        .filter(|p| p.worst_p99_ttft_ms.is_some_and(f64::is_finite) && p.fleet.reason.is_none()) // infeasible points have no meaningful cost
        .collect();
    let max_cost = all
        .iter()
        .map(|p| p.fleet.cost.per_year_usd / 1e3)
        .fold(1.0, f64::max)
        * 1.1;
    let max_p99 = all
        .iter()
        .filter_map(|p| p.worst_p99_ttft_ms)
        .fold(r.slo_ttft_ms, f64::max)
        * 1.1;
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Fleet cost vs worst-pool P99 TTFT (DES-minimal fleets)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_cost, 0.0..max_p99)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("cost ($K / year)")
        .y_desc("worst-pool P99 TTFT (ms)")
        .draw()
        .map_err(|x| e(&x))?;
    let slo = r.slo_ttft_ms;
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, slo), (max_cost, slo)],
            RED.stroke_width(2),
        ))
        .map_err(|x| e(&x))?
        .label(format!("SLO {slo} ms"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    let pt = |p: &ParetoPoint| {
        (
            p.fleet.cost.per_year_usd / 1e3,
            p.worst_p99_ttft_ms.unwrap_or(0.0),
        )
    };
    chart
        .draw_series(
            all.iter()
                .filter(|p| !p.pareto)
                .map(|p| Circle::new(pt(p), 5, BLUE.mix(0.5).filled())),
        )
        .map_err(|x| e(&x))?
        .label("threshold B")
        .legend(|(x, y)| Circle::new((x + 10, y), 5, BLUE.mix(0.5).filled()));
    let mut frontier: Vec<(f64, f64)> = all.iter().filter(|p| p.pareto).map(|p| pt(p)).collect();
    frontier.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(frontier.clone(), GREEN.stroke_width(2)))
        .map_err(|x| e(&x))?
        .label("Pareto frontier")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN.stroke_width(2)));
    chart
        .draw_series(frontier.iter().map(|&p| Circle::new(p, 6, GREEN.filled())))
        .map_err(|x| e(&x))?;
    for p in &all {
        let label = p
            .fleet
            .b_short
            .map(|b| b.to_string())
            .unwrap_or_else(|| "homo".into());
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (pt(p).0, pt(p).1),
                ("sans-serif", 12),
            )))
            .map_err(|x| e(&x))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
