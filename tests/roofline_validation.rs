//! The roofline against public step-time measurements (data/roofline_validation.toml).
//!
//! Acceptance (issue 6): median relative error within 20 % for decode steps of
//! dense models at batch ≥ 8. The efficiency defaults are fitted on half of the
//! points; these tests check that the shipped defaults are that fit, that the
//! held-out half meets the target, and report how far the roofline is off for a
//! serving stack it was not fitted on. Run with `--nocapture` to see the tables
//! (or `kvfleet profile validate --points`).

use std::collections::BTreeSet;

use kvfleet::profile::roofline::RooflineParams;
use kvfleet::profile::validate::{
    FIT_GRID, TARGET_MEDIAN_REL_ERR, ValidationPoint, fit_efficiencies, interleaved_training_ids,
    leave_one_family_out, parse_points, target_median_abs_err, validate,
};

fn points() -> Vec<ValidationPoint> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/roofline_validation.toml");
    let text = std::fs::read_to_string(path).expect("data/roofline_validation.toml is in the repo");
    parse_points(&text, path).expect("validation data parses and its conversions check out")
}

fn print_report(params: RooflineParams, pts: &[ValidationPoint]) -> f64 {
    let r = validate(pts, params).expect("every point resolves to a catalog instance");
    println!(
        "{:<56} {:>6} {:>10} {:>10} {:>8}  set",
        "point", "batch", "measured", "roofline", "error"
    );
    for p in &r.points {
        println!(
            "{:<56} {:>6} {:>10.2} {:>10.2} {:>+7.1}%  {}",
            p.id,
            p.batch,
            p.measured_ms,
            p.predicted_ms,
            100.0 * p.rel_err,
            if p.target {
                "target"
            } else if p.moe {
                "moe"
            } else {
                "dense-other"
            }
        );
    }
    println!(
        "\n{:<10} {:<44} {:>3} {:>14} {:>12}",
        "device", "model", "n", "median |err|", "median err"
    );
    for g in r.groups.iter().chain([&r.target, &r.dense_other, &r.moe]) {
        println!(
            "{:<10} {:<44} {:>3} {:>13.1}% {:>+11.1}%",
            g.device,
            g.model,
            g.n,
            100.0 * g.median_abs_rel_err,
            100.0 * g.median_rel_err
        );
    }
    r.target.median_abs_rel_err
}

#[test]
fn data_covers_several_devices_and_dense_models() {
    let pts = points();
    let r = validate(&pts, RooflineParams::default()).expect("resolves");
    let devices: BTreeSet<&str> = r
        .points
        .iter()
        .filter(|p| p.target)
        .map(|p| p.device.as_str())
        .collect();
    let models: BTreeSet<&str> = r
        .points
        .iter()
        .filter(|p| p.target)
        .map(|p| p.model.as_str())
        .collect();
    assert!(devices.len() >= 4, "dense decode devices: {devices:?}");
    assert!(models.len() >= 3, "dense decode models: {models:?}");
    assert!(r.target.n >= 30, "dense decode points: {}", r.target.n);
    assert!(r.moe.n >= 5, "MoE points kept separately: {}", r.moe.n);
    for p in &pts {
        assert!(
            !p.source.is_empty() && !p.note.is_empty(),
            "{} names its source and conversion",
            p.id
        );
    }
}

#[test]
fn shipped_defaults_meet_the_dense_decode_target_on_held_out_points() {
    let pts = points();
    let d = RooflineParams::default();
    let all = print_report(d, &pts);
    let train = interleaved_training_ids(&pts);
    let held = target_median_abs_err(&pts, d, &|p| !train.contains(&p.id)).expect("resolves");
    let fitted_on = target_median_abs_err(&pts, d, &|p| train.contains(&p.id)).expect("resolves");
    println!(
        "\ndense decode median |error|: all {:.1}%, training half {:.1}%, held-out half {:.1}% (target {:.0}%)",
        100.0 * all,
        100.0 * fitted_on,
        100.0 * held,
        100.0 * TARGET_MEDIAN_REL_ERR
    );
    assert!(
        held <= TARGET_MEDIAN_REL_ERR,
        "held-out median |error| {held:.3}"
    );
    assert!(
        all <= TARGET_MEDIAN_REL_ERR,
        "all-points median |error| {all:.3}"
    );
}

#[test]
fn shipped_defaults_are_the_fit_on_the_training_half() {
    let pts = points();
    let d = RooflineParams::default();
    let train = interleaved_training_ids(&pts);
    let (fit, objective) =
        fit_efficiencies(&pts, d, &FIT_GRID, &|p| train.contains(&p.id)).expect("fit runs");
    println!("fit on training half: {fit:?}, objective {objective:.4}");
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(1.0);
    assert!(
        same(fit.compute_eff, d.compute_eff)
            && same(fit.memory_eff, d.memory_eff)
            && same(fit.link_eff, d.link_eff)
            && same(fit.hop_latency_s, d.hop_latency_s)
            && same(fit.step_overhead_s, d.step_overhead_s),
        "RooflineParams::default() {d:?} is not the documented fit {fit:?}; refit and update the defaults and their doc comments"
    );
    // The optimum is interior: no fitted value sits on the edge of its grid.
    for (name, v, grid) in [
        ("compute_eff", fit.compute_eff, FIT_GRID.compute_eff),
        ("memory_eff", fit.memory_eff, FIT_GRID.memory_eff),
        ("link_eff", fit.link_eff, FIT_GRID.link_eff),
        ("hop_latency_s", fit.hop_latency_s, FIT_GRID.hop_latency_s),
        (
            "step_overhead_s",
            fit.step_overhead_s,
            FIT_GRID.step_overhead_s,
        ),
    ] {
        assert!(
            v != grid[0] && v != grid[grid.len() - 1],
            "{name} = {v} is on the grid edge"
        );
    }
}

#[test]
fn unseen_serving_stack_error_is_reported() {
    let pts = points();
    let lofo = leave_one_family_out(&pts, RooflineParams::default(), &FIT_GRID).expect("fits run");
    assert!(
        lofo.len() >= 3,
        "families with dense decode points: {}",
        lofo.len()
    );
    for (family, params, held) in &lofo {
        println!(
            "fit without {family:<16} -> its median |error| {:.1}% (compute {}, memory {}, link {}, hop {} us, overhead {} ms)",
            100.0 * held,
            params.compute_eff,
            params.memory_eff,
            params.link_eff,
            params.hop_latency_s * 1e6,
            params.step_overhead_s * 1e3
        );
        // What is true today: an unseen stack is predicted within a factor of two
        // (median), not within the 20 % target. This guards against regressions.
        assert!(*held < 1.0, "{family}: held-out median |error| {held:.3}");
    }
}
