//! Fitting the software efficiency of one (hardware, framework) to measured
//! serving-benchmark rows (not step times): every candidate set of factors
//! is judged by replaying each measured row as the benchmark it was (the
//! same closed loop, lengths and concurrency, through the DES) and comparing
//! throughput per GPU, mean TPOT and mean TTFT. The catalog's physical
//! numbers are not touched, so the fitted overlay can be carried to other
//! hardware served by the same framework.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use super::measured::MeasuredRow;
use super::{BenchRow, BenchmarkSpec, Deployment, run_conc};
use crate::error::InputError;
use crate::profile::Profile;
use crate::profile::computed::{linearise, parse_instance_with};
use crate::profile::overlay::{CalibrationOverlay, split_overlay};
use crate::profile::roofline::RooflineParams;

/// How measured rows are replayed.
#[derive(Debug, Clone)]
pub struct ReplaySettings {
    /// Spec of the served instance, `HW:MODEL[:tpN]:DTYPE`; each row's TP replaces `tpN`.
    pub spec: String,
    /// Range ratio of the measured lengths.
    pub range_ratio: f64,
    /// Chunked-prefill budget (vLLM `max_num_batched_tokens`), tokens.
    pub chunk_tok: u32,
    /// Requests per unit of concurrency.
    pub prompts_per_conc: u32,
    /// Seed of the lengths.
    pub seed: u64,
}

/// `spec` with its `tpN` token set to `tp` (added when absent).
pub fn spec_with_tp(spec: &str, tp: u32) -> String {
    let (base, overlay) = split_overlay(spec);
    let mut parts: Vec<String> = base.split(':').map(str::to_string).collect();
    match parts.iter().position(|p| {
        p.to_ascii_lowercase()
            .strip_prefix("tp")
            .is_some_and(|n| n.parse::<u32>().is_ok())
    }) {
        Some(i) => parts[i] = format!("tp{tp}"),
        None => parts.insert(2.min(parts.len()), format!("tp{tp}")),
    }
    let s = parts.join(":");
    match overlay {
        Some(f) => format!("{s}@{f}"),
        None => s,
    }
}

/// The profile of `spec` with efficiencies `params` and chunk `chunk_tok`.
pub fn profile_with(
    field: &str,
    spec: &str,
    params: RooflineParams,
    chunk_tok: u32,
) -> Result<Profile, InputError> {
    let (base, _) = split_overlay(spec);
    let inst = parse_instance_with(field, base, params)?;
    let mut p = linearise(spec, inst)?.profile;
    p.chunk = chunk_tok;
    Ok(p)
}

/// One measured row replayed: its simulated row and the three errors.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayedRow {
    /// The measured row.
    pub measured: MeasuredRow,
    /// The simulated benchmark row.
    pub simulated: BenchRow,
    /// Throughput per GPU, `sim / measured − 1`.
    pub tput_err: f64,
    /// Mean TPOT, `sim / measured − 1`.
    pub tpot_err: f64,
    /// Mean TTFT, `sim / measured − 1`.
    pub ttft_err: f64,
}

/// Replay every row with efficiencies `params`.
pub fn replay(
    rows: &[MeasuredRow],
    set: &ReplaySettings,
    params: RooflineParams,
) -> Result<Vec<ReplayedRow>, InputError> {
    let mut profiles: BTreeMap<u32, Profile> = BTreeMap::new();
    for r in rows {
        let tp = r.tp.unwrap_or(0);
        if let std::collections::btree_map::Entry::Vacant(e) = profiles.entry(tp) {
            let spec = if tp > 0 {
                spec_with_tp(&set.spec, tp)
            } else {
                set.spec.clone()
            };
            e.insert(profile_with("--gpu", &spec, params, set.chunk_tok)?);
        }
    }
    rows.par_iter()
        .map(|r| {
            let spec = BenchmarkSpec {
                deployment: Deployment::Aggregated(profiles[&r.tp.unwrap_or(0)].clone()),
                isl: r.isl,
                osl: r.osl,
                range_ratio: set.range_ratio,
                concurrency: vec![r.conc],
                prompts_per_conc: set.prompts_per_conc,
                seed: set.seed,
            };
            let sim = run_conc(&spec, r.conc)?;
            let err = |f: &str| match (sim_field(&sim, f), r.fields.get(f)) {
                (Some(s), Some(&m)) if m > 0.0 => s / m - 1.0,
                _ => f64::NAN,
            };
            Ok(ReplayedRow {
                tput_err: err("tput_per_gpu"),
                tpot_err: err("mean_tpot"),
                ttft_err: err("mean_ttft"),
                measured: r.clone(),
                simulated: sim,
            })
        })
        .collect()
}

fn sim_field(r: &BenchRow, f: &str) -> Option<f64> {
    r.field(f)
}

