//! `grid-flex`: curtailment levels as a table, CSV and chart (SVG).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;

use super::{CsvReport, HumanReport};
use crate::planner::gridflex::GridFlexReport;

/// A chart series: legend, colour, points.
type NamedSeries = (&'static str, RGBColor, Vec<(f64, f64)>);

/// P99 TTFT (log scale, left) and fleet power (right) against flex depth:
/// the analytic sustained P99, the DES event and after-event P99, the SLO,
/// the fleet's power budget at each cap and the power it drew in the event.
pub(super) fn plot(r: &GridFlexReport, path: &Path) -> anyhow::Result<()> {
    let e = |x: &dyn std::fmt::Display| anyhow::anyhow!("{x}");
    let max_pct = r.levels.iter().map(|l| l.flex_pct).fold(1.0, f64::max) * 1.05;
    let latencies = r.levels.iter().flat_map(|l| {
        [
            l.analytic.p99_ttft_ms.filter(|_| l.analytic.stable),
            l.des.event_p99_ttft_ms,
            l.des.after_p99_ttft_ms,
        ]
    });
    let finite: Vec<f64> = latencies
        .flatten()
        .filter(|x| x.is_finite() && *x > 0.0)
        .chain(std::iter::once(r.slo_ttft_ms))
        .collect();
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min) / 2.0;
    let hi = finite.iter().copied().fold(0.0, f64::max) * 2.0;
    let max_kw = r
        .levels
        .iter()
        .map(|l| l.fleet_kw.max(l.des.event_avg_kw.unwrap_or(0.0)))
        .fold(1.0, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Grid flex: {} GPUs, {} s event — P99 TTFT and power by depth",
                r.gpus, r.event_s[1]
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0.0..max_pct, (lo.max(1e-3)..hi).log_scale())
        .map_err(|x| e(&x))?
        .set_secondary_coord(0.0..max_pct, 0.0..max_kw);
    chart
        .configure_mesh()
        .x_desc("flex depth (% of full-batch power per GPU)")
        .y_desc("P99 TTFT (ms, log)")
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .configure_secondary_axes()
        .y_desc("fleet power (kW)")
        .draw()
        .map_err(|x| e(&x))?;
    let slo = r.slo_ttft_ms;
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, slo), (max_pct, slo)],
            RED.stroke_width(2),
        ))
        .map_err(|x| e(&x))?
        .label(format!("SLO {slo} ms"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    let series: [NamedSeries; 3] = [
        (
            "analytic P99, sustained",
            BLUE,
            r.levels
                .iter()
                .filter(|l| l.analytic.stable)
                .filter_map(|l| l.analytic.p99_ttft_ms.map(|p| (l.flex_pct, p)))
                .collect(),
        ),
        (
            "DES P99, event arrivals",
            MAGENTA,
            r.levels
                .iter()
                .filter_map(|l| l.des.event_p99_ttft_ms.map(|p| (l.flex_pct, p)))
                .collect(),
        ),
        (
            "DES P99, after the event",
            CYAN,
            r.levels
                .iter()
                .filter_map(|l| l.des.after_p99_ttft_ms.map(|p| (l.flex_pct, p)))
                .collect(),
        ),
    ];
    for (name, color, pts) in series {
        let pts: Vec<(f64, f64)> = pts.into_iter().filter(|p| p.1 > 0.0).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|x| e(&x))?;
    }
    let kw: [NamedSeries; 2] = [
        (
            "power budget at the cap (kW)",
            BLACK,
            r.levels.iter().map(|l| (l.flex_pct, l.fleet_kw)).collect(),
        ),
        (
            "measured power in the event (kW)",
            GREEN,
            r.levels
                .iter()
                .filter_map(|l| l.des.event_avg_kw.map(|kw| (l.flex_pct, kw)))
                .collect(),
        ),
    ];
    for (name, color, pts) in kw {
        let style = ShapeStyle::from(&color.mix(0.7)).stroke_width(2);
        chart
            .draw_secondary_series(LineSeries::new(pts, style))
            .map_err(|x| e(&x))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.1}"),
        _ => "∞".into(),
    }
}

/// A DES window's P99 cell: "no arrivals" when nothing arrived in it.
fn window_ms(des: &crate::planner::gridflex::FlexDes, arrivals: u64, v: Option<f64>) -> String {
    if des.not_simulated.is_some() || des.breach_decided_at_s.is_some() {
        "—".into()
    } else if arrivals == 0 {
        "no arrivals".into()
    } else {
        ms(v)
    }
}

