//! Calibration overlays: the software efficiency of one (hardware family,
//! serving framework), kept apart from the catalog's physical numbers
//! (FLOPs, bandwidth, memory) so that a calibration fitted on one GPU can be
//! carried to another of the same framework. A computed spec takes one as
//! `HW:MODEL:tpN:DTYPE@FILE.toml` (or through a `--calibration` flag).
//!
//! ```toml
//! framework = "vllm"
//! fitted_on = "h100-sxm gpt-oss-120b fp4 tp2/4/8, 43 InferenceMAX rows"
//! [efficiency]
//! compute_eff = 0.31
//! memory_eff = 0.62
//! step_overhead_s = 0.0021
//! ```
//! Fields left out of `[efficiency]` keep the roofline's defaults.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::roofline::RooflineParams;
use crate::error::InputError;

/// A calibration overlay file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalibrationOverlay {
    /// Serving framework the efficiencies describe (e.g. `vllm`).
    pub framework: String,
    /// What the factors were fitted on (hardware, model, rows).
    pub fitted_on: String,
    /// The efficiency factors and serving constants.
    pub efficiency: RooflineParams,
}

impl CalibrationOverlay {
    /// Read and check an overlay file.
    pub fn load(path: &Path) -> Result<CalibrationOverlay, InputError> {
        let text = crate::input_file::read_text(path)?;
        let o: CalibrationOverlay = toml::from_str(&text).map_err(|e| InputError::File {
            path: path.to_path_buf(),
            reason: format!(
                "not a calibration overlay ({}); expected `framework`, `fitted_on` and an [efficiency] table of {}",
                e.message(),
                EFFICIENCY_FIELDS
            ),
        })?;
        check_params(&o.efficiency).map_err(|reason| InputError::File {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(o)
    }

    /// The overlay as TOML text with a header comment.
    pub fn to_toml(&self, header: &str) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        let mut out = String::new();
        for line in header.lines() {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
        out + &body
    }
}

/// Names of the `[efficiency]` fields, for error messages.
pub const EFFICIENCY_FIELDS: &str = "compute_eff, memory_eff, link_eff, hop_latency_s, step_overhead_s, seq_overhead_s, cuda_graph_max_tok, frontend_latency_s, mem_fraction, reserve_gb, act_bytes";

/// Check that efficiency factors are physically meaningful.
pub fn check_params(p: &RooflineParams) -> Result<(), String> {
    let frac = |v: f64, f: &str| {
        if v.is_finite() && v > 0.0 && v <= 1.0 {
            Ok(())
        } else {
            Err(format!("efficiency.{f} must be in (0, 1], got {v}"))
        }
    };
    let nonneg = |v: f64, f: &str| {
        if v.is_finite() && (0.0..=1.0).contains(&v) {
            Ok(())
        } else {
            Err(format!("efficiency.{f} must be 0..=1 s, got {v}"))
        }
    };
    frac(p.compute_eff, "compute_eff")?;
    frac(p.memory_eff, "memory_eff")?;
    frac(p.link_eff, "link_eff")?;
    frac(p.mem_fraction, "mem_fraction")?;
    nonneg(p.hop_latency_s, "hop_latency_s")?;
    nonneg(p.step_overhead_s, "step_overhead_s")?;
    nonneg(p.seq_overhead_s, "seq_overhead_s")?;
    nonneg(p.frontend_latency_s, "frontend_latency_s")?;
    if !(p.reserve_gb.is_finite() && p.reserve_gb >= 0.0) {
        return Err(format!(
            "efficiency.reserve_gb must be ≥ 0, got {}",
            p.reserve_gb
        ));
    }
    if !(p.act_bytes.is_finite() && p.act_bytes > 0.0) {
        return Err(format!(
            "efficiency.act_bytes must be > 0, got {}",
            p.act_bytes
        ));
    }
    Ok(())
}

/// Split `SPEC@FILE` into the spec and the overlay path, if any.
pub fn split_overlay(spec: &str) -> (&str, Option<&str>) {
    match spec.rsplit_once('@') {
        Some((s, f)) if !f.is_empty() => (s, Some(f)),
        _ => (spec, None),
    }
}
