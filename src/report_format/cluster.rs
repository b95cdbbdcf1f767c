//! `cluster`: the seed tool's Summary Table and Plan details rows (same row
//! names), kvfleet's extra rows, the plan candidates as CSV, the rack
//! diagram and the sensitivity plots (SVG).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::{CsvReport, HumanReport};
use crate::cluster::des::AvgP95;
use crate::cluster::report::ClusterReport;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn pct(u: &AvgP95) -> String {
    format!("{:.1}% / {:.1}%", u.avg * 100.0, u.p95 * 100.0)
}

fn tok(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "inf".into()
    }
}

impl HumanReport for ClusterReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let row = |s: &mut String, k: &str, v: String| {
            let _ = writeln!(s, "{k:<35}{v}");
        };
        let r = self;
        let p = &r.plan;
        let offloaded = r.kv.host_bytes + r.kv.nvme_bytes + r.kv.storage_bytes;
        let _ = writeln!(s, "Summary Table");
        let _ = writeln!(s, "{}", "-".repeat(59));
        row(&mut s, "Model", r.model.name.clone());
        row(&mut s, "Rack preset", r.hardware.display.clone());
        row(
            &mut s,
            "Quantisation",
            format!(
                "{}-bit weights, {} KV",
                r.model.quant_bits, r.model.kv_dtype
            ),
        );
        let holds = if r.hbm_residency < 1.0 {
            format!(
                "; holds {} at residency {}",
                r.users.supported, r.hbm_residency
            )
        } else {
            String::new()
        };
        row(
            &mut s,
            "Users supported (capacity)",
            format!(
                "{} ({} slots{holds})",
                r.users.required.min(r.users.supported),
                r.users.slots
            ),
        );
        row(&mut s, "KV system", r.kv.system.clone());
        row(&mut s, "Batch size per instance", p.batch.to_string());
        row(
            &mut s,
            "TP x PP x EP",
            format!("{} x {} x {}", p.tp, p.pp, p.ep),
        );
        row(
            &mut s,
            "Servers needed",
            format!(
                "{} (provisioned: {})",
                r.servers.needed, r.servers.provisioned
            ),
        );
        row(
            &mut s,
            "Racks needed",
            format!("{} of type {}", r.racks, r.hardware.display),
        );
        row(
            &mut s,
            "Storage needed (TB)",
            format!("{:.2} TB KV tier", r.kv.needed_bytes / 1e12),
        );
        row(
            &mut s,
            "Storage offloaded (TB)",
            format!("{:.2} TB outside GPU HBM", offloaded / 1e12),
        );
        row(
            &mut s,
            "Storage servers needed",
            format!(
                "{} (available {})",
                r.kv.storage_servers_needed, r.kv.storage_servers_available
            ),
        );
        let per_rack = if r.racks > 0 {
            r.kv.storage_servers_available / r.racks as u64
        } else {
            0
        };
        let srv_tb = crate::cluster::inventory::lookup_preset(&r.hardware.preset)
            .map(|x| x.storage_tb_per_server)
            .unwrap_or(0.0);
        row(
            &mut s,
            "Storage capacity provisioned",
            format!(
                "{:.1} TB @ {per_rack} per rack",
                srv_tb * r.kv.storage_servers_available as f64
            ),
        );
        row(
            &mut s,
            "Batches per GPU",
            format!(
                "{:.2}",
                p.batch as f64 / p.tp as f64 / p.dp as f64 / p.pp as f64
            ),
        );
        row(&mut s, "Networking between servers", r.network.clone());
        row(
            &mut s,
            "Compute util (avg / p95)",
            pct(&r.utilisation.compute),
        );
        row(
            &mut s,
            "Network util (avg / p95)",
            pct(&r.utilisation.network),
        );
        row(
            &mut s,
            "Storage util (avg / p95)",
            pct(&r.utilisation.storage),
        );
        row(
            &mut s,
            "KV placement (HBM / cache / NVMe)",
            format!(
                "{:.1} GiB / {:.1} GiB / {:.1} GiB",
                r.kv.hbm_bytes / GIB,
                r.kv.host_bytes / GIB,
                (r.kv.nvme_bytes + r.kv.storage_bytes) / GIB
            ),
        );
        row(
            &mut s,
            "KV DMA util (avg / p95)",
            format!(
                "{} ({:.0} GB/s link)",
                pct(&r.utilisation.kv_link),
                r.hardware.host_link_bw_bytes_s / 1e9
            ),
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "Plan details");
        let _ = writeln!(s, "{}", "-".repeat(40));
        let _ = writeln!(
            s,
            "Provisioned GPUs: {} (racks {}) | Active GPUs: {} | Instances running: {}/{} | Tokens/sec capacity: {:.1}",
            r.gpus.provisioned,
            r.racks,
            r.gpus.active,
            r.instances.running,
            r.instances.available,
            r.throughput.capacity_tok_s
        );
        let _ = writeln!(
            s,
            "Compute bound: {} tok/s per instance | HBM bound: {} tok/s | Comm bound: {} tok/s",
            tok(r.bounds.compute_tok_s),
            tok(r.bounds.hbm_tok_s),
            r.bounds.comm_tok_s.map(tok).unwrap_or_else(|| "inf".into())
        );
        let _ = writeln!(
            s,
            "KV DMA link ({}): {:.1} GiB cached | util ≈ {:.1}% of {:.0} GB/s",
            r.kv.system,
            offloaded / GIB,
            r.utilisation.kv_link.avg * 100.0,
            r.hardware.host_link_bw_bytes_s / 1e9
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "kvfleet");
        let _ = writeln!(s, "{}", "-".repeat(40));
        row(&mut s, "DP-attention ranks", p.dp.to_string());
        row(
            &mut s,
            "Decode rate per user (1/TPOT)",
            format!(
                "{:.1} tok/s (required {})",
                r.throughput.per_user_tok_s, r.tokens_per_user_rate
            ),
        );
        row(
            &mut s,
            "Throughput demand / capacity",
            format!(
                "{:.1} / {:.1} tok/s ({:.1} tok/s per active GPU)",
                r.throughput.demand_tok_s, r.throughput.capacity_tok_s, r.throughput.per_gpu_tok_s
            ),
        );
        row(&mut s, "Binding bound", r.limit.clone());
        row(
            &mut s,
            "Racks' power / price (estimates)",
            format!(
                "{:.0} kW / ${:.1}M{}",
                r.hardware.power_kw_per_rack * r.racks as f64,
                r.hardware.usd_per_rack * r.racks as f64 / 1e6,
                if r.hardware.projected {
                    " (projected hardware)"
                } else {
                    ""
                }
            ),
        );
        let m = &r.memory_per_gpu;
        row(
            &mut s,
            "Memory per GPU",
            format!(
                "weights {:.1} GB + KV {:.1} GB + overhead {:.1} GB of {:.1} GB",
                m.weights_bytes / 1e9,
                m.kv_bytes / 1e9,
                m.overhead_bytes / 1e9,
                m.limit_bytes / 1e9
            ),
        );
        row(
            &mut s,
            "KV bytes per token",
            format!(
                "{:.0} B ({} B per value)",
                r.kv.bytes_per_token, r.kv.bytes_per_element
            ),
        );
        row(
            &mut s,
            "KV reload per user",
            format!("{:.1} ms", r.kv.reload_ms),
        );
        if let Some(a) = &r.users.arrival {
            row(
                &mut s,
                "Arrival model (mean/p95/max)",
                format!(
                    "{:.1} / {} / {} open sessions (λ·S = {:.1})",
                    a.mean, a.p95, a.max, a.little_mean
                ),
            );
        }
        match &r.des {
            Some(d) => {
                row(
                    &mut s,
                    "DES check",
                    format!(
                        "{} users on {} instances, {} s: {} turns, {} reloads",
                        d.users_simulated, d.instances_simulated, d.seconds, d.turns, d.reloads
                    ),
                );
                row(
                    &mut s,
                    "DES P99 TTFT / P99 TPOT",
                    format!("{:.1} ms / {:.2} ms", d.p99_ttft_ms, d.p99_tpot_ms),
                );
                row(
                    &mut s,
                    "DES tok/s per user",
                    format!("{:.1}", d.tok_s_per_user),
                );
            }
            None => row(
                &mut s,
                "DES check",
                "skipped (--no-des): utilisation is the steady state".into(),
            ),
        }
        for n in &r.notes {
            row(&mut s, "Note", n.clone());
        }
        row(&mut s, "Why this plan", r.why.clone());
        if r.shortfall.is_empty() {
            row(&mut s, "Shortfall", "none".into());
        } else {
            for (i, x) in r.shortfall.iter().enumerate() {
                row(&mut s, if i == 0 { "Shortfall" } else { "" }, x.clone());
            }
        }
        s
    }
}

