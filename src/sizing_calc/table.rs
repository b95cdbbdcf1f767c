//! Human (comfy-table, NAT-like layout) and CSV renderings of a
//! [`SizingReport`].

use std::fmt::Write as _;

use comfy_table::{CellAlignment, Table, presets};

use super::SizingConfig;
use super::estimate::SlopeEstimate;
use super::fit::FitStatus;
use super::report::SizingReport;
use crate::report_format::{CsvReport, HumanReport};

/// Format with 6 significant digits and no trailing zeros (NAT's tables
/// print numbers this way: 322.79, 188.479, 79.0895).
pub fn fmt_sig6(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return v.to_string();
    }
    let exp = v.abs().log10().floor() as i32;
    if !(-5..6).contains(&exp) {
        return format!("{v:.5e}");
    }
    let decimals = usize::try_from(5 - exp).unwrap_or(0);
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(fmt_sig6).unwrap_or_default()
}

fn new_table(header: Vec<&str>) -> Table {
    let mut t = Table::new();
    t.load_style(presets::ASCII_MARKDOWN);
    t.set_header(header);
    t
}

fn align_right_from(t: &mut Table, first: usize) {
    let n = t.column_count();
    for i in first..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn target_text(v: Option<f64>) -> String {
    v.map(|t| format!("≤ {} s", fmt_sig6(t)))
        .unwrap_or_else(|| "not set".into())
}

fn header_lines(cfg: &SizingConfig) -> String {
    format!(
        "Targets: LLM latency {}, workflow runtime {}, users = {}\n\
         Test parameters: GPUs = {}\n",
        target_text(cfg.target_llm_latency_s),
        target_text(cfg.target_workflow_runtime_s),
        cfg.target_users,
        cfg.test_gpu_count
    )
}

fn alerts(row: &super::report::ConcurrencyRow) -> String {
    let mut a = Vec::new();
    if row.point.workflow_interrupted {
        a.push("!W");
    } else if row.excluded.is_some() {
        a.push("!M");
    }
    if row.outlier_llm_latency {
        a.push("!L");
    }
    if row.outlier_wf_runtime {
        a.push("!R");
    }
    a.join(" ")
}

fn concurrency_table(r: &SizingReport) -> Table {
    let cfg = &r.config;
    let wf = cfg.target_workflow_runtime_s.is_some();
    let llm = cfg.target_llm_latency_s.is_some();
    let has_items = r.rows.iter().any(|row| !row.point.items.is_empty());
    let mut header = vec![
        "Alerts",
        "Concurrency",
        "p95 LLM Latency (s)",
        "p95 WF Runtime (s)",
        "Total Runtime (s)",
    ];
    if has_items && wf {
        header.push("Runtime OOR");
    }
    if has_items && llm {
        header.push("Latency OOR");
    }
    if wf {
        header.push("GPUs (WF Runtime, Rough)");
    }
    if llm {
        header.push("GPUs (LLM Latency, Rough)");
    }
    let mut t = new_table(header);
    for row in &r.rows {
        let p = &row.point;
        let mut cells = vec![
            alerts(row),
            p.concurrency.to_string(),
            opt(p.llm_latency_p95_s),
            opt(p.workflow_runtime_p95_s),
            opt(p.total_runtime_s),
        ];
        if has_items && wf {
            cells.push(opt_count(row.items_over_target_runtime));
        }
        if has_items && llm {
            cells.push(opt_count(row.items_over_target_latency));
        }
        if wf {
            cells.push(opt(row.rough.by_wf_runtime));
        }
        if llm {
            cells.push(opt(row.rough.by_llm_latency));
        }
        t.add_row(cells);
    }
    align_right_from(&mut t, 1);
    t
}

fn opt_count(v: Option<u32>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

fn list(v: &[u32]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    }
}

fn status_text(status: FitStatus) -> &'static str {
    match status {
        FitStatus::Accepted => "accepted",
        FitStatus::PoorFit => "rejected",
        FitStatus::TooFewPoints => "too few points",
        FitStatus::NotFinite => "rejected (not finite)",
    }
}

