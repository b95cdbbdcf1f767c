//! Calibration from measurements: fit W, H and the prefill cost per token of
//! the linear step model to measured step times, with the same least-squares
//! routine ([`super::fit`]) that linearises computed profiles.

use std::path::Path;

use serde::Serialize;

use super::Profile;
use super::fit::{LinearFit, fit_nonneg_relative};
use crate::error::InputError;

/// One measured step: `batch` decode sequences at context `ctx` each plus
/// `prefill_tok` prefill tokens took `step_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepSample {
    /// Decode sequences in the step.
    pub batch: f64,
    /// Context of each decode sequence, tokens.
    pub ctx_tok: f64,
    /// Prefill tokens in the step.
    pub prefill_tok: f64,
    /// Measured step time, seconds.
    pub step_s: f64,
    /// CSV line the sample came from (1-based; 0 for synthetic samples).
    pub line: u64,
}

impl StepSample {
    /// Regressors of the linear model `[1, Σctx / calibration_ctx, prefill_tok]`;
    /// Σctx counts the prefill tokens as context, as the DES does.
    pub fn regressors(&self, calibration_ctx: u32) -> Vec<f64> {
        vec![
            1.0,
            (self.batch * self.ctx_tok + self.prefill_tok) / calibration_ctx as f64,
            self.prefill_tok,
        ]
    }
}

/// Read measurements from CSV. Two layouts are accepted (header names, any order):
/// `batch, ctx, prefill_tokens, step_ms`; or the common benchmark layout
/// `batch_size, prompt_size, token_size, prompt_time, token_time` (ms), where each
/// row gives a prefill step (`batch_size × prompt_size` tokens in `prompt_time`) and
/// a decode step (`batch_size` sequences at the mean context
/// `prompt_size + token_size / 2` in `token_time`, the mean time per output token).
pub fn read_samples(path: &Path) -> Result<Vec<StepSample>, InputError> {
    let file = crate::input_file::open_capped_file(path)?;
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(file);
    let entry = |location: String, reason: String| InputError::FileEntry {
        path: path.to_path_buf(),
        location,
        reason,
    };
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| entry("header".into(), e.to_string()))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let col = |n: &str| headers.iter().position(|h| h == n);
    let native = [
        col("batch"),
        col("ctx"),
        col("prefill_tokens"),
        col("step_ms"),
    ];
    let bench = [
        col("batch_size"),
        col("prompt_size"),
        col("token_size"),
        col("prompt_time"),
        col("token_time"),
    ];
    let is_native = native.iter().all(Option::is_some);
    if !is_native && !bench.iter().all(Option::is_some) {
        return Err(entry(
            "header".into(),
            format!(
                "expected columns batch,ctx,prefill_tokens,step_ms or batch_size,prompt_size,token_size,prompt_time,token_time; got {}",
                crate::error::excerpt(&headers.join(","))
            ),
        ));
    }
    let mut out = vec![];
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| entry(format!("line {line}"), e.to_string()))?;
        let names: Vec<&str> = if is_native {
            vec!["batch", "ctx", "prefill_tokens", "step_ms"]
        } else {
            vec![
                "batch_size",
                "prompt_size",
                "token_size",
                "prompt_time",
                "token_time",
            ]
        };
        let idx: Vec<usize> = if is_native {
            native.iter().flatten().copied().collect()
        } else {
            bench.iter().flatten().copied().collect()
        };
        let mut v = vec![];
        for (name, &j) in names.iter().zip(&idx) {
            let cell = rec.get(j).unwrap_or("");
            let x: f64 = cell
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| {
                    entry(
                        format!("line {line}, column {name}"),
                        format!("expected a number ≥ 0, got {}", crate::error::excerpt(cell)),
                    )
                })?;
            v.push(x);
        }
        let positive = |x: f64, name: &str| {
            if x > 0.0 {
                Ok(x)
            } else {
                Err(entry(
                    format!("line {line}, column {name}"),
                    "expected a time > 0".into(),
                ))
            }
        };
        if is_native {
            out.push(StepSample {
                batch: v[0],
                ctx_tok: v[1],
                prefill_tok: v[2],
                step_s: positive(v[3], "step_ms")? / 1e3,
                line,
            });
        } else {
            let (b, prompt, toks) = (v[0], v[1], v[2]);
            out.push(StepSample {
                batch: 0.0,
                ctx_tok: 0.0,
                prefill_tok: b * prompt,
                step_s: positive(v[3], "prompt_time")? / 1e3,
                line,
            });
            out.push(StepSample {
                batch: b,
                ctx_tok: prompt + toks / 2.0,
                prefill_tok: 0.0,
                step_s: positive(v[4], "token_time")? / 1e3,
                line,
            });
        }
    }
    if out.is_empty() {
        return Err(InputError::EmptyFile {
            path: path.to_path_buf(),
            expected: "measured step rows".into(),
        });
    }
    Ok(out)
}

