//! Computed profiles: `HW:MODEL:tpN:DTYPE[:epN][:kvDTYPE]` → a roofline
//! [`Instance`] → an ordinary [`Profile`] whose `w_s`, `h_s` and
//! `prefill_s_per_token` are the least-squares linearisation of the roofline over
//! a representative operating grid (the DES needs step time linear in Σctx).

use std::path::Path;

use serde::Serialize;

use super::fit::{LinearFit, fit_nonneg_relative};
use super::hardware::{Dtype, hardware_names, lookup_hardware};
use super::models::{load_hf_config, lookup_model, model_names};
use super::roofline::{Batch, Instance, RooflineParams};
use super::step_law::StepLaw;
use super::{PowerCurve, Profile};
use crate::error::InputError;

/// Chunked-prefill budget of computed profiles, tokens (vLLM V1's default
/// `max_num_batched_tokens` of 2048 for online serving).
pub const DEFAULT_CHUNK_TOK: u32 = 2048;
/// Maximum concurrent sequences (vLLM's default `max_num_seqs`), capped by KV blocks.
pub const DEFAULT_MAX_SEQS: u32 = 256;
/// KV block size, tokens.
pub const DEFAULT_BLK_TOK: u32 = 16;
/// Context at which H is expressed, tokens.
pub const CALIBRATION_CTX_TOK: u32 = 8192;
/// Acceptance of each MTP draft position when a spec gives a depth (`mtpD`)
/// without `accA`: DeepSeek-V3's reported acceptance of its first MTP token
/// is 0.85–0.9 (DeepSeek-V3 technical report, §5.4.3); the low end.
pub const DEFAULT_MTP_ACCEPTANCE: f64 = 0.85;
/// Batch sizes whose W(b), H(b) a computed profile tabulates (larger batches,
/// possible with a raised `--max-num-seqs`, are computed on demand).
pub const LAW_TABLE_MAX_BATCH: u32 = 512;
/// Saturated serving power as a fraction of TDP (the h100 preset: 600 W of 700 W).
pub const NOMINAL_POWER_FRACTION: f64 = 0.85;
/// Logistic power-curve steepness (the presets' style).
pub const POWER_K: f64 = 1.0;
/// Logistic midpoint in log2(batch) (between the a100 and h100 presets).
pub const POWER_X0: f64 = 4.0;

/// A computed profile: the profile the DES uses, the roofline it came from and
/// how well the linearisation matches the roofline on its grid.
#[derive(Debug, Clone, Serialize)]
pub struct ComputedProfile {
    /// The linearised profile.
    pub profile: Profile,
    /// The roofline instance.
    pub instance: Instance,
    /// Linearisation fit against the roofline (coefficients W, H, prefill/token).
    pub fit: LinearFit,
    /// Grid points of the fit: (batch, ctx, prefill tokens, roofline step s).
    pub grid: Vec<(u32, u32, u32, f64)>,
}

/// True if `spec` looks like a computed-profile spec rather than a preset or file.
pub fn is_computed_spec(spec: &str) -> bool {
    spec.contains(':') && !Path::new(spec).is_file()
}

/// Parse `HW:MODEL[:tpN][:DTYPE][:epN][:kvDTYPE]` into a roofline instance.
/// MODEL is a catalog name or a path to a Hugging Face `config.json` (or its directory).
pub fn parse_instance(field: &str, spec: &str) -> Result<Instance, InputError> {
    let (spec, overlay) = super::overlay::split_overlay(spec);
    let params = match overlay {
        Some(path) => super::overlay::CalibrationOverlay::load(Path::new(path))?.efficiency,
        None => RooflineParams::default(),
    };
    parse_instance_with(field, spec, params)
}

