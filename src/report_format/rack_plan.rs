//! `run` on a deployment scenario and `rack-plan`: per-client latency and
//! throughput tables, the tray map of a design, pool and KV-link loads, the
//! plans and named designs as CSV, and throughput per GPU against
//! interactivity per client (SVG).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::{CsvReport, HumanReport};
use crate::deployment::DeploymentReport;
use crate::deployment::search::RackPlanReport;
use crate::deployment::simulate::DesignResult;

fn design_table(s: &mut String, d: &DesignResult) {
    let _ = writeln!(
        s,
        "design `{}`: {} trays, {} GPUs{}, {:.0} tok/s/GPU, {}",
        d.design,
        d.trays,
        d.gpus,
        if d.fits {
            ""
        } else {
            " (does NOT fit the rack)"
        },
        d.tput_per_gpu,
        if d.meets_all {
            "meets every client's SLO"
        } else {
            "misses an SLO"
        }
    );
    if let Some(n) = &d.note {
        let _ = writeln!(s, "  {n}");
    }
    let _ = writeln!(
        s,
        "  {:<12} {:>10} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>9}",
        "client",
        "load",
        "SLO %",
        "ttft p50",
        "ttft p90",
        "ttft p99",
        "tpot p50",
        "tpot p90",
        "intvty",
        "tok/s",
        "GPUs",
        "tok/s/GPU"
    );
    for c in &d.clients {
        let _ = writeln!(
            s,
            "  {:<12} {:>10} {:>6.1} {:>8.3} {:>8.3} {:>8.3} {:>8.4} {:>8.4} {:>8.1} {:>9.0} {:>6.1} {:>9.0}",
            c.client,
            c.load,
            c.slo_attainment * 100.0,
            c.ttft_p50_s,
            c.ttft_p90_s,
            c.ttft_p99_s,
            c.tpot_p50_s,
            c.tpot_p90_s,
            c.mean_intvty,
            c.total_tok_s,
            c.gpus,
            c.tput_per_gpu
        );
    }
    let _ = writeln!(
        s,
        "  {:<18} {:<10} {:<38} {:>7} {:>5} {:>6} {:>7}  clients",
        "pool", "role", "workers", "trays", "GPUs", "util", "batch"
    );
    for p in &d.pools {
        let _ = writeln!(
            s,
            "  {:<18} {:<10} {:<38} {:>7} {:>5} {:>5.0}% {:>7.1}  {}",
            p.pool,
            p.role.as_str(),
            p.workers,
            format!("{}-{}", p.trays.0, p.trays.1),
            p.gpus,
            p.utilisation * 100.0,
            p.mean_batch,
            p.clients.join(",")
        );
    }
    for l in &d.kv_links {
        let _ = writeln!(
            s,
            "  KV over NVLink ({}): {} transfers on {} links, {:.2} GB/s mean, links busy {:.2}%, transfer p50 {:.2} ms p99 {:.2} ms",
            l.clients.join(","),
            l.transfers,
            l.links,
            l.mean_gb_s,
            l.link_utilisation * 100.0,
            l.transfer_p50_ms,
            l.transfer_p99_ms
        );
    }
}

const FOOT: &str = "(times in seconds; SLO % = requests meeting TTFT and TPOT SLOs; TTFT = prefill queue + prefill + KV transfer + frontend; intvty = 1/mean TPOT, tok/s/user)\n";

impl HumanReport for DeploymentReport {
    fn human(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.description {
            let _ = writeln!(s, "{d}");
        }
        let _ = writeln!(
            s,
            "rack {} ({} GPUs), SLO target {:.0}% of requests, loads ×{}",
            self.rack,
            self.rack_gpus,
            self.slo_target * 100.0,
            self.load_scale
        );
        for d in &self.designs {
            design_table(&mut s, d);
        }
        s.push_str(FOOT);
        s
    }
}

