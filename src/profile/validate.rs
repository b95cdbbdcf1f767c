//! Validation of the roofline step model against public measurements
//! (`data/roofline_validation.toml`, embedded): for every measured point, the
//! roofline's prediction of the same quantity, the relative error, and median
//! errors per (device, model) and overall.
//!
//! The acceptance target of the computed profiles is a median relative error
//! within 20 % for *dense decode* points: dense models, batch ≥ 8, and at least
//! as many generated tokens as prompt tokens per sequence
//! ([`ValidationPoint::in_decode_target`]). MoE points and prefill-heavy
//! serving points are reported separately.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::computed::parse_instance;
use super::roofline::{Batch, Instance, RooflineParams};
use crate::error::InputError;

/// The validation data shipped with kvfleet.
pub const VALIDATION_TOML: &str = include_str!("../../data/roofline_validation.toml");

/// Smallest batch counted in the acceptance target.
pub const TARGET_MIN_BATCH: u32 = 8;
/// Acceptance target: median relative error of dense decode points.
pub const TARGET_MEDIAN_REL_ERR: f64 = 0.20;

/// How a point was measured, which fixes how the roofline predicts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    /// One static batch run start to finish (prefill of all prompts, then
    /// `output_len − 1` decode steps); the measurement is the end-to-end batch
    /// latency divided by `output_len`.
    StaticE2e,
    /// Mean inter-token latency of a request under closed-loop concurrency
    /// `batch`; every step also carries, on average, `batch · input_len /
    /// output_len` prompt tokens.
    ServingItl,
}

/// One published measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationPoint {
    /// Unique name.
    pub id: String,
    /// Source family: one publisher, engine and version (the unit held out by
    /// [`leave_one_family_out`]).
    pub family: String,
    /// Hardware catalog name.
    pub device: String,
    /// Model catalog name.
    pub model: String,
    /// Tensor-parallel degree.
    pub tp: u64,
    /// Weight format.
    pub dtype: String,
    /// KV-cache format.
    pub kv_dtype: String,
    /// Sequences decoding together (batch size or concurrency).
    pub batch: u32,
    /// Prompt tokens per sequence.
    pub input_len: u32,
    /// Generated tokens per sequence.
    pub output_len: u32,
    /// Mean decode context, `input_len + output_len / 2`.
    pub ctx_tok: u32,
    /// Measurement kind.
    pub kind: PointKind,
    /// The number as published.
    pub published: f64,
    /// Unit of `published`: `out_tok_s_per_gpu`, `e2e_latency_ms`, `e2e_latency_s` or `itl_ms`.
    pub published_metric: String,
    /// Measured time per output token of the batch, ms.
    pub measured_step_ms: f64,
    /// Where the number comes from.
    pub source: String,
    /// How it was converted and what was assumed.
    pub note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointsFile {
    point: Vec<ValidationPoint>,
}

impl ValidationPoint {
    /// The computed-profile spec of the point's instance.
    pub fn spec(&self) -> String {
        format!(
            "{}:{}:tp{}:{}:kv{}",
            self.device, self.model, self.tp, self.dtype, self.kv_dtype
        )
    }

    /// `measured_step_ms` recomputed from `published` and its unit.
    pub fn converted_step_ms(&self) -> Result<f64, String> {
        let v = self.published;
        Ok(match self.published_metric.as_str() {
            "out_tok_s_per_gpu" => self.batch as f64 / (v * self.tp as f64) * 1e3,
            "e2e_latency_ms" => v / self.output_len as f64,
            "e2e_latency_s" => v * 1e3 / self.output_len as f64,
            "itl_ms" => v,
            other => {
                return Err(format!(
                    "unknown published_metric `{other}`; expected out_tok_s_per_gpu, e2e_latency_ms, e2e_latency_s or itl_ms"
                ));
            }
        })
    }

    /// Dense model, batch ≥ [`TARGET_MIN_BATCH`], prompt no longer than the output.
    pub fn in_decode_target(&self, moe: bool) -> bool {
        !moe && self.batch >= TARGET_MIN_BATCH && self.input_len <= self.output_len
    }

    fn check(&self) -> Result<(), String> {
        if self.batch == 0 || self.output_len == 0 || self.tp == 0 {
            return Err("batch, output_len and tp must be at least 1".into());
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.published) || !positive(self.measured_step_ms) {
            return Err("published and measured_step_ms must be positive numbers".into());
        }
        if self.ctx_tok != self.input_len + self.output_len / 2 {
            return Err(format!(
                "ctx_tok {} must equal input_len + output_len/2 = {}",
                self.ctx_tok,
                self.input_len + self.output_len / 2
            ));
        }
        let conv = self.converted_step_ms()?;
        if (conv - self.measured_step_ms).abs() > 0.005 * conv {
            return Err(format!(
                "measured_step_ms {} does not match {} {} converted ({conv:.4} ms)",
                self.measured_step_ms, self.published, self.published_metric
            ));
        }
        Ok(())
    }
}

