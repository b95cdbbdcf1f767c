//! The analytic mean wait against the slot-model DES, going through the
//! calibration path (`sample_lengths` → `PoolCalibration::from_samples` →
//! estimates). The pool is the one of `tests/queueing_theory.rs`: W = 0.1 ms,
//! H = 0, chunk 1, ISL 1, so a request's service is `(1 + OSL)·W`.
//!
//! - OSL exponential (mean 1000): service is exponential to within a fraction
//!   of a percent (cv² ≈ 0.997), so M/M/c and Allen–Cunneen are both exact to
//!   sampling error: tolerance 3%.
//! - OSL fixed at 1000: deterministic service (cv² = 0), M/D/c. Allen–Cunneen
//!   halves the M/M/c wait, which is known to undershoot M/D/c by a few
//!   percent for c > 1 (Cosmetatos' correction factor is
//!   `1 + (1−ρ)(c−1)(√(4+5c) − 2)/(16ρc)` ≈ 1.063 at c = 8, ρ = 0.8):
//!   tolerance 10%, and it must beat M/M/c (which is about 2× too high).

use kvfleet::analytic::{PoolCalibration, allen_cunneen, mmc, sample_lengths};
use kvfleet::engine::dispatch::DispatchPolicy;
use kvfleet::engine::{self, PoolConfig, ServiceModel, SimConfig, Warmup};
use kvfleet::profile::{PowerCurve, Profile};
use kvfleet::simulate::open_arrivals;
use kvfleet::workload::spec::WorkloadSpec;

const W_S: f64 = 0.0001;
const MAX_CTX: u32 = 1 << 20;

fn profile(c: u32) -> Profile {
    Profile {
        name: "analytic-vs-des".into(),
        w_s: W_S,
        h_s: 0.0,
        calibration_ctx: MAX_CTX,
        chunk: 1,
        blk_size: 16,
        total_kv_blks: 1 << 30,
        max_slots: c,
        cost_per_hr: 1.0,
        gpus_per_instance: 1,
        prefill_s_per_token: 0.0,
        power: PowerCurve::new(0.0, 0.0, 0.0, 0.0),
        step_law: None,
    }
}

fn config(profile: Profile, instances: u32, dispatch: DispatchPolicy) -> SimConfig {
    SimConfig {
        service_model: ServiceModel::Slot,
        warmup: Warmup {
            fraction: 0.05,
            seconds: None,
        },
        max_waiting: Some(u64::MAX),
        ..SimConfig::new(
            vec![PoolConfig {
                dispatch,
                ..PoolConfig::new("pool", profile, instances, MAX_CTX)
            }],
            3,
            1e9,
        )
    }
}

struct Measured {
    cal: PoolCalibration,
    des_mean_wait_ms: f64,
}

/// Calibrate from the workload's own length model, set λ for utilisation
/// `rho`, and run the slot-model DES on `n` requests of the same workload.
fn run(osl: &str, c: u32, instances: u32, dispatch: DispatchPolicy, rho: f64, n: u64) -> Measured {
    let p = profile(c);
    let mut spec = WorkloadSpec {
        isl: Some("fixed:1".into()),
        osl: Some(osl.into()),
        lam: Some(1.0),
        n_requests: Some(n),
        ..WorkloadSpec::default()
    };
    let model = spec.length_model().expect("lengths").expect("synthetic");
    let samples = sample_lengths(&model, 1_000_000, 17);
    let probe = PoolCalibration::from_samples(&p, MAX_CTX, instances, 1.0, &samples);
    assert_eq!(probe.slots_per_instance, c);
    let lam = rho * probe.total_slots() as f64 / probe.mean_service_s;
    let cal = PoolCalibration::from_samples(&p, MAX_CTX, instances, lam, &samples);
    spec.lam = Some(lam);
    let cfg = config(p, instances, dispatch);
    let arrivals = open_arrivals(&spec, 5, 0).expect("workload");
    let out = engine::run(&cfg, arrivals, 0, None).expect("run");
    assert_eq!(out.completed, n);
    let des_mean_wait_ms = out.fleet.queue_wait.mean_ns().expect("waits") * 1e-6;
    Measured {
        cal,
        des_mean_wait_ms,
    }
}

fn err(a: f64, b: f64) -> f64 {
    a / b - 1.0
}

#[test]
fn exponential_service_mean_wait_within_3_percent() {
    for (c, instances, dispatch, rho, seed_n) in [
        (8, 1, DispatchPolicy::Jsq, 0.8, 4_000_000u64),
        (4, 4, DispatchPolicy::Central, 0.85, 4_000_000),
    ] {
        let m = run("exp:1000", c, instances, dispatch, rho, seed_n);
        assert!(
            (m.cal.cv2_service - 0.997).abs() < 0.01,
            "cv² {}",
            m.cal.cv2_service
        );
        let (em, ea) = (mmc(&m.cal), allen_cunneen(&m.cal));
        let d = m.des_mean_wait_ms;
        eprintln!(
            "exp c={} ρ={rho}: DES {d:.4} ms, M/M/c {:.4} ({:+.2}%), Allen–Cunneen {:.4} ({:+.2}%)",
            m.cal.total_slots(),
            em.mean_wait_ms,
            100.0 * err(em.mean_wait_ms, d),
            ea.mean_wait_ms,
            100.0 * err(ea.mean_wait_ms, d)
        );
        assert!(
            err(em.mean_wait_ms, d).abs() < 0.03,
            "M/M/c {em:?} vs DES {d}"
        );
        assert!(
            err(ea.mean_wait_ms, d).abs() < 0.03,
            "A–C {ea:?} vs DES {d}"
        );
    }
}

#[test]
fn deterministic_service_allen_cunneen_within_10_percent() {
    let m = run("fixed:1000", 8, 1, DispatchPolicy::Jsq, 0.8, 2_000_000);
    assert!(m.cal.cv2_service < 1e-12, "cv² {}", m.cal.cv2_service);
    let (em, ea) = (mmc(&m.cal), allen_cunneen(&m.cal));
    let d = m.des_mean_wait_ms;
    let (e_ac, e_mm) = (err(ea.mean_wait_ms, d), err(em.mean_wait_ms, d));
    eprintln!(
        "det c=8 ρ=0.8: DES {d:.4} ms, Allen–Cunneen {:.4} ({:+.2}%), M/M/c {:.4} ({:+.2}%)",
        ea.mean_wait_ms,
        100.0 * e_ac,
        em.mean_wait_ms,
        100.0 * e_mm
    );
    assert!(e_ac.abs() < 0.10, "A–C {ea:?} vs DES {d}");
    assert!(
        e_mm > 0.5,
        "M/M/c should overstate M/D/c waits: {em:?} vs {d}"
    );
}
