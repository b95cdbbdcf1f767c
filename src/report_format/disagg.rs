//! `disagg`: the (nP, nD) candidates against aggregated fleets, as a table and CSV.

use std::fmt::Write as _;

use super::{CsvReport, HumanReport};
use crate::planner::disagg::DisaggReport;

fn rho(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.2}"),
        Some(_) => "∞".into(),
        None => "—".into(),
    }
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_infinite() => "∞".into(),
        Some(x) => format!("{x:.1}"),
        None => "—".into(),
    }
}

impl HumanReport for DisaggReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Disaggregated prefill ({}) / decode ({}) over `{}` at {} (mean ISL {:.0}, OSL {:.0} tokens); SLO P99 TTFT ≤ {} ms, P99 TPOT ≤ {} ms; DES worst of {} replications",
            self.gpu_prefill,
            self.gpu_decode,
            self.link,
            self.lam
                .map(|l| format!("λ = {l} req/s"))
                .unwrap_or_else(|| "the trace's or closed loop's own arrivals".into()),
            self.mean_isl_tok,
            self.mean_osl_tok,
            self.slo_ttft_ms,
            self.slo_tpot_ms,
            self.replications
        );
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "nP",
            "nD",
            "GPUs",
            "$/hr",
            "P99 TTFT",
            "P99 TPOT",
            "transfer (mean)",
            "req/s",
            "ρ prefill",
            "ρ link",
            "ρ decode",
            "TPOT (analytic)",
            "1.8× TTFT (reference)",
            "SLO",
        ]);
        for c in &self.candidates {
            let d = c.des.as_ref();
            t.add_row(vec![
                c.n_prefill.to_string(),
                c.n_decode.to_string(),
                c.gpus.to_string(),
                format!("{:.2}", c.cost.per_hr_usd),
                ms(d.and_then(|d| d.p99_ttft_ms)),
                ms(d.and_then(|d| d.p99_tpot_ms)),
                ms(d.and_then(|d| d.mean_transfer_ms)),
                d.map(|d| format!("{:.1}", d.throughput_req_s))
                    .unwrap_or_else(|| "screened".into()),
                rho(c.analytic.map(|a| a.rho_prefill)),
                rho(c.analytic.map(|a| a.rho_link)),
                rho(c.analytic.map(|a| a.rho_decode)),
                ms(c.analytic.and_then(|a| a.tpot_ms)),
                ms(c.analytic.map(|a| a.fixed_factor_ttft_ms)),
                match (c.slo_met, c.pareto, d.is_some_and(|d| !d.stable)) {
                    (true, true, _) => "OK (frontier)".into(),
                    (true, false, _) => "OK".into(),
                    (false, _, true) => "unstable".into(),
                    _ => "miss".into(),
                },
            ]);
        }
        let _ = writeln!(s, "{t}");
        match &self.best {
            Some(b) => {
                let _ = writeln!(
                    s,
                    "Cheapest: {} prefill + {} decode instances ({} GPUs, ${:.2}/hr): P99 TTFT {} ms, P99 TPOT {} ms.",
                    b.n_prefill,
                    b.n_decode,
                    b.gpus,
                    b.cost.per_hr_usd,
                    ms(b.des.and_then(|d| d.p99_ttft_ms)),
                    ms(b.des.and_then(|d| d.p99_tpot_ms))
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "No (nP ≤ max-prefill, nD ≤ max-decode) pair meets both SLOs."
                );
                let rejected = self
                    .candidates
                    .iter()
                    .filter_map(|c| c.des.map(|d| d.rejected_fraction))
                    .fold(0.0, f64::max);
                if rejected > 0.01 {
                    let _ = writeln!(
                        s,
                        "The pairs reject up to {:.0}% of arrivals (longer than --max-ctx or the KV cache): no fleet of these pools can meet P99 TTFT ≤ {} ms.",
                        100.0 * rejected,
                        self.slo_ttft_ms
                    );
                }
            }
        }
        let mut a = comfy_table::Table::new();
        a.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        a.set_header(vec![
            "aggregated",
            "instances",
            "GPUs",
            "$/hr",
            "P99 TTFT",
            "P99 TPOT",
            "SLO",
            "vs best disagg",
        ]);
        for f in &self.aggregated {
            a.add_row(vec![
                f.gpu.clone(),
                f.instances.to_string(),
                f.gpus.to_string(),
                format!("{:.2}", f.cost.per_hr_usd),
                ms(f.des.p99_ttft_ms),
                ms(f.des.p99_tpot_ms),
                if f.slo_met { "OK" } else { "miss" }.into(),
                match &self.best {
                    Some(b) if f.slo_met => format!(
                        "{:+.0}%",
                        (b.cost.per_hr_usd / f.cost.per_hr_usd - 1.0) * 100.0
                    ),
                    _ => "—".into(),
                },
            ]);
        }
        let _ = writeln!(s, "{a}");
        let _ = writeln!(
            s,
            "\"vs best disagg\": the disaggregated fleet's cost relative to this aggregated fleet. The 1.8× column is the reference tool's fixed factor on the P99 prefill time alone (no queues, batching or transfer), for comparison only. {} DES evaluations.",
            self.evaluations
        );
        s
    }
}

impl CsvReport for DisaggReport {
    fn csv(&self) -> String {
        let mut s = String::from(
            "n_prefill,n_decode,gpus,per_hr_usd,p99_ttft_ms,p99_tpot_ms,mean_transfer_ms,throughput_req_s,stable,rho_prefill,rho_link,rho_decode,analytic_tpot_ms,ttft_no_queue_p99_ms,fixed_factor_ttft_ms,slo_met,pareto\n",
        );
        let f = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        for c in &self.candidates {
            let d = c.des.as_ref();
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                c.n_prefill,
                c.n_decode,
                c.gpus,
                c.cost.per_hr_usd,
                f(d.and_then(|d| d.p99_ttft_ms)),
                f(d.and_then(|d| d.p99_tpot_ms)),
                f(d.and_then(|d| d.mean_transfer_ms)),
                f(d.map(|d| d.throughput_req_s)),
                d.map(|d| d.stable.to_string()).unwrap_or_default(),
                f(c.analytic.map(|a| a.rho_prefill)),
                f(c.analytic.map(|a| a.rho_link)),
                f(c.analytic.map(|a| a.rho_decode)),
                f(c.analytic.and_then(|a| a.tpot_ms)),
                f(c.analytic.map(|a| a.ttft_no_queue_p99_ms)),
                f(c.analytic.map(|a| a.fixed_factor_ttft_ms)),
                c.slo_met,
                c.pareto
            );
        }
        s
    }
}