/// [`parse_instance`] of a spec without an overlay, with these efficiencies.
pub fn parse_instance_with(
    field: &str,
    spec: &str,
    params: RooflineParams,
) -> Result<Instance, InputError> {
    let form = "expected HW:MODEL:tpN:DTYPE (e.g. h100-sxm:llama-3.1-70b:tp8:fp8; parallelism tpN, epN, ppN, dpN, tepN, depN; optional :kvfp8, :mtpD[:accA]; a calibration as @FILE.toml)";
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() < 2 || parts[0].is_empty() || parts[1].is_empty() {
        return Err(InputError::field(
            field,
            format!("computed profile `{spec}`: {form}"),
        ));
    }
    let hw = lookup_hardware(parts[0]).ok_or_else(|| {
        InputError::field(
            field,
            format!(
                "unknown hardware `{}` in `{spec}`; expected one of {}",
                parts[0],
                hardware_names()
            ),
        )
    })?;
    let model = match lookup_model(parts[1]) {
        Some(m) => m.clone(),
        None if parts[1].ends_with(".json") || Path::new(parts[1]).is_dir() => {
            load_hf_config(field, Path::new(parts[1]))?
        }
        None => {
            return Err(InputError::field(
                field,
                format!(
                    "unknown model `{}` in `{spec}`; expected one of {} or a path to a Hugging Face config.json",
                    parts[1],
                    model_names()
                ),
            ));
        }
    };
    let (mut tp, mut ep, mut wd, mut kvd) = (1u64, 1u64, Dtype::Bf16, Dtype::Bf16);
    let (mut dp, mut pp) = (1u64, 1u64);
    let (mut mtp, mut acc) = (0u64, DEFAULT_MTP_ACCEPTANCE);
    for part in &parts[2..] {
        let lower = part.to_ascii_lowercase();
        let num = |s: &str, what: &str| -> Result<u64, InputError> {
            s.parse::<u64>()
                .ok()
                .filter(|v| (1..=576).contains(v))
                .ok_or_else(|| {
                    InputError::field(
                        field,
                        format!("`{part}` in `{spec}`: {what} must be an integer 1..=576"),
                    )
                })
        };
        if let Some(n) = lower.strip_prefix("tep") {
            // Attention tensor-parallel over N, experts expert-parallel over N.
            tp = num(n, "TEP degree")?;
            ep = tp;
        } else if let Some(n) = lower.strip_prefix("dep") {
            // DP-attention over N ranks (attention TP 1), experts EP over N.
            dp = num(n, "DEP degree")?;
            tp = 1;
            ep = dp;
        } else if let Some(n) = lower.strip_prefix("tp") {
            tp = num(n, "TP degree")?;
        } else if let Some(n) = lower.strip_prefix("ep") {
            ep = num(n, "EP degree")?;
        } else if let Some(n) = lower.strip_prefix("dp") {
            dp = num(n, "DP-attention degree")?;
        } else if let Some(n) = lower.strip_prefix("pp") {
            pp = num(n, "PP degree")?;
        } else if let Some(n) = lower.strip_prefix("mtp") {
            mtp = n
                .parse::<u64>()
                .ok()
                .filter(|v| (1..=8).contains(v))
                .ok_or_else(|| {
                    InputError::field(
                        field,
                        format!("`{part}` in `{spec}`: MTP depth must be 1..=8"),
                    )
                })?;
        } else if let Some(a) = lower.strip_prefix("acc") {
            acc = a
                .parse::<f64>()
                .ok()
                .filter(|v| *v > 0.0 && *v <= 1.0)
                .ok_or_else(|| {
                    InputError::field(
                        field,
                        format!("`{part}` in `{spec}`: MTP acceptance must be in (0, 1]"),
                    )
                })?;
        } else if let Some(d) = lower
            .strip_prefix("kv=")
            .or_else(|| lower.strip_prefix("kv"))
        {
            kvd = Dtype::parse(d).ok_or_else(|| {
                InputError::field(
                    field,
                    format!(
                        "unknown KV dtype `{d}` in `{spec}`; expected one of {}",
                        Dtype::NAMES
                    ),
                )
            })?;
        } else {
            wd = Dtype::parse(&lower).ok_or_else(|| {
                InputError::field(
                    field,
                    format!("unknown dtype or option `{part}` in `{spec}`; expected tpN, epN, ppN, dpN, tepN, depN, mtpD, accA, kvDTYPE or one of {}", Dtype::NAMES),
                )
            })?;
        }
    }
    if ep > 1 && (!model.is_moe() || (tp * dp) % ep != 0) {
        return Err(InputError::field(
            field,
            format!(
                "`{spec}`: ep{ep} needs an MoE model and must divide the GPUs per stage (tp{tp} × dp{dp} = {})",
                tp * dp
            ),
        ));
    }
    if pp > model.layers || tp * dp * pp > 576 {
        return Err(InputError::field(
            field,
            format!(
                "`{spec}`: pp{pp} must not exceed the model's {} layers, and tp × dp × pp at most 576 GPUs",
                model.layers
            ),
        ));
    }
    if !model.is_mla() && model.q_heads % tp != 0 {
        return Err(InputError::field(
            field,
            format!(
                "`{spec}`: tp{tp} must divide the model's {} query heads",
                model.q_heads
            ),
        ));
    }
    let inst = Instance {
        hw: hw.clone(),
        model,
        tp,
        ep,
        dp,
        pp,
        mtp_depth: mtp,
        mtp_acceptance: acc,
        weight_dtype: wd,
        kv_dtype: kvd,
        params,
    };
    let min_tok = (CALIBRATION_CTX_TOK as f64).max(DEFAULT_CHUNK_TOK as f64);
    if inst.kv_capacity_tok() < min_tok {
        let need_gb = inst.weight_bytes() / 1e9;
        let fits = [1u64, 2, 4, 8, 16, 32, 64].into_iter().find(|&t| {
            Instance {
                tp: t,
                ..inst.clone()
            }
            .kv_capacity_tok()
                >= min_tok
        });
        let hint = match fits {
            Some(t) => format!("; it fits at tp{t}"),
            None => "; it does not fit at any TP up to 64".into(),
        };
        return Err(InputError::field(
            field,
            format!(
                "`{spec}`: the model does not fit: {need_gb:.1} GB of {} weights on {tp} × {} GB leaves room for fewer than {min_tok} KV tokens{hint}",
                wd.as_str(),
                inst.hw.hbm_gb
            ),
        ));
    }
    Ok(inst)
}