impl HumanReport for RackPlanReport {
    fn human(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.description {
            let _ = writeln!(s, "{d}");
        }
        let _ = writeln!(
            s,
            "rack-plan {} ({} trays, {} GPUs), loads ×{}, SLO target {:.0}%: {} candidates screened, {} passed, {} verified by simulation",
            self.rack,
            self.rack_trays,
            self.rack_gpus,
            self.load_scale,
            self.slo_target * 100.0,
            self.screened,
            self.screen_passed,
            self.verified.len()
        );
        let _ = writeln!(s, "verified candidates:");
        let _ = writeln!(
            s,
            "  {:<12} {:<36} {:<36} {:>5} {:>11} {:>9} {:>8} {:>9}",
            "client", "prefill", "decode", "GPUs", "screen pass", "SLO %", "intvty", "tok/s/GPU"
        );
        for c in &self.verified {
            let v = c.verified.as_ref();
            let _ = writeln!(
                s,
                "  {:<12} {:<36} {:<36} {:>5} {:>11} {:>9.1} {:>8.1} {:>9.0}",
                c.client,
                c.prefill,
                c.decode,
                c.gpus,
                if c.screen.passes { "yes" } else { "no" },
                v.map_or(f64::NAN, |r| r.slo_attainment * 100.0),
                v.map_or(f64::NAN, |r| r.mean_intvty),
                v.map_or(f64::NAN, |r| r.tput_per_gpu)
            );
        }
        let _ = writeln!(
            s,
            "Pareto plans (GPUs, worst-client SLO attainment, throughput per GPU):"
        );
        for p in &self.pareto {
            let _ = writeln!(
                s,
                "  {:>3} GPUs  {:>5.1}%  {:>6.0} tok/s/GPU  {}  {}",
                p.gpus,
                p.min_attainment * 100.0,
                p.tput_per_gpu,
                if p.meets_all { "meets all" } else { "misses  " },
                p.parts.join(" | ")
            );
        }
        match &self.best {
            Some(b) => {
                let _ = writeln!(
                    s,
                    "best plan: {} ({} GPUs, {} of {} trays, {:.0} tok/s/GPU)",
                    b.parts.join(" | "),
                    b.gpus,
                    b.trays,
                    self.rack_trays,
                    b.tput_per_gpu
                );
            }
            None => {
                let _ = writeln!(s, "best plan: none meets every client's SLO");
            }
        }
        if let Some(d) = &self.best_design {
            design_table(&mut s, d);
        }
        for n in &self.named {
            let _ = writeln!(
                s,
                "named design `{}` {}: {}",
                n.result.design,
                n.verdict.to_uppercase(),
                n.reason
            );
            design_table(&mut s, &n.result);
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s.push_str(FOOT);
        s
    }
}

impl CsvReport for RackPlanReport {
    fn csv(&self) -> String {
        let mut s = String::from(
            "kind,name,client,load,gpus,slo_attainment,meets_slo,ttft_p90_s,tpot_p90_s,mean_intvty,total_tok_s,tput_per_gpu\n",
        );
        let row = |s: &mut String,
                   kind: &str,
                   name: &str,
                   c: &crate::deployment::ClientResult,
                   gpus: f64| {
            let _ = writeln!(
                s,
                "{kind},\"{name}\",{},{},{gpus},{},{},{},{},{},{},{}",
                c.client,
                c.load,
                c.slo_attainment,
                c.meets_slo,
                c.ttft_p90_s,
                c.tpot_p90_s,
                c.mean_intvty,
                c.total_tok_s,
                c.tput_per_gpu
            );
        };
        for c in &self.verified {
            if let Some(v) = &c.verified {
                row(
                    &mut s,
                    "candidate",
                    &format!("{} + {}", c.prefill, c.decode),
                    v,
                    c.gpus as f64,
                );
            }
        }
        if let Some(d) = &self.best_design {
            for c in &d.clients {
                row(&mut s, "best", &d.design, c, c.gpus);
            }
        }
        for n in &self.named {
            for c in &n.result.clients {
                row(&mut s, "named", &n.result.design, c, c.gpus);
            }
        }
        s
    }
}

/// A labelled set of (interactivity, tok/s/GPU) points; `true`: drawn large.
type Series = (String, Vec<(f64, f64)>, bool);

pub(super) fn plot(r: &RackPlanReport, path: &Path) -> anyhow::Result<()> {
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
    let n = r.clients.len().max(1);
    let root = SVGBackend::new(path, (520 * n as u32, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let panels = root.split_evenly((1, n));
    for (k, (panel, cl)) in panels.iter().zip(&r.clients).enumerate() {
        // (label, points) series: verified candidates, the best plan, each named design.
        let mut series: Vec<Series> = Vec::new();
        let cand: Vec<(f64, f64)> = r
            .verified
            .iter()
            .filter(|c| c.client == cl.name)
            .filter_map(|c| c.verified.as_ref())
            .map(|v| (v.mean_intvty, v.tput_per_gpu))
            .collect();
        series.push(("verified candidates".into(), cand, false));
        if let Some(d) = &r.best_design {
            let c = &d.clients[k];
            series.push((
                "kvfleet best".into(),
                vec![(c.mean_intvty, c.tput_per_gpu)],
                true,
            ));
        }
        for nd in &r.named {
            let c = &nd.result.clients[k];
            series.push((
                nd.result.design.clone(),
                vec![(c.mean_intvty, c.tput_per_gpu)],
                true,
            ));
        }
        let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
        let all: Vec<(f64, f64)> = series
            .iter()
            .flat_map(|s| s.1.iter().filter(finite).copied())
            .collect();
        let max_x = all.iter().map(|p| p.0).fold(1.0, f64::max) * 1.15;
        let max_y = all.iter().map(|p| p.1).fold(1.0, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!(
                    "{} — ISL {} / OSL {}, {}",
                    cl.name,
                    cl.isl,
                    cl.osl,
                    cl.load.scaled(r.load_scale).label()
                ),
                ("sans-serif", 16),
            )
            .margin(12)
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
        if let Some(t) = cl.tpot_ms {
            let x = 1000.0 / t;
            if x < max_x {
                chart
                    .draw_series(LineSeries::new(
                        [(x, 0.0), (x, max_y)],
                        BLACK.mix(0.4).stroke_width(1),
                    ))
                    .map_err(|x| e(&x))?
                    .label("interactivity SLO")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
            }
        }
        for (i, (label, pts, big)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let pts: Vec<(f64, f64)> = pts.iter().filter(finite).copied().collect();
            let size = if *big { 7 } else { 4 };
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, size, color.filled())))
                .map_err(|x| e(&x))?
                .label(label.as_str())
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(&x))?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
