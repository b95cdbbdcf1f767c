//! `optimize`: the fleets table and the recommendation.

use std::fmt::Write as _;

use super::HumanReport;
use crate::planner::optimize::{Candidate, OptimizeReport};

fn pools_cell(c: &Candidate) -> String {
    c.pools
        .iter()
        .map(|p| format!("{}×{} ({})", p.instances, p.gpu, p.id))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// P99s in fleet order, `a / b`.
pub fn p99_cell(c: &Candidate) -> String {
    c.des_p99_in_fleet_order()
        .iter()
        .map(|v| match v {
            Some(x) if x.is_infinite() => "∞".into(),
            Some(x) => format!("{x:.0}"),
            None => "—".into(),
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Analytic P99s in fleet order, `a / b`.
fn analytic_cell(c: &Candidate) -> String {
    c.pools
        .iter()
        .map(
            |p| match c.analytic.p99_ttft_ms_by_pool.get(&p.id).copied().flatten() {
                Some(x) => format!("{x:.0}"),
                None => "∞".into(),
            },
        )
        .collect::<Vec<_>>()
        .join(" / ")
}

impl HumanReport for OptimizeReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "fleet",
            "B_short",
            "γ",
            "pools",
            "GPUs",
            "$/yr",
            "DES P99 TTFT ms",
            "analytic P99 ms",
            "SLO",
            "sims",
        ]);
        let row = |name: &str, c: &Candidate| {
            vec![
                name.to_string(),
                c.b_short
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "—".into()),
                format!("{:.1}", c.gamma),
                pools_cell(c),
                c.cost.gpus.to_string(),
                format!("${:.0}K", c.cost.per_year_usd / 1e3),
                p99_cell(c),
                analytic_cell(c),
                c.slo_cell(),
                c.des.evaluations.to_string(),
            ]
        };
        t.add_row(row("homogeneous", &self.baseline));
        for c in &self.candidates {
            t.add_row(row("two-pool", c));
        }
        let _ = writeln!(s, "{t}");
        let _ = writeln!(
            s,
            "SLO: P99 TTFT ≤ {} ms in every pool, verified by the DES; availability A = {:.4}",
            self.slo_ttft_ms, self.availability
        );
        match &self.best {
            Some(b) => {
                let _ = writeln!(
                    s,
                    "Recommended: {} — {} GPUs, ${:.0}K/yr",
                    pools_cell(b),
                    b.cost.gpus,
                    b.cost.per_year_usd / 1e3
                );
            }
            None => {
                let _ = writeln!(s, "No recommendation: no fleet shape tried meets the SLO.");
            }
        }
        for c in std::iter::once(&self.baseline).chain(&self.candidates) {
            if let Some(r) = &c.reason {
                let _ = writeln!(
                    s,
                    "  {}: {r}",
                    c.b_short
                        .map(|b| format!("B={b}"))
                        .unwrap_or_else(|| "homogeneous".into())
                );
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "Note: {n}");
        }
        s
    }
}
