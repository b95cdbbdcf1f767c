//! `kvfleet calibrate --serving FILE`: fit the efficiency factors of one
//! (hardware, framework) to measured serving-benchmark rows and print them
//! as a calibration overlay, with the fit's error per row.

use std::fmt::Write as _;
use std::path::Path;

use super::calibrate::{CalibrateArgs, CalibrationReport};
use super::{Outcome, Report};
use crate::benchmark::measured::read_measured;
use crate::benchmark::serving_fit::{ReplaySettings, fit_serving, group_errors, start_params};
use crate::error::InputError;
use crate::profile::computed::is_computed_spec;

/// Settings of a serving calibration.
#[derive(Debug, Clone, clap::Args)]
pub struct ServingFitArgs {
    /// With --serving: range ratio of the measured random lengths.
    #[arg(long, default_value_t = 0.8)]
    pub range_ratio: f64,
    /// With --serving: the server's --max-num-batched-tokens.
    #[arg(long, default_value_t = 8192)]
    pub max_num_batched_tokens: u32,
    /// With --serving: requests per unit of concurrency of the measurement.
    #[arg(long, default_value_t = 10)]
    pub num_prompts_per_conc: u32,
    /// With --serving: most objective evaluations of the fit (each replays every row).
    #[arg(long, default_value_t = 600)]
    pub max_evals: u32,
    /// With --serving: framework name written into the overlay.
    #[arg(long, default_value = "vllm")]
    pub framework: String,
}

/// Run `calibrate --serving`.
pub fn execute(args: &CalibrateArgs, rows_path: &Path) -> anyhow::Result<Outcome> {
    let s = &args.serving_fit;
    if !is_computed_spec(&args.gpu) || args.gpu.contains('@') {
        return Err(InputError::field(
            "--gpu",
            format!(
                "--serving fits a computed spec without an overlay (HW:MODEL:DTYPE, e.g. h100-sxm:gpt-oss-120b:fp4), got `{}`",
                args.gpu
            ),
        )
        .into());
    }
    if !(s.range_ratio > 0.0 && s.range_ratio <= 1.0) {
        return Err(InputError::field("--range-ratio", "expected a ratio in (0, 1]").into());
    }
    if !(1..=1_000_000).contains(&s.max_num_batched_tokens) {
        return Err(InputError::field("--max-num-batched-tokens", "expected 1..=1000000").into());
    }
    if !(1..=1000).contains(&s.num_prompts_per_conc) {
        return Err(InputError::field("--num-prompts-per-conc", "expected 1..=1000").into());
    }
    if !(10..=100_000).contains(&s.max_evals) {
        return Err(InputError::field("--max-evals", "expected 10..=100000").into());
    }
    let rows = read_measured(rows_path)?;
    let set = ReplaySettings {
        spec: args.gpu.clone(),
        range_ratio: s.range_ratio,
        chunk_tok: s.max_num_batched_tokens,
        prompts_per_conc: s.num_prompts_per_conc,
        seed: 1,
    };
    let fitted_on = format!(
        "{} ({} rows of {})",
        args.gpu,
        rows.len(),
        rows_path.display()
    );
    let fit = fit_serving(
        &rows,
        &set,
        start_params(),
        s.max_evals,
        &s.framework,
        &fitted_on,
    )?;
    let mut summary = format!(
        "serving calibration of {} on {} rows: objective {:.4} -> {:.4} after {} evaluations\n",
        args.gpu,
        fit.rows.len(),
        fit.objective_start,
        fit.objective,
        fit.evaluations
    );
    let _ = writeln!(
        summary,
        "{:<18} {:>4} {:>13} {:>13} {:>13}",
        "group", "rows", "tput |err|", "TPOT |err|", "TTFT |err|"
    );
    for g in group_errors(&fit.rows) {
        let _ = writeln!(
            summary,
            "{:<18} {:>4} {:>12.1}% {:>12.1}% {:>12.1}%",
            g.group,
            g.rows,
            100.0 * g.tput_median_abs_err,
            100.0 * g.tpot_median_abs_err,
            100.0 * g.ttft_median_abs_err
        );
    }
    let _ = writeln!(summary, "(median |error| per group)");
    if args.verbose {
        let _ = writeln!(
            summary,
            "{:>5} {:>3} {:>5} {:>5} {:>5} {:>9} {:>9} {:>9}",
            "line", "tp", "isl", "osl", "conc", "tput err", "TPOT err", "TTFT err"
        );
        for r in &fit.rows {
            let _ = writeln!(
                summary,
                "{:>5} {:>3} {:>5} {:>5} {:>5} {:>+8.1}% {:>+8.1}% {:>+8.1}%",
                r.measured.line,
                r.measured.tp.unwrap_or(0),
                r.measured.isl,
                r.measured.osl,
                r.measured.conc,
                100.0 * r.tput_err,
                100.0 * r.tpot_err,
                100.0 * r.ttft_err
            );
        }
    }
    let toml = fit.overlay.to_toml(&format!(
        "kvfleet calibration overlay: use as HW:MODEL:tpN:DTYPE@THIS.toml or --calibration THIS.toml\n{}",
        summary.lines().next().unwrap_or_default()
    ));
    Ok(Report::Calibration(Box::new(CalibrationReport {
        fit: serde_json::to_value(&fit)?,
        text: format!("{summary}\n{toml}"),
        file: toml,
        summary,
    }))
    .into())
}