/// Weight of the TTFT term in the fit's objective (TTFT is a small part of
/// a request's time and the noisiest measured field).
pub const TTFT_WEIGHT: f64 = 0.5;

/// The objective: mean over rows of `ln²(tput ratio) + ln²(TPOT ratio) +
/// TTFT_WEIGHT·ln²(TTFT ratio)`.
pub fn objective(rows: &[ReplayedRow]) -> f64 {
    let sq = |e: f64| {
        if e.is_finite() && e > -1.0 {
            (1.0 + e).ln().powi(2)
        } else {
            25.0
        }
    };
    rows.iter()
        .map(|r| sq(r.tput_err) + sq(r.tpot_err) + TTFT_WEIGHT * sq(r.ttft_err))
        .sum::<f64>()
        / rows.len().max(1) as f64
}

/// The fitted factors: `(name, lower, upper)` bounds of each, searched in log space.
pub const FITTED: [(&str, f64, f64); 7] = [
    ("compute_eff", 0.02, 1.0),
    ("memory_eff", 0.1, 1.0),
    ("step_overhead_s", 1e-5, 0.02),
    ("seq_overhead_s", 1e-7, 5e-4),
    ("hop_latency_s", 1e-7, 5e-5),
    ("link_eff", 0.02, 1.0),
    ("frontend_latency_s", 1e-5, 0.2),
];

fn get(p: &RooflineParams, i: usize) -> f64 {
    [
        p.compute_eff,
        p.memory_eff,
        p.step_overhead_s,
        p.seq_overhead_s,
        p.hop_latency_s,
        p.link_eff,
        p.frontend_latency_s,
    ][i]
}

fn with(base: RooflineParams, x: &[f64]) -> RooflineParams {
    let v: Vec<f64> = x
        .iter()
        .zip(FITTED)
        .map(|(l, (_, lo, hi))| l.exp().clamp(lo, hi))
        .collect();
    RooflineParams {
        compute_eff: v[0],
        memory_eff: v[1],
        step_overhead_s: v[2],
        seq_overhead_s: v[3],
        hop_latency_s: v[4],
        link_eff: v[5],
        frontend_latency_s: v[6],
        ..base
    }
}

/// The result of a serving calibration.
#[derive(Debug, Clone, Serialize)]
pub struct ServingFit {
    /// The overlay (write it as TOML and use it as `SPEC@FILE.toml`).
    pub overlay: CalibrationOverlay,
    /// Objective at the start and at the optimum.
    pub objective_start: f64,
    /// Objective at the optimum.
    pub objective: f64,
    /// Objective evaluations (each replays every row).
    pub evaluations: u32,
    /// Every row replayed with the fitted factors.
    pub rows: Vec<ReplayedRow>,
}

/// A serving-ish starting point: the step-time fit's factors with a
/// per-sequence overhead and CUDA-graph padding at vLLM's default 512.
pub fn start_params() -> RooflineParams {
    RooflineParams {
        seq_overhead_s: 2e-5,
        frontend_latency_s: 5e-3,
        step_overhead_s: 2e-3,
        cuda_graph_max_tok: 512,
        ..RooflineParams::default()
    }
}

/// Fit [`FITTED`] by Nelder–Mead in log space from `start`, at most
/// `max_evals` objective evaluations.
pub fn fit_serving(
    rows: &[MeasuredRow],
    set: &ReplaySettings,
    start: RooflineParams,
    max_evals: u32,
    framework: &str,
    fitted_on: &str,
) -> Result<ServingFit, InputError> {
    if rows.is_empty() {
        return Err(InputError::field("--serving", "no measured rows to fit"));
    }
    let x0: Vec<f64> = (0..FITTED.len())
        .map(|i| get(&start, i).clamp(FITTED[i].1, FITTED[i].2).ln())
        .collect();
    let mut evals = 0u32;
    let mut err: Option<InputError> = None;
    let mut f = |x: &[f64]| -> f64 {
        evals += 1;
        match replay(rows, set, with(start, x)) {
            Ok(r) => objective(&r),
            Err(e) => {
                err.get_or_insert(e);
                f64::INFINITY
            }
        }
    };
    let f0 = f(&x0);
    let (x, fx) = nelder_mead(&mut f, &x0, 0.3, max_evals.saturating_sub(1));
    if let Some(e) = err
        && !fx.is_finite()
    {
        return Err(e);
    }
    let params = with(start, &x);
    let replayed = replay(rows, set, params)?;
    Ok(ServingFit {
        overlay: CalibrationOverlay {
            framework: framework.to_string(),
            fitted_on: fitted_on.to_string(),
            efficiency: params,
        },
        objective_start: f0,
        objective: fx,
        evaluations: evals + 1,
        rows: replayed,
    })
}

