//! `profile`, `profile step` and `profile validate`, as tables.

use comfy_table::Table;

use super::HumanReport;
use crate::api::profile::{ProfileReport, StepReport, ValidateOutput};

impl HumanReport for ProfileReport {
    fn human(&self) -> String {
        let p = &self.profile;
        let mut s = format!(
            "profile {}: {} GPU(s), ${:.2}/instance-hr\n  W = {:.3} ms, H = {:.4} ms @ {} ctx, prefill = {:.3} µs/token, chunk {}, max_slots {}\n  KV capacity {} tokens ({} blocks of {}); {} concurrent sequences at {} tokens; saturation {:.0} tok/s\n",
            p.name,
            p.gpus_per_instance,
            p.cost_per_hr,
            p.w_s * 1e3,
            p.h_s * 1e3,
            p.calibration_ctx,
            p.prefill_s_per_token * 1e6,
            p.chunk,
            p.max_slots,
            self.kv_capacity_tok,
            p.total_kv_blks,
            p.blk_size,
            self.max_concurrent_seqs,
            self.ctx,
            self.saturation_tok_per_s
        );
        if let Some(c) = &self.computed {
            s += &format!(
                "  roofline: {} × {} tp{} ep{}, weights {} (math {}), KV {}; {:.1}B params ({:.1}B active), {:.1} GB weights/GPU, {:.0} KV B/token/GPU\n  linear fit vs roofline over {} grid points: median {:.1}%, max {:.1}% relative error\n",
                c.model,
                c.hardware,
                c.tp,
                c.ep,
                c.weight_dtype,
                c.compute_dtype,
                c.kv_dtype,
                c.params_b,
                c.active_params_b,
                c.weights_per_gpu_gb,
                c.kv_bytes_per_token_per_gpu,
                c.linear_fit_points,
                c.linear_fit_median_rel_err * 100.0,
                c.linear_fit_max_rel_err * 100.0
            );
        }
        let mut t = Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header([
            "batch",
            "ctx",
            "linear ms",
            "roofline ms",
            "bound",
            "decode tok/s",
        ]);
        for r in &self.steps {
            t.add_row([
                r.batch.to_string(),
                r.ctx.to_string(),
                format!("{:.2}", r.linear_ms),
                r.roofline_ms.map_or("-".into(), |v| format!("{v:.2}")),
                r.bound.unwrap_or("-").to_string(),
                format!("{:.0}", r.decode_tok_per_s),
            ]);
        }
        s += &format!("{t}\n");
        let mut t = Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header([
            "prompt tokens",
            "steps",
            "linear prefill s",
            "roofline prefill s",
        ]);
        for r in &self.prefill {
            t.add_row([
                r.prompt_tok.to_string(),
                r.steps.to_string(),
                format!("{:.3}", r.linear_s),
                r.roofline_s.map_or("-".into(), |v| format!("{v:.3}")),
            ]);
        }
        s += &format!("{t}\n");
        let pw: Vec<String> = self
            .power
            .iter()
            .map(|r| format!("{}: {:.0} W", r.batch, r.power_w))
            .collect();
        s += &format!("power at batch: {}\n", pw.join(", "));
        s
    }
}

impl HumanReport for StepReport {
    fn human(&self) -> String {
        format!(
            "step {:.3} ms ({}-bound): compute {:.3}, memory {:.3}, comm {:.3}, overhead {:.3} ms; linear profile {:.3} ms\n",
            self.step_ms,
            self.bound,
            self.compute_ms,
            self.memory_ms,
            self.comm_ms,
            self.overhead_ms,
            self.linear_ms
        )
    }
}

fn pct(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{:+.1}%", 100.0 * x)
    }
}

fn abs_pct(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * x)
    }
}

impl HumanReport for ValidateOutput {
    fn human(&self) -> String {
        let r = &self.report;
        let mut out = format!(
            "roofline vs {} ({} points); compute_eff {}, memory_eff {}, link_eff {}, step overhead {} ms\n",
            self.file,
            r.points.len(),
            r.params.compute_eff,
            r.params.memory_eff,
            r.params.link_eff,
            r.params.step_overhead_s * 1e3
        );
        if self.list_points {
            let mut t = Table::new();
            t.set_header([
                "point",
                "tp",
                "batch",
                "in/out",
                "measured ms",
                "roofline ms",
                "error",
                "bound",
                "set",
            ]);
            for p in &r.points {
                t.add_row([
                    p.id.clone(),
                    p.tp.to_string(),
                    p.batch.to_string(),
                    format!("{}/{}", p.input_len, p.output_len),
                    format!("{:.2}", p.measured_ms),
                    format!("{:.2}", p.predicted_ms),
                    pct(p.rel_err),
                    p.bound.to_string(),
                    if p.target {
                        "target".into()
                    } else if p.moe {
                        "moe".into()
                    } else {
                        "dense-other".into()
                    },
                ]);
            }
            out.push_str(&format!("{t}\n"));
        }
        let mut t = Table::new();
        t.set_header([
            "device",
            "model",
            "points",
            "median |error|",
            "median error",
            "max |error|",
        ]);
        for g in r.groups.iter().chain([&r.target, &r.dense_other, &r.moe]) {
            t.add_row([
                g.device.clone(),
                g.model.clone(),
                g.n.to_string(),
                abs_pct(g.median_abs_rel_err),
                pct(g.median_rel_err),
                abs_pct(g.max_abs_rel_err),
            ]);
        }
        out.push_str(&format!(
            "{t}\ndense decode target (batch >= 8, input <= output): median |error| {} (target <= {:.0}%); negative error = roofline faster than measured\n",
            abs_pct(r.target.median_abs_rel_err),
            100.0 * self.target_median_rel_err
        ));
        if let Some(sv) = &self.serving {
            out.push_str(&serving_table(sv));
        }
        out
    }
}

fn serving_table(sv: &crate::benchmark::validation::ServingValidation) -> String {
    let mut t = Table::new();
    t.set_header([
        "group",
        "rows",
        "tput/GPU |err|",
        "mean TPOT |err|",
        "mean TTFT |err|",
        "uncalibrated tput / TPOT / TTFT",
    ]);
    for (c, u) in sv.calibrated.iter().zip(&sv.uncalibrated) {
        t.add_row([
            c.group.clone(),
            c.rows.to_string(),
            abs_pct(c.tput_median_abs_err),
            abs_pct(c.tpot_median_abs_err),
            abs_pct(c.ttft_median_abs_err),
            format!(
                "{} / {} / {}",
                abs_pct(u.tput_median_abs_err),
                abs_pct(u.tpot_median_abs_err),
                abs_pct(u.ttft_median_abs_err)
            ),
        ]);
    }
    format!(
        "\nserving benchmark rows {} replayed on {} (TP per row) with {} (median |error|):\n{t}\n",
        sv.rows_file, sv.spec, sv.calibration_file
    )
}