/// Linearise an instance into a [`Profile`] named `name`.
pub fn linearise(name: &str, inst: Instance) -> Result<ComputedProfile, InputError> {
    let blk = DEFAULT_BLK_TOK;
    let total_kv_blks = inst.kv_blocks(blk);
    let kv_tok = (total_kv_blks * blk as u64) as f64;
    let max_slots = (DEFAULT_MAX_SEQS as u64).min(total_kv_blks).max(1) as u32;
    let chunk = DEFAULT_CHUNK_TOK;
    let cal = CALIBRATION_CTX_TOK as f64;
    let mut x = vec![];
    let mut y = vec![];
    let mut grid = vec![];
    let batches: Vec<u32> = [1u32, 2, 4, 8, 16, 32, 64, 128, 256, 512]
        .into_iter()
        .filter(|&b| b < max_slots)
        .chain([max_slots])
        .collect();
    for &b in &batches {
        for ctx in [256u32, 1024, 4096, 8192, 16384, 32768] {
            for p in [0, chunk / 2, chunk] {
                let used = b as f64 * ctx as f64 + p as f64;
                if used > kv_tok {
                    continue;
                }
                let batch = Batch {
                    n_decode: b as f64,
                    decode_ctx_sum_tok: b as f64 * ctx as f64,
                    prefill_tok: p as f64,
                    prefill_prior_ctx_tok: 0.0,
                    prefill_seqs: 1.0,
                };
                let s = inst.step(&batch).step_s;
                x.push(vec![1.0, used / cal, p as f64]);
                y.push(s);
                grid.push((b, ctx, p, s));
            }
        }
    }
    let fit = fit_nonneg_relative(&x, &y).ok_or_else(|| {
        InputError::field(
            name,
            "roofline linearisation failed (empty or degenerate operating grid)",
        )
    })?;
    let t = inst.gpus() as f64;
    let profile = Profile {
        name: name.to_string(),
        w_s: fit.coef[0],
        h_s: fit.coef[1],
        calibration_ctx: CALIBRATION_CTX_TOK,
        chunk,
        blk_size: blk,
        total_kv_blks,
        max_slots,
        cost_per_hr: inst.hw.usd_per_gpu_hr * t,
        gpus_per_instance: inst.gpus() as u32,
        prefill_s_per_token: fit.coef[2],
        power: PowerCurve::new(
            inst.hw.idle_w * t,
            NOMINAL_POWER_FRACTION * inst.hw.tdp_w * t,
            POWER_K,
            POWER_X0,
        ),
        step_law: Some(std::sync::Arc::new(StepLaw::new(
            inst.clone(),
            LAW_TABLE_MAX_BATCH,
        ))),
    };
    profile.validate().map_err(|r| InputError::field(name, r))?;
    Ok(ComputedProfile {
        profile,
        instance: inst,
        fit,
        grid,
    })
}

