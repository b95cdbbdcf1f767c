//! The analytic layer's validation matrix against the iteration DES:
//! 5 workloads × a10g/a100/h100 × 1/4/16 instances × ρ = 0.3, 0.5, 0.7, 0.85,
//! 0.95 of the DES's own capacity (JSQ; 3 × 100k requests per cell). Prints
//! every cell and, per model, the median |P99 TTFT error| and the share of
//! cells within 20% at ρ ≤ 0.9, and the capacity errors. Run with
//! `cargo bench --bench analytic_validate` (add `-- quick` for 1 replication
//! of 30k requests; `-- json` for the cells as JSON lines).

use kvfleet::analytic::validate::{CellResult, MatrixSettings, WORKLOADS, validate_config};
use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "quick");
    let json = args.iter().any(|a| a == "json");
    let mut s = MatrixSettings::default();
    if quick {
        s.cell_requests = 30_000;
        s.replications = 1;
        s.capacity_requests = 20_000;
        s.capacity_steps = 7;
        s.min_sim_s = 200.0;
    }
    let rhos = [0.3, 0.5, 0.7, 0.85, 0.95];
    let mut configs = Vec::new();
    for w in &WORKLOADS {
        for gpu in ["a10g", "a100", "h100"] {
            for n in [1u32, 4, 16] {
                configs.push((w, gpu, n));
            }
        }
    }
    let cells: Vec<CellResult> = configs
        .par_iter()
        .map(|(w, gpu, n)| validate_config(w, gpu, *n, &rhos, &s).expect("cell runs"))
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect();
    println!(
        "{:<16} {:<5} {:>3} {:>5} {:>9} {:>9} {:>8} {:>10} {:>10} {:>8}",
        "workload", "gpu", "N", "rho", "DES cap", "an. cap", "cap err", "DES P99", "x-check", "err"
    );
    for c in &cells {
        if json {
            println!("{}", serde_json::to_string(c).unwrap());
            continue;
        }
        let x = &c.models[0];
        println!(
            "{:<16} {:<5} {:>3} {:>5.2} {:>9.2} {:>9.2} {:>+7.1}% {:>10.1} {:>10.1} {:>+7.1}%",
            c.workload,
            c.gpu,
            c.instances,
            c.rho,
            c.des_capacity_req_s,
            c.analytic_capacity_req_s,
            100.0 * c.capacity_error,
            c.des_p99_ttft_ms,
            x.p99_ttft_ms,
            100.0 * x.p99_error
        );
    }
    let names: Vec<&str> = cells[0].models.iter().map(|m| m.model).collect();
    println!(
        "\nmodel            median |P99 err|  p90 |P99 err|  p95 |P99 err|  within 20% (rho <= 0.9)"
    );
    for (i, name) in names.iter().enumerate() {
        let mut errs: Vec<f64> = cells
            .iter()
            .filter(|c| c.rho <= 0.9 && c.des_p99_ttft_ms.is_finite())
            .map(|c| c.models[i].p99_error.abs())
            .map(|e| if e.is_finite() { e } else { f64::INFINITY })
            .collect();
        errs.sort_by(f64::total_cmp);
        let within = errs.iter().filter(|e| **e <= 0.2).count();
        let at = |q: f64| {
            errs.get(((errs.len() as f64 * q) as usize).min(errs.len().saturating_sub(1)))
                .copied()
                .unwrap_or(f64::NAN)
        };
        println!(
            "{:<16} {:>14.1}%  {:>12.1}%  {:>12.1}%  {:>4} / {}",
            name,
            100.0 * at(0.5),
            100.0 * at(0.9),
            100.0 * at(0.95),
            within,
            errs.len()
        );
    }
    let mut caps: Vec<f64> = cells
        .iter()
        .filter(|c| c.rho == rhos[0])
        .map(|c| c.capacity_error)
        .collect();
    caps.sort_by(f64::total_cmp);
    let within5 = caps.iter().filter(|e| e.abs() <= 0.05).count();
    println!(
        "capacity error of the cross-check: min {:+.1}%, median {:+.1}%, max {:+.1}%; within 5% in {} / {} configurations",
        100.0 * caps[0],
        100.0 * caps[caps.len() / 2],
        100.0 * caps[caps.len() - 1],
        within5,
        caps.len()
    );
}