/// Result of a calibration: the fitted profile and the fit.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// `base` with `w_s`, `h_s`, `prefill_s_per_token` replaced by the fit.
    pub profile: Profile,
    /// The fit (coefficients W s, H s, prefill s/token; relative residuals).
    pub fit: LinearFit,
    /// The samples, in fit order.
    pub samples: Vec<StepSample>,
    /// Why the fitted profile may not describe the measurements (empty: none).
    pub warnings: Vec<String>,
}

/// Median relative fit error above which a calibration is flagged.
pub const WARN_MEDIAN_REL_ERR: f64 = 0.10;

/// Largest relative fit error of one point above which a calibration is flagged.
pub const WARN_MAX_REL_ERR: f64 = 0.30;

/// Warnings for a fit whose errors are too large to trust the profile.
fn fit_warnings(fit: &LinearFit, samples: &[StepSample]) -> Vec<String> {
    let mut w = Vec::new();
    if fit.median_rel_err > WARN_MEDIAN_REL_ERR {
        w.push(format!(
            "median fit error {:.1}% exceeds {:.0}%: the step-time model W + H·ctx + prefill does not describe these measurements (check units, columns and that each row is one step)",
            100.0 * fit.median_rel_err,
            100.0 * WARN_MEDIAN_REL_ERR
        ));
    }
    if fit.max_rel_err > WARN_MAX_REL_ERR {
        let worst = fit
            .rel_residuals
            .iter()
            .zip(samples)
            .max_by(|a, b| a.0.abs().total_cmp(&b.0.abs()))
            .map(|(_, s)| s.line)
            .unwrap_or(0);
        w.push(format!(
            "max fit error {:.1}% (line {worst}) exceeds {:.0}%",
            100.0 * fit.max_rel_err,
            100.0 * WARN_MAX_REL_ERR
        ));
    }
    w
}

/// Fit W, H and the prefill cost per token to `samples`, keeping the other
/// fields of `base` (capacity, price, power). `field` names the input for errors.
pub fn calibrate(
    field: &str,
    base: &Profile,
    samples: Vec<StepSample>,
    name: &str,
) -> Result<Calibration, InputError> {
    let cal = base.calibration_ctx;
    let x: Vec<Vec<f64>> = samples.iter().map(|s| s.regressors(cal)).collect();
    let y: Vec<f64> = samples.iter().map(|s| s.step_s).collect();
    let fit = fit_nonneg_relative(&x, &y).ok_or_else(|| {
        InputError::field(field, "cannot fit: the measurements do not vary enough (need steps with different batch·context, and prefill tokens to fit the prefill term)")
    })?;
    if fit.coef[0] <= 0.0 {
        return Err(InputError::field(
            field,
            "the fitted fixed step time W is 0; add measurements at small batches",
        ));
    }
    let profile = Profile {
        name: name.to_string(),
        w_s: fit.coef[0],
        h_s: fit.coef[1],
        prefill_s_per_token: fit.coef[2],
        // Fitted linear coefficients replace any per-batch law of the base.
        step_law: None,
        ..base.clone()
    };
    profile
        .validate()
        .map_err(|r| InputError::field(field, r))?;
    Ok(Calibration {
        profile,
        warnings: fit_warnings(&fit, &samples),
        fit,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(p: &Profile) -> Vec<StepSample> {
        let mut v = vec![];
        for b in [1.0, 8.0, 32.0, 128.0] {
            for ctx in [512.0, 4096.0, 16384.0] {
                for pf in [0.0, 1024.0] {
                    let s = p.step_s(b * ctx + pf, pf);
                    v.push(StepSample {
                        batch: b,
                        ctx_tok: ctx,
                        prefill_tok: pf,
                        step_s: s,
                        line: 0,
                    });
                }
            }
        }
        v
    }

    #[test]
    fn recovers_profile_coefficients_exactly_and_reports_noise() {
        let truth = Profile {
            prefill_s_per_token: 3.0e-5,
            ..Profile::preset("h100").unwrap()
        };
        let c = calibrate("t", &truth, synthetic(&truth), "fit").expect("fit");
        for (got, want) in [
            (c.profile.w_s, truth.w_s),
            (c.profile.h_s, truth.h_s),
            (c.profile.prefill_s_per_token, 3.0e-5),
        ] {
            assert!((got - want).abs() / want < 1e-6, "{got} vs {want}");
        }
        assert!(c.fit.max_rel_err < 1e-9);
        // Deterministic ±5 % "noise": the fit error is reported, nonzero.
        let mut noisy = synthetic(&truth);
        for (i, s) in noisy.iter_mut().enumerate() {
            s.step_s *= 1.0 + 0.05 * ((i * 7919 % 11) as f64 / 5.0 - 1.0);
        }
        let n = calibrate("t", &truth, noisy, "fit").expect("fit");
        assert!(
            n.fit.median_rel_err > 0.005 && n.fit.max_rel_err < 0.2,
            "{:?}",
            n.fit
        );
        assert!((n.profile.h_s - truth.h_s).abs() / truth.h_s < 0.2);
    }
}
