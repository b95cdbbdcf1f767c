//! `kvfleet profile`: a profile's derived numbers (capacity, step times,
//! prefill times, saturation throughput, power), and `profile step`: one raw
//! roofline step of a computed profile.

use serde::Serialize;

use super::output::OutputArgs;
use super::{Outcome, Report};
use crate::error::InputError;
use crate::profile::roofline::{Batch, RooflineParams, StepTime};
use crate::profile::validate::{
    TARGET_MEDIAN_REL_ERR, ValidationReport, parse_points, shipped_points, validate,
};
use crate::profile::{
    ComputedProfile, Profile, ProfileOverrides, computed_profile, resolve_profile,
};

/// Flags of `profile`.
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    /// `step`: one roofline step.
    #[command(subcommand)]
    pub cmd: Option<ProfileCmd>,
    /// Profile: a10g, a100, h100, a profile .toml, or HW:MODEL:tpN:DTYPE (e.g. h100-sxm:llama-3.1-70b:tp8:fp8).
    #[arg(long, default_value = "h100")]
    pub gpu: String,
    /// Context at which to report max concurrent sequences, tokens.
    #[arg(long, default_value_t = 8192)]
    pub ctx: u32,
    /// Batches of the step-time table.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128,256")]
    pub batches: Vec<u32>,
    /// Contexts of the step-time table, tokens.
    #[arg(long, value_delimiter = ',', default_value = "1024,8192,32768")]
    pub contexts: Vec<u32>,
    /// Prompt lengths for the prefill-time table, tokens.
    #[arg(long, value_delimiter = ',', default_value = "512,2048,8192,32768")]
    pub prompts: Vec<u32>,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Subcommands of `profile`.
#[derive(Debug, clap::Subcommand)]
pub enum ProfileCmd {
    /// One step of the raw roofline: B decode sequences at context C plus P prefill tokens.
    Step(StepArgs),
    /// Roofline against published step-time measurements: per-point and per (device, model) median errors.
    Validate(ValidateArgs),
}

/// Flags of `profile validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Measurements TOML (`[[point]]` tables as in data/roofline_validation.toml); default: the shipped file.
    #[arg(long, value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
    /// Also list every point (default: only the median tables).
    #[arg(long)]
    pub points: bool,
    /// Also replay the measured serving rows (data/measured/, compiled in) as
    /// the benchmark they were, with the shipped calibration and without.
    #[arg(long)]
    pub serving: bool,
    /// With --serving: use this calibration overlay instead of data/calibration/vllm-h100.toml.
    #[arg(long, value_name = "FILE.toml", requires = "serving")]
    pub calibration: Option<std::path::PathBuf>,
}

/// Flags of `profile step`.
#[derive(Debug, clap::Args)]
pub struct StepArgs {
    /// Computed profile HW:MODEL:tpN:DTYPE.
    #[arg(long)]
    pub gpu: String,
    /// Decode sequences.
    #[arg(long)]
    pub batch: u32,
    /// Context of each decode sequence, tokens.
    #[arg(long)]
    pub ctx: u32,
    /// Prefill tokens in the step (a fresh prompt chunk).
    #[arg(long, default_value_t = 0)]
    pub prefill_tokens: u32,
}

/// The roofline instance behind a computed profile, summarised.
#[derive(Debug, Serialize)]
pub struct InstanceSummary {
    /// Hardware catalog name.
    pub hardware: String,
    /// Model name.
    pub model: String,
    /// Tensor-parallel degree.
    pub tp: u64,
    /// Expert-parallel degree.
    pub ep: u64,
    /// Weight storage dtype.
    pub weight_dtype: String,
    /// Math dtype on this hardware.
    pub compute_dtype: String,
    /// KV-cache dtype.
    pub kv_dtype: String,
    /// Total parameters, billions.
    pub params_b: f64,
    /// Parameters multiplied per token, billions.
    pub active_params_b: f64,
    /// Weights per GPU, GB.
    pub weights_per_gpu_gb: f64,
    /// KV bytes per token on each GPU.
    pub kv_bytes_per_token_per_gpu: f64,
    /// Median |relative error| of the linear profile against the roofline on its grid.
    pub linear_fit_median_rel_err: f64,
    /// Max |relative error| of the linear profile against the roofline on its grid.
    pub linear_fit_max_rel_err: f64,
    /// Grid points of the linearisation.
    pub linear_fit_points: usize,
}

/// One cell of the step-time table.
#[derive(Debug, Serialize)]
pub struct StepRow {
    /// Decode sequences.
    pub batch: u32,
    /// Context per sequence, tokens.
    pub ctx: u32,
    /// Linear-profile step time (what the DES uses), ms.
    pub linear_ms: f64,
    /// Roofline step time (computed profiles), ms.
    pub roofline_ms: Option<f64>,
    /// Roofline bound.
    pub bound: Option<&'static str>,
    /// Decode throughput of the linear profile, tokens/s.
    pub decode_tok_per_s: f64,
}