/// KV bytes per token assumed for the manual presets and profile files: a
/// 70B-class GQA model (Llama-3-70B: 80 layers × 8 KV heads × 128 head dim ×
/// K and V × 2 bytes BF16 = 327,680 B), the class the presets were calibrated for.
pub const PRESET_KV_BYTES_PER_TOKEN: f64 = 327_680.0;

/// KV bytes per token (whole model) behind a GPU spec: from the model of a
/// computed spec, else [`PRESET_KV_BYTES_PER_TOKEN`].
pub fn kv_bytes_per_token_of(field: &str, spec: &str) -> Result<f64, InputError> {
    if !is_computed_spec(spec) {
        return Ok(PRESET_KV_BYTES_PER_TOKEN);
    }
    let inst = parse_instance(field, spec)?;
    Ok(inst.model.kv_bytes_per_token(inst.kv_dtype.bytes()))
}

/// KV bytes per token handed from a prefill to a decode spec: the model's
/// (computed specs) or the presets' 70B assumption; two computed specs must
/// serve models with the same KV layout.
pub fn handoff_kv_bytes(prefill: (&str, &str), decode: (&str, &str)) -> Result<f64, InputError> {
    let p = kv_bytes_per_token_of(prefill.0, prefill.1)?;
    let d = kv_bytes_per_token_of(decode.0, decode.1)?;
    if (p - d).abs() > 0.5 {
        return Err(InputError::field(
            decode.0,
            format!(
                "prefill and decode hold different KV caches ({p} vs {d} bytes per token): the KV of one model is transferred"
            ),
        ));
    }
    Ok(d)
}

