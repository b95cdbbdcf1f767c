//! The cross-check (the analytic model of the iteration engine) against the
//! iteration DES on a few cells of the validation matrix: its capacity
//! within 10% of the DES's (found by bisection), and its P99 TTFT within 20%
//! at 30% and 60% of that capacity. The full matrix is
//! `cargo bench --bench analytic_validate`.

use kvfleet::analytic::validate::{MatrixSettings, WORKLOADS, validate_config};

fn settings() -> MatrixSettings {
    MatrixSettings {
        cell_requests: 40_000,
        replications: 1,
        capacity_requests: 20_000,
        capacity_steps: 7,
        min_sim_s: 150.0,
        samples: 50_000,
        seed: 11,
    }
}

fn check(workload: &str, gpu: &'static str, instances: u32) {
    let w = WORKLOADS
        .iter()
        .find(|w| w.name == workload)
        .expect("workload");
    let cells = validate_config(w, gpu, instances, &[0.3, 0.6], &settings()).expect("runs");
    for c in &cells {
        assert!(
            c.capacity_error.abs() <= 0.10,
            "{workload} {gpu} ×{instances}: capacity {:.2} vs DES {:.2}",
            c.analytic_capacity_req_s,
            c.des_capacity_req_s
        );
        let x = &c.models[0];
        assert_eq!(x.model, "iteration");
        assert!(
            x.p99_error.abs() <= 0.20,
            "{workload} {gpu} ×{instances} at ρ = {}: P99 TTFT {:.1} ms vs DES {:.1} ms",
            c.rho,
            x.p99_ttft_ms,
            c.des_p99_ttft_ms
        );
    }
}

#[test]
fn azure_on_four_h100() {
    check("azure", "h100", 4);
}

#[test]
fn agent_heavy_on_four_a100() {
    check("agent-heavy", "a100", 4);
}

#[test]
fn lmsys_on_sixteen_a100() {
    check("lmsys", "a100", 16);
}
