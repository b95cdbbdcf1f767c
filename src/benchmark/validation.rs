//! Validation of the serving-instance model against the measured rows
//! shipped in `data/measured/` (43 InferenceMAX H100 rows, gpt-oss-120b FP4,
//! vLLM, TP 2/4/8) with the calibration fitted on them
//! (`data/calibration/vllm-h100.toml`), beside the uncalibrated roofline.
//! Both files are compiled in, so `kvfleet profile validate --serving`
//! works from any directory.

use std::path::Path;

use serde::Serialize;

use super::measured::{MeasuredRow, parse_measured};
use super::serving_fit::{GroupError, ReplaySettings, ReplayedRow, group_errors, replay};
use crate::error::InputError;
use crate::profile::overlay::CalibrationOverlay;
use crate::profile::roofline::RooflineParams;

/// The shipped measured rows (`data/measured/inferencemax_gptoss_h100.csv`).
pub const SHIPPED_ROWS_CSV: &str = include_str!("../../data/measured/inferencemax_gptoss_h100.csv");
/// Their file name in the repository.
pub const SHIPPED_ROWS_FILE: &str = "data/measured/inferencemax_gptoss_h100.csv";
/// The shipped calibration (`data/calibration/vllm-h100.toml`).
pub const SHIPPED_CALIBRATION_TOML: &str = include_str!("../../data/calibration/vllm-h100.toml");
/// Its file name in the repository.
pub const SHIPPED_CALIBRATION_FILE: &str = "data/calibration/vllm-h100.toml";
/// The instance the shipped rows measured (TP from each row).
pub const SHIPPED_SPEC: &str = "h100-sxm:gpt-oss-120b:fp4";

/// The shipped measured rows.
pub fn shipped_rows() -> Vec<MeasuredRow> {
    parse_measured(Path::new(SHIPPED_ROWS_FILE), SHIPPED_ROWS_CSV)
        .expect("the shipped measured rows parse (checked by a test)")
}

/// The shipped calibration overlay.
pub fn shipped_calibration() -> CalibrationOverlay {
    toml::from_str(SHIPPED_CALIBRATION_TOML)
        .expect("the shipped calibration parses (checked by a test)")
}

/// The replay settings of the shipped rows (the benchmark's: range ratio
/// 0.8, 10 prompts per unit of concurrency, `max_num_batched_tokens` 8192).
pub fn shipped_settings(spec: &str) -> ReplaySettings {
    ReplaySettings {
        spec: spec.to_string(),
        range_ratio: 0.8,
        chunk_tok: 8192,
        prompts_per_conc: 10,
        seed: 1,
    }
}

/// Serving validation: errors per group, calibrated and uncalibrated.
#[derive(Debug, Clone, Serialize)]
pub struct ServingValidation {
    /// Instance spec (TP from each row).
    pub spec: String,
    /// Measured rows' file.
    pub rows_file: String,
    /// Calibration overlay's file.
    pub calibration_file: String,
    /// Errors with the calibration, per TP, per TP and ISL/OSL, and overall.
    pub calibrated: Vec<GroupError>,
    /// Errors of the roofline's defaults (fitted on step times, not serving).
    pub uncalibrated: Vec<GroupError>,
    /// Every row with the calibration.
    pub rows: Vec<ReplayedRow>,
}

/// Replay `rows` with `calibration` and with the defaults.
pub fn validate_serving(
    rows: &[MeasuredRow],
    settings: &ReplaySettings,
    calibration: RooflineParams,
    rows_file: &str,
    calibration_file: &str,
) -> Result<ServingValidation, InputError> {
    let cal = replay(rows, settings, calibration)?;
    let raw = replay(rows, settings, RooflineParams::default())?;
    Ok(ServingValidation {
        spec: settings.spec.clone(),
        rows_file: rows_file.to_string(),
        calibration_file: calibration_file.to_string(),
        calibrated: group_errors(&cal),
        uncalibrated: group_errors(&raw),
        rows: cal,
    })
}

/// The shipped rows with the shipped calibration.
pub fn validate_shipped() -> Result<ServingValidation, InputError> {
    validate_serving(
        &shipped_rows(),
        &shipped_settings(SHIPPED_SPEC),
        shipped_calibration().efficiency,
        SHIPPED_ROWS_FILE,
        SHIPPED_CALIBRATION_FILE,
    )
}
