//! The report of `kvfleet benchmark`: rows, and simulated beside measured.

use std::fmt::Write as _;

use serde::Serialize;

use super::BenchRow;
use super::measured::{MeasuredRow, RowComparison, compare_row};
use crate::report_format::{CsvReport, HumanReport};

/// A benchmark's report.
#[derive(Debug, Clone, Serialize)]
pub struct BenchmarkReport {
    /// The deployment (`h100-sxm:gpt-oss-120b:tp8:fp4`, or `2xP + 4xD`).
    pub deployment: String,
    /// GPUs in the deployment.
    pub gpus: u64,
    /// Input length N, tokens.
    pub isl: u32,
    /// Output length N, tokens.
    pub osl: u32,
    /// Range ratio.
    pub range_ratio: f64,
    /// Chunked-prefill budget, tokens.
    pub max_num_batched_tokens: u32,
    /// One row per concurrency.
    pub rows: Vec<BenchRow>,
    /// Simulated beside measured (`--compare`), per matched concurrency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Vec<RowComparison>>,
}

impl BenchmarkReport {
    /// Attach the comparison with the measured rows of the same concurrency.
    pub fn compare_with(&mut self, measured: &[MeasuredRow]) {
        let mut out = vec![];
        for r in &self.rows {
            if let Some(m) = measured.iter().find(|m| m.conc == r.conc) {
                out.push(compare_row(r, m));
            }
        }
        self.comparison = Some(out);
    }
}

impl HumanReport for BenchmarkReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "benchmark {} ({} GPUs), ISL {} / OSL {} (range ratio {}), max_num_batched_tokens {}",
            self.deployment,
            self.gpus,
            self.isl,
            self.osl,
            self.range_ratio,
            self.max_num_batched_tokens
        );
        let _ = writeln!(
            s,
            "{:>5} {:>8} {:>12} {:>12} {:>11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}",
            "conc",
            "prompts",
            "tput/gpu",
            "out tput/gpu",
            "intvty",
            "mean ttft",
            "p99 ttft",
            "mean tpot",
            "p99 tpot",
            "mean e2el",
            "preempt"
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{:>5} {:>8} {:>12.1} {:>12.1} {:>11.1} {:>10.4} {:>10.4} {:>10.5} {:>10.5} {:>10.3} {:>9}",
                r.conc,
                r.num_prompts,
                r.tput_per_gpu,
                r.output_tput_per_gpu,
                r.mean_intvty,
                r.mean_ttft,
                r.p99_ttft,
                r.mean_tpot,
                r.p99_tpot,
                r.mean_e2el,
                r.preemptions
            );
        }
        let _ = writeln!(
            s,
            "(times in seconds, throughput in tokens/s, interactivity in tokens/s/user)"
        );
        if let Some(cmp) = &self.comparison {
            if cmp.is_empty() {
                let _ = writeln!(
                    s,
                    "\nno measured row matches these lengths, TP and concurrencies"
                );
            } else {
                let _ = writeln!(s, "\nsimulated vs measured:");
                let _ = writeln!(
                    s,
                    "{:>5} {:<20} {:>12} {:>12} {:>8}",
                    "conc", "field", "simulated", "measured", "error"
                );
                for c in cmp {
                    for f in &c.fields {
                        let _ = writeln!(
                            s,
                            "{:>5} {:<20} {:>12.5} {:>12.5} {:>+7.1}%",
                            c.conc,
                            f.field,
                            f.simulated,
                            f.measured,
                            100.0 * f.rel_err
                        );
                    }
                }
            }
        }
        s
    }
}

impl CsvReport for BenchmarkReport {
    fn csv(&self) -> String {
        let mut s = String::from(
            "conc,num_prompts,completed,duration,tput_per_gpu,output_tput_per_gpu,input_tput_per_gpu,mean_ttft,median_ttft,p99_ttft,mean_tpot,median_tpot,p99_tpot,mean_itl,mean_intvty,median_intvty,mean_e2el,median_e2el,p99_e2el,preemptions\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                r.conc,
                r.num_prompts,
                r.completed,
                r.duration,
                r.tput_per_gpu,
                r.output_tput_per_gpu,
                r.input_tput_per_gpu,
                r.mean_ttft,
                r.median_ttft,
                r.p99_ttft,
                r.mean_tpot,
                r.median_tpot,
                r.p99_tpot,
                r.mean_itl,
                r.mean_intvty,
                r.median_intvty,
                r.mean_e2el,
                r.median_e2el,
                r.p99_e2el,
                r.preemptions
            );
        }
        s
    }
}
