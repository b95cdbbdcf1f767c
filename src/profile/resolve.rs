//! Turning a `--gpu` value plus override flags into a validated [`Profile`].

use std::path::Path;

use super::{PowerCurve, Profile};
use crate::error::InputError;

/// Flags that set or override profile fields (`--w-ms 1 --kv-blocks 4096 ...`).
#[derive(Debug, Clone, Default, clap::Args, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileOverrides {
    /// Fixed step latency W, milliseconds.
    #[arg(long, value_name = "MS")]
    pub w_ms: Option<f64>,
    /// Per-sequence step latency H at the calibration context, milliseconds.
    #[arg(long, value_name = "MS")]
    pub h_ms: Option<f64>,
    /// Context at which H was measured, tokens.
    #[arg(long, value_name = "TOK")]
    pub calibration_ctx: Option<u32>,
    /// Prefill tokens per step (chunked-prefill budget).
    #[arg(long, value_name = "TOK")]
    pub chunk: Option<u32>,
    /// KV blocks per instance.
    #[arg(long, value_name = "N")]
    pub kv_blocks: Option<u64>,
    /// Tokens per KV block.
    #[arg(long, value_name = "TOK")]
    pub block_size: Option<u32>,
    /// Maximum concurrent sequences per instance at the calibration context.
    #[arg(long, value_name = "N")]
    pub max_slots: Option<u32>,
    /// Price per instance-hour, $.
    #[arg(long, value_name = "USD")]
    pub cost_per_hr: Option<f64>,
    /// GPUs per instance.
    #[arg(long, value_name = "N")]
    pub gpus_per_instance: Option<u32>,
    /// Extra prefill compute per prompt token, microseconds.
    #[arg(long, value_name = "US")]
    pub prefill_us_per_token: Option<f64>,
}

impl ProfileOverrides {
    fn apply(&self, p: &mut Profile) {
        // Setting the linear coefficients asks for the linear law.
        if self.w_ms.is_some()
            || self.h_ms.is_some()
            || self.calibration_ctx.is_some()
            || self.prefill_us_per_token.is_some()
        {
            p.step_law = None;
        }
        if let Some(v) = self.w_ms {
            p.w_s = v / 1e3;
        }
        if let Some(v) = self.h_ms {
            p.h_s = v / 1e3;
        }
        if let Some(v) = self.calibration_ctx {
            p.calibration_ctx = v;
        }
        if let Some(v) = self.chunk {
            p.chunk = v;
        }
        if let Some(v) = self.kv_blocks {
            p.total_kv_blks = v;
        }
        if let Some(v) = self.block_size {
            p.blk_size = v;
        }
        if let Some(v) = self.max_slots {
            p.max_slots = v;
        }
        if let Some(v) = self.cost_per_hr {
            p.cost_per_hr = v;
        }
        if let Some(v) = self.gpus_per_instance {
            p.gpus_per_instance = v;
        }
        if let Some(v) = self.prefill_us_per_token {
            p.prefill_s_per_token = v / 1e6;
        }
    }

    fn is_empty(&self) -> bool {
        self.w_ms.is_none()
            && self.h_ms.is_none()
            && self.calibration_ctx.is_none()
            && self.chunk.is_none()
            && self.kv_blocks.is_none()
            && self.block_size.is_none()
            && self.max_slots.is_none()
            && self.cost_per_hr.is_none()
            && self.gpus_per_instance.is_none()
            && self.prefill_us_per_token.is_none()
    }
}

/// Resolve `spec` — a preset name (`a10g`, `a100`, `h100`), `custom`, a
/// computed-profile spec `HW:MODEL:tpN:DTYPE` ([`super::computed`]), or a
/// path to a profile TOML file — and apply `overrides`. `field` names the flag
/// or scenario field for error messages.
pub fn resolve_profile(
    field: &str,
    spec: &str,
    overrides: &ProfileOverrides,
) -> Result<Profile, InputError> {
    let mut profile = if let Some(p) = Profile::preset(spec) {
        p
    } else if spec.eq_ignore_ascii_case("custom") {
        let missing: Vec<&str> = [
            ("--w-ms", overrides.w_ms.is_none()),
            ("--kv-blocks", overrides.kv_blocks.is_none()),
            ("--max-slots", overrides.max_slots.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(f, _)| *f)
        .collect();
        if !missing.is_empty() {
            return Err(InputError::field(
                field,
                format!(
                    "`custom` needs {} (and optionally --h-ms, --chunk, --block-size, --cost-per-hr)",
                    missing.join(", ")
                ),
            ));
        }
        Profile {
            name: "custom".into(),
            w_s: 0.0,
            h_s: 0.0,
            calibration_ctx: 8192,
            chunk: 512,
            blk_size: 16,
            total_kv_blks: 0,
            max_slots: 0,
            cost_per_hr: 0.0,
            gpus_per_instance: 1,
            prefill_s_per_token: 0.0,
            power: PowerCurve::new(0.0, 0.0, 0.0, 0.0),
            step_law: None,
        }
    } else if super::computed::is_computed_spec(spec) {
        super::computed::computed_profile(field, spec)?.profile
    } else if spec.ends_with(".toml") || Path::new(spec).is_file() {
        load_profile_toml(Path::new(spec))?
    } else {
        return Err(InputError::field(
            field,
            format!(
                "unknown GPU profile `{spec}`; expected one of a10g, a100, h100, custom, a computed profile HW:MODEL:tpN:DTYPE (e.g. h100-sxm:llama-3.1-70b:tp8:fp8), or a profile .toml file"
            ),
        ));
    };
    if !overrides.is_empty() {
        overrides.apply(&mut profile);
    }
    profile
        .validate()
        .map_err(|reason| InputError::field(field, reason))?;
    Ok(profile)
}

/// Load a profile from a TOML file with the [`Profile`] fields.
pub fn load_profile_toml(path: &Path) -> Result<Profile, InputError> {
    let text = crate::input_file::read_text(path)?;
    let profile: Profile = toml::from_str(&text).map_err(|e| InputError::File {
        path: path.to_path_buf(),
        reason: e.to_string().replace('\n', " "),
    })?;
    profile.validate().map_err(|reason| InputError::File {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_needs_core_fields_and_overrides_apply() {
        let none = ProfileOverrides::default();
        let err = resolve_profile("--gpu", "custom", &none).expect_err("missing fields");
        assert!(err.to_string().contains("--w-ms"), "{err}");
        let o = ProfileOverrides {
            w_ms: Some(1.0),
            kv_blocks: Some(4096),
            max_slots: Some(8),
            chunk: Some(1),
            ..Default::default()
        };
        let p = resolve_profile("--gpu", "custom", &o).expect("valid");
        assert_eq!(
            (p.w_s, p.h_s, p.chunk, p.total_kv_blks, p.max_slots),
            (0.001, 0.0, 1, 4096, 8)
        );
        let h = resolve_profile(
            "--gpu",
            "h100",
            &ProfileOverrides {
                max_slots: Some(64),
                ..Default::default()
            },
        )
        .expect("valid");
        assert_eq!((h.max_slots, h.w_s), (64, 0.004));
        let bad = resolve_profile("--gpu", "tpu9", &none).expect_err("unknown");
        assert!(bad.to_string().contains("a10g"), "{bad}");
    }
}
