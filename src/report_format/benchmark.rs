//! `benchmark`: the serving rows as a table and CSV (in `crate::benchmark::report`)
//! and the throughput-per-GPU against interactivity chart (SVG).

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::benchmark::report::BenchmarkReport;

pub(super) fn plot(r: &BenchmarkReport, path: &Path) -> anyhow::Result<()> {
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
    let pts: Vec<(f64, f64)> = r
        .rows
        .iter()
        .filter(|x| x.mean_intvty.is_finite())
        .map(|x| (x.mean_intvty, x.tput_per_gpu))
        .collect();
    let max_x = pts.iter().map(|p| p.0).fold(1.0, f64::max) * 1.1;
    let max_y = pts.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{} — ISL {} / OSL {}", r.deployment, r.isl, r.osl),
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("interactivity (tok/s/user)")
        .y_desc("throughput per GPU (tok/s)")
        .draw()
        .map_err(|x| e(&x))?;
    let color = Palette99::pick(0).to_rgba();
    chart
        .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
        .map_err(|x| e(&x))?
        .label("simulated")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    chart
        .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
        .map_err(|x| e(&x))?;
    if let Some(cmp) = &r.comparison {
        let meas: Vec<(f64, f64)> = cmp
            .iter()
            .filter_map(|c| {
                let get = |f: &str| c.fields.iter().find(|x| x.field == f).map(|x| x.measured);
                Some((get("mean_intvty")?, get("tput_per_gpu")?))
            })
            .collect();
        let mc = Palette99::pick(1).to_rgba();
        chart
            .draw_series(meas.iter().map(|&p| Cross::new(p, 6, mc.stroke_width(2))))
            .map_err(|x| e(&x))?
            .label("measured")
            .legend(move |(x, y)| Cross::new((x + 10, y), 6, mc.stroke_width(2)));
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