/// Minimise `f` by Nelder–Mead from `x0` with initial step `step` per
/// coordinate, at most `max_evals` evaluations. Returns the best point.
pub fn nelder_mead(
    f: &mut dyn FnMut(&[f64]) -> f64,
    x0: &[f64],
    step: f64,
    max_evals: u32,
) -> (Vec<f64>, f64) {
    let n = x0.len();
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    let mut evals = 0u32;
    let mut eval = |x: &[f64], evals: &mut u32| {
        *evals += 1;
        f(x)
    };
    simplex.push((x0.to_vec(), eval(x0, &mut evals)));
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] += step;
        let fx = eval(&x, &mut evals);
        simplex.push((x, fx));
    }
    while evals < max_evals {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let spread = simplex[n].1 - simplex[0].1;
        if spread.abs() < 1e-7 * simplex[0].1.abs().max(1e-12) {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|(x, _)| x[j]).sum::<f64>() / n as f64)
            .collect();
        let at = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&simplex[n].0)
                .map(|(c, w)| c + t * (w - c))
                .collect()
        };
        let xr = at(-1.0);
        let fr = eval(&xr, &mut evals);
        if fr < simplex[0].1 {
            let xe = at(-2.0);
            let fe = eval(&xe, &mut evals);
            simplex[n] = if fe < fr { (xe, fe) } else { (xr, fr) };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (xr, fr);
        } else {
            let xc = if fr < simplex[n].1 { at(-0.5) } else { at(0.5) };
            let fc = eval(&xc, &mut evals);
            if fc < simplex[n].1.min(fr) {
                simplex[n] = (xc, fc);
            } else {
                let best = simplex[0].0.clone();
                for s in simplex.iter_mut().skip(1) {
                    let x: Vec<f64> = best
                        .iter()
                        .zip(&s.0)
                        .map(|(b, v)| b + 0.5 * (v - b))
                        .collect();
                    let fx = eval(&x, &mut evals);
                    *s = (x, fx);
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex.swap_remove(0)
}

/// Median |error| and the worst row of one group of replayed rows.
#[derive(Debug, Clone, Serialize)]
pub struct GroupError {
    /// Group label (`tp2`, `tp2 1024/8192`, `all`).
    pub group: String,
    /// Rows in the group.
    pub rows: usize,
    /// Median |error| of throughput per GPU.
    pub tput_median_abs_err: f64,
    /// Median |error| of mean TPOT.
    pub tpot_median_abs_err: f64,
    /// Median |error| of mean TTFT.
    pub ttft_median_abs_err: f64,
    /// Largest |error| of throughput per GPU (signed).
    pub tput_worst_err: f64,
    /// Largest |error| of mean TPOT (signed).
    pub tpot_worst_err: f64,
    /// Largest |error| of mean TTFT (signed).
    pub ttft_worst_err: f64,
}

fn median_abs(xs: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = xs.map(f64::abs).collect();
    v.sort_by(f64::total_cmp);
    super::percentile(&v, 50.0)
}

fn worst(xs: impl Iterator<Item = f64>) -> f64 {
    xs.fold(0.0, |w: f64, e| if e.abs() > w.abs() { e } else { w })
}

/// Errors grouped by TP, by TP and ISL/OSL, and over all rows.
pub fn group_errors(rows: &[ReplayedRow]) -> Vec<GroupError> {
    let mut groups: BTreeMap<(u32, u32, u32), Vec<&ReplayedRow>> = BTreeMap::new();
    for r in rows {
        let tp = r.measured.tp.unwrap_or(0);
        groups.entry((tp, 0, 0)).or_default().push(r);
        groups
            .entry((tp, r.measured.isl, r.measured.osl))
            .or_default()
            .push(r);
    }
    let stat = |label: String, g: &[&ReplayedRow]| GroupError {
        group: label,
        rows: g.len(),
        tput_median_abs_err: median_abs(g.iter().map(|r| r.tput_err)),
        tpot_median_abs_err: median_abs(g.iter().map(|r| r.tpot_err)),
        ttft_median_abs_err: median_abs(g.iter().map(|r| r.ttft_err)),
        tput_worst_err: worst(g.iter().map(|r| r.tput_err)),
        tpot_worst_err: worst(g.iter().map(|r| r.tpot_err)),
        ttft_worst_err: worst(g.iter().map(|r| r.ttft_err)),
    };
    let mut out: Vec<GroupError> = groups
        .iter()
        .map(|(&(tp, i, o), g)| {
            let label = if i == 0 {
                format!("tp{tp}")
            } else {
                format!("tp{tp} {i}/{o}")
            };
            stat(label, g)
        })
        .collect();
    let all: Vec<&ReplayedRow> = rows.iter().collect();
    out.push(stat("all".into(), &all));
    out
}