impl CsvReport for ClusterReport {
    fn csv(&self) -> String {
        let mut s = String::from(
            "tp,pp,ep,dp,batch,gpus_per_instance,racks_needed,gpus_active,tok_s_per_user,instance_tok_s,limit,memory_fraction,feasible\n",
        );
        for c in &self.candidates {
            let p = &c.plan;
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{:.3},{:.3},{},{:.4},{}",
                p.tp,
                p.pp,
                p.ep,
                p.dp,
                p.batch,
                c.gpus_per_instance,
                c.racks_needed,
                c.gpus_active,
                c.tok_s_per_user,
                c.instance_tok_s,
                c.limit,
                c.memory_fraction,
                c.feasible
            );
        }
        s
    }
}

fn e(x: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{x}")
}

/// Sensitivity plots: racks against users, batch size and tokens cached.
pub(super) fn plot(r: &ClusterReport, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1200, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let panels = root.split_evenly((1, 3));
    let sweeps = [
        ("users", "users"),
        ("batch", "batch size (only)"),
        ("tokens_cached", "tokens cached per user"),
    ];
    for (area, (key, label)) in panels.iter().zip(sweeps) {
        let pts: Vec<(f64, f64)> = r
            .sensitivity
            .iter()
            .filter(|p| p.sweep == key)
            .filter_map(|p| p.racks.map(|k| (p.value, k as f64)))
            .collect();
        let (x0, x1) = pts
            .iter()
            .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.0), a.1.max(p.0)));
        let (x0, x1) = if pts.is_empty() {
            (0.0, 1.0)
        } else if x1 > x0 {
            (x0, x1)
        } else {
            (x0 * 0.9, x0 * 1.1 + 1.0)
        };
        let ymax = pts.iter().map(|p| p.1).fold(1.0, f64::max) * 1.2 + 0.5;
        let mut chart = ChartBuilder::on(area)
            .caption(format!("racks vs {label}"), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(40)
            .build_cartesian_2d(x0..x1, 0.0..ymax)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(label)
            .y_desc("racks")
            .draw()
            .map_err(e)?;
        let c = Palette99::pick(0).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(e)?;
        chart
            .draw_series(pts.iter().map(|&q| Circle::new(q, 4, c.filled())))
            .map_err(e)?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Rack diagram: one column per rack — control servers, GPU trays / servers
/// active and idle, storage servers — and a footer with the plan.
pub(super) fn diagram(r: &ClusterReport, path: &Path) -> anyhow::Result<()> {
    let preset = crate::cluster::inventory::lookup_preset(&r.hardware.preset)
        .context("the report names a known preset")?;
    let racks = r.racks.min(128) as i32;
    let (col_w, gap, top) = (70i32, 14i32, 40i32);
    let slots = (preset.control_servers_per_rack
        + preset.servers_per_rack
        + preset.storage_servers_per_rack) as i32;
    let unit_h = 16i32;
    let width = (racks * (col_w + gap) + gap).max(520) as u32;
    let height = (top + slots * (unit_h + 2) + 90) as u32;
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let font = ("sans-serif", 12).into_font();
    let title = format!("{} × {} — {}", r.racks, r.hardware.display, r.model.name);
    root.draw(&Text::new(title, (gap, 12), font.clone()))
        .map_err(e)?;
    let mut active_left = r.servers.needed;
    let colours = [
        ("control", RGBColor(90, 120, 200)),
        ("active", RGBColor(60, 170, 90)),
        ("idle", RGBColor(200, 200, 200)),
        ("storage", RGBColor(230, 150, 60)),
    ];
    for k in 0..racks {
        let x = gap + k * (col_w + gap);
        let mut y = top;
        let draw = |c: RGBColor, y: &mut i32| -> anyhow::Result<()> {
            root.draw(&Rectangle::new(
                [(x, *y), (x + col_w, *y + unit_h)],
                c.filled(),
            ))
            .map_err(e)?;
            root.draw(&Rectangle::new(
                [(x, *y), (x + col_w, *y + unit_h)],
                BLACK.stroke_width(1),
            ))
            .map_err(e)?;
            *y += unit_h + 2;
            Ok(())
        };
        for _ in 0..preset.control_servers_per_rack {
            draw(colours[0].1, &mut y)?;
        }
        for _ in 0..preset.servers_per_rack {
            let c = if active_left > 0 {
                active_left -= 1;
                colours[1].1
            } else {
                colours[2].1
            };
            draw(c, &mut y)?;
        }
        let storage_used = r.kv.storage_servers_needed as i64
            - (k as i64) * preset.storage_servers_per_rack as i64;
        for j in 0..preset.storage_servers_per_rack as i64 {
            let c = if j < storage_used {
                RGBColor(200, 90, 30)
            } else {
                colours[3].1
            };
            draw(c, &mut y)?;
        }
        root.draw(&Text::new(
            format!("rack {}", k + 1),
            (x, y + 2),
            font.clone(),
        ))
        .map_err(e)?;
    }
    let foot = top + slots * (unit_h + 2) + 24;
    let plan = format!(
        "plan TP {} × PP {} × EP {} (DP {}), batch {} | {} instances of {} GPUs running / {} available | {} of {} trays/servers active",
        r.plan.tp,
        r.plan.pp,
        r.plan.ep,
        r.plan.dp,
        r.plan.batch,
        r.instances.running,
        r.plan.tp * r.plan.dp * r.plan.pp,
        r.instances.available,
        r.servers.needed,
        r.servers.provisioned
    );
    root.draw(&Text::new(plan, (gap, foot), font.clone()))
        .map_err(e)?;
    let mut lx = gap;
    for (name, c) in colours {
        root.draw(&Rectangle::new(
            [(lx, foot + 18), (lx + 14, foot + 30)],
            c.filled(),
        ))
        .map_err(e)?;
        root.draw(&Text::new(
            name.to_string(),
            (lx + 18, foot + 18),
            font.clone(),
        ))
        .map_err(e)?;
        lx += 90;
    }
    if r.racks > 128 {
        root.draw(&Text::new(
            format!("(first 128 of {} racks drawn)", r.racks),
            (lx, foot + 18),
            font,
        ))
        .map_err(e)?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
