//! `analytic`: the estimates side by side (and beside the DES), as a table.

use std::fmt::Write as _;

use super::HumanReport;
use crate::api::analytic::AnalyticReport;

fn ms(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "∞".into()
    }
}

impl HumanReport for AnalyticReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let c = &self.calibration;
        let _ = writeln!(s, "Workload: {}", self.workload);
        let _ = writeln!(
            s,
            "Pool: {} × {} ({} GPUs), max ctx {} tok; λ = {:.2} req/s ({:.2}% of {:.2} offered rejected as too long)",
            self.instances,
            self.gpu,
            self.gpus,
            self.max_ctx_tok,
            c.lam_req_s,
            100.0 * self.rejected_fraction,
            self.offered_lam_req_s
        );
        let _ = writeln!(
            s,
            "Calibration: {} slots/instance ({} total), max_num_seqs {}, mean service {:.1} ms, cv² {:.3}, prefill mean {:.2} ms / P99 {:.2} ms, mean ISL {:.0} / OSL {:.0} tok",
            c.slots_per_instance,
            c.total_slots(),
            c.max_num_seqs,
            c.mean_service_s * 1e3,
            c.cv2_service,
            c.mean_prefill_s * 1e3,
            c.p99_prefill_s * 1e3,
            c.mean_isl_tok,
            c.mean_osl_tok
        );
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        let des = self.des_requests.is_some();
        let mut header = vec![
            "model",
            "util",
            "stable",
            "mean wait ms",
            "P99 wait ms",
            "P99 TTFT ms",
            "SLO met",
        ];
        if des {
            header.push("vs DES slot");
        }
        t.set_header(header);
        for r in &self.rows {
            let e = &r.estimate;
            let mut row = vec![
                e.model.to_string(),
                if e.utilisation.is_finite() {
                    format!("{:.1}%", 100.0 * e.utilisation)
                } else {
                    "∞".into()
                },
                if e.stable { "yes" } else { "NO" }.into(),
                ms(e.mean_wait_ms),
                ms(e.p99_wait_ms),
                ms(e.p99_ttft_ms),
                if r.slo_met { "✓" } else { "✗" }.into(),
            ];
            if des {
                row.push(match r.vs_des_slot {
                    Some(v) if v.is_finite() => {
                        format!(
                            "{:+.1}%{}",
                            100.0 * v,
                            if r.disagrees_with_des { " !" } else { "" }
                        )
                    }
                    _ => "—".into(),
                });
            }
            t.add_row(row);
        }
        let _ = writeln!(s, "{t}");
        let x = &self.cross_check;
        let _ = writeln!(
            s,
            "Cross-check ({} model of the iteration engine, {} dispatch): P99 TTFT {} ms, mean wait {} ms, \
             capacity {:.1} req/s{}, mean batch {:.1}, mean step {} ms",
            x.model,
            self.dispatch,
            ms(x.p99_ttft_ms),
            ms(x.mean_wait_ms),
            x.capacity_req_per_s,
            if x.stable {
                ""
            } else {
                " (UNSTABLE at this rate)"
            },
            x.mean_batch,
            ms(x.mean_step_ms)
        );
        let _ = writeln!(
            s,
            "SLO: P99 TTFT ≤ {} ms. reference = the reference tool's formula (P99 wait + mean prefill); \
             allen-cunneen = Lee–Longton for Poisson arrivals; others add the P99 prefill.",
            self.slo_ms
        );
        if let Some(c) = &self.cross_check_vs_des {
            let _ = writeln!(
                s,
                "Cross-check vs iteration DES: P99 TTFT {}{}",
                c.p99_ttft_error
                    .map(|e| format!("{:+.1}%", 100.0 * e))
                    .unwrap_or_else(|| "—".into()),
                if c.disagrees {
                    format!(
                        " — outside the validated ±{:.0}% band: do not trust the estimate here",
                        100.0 * c.band
                    )
                } else {
                    format!(" (within the validated ±{:.0}% band)", 100.0 * c.band)
                }
            );
        }
        if let Some(n) = self.des_requests {
            let _ = writeln!(
                s,
                "DES: {n} requests per run; `!` marks a mean wait more than {:.0}% from the slot-model DES.",
                100.0 * self.des_tolerance
            );
        }
        s
    }
}
