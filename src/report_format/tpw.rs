//! `tok-per-watt`: tokens per joule of SLO-sized fleets, as a table.

use std::fmt::Write as _;

use super::HumanReport;
use crate::planner::tpw::{TpwFleet, TpwReport};

fn cells(f: &TpwFleet) -> Vec<String> {
    let o = |v: Option<f64>, d: usize| v.map(|x| format!("{x:.d$}")).unwrap_or_else(|| "—".into());
    vec![
        f.fleet.clone(),
        f.counts
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" + "),
        f.gpus.to_string(),
        format!("{:.1}", f.lam),
        o(f.rho, 2),
        o(f.output_tok_per_j, 2),
        o(f.output_tok_per_j_analytic, 2),
        format!("{:.0}", f.power_per_gpu_w),
        o(f.cost_per_million_output_tok_usd, 3),
        match f.p99_ttft_ms {
            Some(p) if p.is_infinite() => "∞".into(),
            p => o(p, 0),
        },
        if f.slo_met { "✓" } else { "✗" }.into(),
    ]
}

impl HumanReport for TpwReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let header = vec![
            "fleet",
            "instances",
            "GPUs",
            "λ",
            "ρ",
            "out tok/J (DES)",
            "tok/J (analytic)",
            "W/GPU",
            "$/M out tok",
            "P99 TTFT ms",
            "SLO",
        ];
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header(header.clone());
        for f in &self.fleets {
            t.add_row(cells(f));
        }
        let _ = writeln!(
            s,
            "SLO-sized fleets (P99 TTFT ≤ {} ms over all arrivals, DES-verified; ρ = λ / the λ the fleet sustains):\n{t}",
            self.slo_ttft_ms
        );
        for f in self.fleets.iter().filter(|f| !f.slo_met) {
            let _ = writeln!(
                s,
                "  {}: misses the SLO{}",
                f.fleet,
                f.reason
                    .as_ref()
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default()
            );
        }
        if !self.rho_sweep.is_empty() {
            let mut t = comfy_table::Table::new();
            t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
            t.set_header(header);
            for f in &self.rho_sweep {
                t.add_row(cells(f));
            }
            let _ = writeln!(s, "Utilisation sweep (same fleets, lower λ):\n{t}");
        }
        let mut curves: Vec<&String> = self.fleets.iter().flat_map(|f| &f.power_curve).collect();
        curves.sort();
        curves.dedup();
        let _ = writeln!(
            s,
            "Power curves: {}",
            curves
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
        s
    }
}