/// Prefill time of one prompt (alone on the instance, chunked).
#[derive(Debug, Serialize)]
pub struct PrefillRow {
    /// Prompt length, tokens.
    pub prompt_tok: u32,
    /// Steps (ceil(prompt / chunk)).
    pub steps: u32,
    /// Linear-profile prefill time, s.
    pub linear_s: f64,
    /// Roofline prefill time, s.
    pub roofline_s: Option<f64>,
}

/// Power at one batch.
#[derive(Debug, Serialize)]
pub struct PowerRow {
    /// Running sequences.
    pub batch: u32,
    /// Instance power, W.
    pub power_w: f64,
}

/// Report of `kvfleet profile`.
#[derive(Debug, Serialize)]
pub struct ProfileReport {
    /// The profile the simulator uses.
    pub profile: Profile,
    /// Roofline details (computed profiles only).
    pub computed: Option<InstanceSummary>,
    /// KV capacity, tokens.
    pub kv_capacity_tok: u64,
    /// Context for `max_concurrent_seqs`, tokens.
    pub ctx: u32,
    /// Max concurrent sequences at `ctx` (n_slots).
    pub max_concurrent_seqs: u32,
    /// Step times over batch × context.
    pub steps: Vec<StepRow>,
    /// Prefill times.
    pub prefill: Vec<PrefillRow>,
    /// Saturation decode throughput at `ctx` (max concurrent sequences), tokens/s.
    pub saturation_tok_per_s: f64,
    /// Power at batch.
    pub power: Vec<PowerRow>,
}

/// Build the `profile` report.
pub fn profile_report(args: &ProfileArgs) -> Result<ProfileReport, InputError> {
    let computed: Option<ComputedProfile> = if crate::profile::computed::is_computed_spec(&args.gpu)
    {
        Some(computed_profile("--gpu", &args.gpu)?)
    } else {
        None
    };
    let p = match &computed {
        Some(c) => c.profile.clone(),
        None => resolve_profile("--gpu", &args.gpu, &ProfileOverrides::default())?,
    };
    if args.ctx == 0
        || args.contexts.contains(&0)
        || args.batches.contains(&0)
        || args.prompts.contains(&0)
    {
        return Err(InputError::field(
            "--ctx/--contexts/--batches/--prompts",
            "values must be ≥ 1",
        ));
    }
    let roof = |b: &Batch| computed.as_ref().map(|c| c.instance.step(b));
    let mut steps = vec![];
    for &b in &args.batches {
        for &c in &args.contexts {
            let sum = b as f64 * c as f64;
            let lin = p.step_s(sum, 0.0);
            let r = roof(&Batch {
                n_decode: b as f64,
                decode_ctx_sum_tok: sum,
                ..Default::default()
            });
            steps.push(StepRow {
                batch: b,
                ctx: c,
                linear_ms: lin * 1e3,
                roofline_ms: r.map(|r| r.step_s * 1e3),
                bound: r.map(|r| r.bound),
                decode_tok_per_s: b as f64 / lin,
            });
        }
    }
    let prefill = args
        .prompts
        .iter()
        .map(|&l| {
            let steps = l.div_ceil(p.chunk);
            let (mut lin, mut rf) = (0.0, 0.0);
            for k in 0..steps {
                let done = k * p.chunk;
                let tok = (l - done).min(p.chunk);
                lin += p.step_s((done + tok) as f64, tok as f64);
                if let Some(r) = roof(&Batch {
                    prefill_tok: tok as f64,
                    prefill_prior_ctx_tok: done as f64,
                    prefill_seqs: 1.0,
                    ..Default::default()
                }) {
                    rf += r.step_s;
                }
            }
            PrefillRow {
                prompt_tok: l,
                steps,
                linear_s: lin,
                roofline_s: computed.as_ref().map(|_| rf),
            }
        })
        .collect();
    let n = p.n_slots(args.ctx);
    let saturation_tok_per_s = if n == 0 {
        0.0
    } else {
        n as f64 / p.step_s(n as f64 * args.ctx as f64, 0.0)
    };
    let power = [0u32, 1, 4, 16, 64, p.max_slots]
        .into_iter()
        .map(|b| PowerRow {
            batch: b,
            power_w: p.power.power_w(b, p.max_slots),
        })
        .collect();
    let summary = computed.as_ref().map(|c| {
        let i = &c.instance;
        InstanceSummary {
            hardware: i.hw.name.clone(),
            model: i.model.name.clone(),
            tp: i.tp,
            ep: i.ep,
            weight_dtype: i.weight_dtype.as_str().into(),
            compute_dtype: i.hw.compute_dtype(i.weight_dtype).as_str().into(),
            kv_dtype: i.kv_dtype.as_str().into(),
            params_b: i.model.total_params() as f64 / 1e9,
            active_params_b: i.model.active_params() as f64 / 1e9,
            weights_per_gpu_gb: i.weight_bytes_per_gpu() / 1e9,
            kv_bytes_per_token_per_gpu: i.kv_bytes_per_token_per_gpu(),
            linear_fit_median_rel_err: c.fit.median_rel_err,
            linear_fit_max_rel_err: c.fit.max_rel_err,
            linear_fit_points: c.grid.len(),
        }
    });
    Ok(ProfileReport {
        kv_capacity_tok: p.kv_capacity_tok(),
        ctx: args.ctx,
        max_concurrent_seqs: n,
        steps,
        prefill,
        saturation_tok_per_s,
        power,
        computed: summary,
        profile: p,
    })
}

