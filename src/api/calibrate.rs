//! `kvfleet calibrate`: fit W, H and the prefill cost per token to measured
//! step times and print the fitted profile as TOML.

use std::path::PathBuf;

use super::{Outcome, Report};
use crate::error::InputError;
use crate::profile::calibrate::{calibrate, read_samples};
use crate::profile::{ProfileOverrides, resolve_profile};

/// Flags of `calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Measurements CSV: `batch,ctx,prefill_tokens,step_ms`, or
    /// `batch_size,prompt_size,token_size,prompt_time,token_time` (ms).
    #[arg(required_unless_present = "serving")]
    pub measurements: Option<PathBuf>,
    /// Fit the efficiency factors of a computed spec (`--gpu HW:MODEL:DTYPE`,
    /// TP from each row) to measured serving-benchmark rows instead (the
    /// data/measured/ CSV or InferenceMAX agg_bmk.json); prints a calibration overlay.
    #[arg(long, value_name = "FILE", conflicts_with = "measurements")]
    pub serving: Option<PathBuf>,
    /// With --serving: fit settings.
    #[command(flatten)]
    pub serving_fit: super::calibrate_serving::ServingFitArgs,
    /// Profile supplying the fields that are not fitted (KV blocks, slots, chunk, price, power).
    #[arg(long, default_value = "h100")]
    pub gpu: String,
    /// Name of the fitted profile (default: `calibrated-<gpu>`).
    #[arg(long)]
    pub name: Option<String>,
    /// Write the TOML profile here instead of stdout (the fit summary then goes to stdout).
    #[arg(long, value_name = "FILE.toml")]
    pub out: Option<PathBuf>,
    /// Print every point's residual.
    #[arg(long, short)]
    pub verbose: bool,
    /// Print the fit as one JSON document instead.
    #[arg(long)]
    pub json: bool,
    /// No warnings or progress on stderr (the fit's warnings stay in its summary).
    #[arg(long, short)]
    pub quiet: bool,
    /// Base-profile overrides (e.g. --kv-blocks, --calibration-ctx).
    #[command(flatten)]
    pub profile: ProfileOverrides,
}

/// The result of `calibrate` (step-time or `--serving` fit): the fit as
/// JSON (the `--json` document), a commented summary, the text shown
/// without `--out`, and the text `--out` writes (the profile or overlay TOML).
pub struct CalibrationReport {
    /// The fit, serialised (the `--json` document).
    pub fit: serde_json::Value,
    /// The fit's errors and coefficients, for people.
    pub summary: String,
    /// What is printed without `--out` (summary and TOML).
    pub text: String,
    /// What `--out FILE` receives.
    pub file: String,
}

impl serde::Serialize for CalibrationReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.fit.serialize(s)
    }
}

/// Run `calibrate`.
pub fn execute(args: CalibrateArgs) -> anyhow::Result<Outcome> {
    if let Some(rows) = &args.serving {
        return super::calibrate_serving::execute(&args, rows);
    }
    let Some(measurements) = &args.measurements else {
        return Err(
            InputError::Usage("calibrate needs MEASUREMENTS or --serving FILE".into()).into(),
        );
    };
    let base = resolve_profile("--gpu", &args.gpu, &args.profile)?;
    let samples = read_samples(measurements)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("calibrated-{}", args.gpu));
    let field = measurements.display().to_string();
    let c = calibrate(&field, &base, samples, &name)?;
    let toml =
        toml::to_string(&c.profile).map_err(|e| InputError::field("--out", e.to_string()))?;
    let mut summary = format!(
        "# fitted on {} points: median relative error {:.3}%, max {:.3}%\n# W = {:.4} ms, H = {:.5} ms @ {} ctx, prefill = {:.4} µs/token\n",
        c.samples.len(),
        c.fit.median_rel_err * 100.0,
        c.fit.max_rel_err * 100.0,
        c.profile.w_s * 1e3,
        c.profile.h_s * 1e3,
        c.profile.calibration_ctx,
        c.profile.prefill_s_per_token * 1e6
    );
    let mut notices = Vec::new();
    for w in &c.warnings {
        summary += &format!("# WARNING: {w}\n");
        notices.push(format!("warning: {w}"));
    }
    if args.verbose {
        summary += "# line  batch  ctx  prefill  measured_ms  fitted_ms  rel_residual\n";
        for (s, r) in c.samples.iter().zip(&c.fit.rel_residuals) {
            summary += &format!(
                "# {:>4} {:>6} {:>6} {:>7} {:>11.4} {:>10.4} {:>+12.4}\n",
                s.line,
                s.batch,
                s.ctx_tok,
                s.prefill_tok,
                s.step_s * 1e3,
                s.step_s * (1.0 + r) * 1e3,
                r
            );
        }
    }
    Ok(Outcome {
        report: Report::Calibration(Box::new(CalibrationReport {
            fit: serde_json::to_value(&c)?,
            text: format!("{summary}{toml}"),
            file: format!("{summary}{toml}"),
            summary,
        })),
        notices,
    })
}