fn fit_table(r: &SizingReport) -> Table {
    let mut t = new_table(vec![
        "Metric",
        "Points used",
        "Outliers removed",
        "Slope (s/user)",
        "Intercept (s)",
        "R²",
        "Status",
    ]);
    for m in &r.metrics {
        let f = m.fit.fit;
        t.add_row(vec![
            m.metric.label().to_string(),
            list(&m.fit.points_used),
            list(&m.fit.outliers_removed),
            opt(f.map(|f| f.slope_s_per_user)),
            opt(f.map(|f| f.intercept_s)),
            f.map(|f| format!("{:.4}", f.r_squared)).unwrap_or_default(),
            status_text(m.fit.status).to_string(),
        ]);
    }
    for i in 3..6 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

fn estimate_table(r: &SizingReport) -> Table {
    let mut t = new_table(vec![
        "Metric",
        "Target p95 (s)",
        "Concurrency at target",
        "GPUs",
        "Note",
    ]);
    for m in &r.metrics {
        let (Some(target), Some(est)) = (m.target_s, &m.estimate) else {
            continue;
        };
        let (conc, gpus, note) = match est {
            SlopeEstimate::Estimate {
                concurrency_at_target,
                gpu_count,
            } => (
                fmt_sig6(*concurrency_at_target),
                format!("{gpu_count:.1}"),
                String::new(),
            ),
            SlopeEstimate::Infeasible { .. } => {
                (String::new(), "-".into(), "infeasible target".into())
            }
            SlopeEstimate::NoFit { .. } => (String::new(), "-".into(), "no usable fit".into()),
        };
        t.add_row(vec![
            m.metric.label().to_string(),
            fmt_sig6(target),
            conc,
            gpus,
            note,
        ]);
    }
    align_right_from(&mut t, 1);
    if let Some(c) = t.column_mut(4) {
        c.set_cell_alignment(CellAlignment::Left);
    }
    t
}

impl HumanReport for SizingReport {
    fn human(&self) -> String {
        let mut s = header_lines(&self.config);
        s.push_str("Per concurrency results:\n");
        if self.rows.iter().any(|r| !alerts(r).is_empty()) {
            s.push_str(
                "Alerts: !W = workflow interrupted, !M = p95 missing or zero (both excluded \
                 from fits), !L = LLM latency outlier, !R = workflow runtime outlier\n",
            );
        }
        let _ = writeln!(s, "{}", concurrency_table(self));
        s.push_str("\n=== LINEAR FITS (p95 vs concurrency) ===\n");
        let _ = writeln!(s, "{}", fit_table(self));
        for m in &self.metrics {
            if let Some(why) = &m.fit.reason {
                let _ = writeln!(s, "{} fit: {why}", m.metric.label());
            }
        }
        s.push_str("\n=== GPU ESTIMATES ===\n");
        let _ = writeln!(s, "{}", estimate_table(self));
        let rec = &self.recommendation;
        match (rec.gpu_count, rec.limited_by) {
            (Some(g), Some(metric)) => {
                let _ = writeln!(
                    s,
                    "Recommended GPU count: {g:.1} (plan {} GPUs), set by {}",
                    g.ceil(),
                    metric.label().to_lowercase()
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "No GPU recommendation: {}",
                    rec.reason.as_deref().unwrap_or("no estimate")
                );
            }
        }
        for row in self.rows.iter().filter(|r| r.excluded.is_some()) {
            let _ = writeln!(
                s,
                "Excluded concurrency {}: {}",
                row.point.concurrency,
                row.excluded.as_deref().unwrap_or_default()
            );
        }
        for note in &self.notes {
            let _ = writeln!(s, "Note: {note}");
        }
        s
    }
}

impl CsvReport for SizingReport {
    fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let header = [
            "concurrency",
            "llm_latency_p95",
            "workflow_runtime_p95",
            "total_runtime",
            "interrupted",
            "excluded_reason",
            "outlier_llm_latency",
            "outlier_wf_runtime",
            "items_over_target_latency",
            "items_over_target_runtime",
            "rough_gpus_wf_runtime",
            "rough_gpus_llm_latency",
        ];
        let full = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        let mut out = w.write_record(header);
        for row in &self.rows {
            if out.is_err() {
                break;
            }
            let p = &row.point;
            out = w.write_record([
                p.concurrency.to_string(),
                full(p.llm_latency_p95_s),
                full(p.workflow_runtime_p95_s),
                full(p.total_runtime_s),
                p.workflow_interrupted.to_string(),
                row.excluded.clone().unwrap_or_default(),
                row.outlier_llm_latency.to_string(),
                row.outlier_wf_runtime.to_string(),
                opt_count(row.items_over_target_latency),
                opt_count(row.items_over_target_runtime),
                full(row.rough.by_wf_runtime),
                full(row.rough.by_llm_latency),
            ]);
        }
        // Writing to a Vec cannot fail; an error here would be a csv bug.
        let bytes = w.into_inner().unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_significant_digits_like_nat() {
        assert_eq!(fmt_sig6(322.7904), "322.79");
        assert_eq!(fmt_sig6(188.4788), "188.479");
        assert_eq!(fmt_sig6(113.5162), "113.516");
        assert_eq!(fmt_sig6(79.0895), "79.0895");
        assert_eq!(fmt_sig6(1.3591), "1.3591");
        assert_eq!(fmt_sig6(12.677), "12.677");
        assert_eq!(fmt_sig6(10.0), "10");
        assert_eq!(fmt_sig6(0.0), "0");
        assert_eq!(fmt_sig6(9.9999999), "10");
        assert_eq!(fmt_sig6(0.000123456789), "0.000123457");
        assert_eq!(fmt_sig6(1234567.0), "1.23457e6");
        assert_eq!(fmt_sig6(-0.5), "-0.5");
    }
}