/// Parse and check validation points; `origin` names the file in errors.
pub fn parse_points(text: &str, origin: &str) -> Result<Vec<ValidationPoint>, InputError> {
    let file_err = |reason: String| InputError::File {
        path: PathBuf::from(origin),
        reason,
    };
    let f: PointsFile =
        toml::from_str(text).map_err(|e| file_err(e.to_string().replace('\n', " ")))?;
    if f.point.is_empty() {
        return Err(InputError::EmptyFile {
            path: PathBuf::from(origin),
            expected: "[[point]] tables".into(),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in &f.point {
        if !seen.insert(p.id.clone()) {
            return Err(file_err(format!("duplicate point id `{}`", p.id)));
        }
        p.check()
            .map_err(|r| file_err(format!("point `{}`: {r}", p.id)))?;
    }
    Ok(f.point)
}

/// The shipped validation points.
pub fn shipped_points() -> Vec<ValidationPoint> {
    parse_points(VALIDATION_TOML, "data/roofline_validation.toml")
        .expect("embedded validation data is checked by tests")
}

/// The roofline instance of a point with the given parameters.
pub fn instance_for(p: &ValidationPoint, params: RooflineParams) -> Result<Instance, InputError> {
    let mut inst = parse_instance(&format!("point `{}`", p.id), &p.spec())?;
    inst.params = params;
    Ok(inst)
}

/// Decode contexts sampled for a static run: every step for short outputs,
/// otherwise 64 evenly spaced steps weighted by the steps they stand for (the
/// roofline is piecewise linear in context, so this is exact to well under 1 %).
fn decode_samples(input_len: u32, output_len: u32) -> Vec<(f64, f64)> {
    let steps = output_len.saturating_sub(1) as f64;
    if steps <= 0.0 {
        return vec![];
    }
    let n = (steps as usize).min(64);
    let width = steps / n as f64;
    (0..n)
        .map(|i| {
            let k = 1.0 + (i as f64 + 0.5) * width - 0.5;
            (input_len as f64 + k, width)
        })
        .collect()
}

/// The roofline's prediction of `measured_step_ms` for a point, ms.
pub fn predict_step_ms(inst: &Instance, p: &ValidationPoint) -> f64 {
    let b = p.batch as f64;
    match p.kind {
        PointKind::StaticE2e => {
            let prefill = inst
                .step(&Batch {
                    prefill_tok: b * p.input_len as f64,
                    prefill_seqs: b,
                    ..Default::default()
                })
                .step_s;
            let decode: f64 = decode_samples(p.input_len, p.output_len)
                .into_iter()
                .map(|(ctx, w)| {
                    w * inst
                        .step(&Batch {
                            n_decode: b,
                            decode_ctx_sum_tok: b * ctx,
                            ..Default::default()
                        })
                        .step_s
                })
                .sum();
            (prefill + decode) / p.output_len as f64 * 1e3
        }
        PointKind::ServingItl => {
            let prefill_tok = b * p.input_len as f64 / p.output_len as f64;
            inst.step(&Batch {
                n_decode: b,
                decode_ctx_sum_tok: b * p.ctx_tok as f64,
                prefill_tok,
                prefill_seqs: prefill_tok / p.input_len.max(1) as f64,
                ..Default::default()
            })
            .step_s
                * 1e3
        }
    }
}

/// One point's comparison.
#[derive(Debug, Clone, Serialize)]
pub struct PointResult {
    /// Point id.
    pub id: String,
    /// Hardware.
    pub device: String,
    /// Model.
    pub model: String,
    /// Tensor-parallel degree.
    pub tp: u64,
    /// Batch or concurrency.
    pub batch: u32,
    /// Prompt tokens.
    pub input_len: u32,
    /// Output tokens.
    pub output_len: u32,
    /// Measurement kind.
    pub kind: PointKind,
    /// MoE model.
    pub moe: bool,
    /// Counted in the dense decode target.
    pub target: bool,
    /// Measured ms per output token.
    pub measured_ms: f64,
    /// Roofline ms per output token.
    pub predicted_ms: f64,
    /// (predicted − measured) / measured.
    pub rel_err: f64,
    /// Bound of the decode step at the mean context.
    pub bound: &'static str,
}

/// Median errors of a set of points.
#[derive(Debug, Clone, Serialize)]
pub struct ErrStat {
    /// Hardware (or `all`).
    pub device: String,
    /// Model (or a set name).
    pub model: String,
    /// Points.
    pub n: usize,
    /// Median |relative error|.
    pub median_abs_rel_err: f64,
    /// Median signed relative error (negative: the roofline is faster than measured).
    pub median_rel_err: f64,
    /// Largest |relative error|.
    pub max_abs_rel_err: f64,
}

/// Median of a slice (NaN for an empty one).
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn stat(device: &str, model: &str, errs: &[f64]) -> ErrStat {
    let abs: Vec<f64> = errs.iter().map(|e| e.abs()).collect();
    ErrStat {
        device: device.into(),
        model: model.into(),
        n: errs.len(),
        median_abs_rel_err: median(&abs),
        median_rel_err: median(errs),
        max_abs_rel_err: abs.iter().copied().fold(0.0, f64::max),
    }
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct ValidationReport {
    /// Roofline parameters used.
    pub params: RooflineParams,
    /// Every point.
    pub points: Vec<PointResult>,
    /// Dense decode target points per (device, model).
    pub groups: Vec<ErrStat>,
    /// All dense decode target points.
    pub target: ErrStat,
    /// Dense points outside the target (batch < 8 or prompt longer than output).
    pub dense_other: ErrStat,
    /// MoE points.
    pub moe: ErrStat,
}

/// Compare the roofline with `points` under `params`.
pub fn validate(
    points: &[ValidationPoint],
    params: RooflineParams,
) -> Result<ValidationReport, InputError> {
    let mut results = Vec::with_capacity(points.len());
    for p in points {
        let inst = instance_for(p, params)?;
        let moe = inst.model.is_moe();
        let predicted_ms = predict_step_ms(&inst, p);
        let b = p.batch as f64;
        let bound = inst
            .step(&Batch {
                n_decode: b,
                decode_ctx_sum_tok: b * p.ctx_tok as f64,
                ..Default::default()
            })
            .bound;
        results.push(PointResult {
            id: p.id.clone(),
            device: p.device.clone(),
            model: p.model.clone(),
            tp: p.tp,
            batch: p.batch,
            input_len: p.input_len,
            output_len: p.output_len,
            kind: p.kind,
            moe,
            target: p.in_decode_target(moe),
            measured_ms: p.measured_step_ms,
            predicted_ms,
            rel_err: (predicted_ms - p.measured_step_ms) / p.measured_step_ms,
            bound,
        });
    }
    let mut by_group: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.target) {
        by_group
            .entry((r.device.clone(), r.model.clone()))
            .or_default()
            .push(r.rel_err);
    }
    let errs = |f: &dyn Fn(&PointResult) -> bool| -> Vec<f64> {
        results.iter().filter(|r| f(r)).map(|r| r.rel_err).collect()
    };
    Ok(ValidationReport {
        params,
        groups: by_group.iter().map(|((d, m), e)| stat(d, m, e)).collect(),
        target: stat(
            "all",
            "dense decode (batch ≥ 8, input ≤ output)",
            &errs(&|r| r.target),
        ),
        dense_other: stat(
            "all",
            "dense, outside target",
            &errs(&|r| !r.moe && !r.target),
        ),
        moe: stat("all", "MoE", &errs(&|r| r.moe)),
        points: results,
    })
}

/// Median |relative error| of the dense decode target points selected by `keep`.
pub fn target_median_abs_err(
    points: &[ValidationPoint],
    params: RooflineParams,
    keep: &dyn Fn(&ValidationPoint) -> bool,
) -> Result<f64, InputError> {
    let mut errs = vec![];
    for p in points.iter().filter(|p| keep(p)) {
        let inst = instance_for(p, params)?;
        if !p.in_decode_target(inst.model.is_moe()) {
            continue;
        }
        let pred = predict_step_ms(&inst, p);
        errs.push(((pred - p.measured_step_ms) / p.measured_step_ms).abs());
    }
    Ok(median(&errs))
}

/// The grid [`fit_efficiencies`] searches. Wide enough that the optimum on the
/// shipped data is interior in every coordinate.
pub struct FitGrid {
    /// Candidate `compute_eff` values.
    pub compute_eff: &'static [f64],
    /// Candidate `memory_eff` values.
    pub memory_eff: &'static [f64],
    /// Candidate `link_eff` values.
    pub link_eff: &'static [f64],
    /// Candidate `hop_latency_s` values.
    pub hop_latency_s: &'static [f64],
    /// Candidate `step_overhead_s` values.
    pub step_overhead_s: &'static [f64],
}

/// The grid behind the shipped [`RooflineParams`] defaults.
pub const FIT_GRID: FitGrid = FitGrid {
    compute_eff: &[0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
    memory_eff: &[0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85],
    link_eff: &[0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75],
    hop_latency_s: &[1e-6, 2e-6, 3e-6, 5e-6, 8e-6],
    step_overhead_s: &[0.0, 0.25e-3, 0.5e-3, 1.0e-3, 1.5e-3, 2.0e-3, 3.0e-3],
};

/// Fit objective: the mean over source families of each family's median
/// |relative error| on its dense decode target points selected by `keep`
/// (so a family with many points does not outvote the others).
pub fn family_balanced_error(
    points: &[ValidationPoint],
    params: RooflineParams,
    keep: &dyn Fn(&ValidationPoint) -> bool,
) -> Result<f64, InputError> {
    let mut by: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for p in points.iter().filter(|p| keep(p)) {
        let inst = instance_for(p, params)?;
        if !p.in_decode_target(inst.model.is_moe()) {
            continue;
        }
        let pred = predict_step_ms(&inst, p);
        by.entry(&p.family)
            .or_default()
            .push(((pred - p.measured_step_ms) / p.measured_step_ms).abs());
    }
    if by.is_empty() {
        return Ok(f64::NAN);
    }
    Ok(by.values().map(|v| median(v)).sum::<f64>() / by.len() as f64)
}

/// Grid search of compute, memory and link efficiency, hop latency and step
/// overhead minimising [`family_balanced_error`] on the points `train` selects
/// (other parameters as in `base`). Returns the parameters and the objective.
pub fn fit_efficiencies(
    points: &[ValidationPoint],
    base: RooflineParams,
    grid: &FitGrid,
    train: &dyn Fn(&ValidationPoint) -> bool,
) -> Result<(RooflineParams, f64), InputError> {
    let mut best = (base, f64::INFINITY);
    for &compute_eff in grid.compute_eff {
        for &memory_eff in grid.memory_eff {
            for &link_eff in grid.link_eff {
                for &hop_latency_s in grid.hop_latency_s {
                    for &step_overhead_s in grid.step_overhead_s {
                        let p = RooflineParams {
                            compute_eff,
                            memory_eff,
                            link_eff,
                            hop_latency_s,
                            step_overhead_s,
                            ..base
                        };
                        let e = family_balanced_error(points, p, train)?;
                        if e < best.1 {
                            best = (p, e);
                        }
                    }
                }
            }
        }
    }
    Ok(best)
}

/// Training half of the points: within each (family, device, model) group, in
/// file order, the 1st, 3rd, 5th … point; the others are held out.
pub fn interleaved_training_ids(points: &[ValidationPoint]) -> std::collections::BTreeSet<String> {
    let mut seen: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    let mut ids = std::collections::BTreeSet::new();
    for p in points {
        let n = seen.entry((&p.family, &p.device, &p.model)).or_default();
        if n.is_multiple_of(2) {
            ids.insert(p.id.clone());
        }
        *n += 1;
    }
    ids
}

/// Generalisation to an unseen serving stack: for each family with dense
/// decode points, fit on all other families and report the held-out family's
/// median |relative error|. Returns (family, fitted params, held-out median).
pub fn leave_one_family_out(
    points: &[ValidationPoint],
    base: RooflineParams,
    grid: &FitGrid,
) -> Result<Vec<(String, RooflineParams, f64)>, InputError> {
    let mut families: Vec<String> = vec![];
    for p in points {
        let moe = instance_for(p, base)?.model.is_moe();
        if p.in_decode_target(moe) && !families.contains(&p.family) {
            families.push(p.family.clone());
        }
    }
    let mut out = vec![];
    for fam in families {
        let (params, _) = fit_efficiencies(points, base, grid, &|p| p.family != fam)?;
        let held = target_median_abs_err(points, params, &|p| p.family == fam)?;
        out.push((fam, params, held));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_and_bad_files() {
        let pts = shipped_points();
        assert!(pts.len() >= 20);
        let bad = VALIDATION_TOML.replacen("\nmeasured_step_ms = ", "\nmeasured_step_ms = 1", 1);
        let e = parse_points(&bad, "x.toml")
            .expect_err("mismatch")
            .to_string();
        assert!(e.contains("does not match"), "{e}");
        let e = parse_points("point = []", "x.toml")
            .expect_err("empty")
            .to_string();
        assert!(e.contains("empty"), "{e}");
        let e = parse_points("[[point]]\nid = 1", "x.toml")
            .expect_err("type")
            .to_string();
        assert!(e.starts_with("x.toml:"), "{e}");
    }

    #[test]
    fn decode_samples_cover_every_step() {
        for out in [1u32, 2, 128, 2048] {
            let s = decode_samples(100, out);
            let w: f64 = s.iter().map(|(_, w)| w).sum();
            assert!((w - (out - 1) as f64).abs() < 1e-9, "{out}: {w}");
            let mean = s.iter().map(|(c, w)| c * w).sum::<f64>() / w.max(1e-12);
            if out > 1 {
                assert!(
                    (mean - (100.0 + out as f64 / 2.0)).abs() < 1.0,
                    "{out}: {mean}"
                );
            }
        }
    }
}