/// Parse and linearise a computed spec; `field` names the flag or scenario field.
pub fn computed_profile(field: &str, spec: &str) -> Result<ComputedProfile, InputError> {
    let inst = parse_instance(field, spec)?;
    linearise(spec, inst).map_err(|e| match e {
        InputError::Field { reason, .. } => InputError::field(field, format!("`{spec}`: {reason}")),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_capacity_scales_with_tp() {
        let c4 = computed_profile("--gpu", "h100-sxm:llama-3.1-70b:tp4:fp8").expect("fits");
        let c8 = computed_profile("--gpu", "h100-sxm:llama-3.1-70b:tp8:fp8").expect("fits");
        let (b4, b8) = (
            c4.profile.total_kv_blks as f64,
            c8.profile.total_kv_blks as f64,
        );
        // Per GPU: 72 GB usable − 2 GB reserve − 70.6 GB/t weights; KV per GPU per token = 327,680/2/t (fp8 weights, bf16 KV).
        // Tokens = t · free / (327,680/… ) → tp8 has 8·(70−8.8)/(4·(70−17.6)) ≈ 2.3× the blocks of tp4.
        assert!(b8 > 2.0 * b4 && b8 < 2.6 * b4, "tp4 {b4} tp8 {b8}");
        assert_eq!(c8.profile.gpus_per_instance, 8);
        assert!((c8.profile.cost_per_hr - 8.0 * 4.02).abs() < 1e-9);
        assert!((c8.profile.power.p_idle_w - 8.0 * 90.0).abs() < 1e-9);
        // Hand count of tp8: free per GPU = 80e9·0.9 − 70.55e9/8 − 2e9, KV per token per GPU = 40,960 B.
        let m = c8.instance.model.total_params() as f64;
        let want = ((80e9 * 0.9 - m / 8.0 - 2e9) / 40_960.0 / 16.0).floor();
        assert_eq!(b8, want);
    }

    #[test]
    fn spec_errors_name_the_field_and_list_valid_names() {
        let e = computed_profile("--gpu", "tpu9:llama-3.1-70b:tp8:fp8").expect_err("hw");
        let s = e.to_string();
        assert!(
            s.starts_with("--gpu") && s.contains("h100-sxm") && s.contains("mi300x"),
            "{s}"
        );
        let e = computed_profile("--gpu", "h100:llama-9:tp8:fp8")
            .expect_err("model")
            .to_string();
        assert!(
            e.contains("llama-3.1-70b") && e.contains("config.json"),
            "{e}"
        );
        let e = computed_profile("--gpu", "h100:llama-3.1-70b:tp8:fp3")
            .expect_err("dtype")
            .to_string();
        assert!(e.contains("fp8") && e.contains("bf16"), "{e}");
        let e = computed_profile("--gpu", "h100:llama-3.1-405b:tp2:bf16")
            .expect_err("fit")
            .to_string();
        assert!(e.contains("does not fit") && e.contains("tp16"), "{e}");
        let e = computed_profile("--gpu", "h100:llama-3.1-70b:tp3")
            .expect_err("heads")
            .to_string();
        assert!(e.contains("query heads"), "{e}");
    }

    #[test]
    fn linearisation_tracks_roofline_and_fp4_fits_one_gpu() {
        let c = computed_profile("--gpu", "h100-sxm:llama-3.1-70b:tp8:fp8").expect("ok");
        assert!(
            c.fit.median_rel_err < 0.10,
            "median {}",
            c.fit.median_rel_err
        );
        assert!(
            c.profile.w_s > 0.001 && c.profile.h_s > 0.0,
            "{:?}",
            c.profile
        );
        // gpt-oss-120b in MXFP4 fits one 80 GB GPU (as its model card says).
        let g = computed_profile("--gpu", "h100-sxm:gpt-oss-120b:tp1:fp4").expect("fits one GPU");
        assert!(g.profile.total_kv_blks > 0);
        computed_profile("--gpu", "h200:gpt-oss-120b:tp2:fp4").expect("h200 tp2");
        computed_profile("--gpu", "h200:deepseek-r1:tp8:fp8:ep8").expect("deepseek");
    }
}

#[cfg(test)]
mod sliding_window_tests {
    use super::*;
    use crate::profile::roofline::Batch;

    #[test]
    fn sliding_window_layers_hold_less_kv_and_read_less_at_long_context() {
        // TP2: on one GPU the BF16 attention and embeddings of the MXFP4
        // checkpoint leave so little room that the window reserve dominates.
        let sw = parse_instance("--gpu", "h100-sxm:gpt-oss-120b:tp2:fp4").expect("spec");
        let mut full = sw.clone();
        full.model.sliding_layers = 0;
        // Half the layers keep only 128 tokens: the context-growing KV per token
        // halves, and the window KV of 256 sequences is set aside first.
        assert_eq!(
            sw.kv_bytes_per_token_per_gpu() * 2.0,
            full.kv_bytes_per_token_per_gpu()
        );
        let reserve = 256.0 * 128.0 * sw.kv_bytes_per_token_per_gpu();
        let want = (full.kv_free_bytes_per_gpu() - reserve) / sw.kv_bytes_per_token_per_gpu();
        assert!((sw.kv_capacity_tok() - want).abs() < 1e-6 * want);
        assert!(sw.kv_capacity_tok() > 1.5 * full.kv_capacity_tok());
        // A decode step at 32k context reads about half the KV.
        let b = Batch {
            n_decode: 32.0,
            decode_ctx_sum_tok: 32.0 * 32768.0,
            ..Batch::default()
        };
        let (s, f) = (sw.step(&b), full.step(&b));
        assert!(s.bytes_per_gpu < f.bytes_per_gpu && s.flops < f.flops);
        // At a context inside the window the two are the same step.
        let short = Batch {
            n_decode: 32.0,
            decode_ctx_sum_tok: 32.0 * 100.0,
            ..Batch::default()
        };
        assert!((sw.step(&short).bytes_per_gpu - full.step(&short).bytes_per_gpu).abs() < 1.0);
    }
}