impl HumanReport for GridFlexReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Grid flexibility: {} instances ({} GPUs), SLO P99 TTFT ≤ {} ms, event at t = {:.1} s for {:.1} s",
            self.instances, self.gpus, self.slo_ttft_ms, self.event_s[0], self.event_s[1]
        );
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "flex",
            "n_max",
            "W/GPU",
            "fleet kW (cap)",
            "analytic P99 (sustained)",
            "event P99",
            "after P99 (window)",
            "event kW",
            "recovery",
            "saved kWh",
            "SLO",
        ]);
        for l in &self.levels {
            t.add_row(vec![
                format!("{:.0}%", l.flex_pct),
                l.n_max.to_string(),
                format!("{:.0}", l.power_per_gpu_w),
                format!("{:.1}", l.fleet_kw),
                if l.analytic.stable {
                    format!(
                        "{}{}",
                        ms(l.analytic.p99_ttft_ms),
                        if l.analytic.disagrees { " !" } else { "" }
                    )
                } else {
                    "unstable".into()
                },
                match l.des.breach_decided_at_s {
                    Some(t) => format!("> {} (at +{:.0} s)", self.slo_ttft_ms, t - self.event_s[0]),
                    None => window_ms(&l.des, l.des.event_arrivals, l.des.event_p99_ttft_ms),
                },
                match (
                    window_ms(&l.des, l.des.after_arrivals, l.des.after_p99_ttft_ms),
                    l.des.after_window_s,
                ) {
                    (p, Some(w)) => format!("{p} ({w:.0} s)"),
                    (p, None) => p,
                },
                l.des
                    .event_avg_kw
                    .map(|kw| format!("{kw:.1}"))
                    .unwrap_or_else(|| "—".into()),
                l.des
                    .recovery_s
                    .map(|r| format!("{r:.0} s"))
                    .unwrap_or_else(|| "—".into()),
                l.des
                    .energy_saved_kwh
                    .map(|kwh| format!("{kwh:.2}"))
                    .unwrap_or_else(|| "—".into()),
                match l.des.verdict.as_str() {
                    "ok" => "OK".into(),
                    "no-arrivals" => "no arrivals".into(),
                    "not-simulated" => "not simulated".into(),
                    _ => "BREACH".into(),
                },
            ]);
        }
        let _ = writeln!(s, "{t}");
        let pct = |v: Option<f64>| {
            v.map(|x| format!("{x:.0}%"))
                .unwrap_or_else(|| "none".into())
        };
        let _ = writeln!(
            s,
            "Max safe flex depth: sustained {} (analytic steady state), event of {:.1} s {} (DES: event and after-event P99 within SLO)",
            pct(self.max_safe_flex_pct.sustained),
            self.event_s[1],
            pct(self.max_safe_flex_pct.event)
        );
        let _ = writeln!(
            s,
            "after window: {}",
            if self.after_ends_at_recovery {
                format!(
                    "from the event's end until {:.0} s after recovery (the waiting queue back at its pre-event level), at most {:.0} s; --full-after-window simulates all {:.0} s",
                    crate::planner::gridflex::RECOVERY_MARGIN_S,
                    self.after_s,
                    self.after_s
                )
            } else {
                format!("{:.0} s from the event's end", self.after_s)
            }
        );
        if self.levels.iter().any(|l| l.des.not_simulated.is_some()) {
            let _ = writeln!(
                s,
                "not simulated: deeper than a depth that breached the SLO in the DES (the answer was decided); --all-depths simulates every depth"
            );
        }
        if self
            .levels
            .iter()
            .any(|l| l.des.breach_decided_at_s.is_some())
        {
            let _ = writeln!(
                s,
                "`> {} (at +N s)`: the run stopped N s into the event, once more than 1% of the event's arrivals had been served above the SLO or rejected (its P99 breach certain; after-event P99, recovery and energy not measured); --all-depths measures every depth to the end",
                self.slo_ttft_ms
            );
        }
        if self.levels.iter().any(|l| l.analytic.disagrees) {
            let _ = writeln!(
                s,
                "`!`: the cross-check and the DES event's P99 differ by more than the validated ±{:.0}% band",
                100.0 * crate::planner::screen::P99_BAND
            );
        }
        s
    }
}

impl CsvReport for GridFlexReport {
    fn csv(&self) -> String {
        let mut s = String::from(
            "flex_pct,n_max,power_per_gpu_w,fleet_kw,analytic_p99_ttft_ms,analytic_stable,event_p99_ttft_ms,after_p99_ttft_ms,after_window_s,event_avg_kw,recovery_s,energy_saved_kwh,slo_met,breach_decided_at_s\n",
        );
        let f = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        for l in &self.levels {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                l.flex_pct,
                l.n_max,
                l.power_per_gpu_w,
                l.fleet_kw,
                f(l.analytic.p99_ttft_ms),
                l.analytic.stable,
                f(l.des.event_p99_ttft_ms),
                f(l.des.after_p99_ttft_ms),
                f(l.des.after_window_s),
                f(l.des.event_avg_kw),
                f(l.des.recovery_s),
                f(l.des.energy_saved_kwh),
                l.des.slo_met,
                f(l.des.breach_decided_at_s)
            );
        }
        s
    }
}
