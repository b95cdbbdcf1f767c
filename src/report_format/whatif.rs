//! `whatif`: fleet size per arrival rate as a table, CSV and chart (SVG).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::{CsvReport, HumanReport};
use crate::planner::whatif::WhatifReport;

pub(super) fn plot(r: &WhatifReport, path: &Path) -> anyhow::Result<()> {
    let max_lam = r.points.iter().map(|p| p.lam).fold(0.0, f64::max) * 1.05;
    let max_gpu = r
        .points
        .iter()
        .map(|p| p.fleet.cost.gpus)
        .max()
        .unwrap_or(1) as f64
        * 1.1
        + 1.0;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "GPUs needed for P99 TTFT ≤ {} ms (DES-verified)",
                r.slo_ttft_ms
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..max_lam, 0.0..max_gpu)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("arrival rate λ (req/s)")
        .y_desc("GPUs")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut gpus: Vec<&str> = r.points.iter().map(|p| p.gpu()).collect();
    gpus.dedup();
    for (i, g) in gpus.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pts: Vec<(f64, f64)> = r
            .points
            .iter()
            .filter(|p| p.gpu() == *g)
            .map(|p| (p.lam, p.fleet.cost.gpus as f64))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(g.to_string())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

impl HumanReport for WhatifReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "GPU",
            "λ (req/s)",
            "instances",
            "GPUs",
            "$/yr",
            "vs cheapest",
            "P99 TTFT ms",
            "SLO",
            "add GPUs before λ =",
        ]);
        for p in &self.points {
            t.add_row(vec![
                p.gpu().to_string(),
                format!("{}", p.lam),
                p.counts()
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(" + "),
                p.fleet.cost.gpus.to_string(),
                format!("${:.0}K", p.fleet.cost.per_year_usd / 1e3),
                p.cost_vs_cheapest
                    .map(|c| format!("{:+.0}%", 100.0 * c))
                    .unwrap_or_else(|| "—".into()),
                super::optimize::p99_cell(&p.fleet),
                p.fleet.slo_cell(),
                p.max_lam_within_slo
                    .map(|l| format!("{l:.0}"))
                    .unwrap_or_else(|| "—".into()),
            ]);
        }
        let _ = writeln!(s, "{t}");
        let _ = writeln!(
            s,
            "Each fleet is the DES-minimal one for its λ (P99 TTFT ≤ {} ms in every pool); the last column is the rate at which that fleet stops meeting the SLO.",
            self.slo_ttft_ms
        );
        for n in &self.notes {
            let _ = writeln!(s, "Note: {n}");
        }
        s
    }
}

impl CsvReport for WhatifReport {
    fn csv(&self) -> String {
        let mut s = String::from(
            "gpu,lam,b_short,instances,gpus,cost_per_year_usd,cost_vs_cheapest,slo_met,max_lam_within_slo\n",
        );
        for p in &self.points {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{:.2},{},{},{}",
                p.gpu(),
                p.lam,
                p.fleet.b_short.map(|b| b.to_string()).unwrap_or_default(),
                p.counts()
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join("+"),
                p.fleet.cost.gpus,
                p.fleet.cost.per_year_usd,
                p.cost_vs_cheapest
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                p.fleet.slo_met,
                p.max_lam_within_slo
                    .map(|l| l.to_string())
                    .unwrap_or_default()
            );
        }
        s
    }
}