/// Report of `kvfleet profile step`.
#[derive(Debug, Serialize)]
pub struct StepReport {
    /// Roofline step time, ms.
    pub step_ms: f64,
    /// Dominant term: compute, memory or comm.
    pub bound: &'static str,
    /// Compute time, ms.
    pub compute_ms: f64,
    /// Memory time, ms.
    pub memory_ms: f64,
    /// Communication time, ms.
    pub comm_ms: f64,
    /// Fixed overhead, ms.
    pub overhead_ms: f64,
    /// Linear profile's step time for the same batch, ms.
    pub linear_ms: f64,
    /// FLOPs of the step.
    pub flops: f64,
    /// HBM bytes per GPU.
    pub bytes_per_gpu: f64,
    /// Decode sequences.
    pub batch: u32,
    /// Context per sequence, tokens.
    pub ctx: u32,
    /// Prefill tokens.
    pub prefill_tokens: u32,
}

/// Build the `profile step` report.
pub fn step_report(a: &StepArgs) -> Result<StepReport, InputError> {
    if !crate::profile::computed::is_computed_spec(&a.gpu) {
        return Err(InputError::field(
            "--gpu",
            format!(
                "`profile step` needs a computed profile HW:MODEL:tpN:DTYPE, got `{}`",
                a.gpu
            ),
        ));
    }
    let c = computed_profile("--gpu", &a.gpu)?;
    let b = Batch {
        n_decode: a.batch as f64,
        decode_ctx_sum_tok: a.batch as f64 * a.ctx as f64,
        prefill_tok: a.prefill_tokens as f64,
        prefill_prior_ctx_tok: 0.0,
        prefill_seqs: 1.0,
    };
    let StepTime {
        step_s,
        compute_s,
        memory_s,
        comm_s,
        overhead_s,
        bound,
        flops,
        bytes_per_gpu,
    } = c.instance.step(&b);
    Ok(StepReport {
        step_ms: step_s * 1e3,
        bound,
        compute_ms: compute_s * 1e3,
        memory_ms: memory_s * 1e3,
        comm_ms: comm_s * 1e3,
        overhead_ms: overhead_s * 1e3,
        linear_ms: c
            .profile
            .step_s(b.decode_ctx_sum_tok + b.prefill_tok, b.prefill_tok)
            * 1e3,
        flops,
        bytes_per_gpu,
        batch: a.batch,
        ctx: a.ctx,
        prefill_tokens: a.prefill_tokens,
    })
}

/// `profile validate` output: the validation report and whether to list points.
#[derive(Debug, Serialize)]
pub struct ValidateOutput {
    /// The comparison.
    #[serde(flatten)]
    pub report: ValidationReport,
    /// The file compared against.
    pub file: String,
    /// Acceptance target on the dense decode median.
    pub target_median_rel_err: f64,
    /// The measured serving rows replayed (`--serving`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving: Option<crate::benchmark::validation::ServingValidation>,
    /// Show every point, not only the summary (`--points`).
    #[serde(skip)]
    pub list_points: bool,
}

/// Build the `profile validate` report.
pub fn validate_report(a: &ValidateArgs) -> Result<ValidateOutput, InputError> {
    let (points, file) = match &a.file {
        Some(path) => {
            let text = crate::input_file::read_text(path)?;
            let name = path.display().to_string();
            (parse_points(&text, &name)?, name)
        }
        None => (
            shipped_points(),
            "data/roofline_validation.toml".to_string(),
        ),
    };
    let serving = if a.serving {
        use crate::benchmark::validation as v;
        Some(match &a.calibration {
            None => v::validate_shipped()?,
            Some(path) => v::validate_serving(
                &v::shipped_rows(),
                &v::shipped_settings(v::SHIPPED_SPEC),
                crate::profile::overlay::CalibrationOverlay::load(path)?.efficiency,
                v::SHIPPED_ROWS_FILE,
                &path.display().to_string(),
            )?,
        })
    } else {
        None
    };
    Ok(ValidateOutput {
        report: validate(&points, RooflineParams::default())?,
        file,
        target_median_rel_err: TARGET_MEDIAN_REL_ERR,
        serving,
        list_points: a.points,
    })
}

/// Run `profile`.
pub fn execute(args: ProfileArgs) -> anyhow::Result<Outcome> {
    Ok(match &args.cmd {
        Some(ProfileCmd::Step(s)) => Report::ProfileStep(Box::new(step_report(s)?)),
        Some(ProfileCmd::Validate(v)) => Report::ProfileValidate(Box::new(validate_report(v)?)),
        None => Report::Profile(Box::new(profile_report(&args)?)),
    }
    .into())
}
