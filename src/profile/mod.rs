//! Serving-instance profiles: what one instance costs and how fast it steps.
//!
//! A [`Profile`] describes one serving *instance* (model + hardware + parallel
//! layout + serving config). The manual step-time model is
//! `step = W + H · Σ_i c_i / calibration_ctx (+ prefill_s_per_token · prefill tokens)`.
//! Presets `a10g`, `a100`, `h100` carry the constants of the reference tool
//! (`vllm-sr-sim`), each priced and counted as one GPU, calibrated
//! for a 70B-class model.
//!
//! Computed profiles (`HW:MODEL:tpN:DTYPE`, [`computed`]) come from the hardware
//! and model catalogs ([`hardware`], [`models`]) through a roofline step model
//! ([`roofline`]) linearised by the same least-squares routine ([`fit`]) that
//! `kvfleet calibrate` uses on measurements.

pub mod calibrate;
pub mod computed;
pub mod fit;
pub mod hardware;
pub mod models;
pub mod overlay;
mod power;
mod resolve;
pub mod roofline;
pub mod step_law;
pub mod validate;

pub use computed::{ComputedProfile, computed_profile};
pub use power::PowerCurve;
pub use resolve::{ProfileOverrides, resolve_profile};

use serde::{Deserialize, Serialize};

/// One serving instance's performance, capacity, cost and power.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Name shown in reports (`h100`, `custom`, or the TOML file's `name`).
    pub name: String,
    /// Fixed step latency W, seconds.
    pub w_s: f64,
    /// Per-sequence step latency H at `calibration_ctx` tokens of context, seconds.
    pub h_s: f64,
    /// Context length at which H was measured, tokens.
    #[serde(default = "default_calibration_ctx")]
    pub calibration_ctx: u32,
    /// Prefill tokens per step (chunked-prefill budget).
    pub chunk: u32,
    /// Tokens per KV block.
    #[serde(default = "default_blk_size")]
    pub blk_size: u32,
    /// KV blocks per instance.
    pub total_kv_blks: u64,
    /// Maximum concurrent sequences (vLLM `max_num_seqs`) at `calibration_ctx`.
    pub max_slots: u32,
    /// Price of one instance, $ per hour.
    pub cost_per_hr: f64,
    /// GPUs in one instance.
    #[serde(default = "default_gpus")]
    pub gpus_per_instance: u32,
    /// Optional compute term per prefill token, seconds (0 in the presets).
    #[serde(default)]
    pub prefill_s_per_token: f64,
    /// Board power as a function of batch size.
    pub power: PowerCurve,
    /// Per-batch step law of a computed profile (`W(b) + H(b)·Σctx` for
    /// pure-decode steps, the full roofline for prefill steps); the iteration
    /// engine uses it instead of `w_s`/`h_s`/`prefill_s_per_token`, which stay
    /// the least-squares linearisation for the analytic models. `None` for the
    /// presets, profile files and `custom` (the linear law).
    #[serde(skip)]
    pub step_law: Option<std::sync::Arc<step_law::StepLaw>>,
}

fn default_calibration_ctx() -> u32 {
    8192
}
fn default_blk_size() -> u32 {
    16
}
fn default_gpus() -> u32 {
    1
}

/// Names of the built-in manual presets.
pub const PRESET_NAMES: [&str; 3] = ["a10g", "a100", "h100"];

impl Profile {
    /// A built-in preset by name (case-insensitive), if it exists.
    pub fn preset(name: &str) -> Option<Profile> {
        let p =
            |name: &str, w_s, h_s, chunk, total_kv_blks, max_slots, cost_per_hr, power| Profile {
                name: name.to_string(),
                w_s,
                h_s,
                calibration_ctx: 8192,
                chunk,
                blk_size: 16,
                total_kv_blks,
                max_slots,
                cost_per_hr,
                gpus_per_instance: 1,
                prefill_s_per_token: 0.0,
                power,
                step_law: None,
            };
        match name.to_ascii_lowercase().as_str() {
            "a100" => Some(p(
                "a100",
                0.0080,
                0.00065,
                512,
                65536,
                128,
                2.21,
                PowerCurve::new(175.0, 385.0, 1.0, 2.5),
            )),
            "h100" => Some(p(
                "h100",
                0.0040,
                0.00032,
                1024,
                65536,
                256,
                4.02,
                PowerCurve::new(300.0, 600.0, 1.0, 4.2),
            )),
            "a10g" => Some(p(
                "a10g",
                0.012,
                0.00090,
                256,
                32768,
                64,
                1.01,
                PowerCurve::new(75.0, 120.0, 0.7, 3.0),
            )),
            _ => None,
        }
    }

    /// KV capacity of one instance, tokens.
    pub fn kv_capacity_tok(&self) -> u64 {
        self.total_kv_blks * self.blk_size as u64
    }

    /// Slots of an instance serving requests up to `max_ctx` tokens:
    /// `min(max_slots·calibration_ctx / M, total_kv_blks / ceil(M / blk_size))`.
    pub fn n_slots(&self, max_ctx: u32) -> u32 {
        let m = max_ctx.max(1) as u64;
        let by_compute = self.max_slots as u64 * self.calibration_ctx as u64 / m;
        let by_kv = self.total_kv_blks / m.div_ceil(self.blk_size as u64);
        by_compute.min(by_kv).min(u32::MAX as u64) as u32
    }

    /// Step time in seconds for a batch whose contexts sum to `sum_ctx_tok`
    /// with `prefill_tok` prefill tokens (unquantised, for analytic use).
    pub fn step_s(&self, sum_ctx_tok: f64, prefill_tok: f64) -> f64 {
        self.w_s
            + self.h_s * sum_ctx_tok / self.calibration_ctx as f64
            + self.prefill_s_per_token * prefill_tok
    }

    /// Check the profile's fields; the error names the field and what was expected.
    pub fn validate(&self) -> Result<(), String> {
        let pos = |v: f64, f: &str| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{f} must be a positive number of seconds, got {v}"))
            }
        };
        let nonneg = |v: f64, f: &str| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{f} must be ≥ 0, got {v}"))
            }
        };
        pos(self.w_s, "w_s")?;
        nonneg(self.h_s, "h_s")?;
        nonneg(self.prefill_s_per_token, "prefill_s_per_token")?;
        nonneg(self.cost_per_hr, "cost_per_hr")?;
        let int_pos = |v: u64, f: &str| {
            if v > 0 {
                Ok(())
            } else {
                Err(format!("{f} must be ≥ 1"))
            }
        };
        int_pos(self.calibration_ctx as u64, "calibration_ctx")?;
        int_pos(self.chunk as u64, "chunk")?;
        int_pos(self.blk_size as u64, "blk_size")?;
        int_pos(self.total_kv_blks, "total_kv_blks")?;
        int_pos(self.max_slots as u64, "max_slots")?;
        int_pos(self.gpus_per_instance as u64, "gpus_per_instance")?;
        self.power.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_design_table() {
        let a100 = Profile::preset("A100").expect("preset");
        assert_eq!(
            (
                a100.w_s,
                a100.h_s,
                a100.chunk,
                a100.total_kv_blks,
                a100.max_slots
            ),
            (0.008, 0.00065, 512, 65536, 128)
        );
        let h100 = Profile::preset("h100").expect("preset");
        assert_eq!(
            (h100.cost_per_hr, h100.power.p_idle_w, h100.power.x0),
            (4.02, 300.0, 4.2)
        );
        let a10g = Profile::preset("a10g").expect("preset");
        assert_eq!(
            (a10g.total_kv_blks, a10g.max_slots, a10g.power.k),
            (32768, 64, 0.7)
        );
        assert!(Profile::preset("tpu").is_none());
        for n in PRESET_NAMES {
            Profile::preset(n)
                .expect("preset")
                .validate()
                .expect("valid");
        }
    }

    #[test]
    fn n_slots_is_min_of_compute_and_kv_bounds() {
        let h100 = Profile::preset("h100").expect("preset");
        // 256·8192/8192 = 256 vs 65536/512 = 128 → 128
        assert_eq!(h100.n_slots(8192), 128);
        // 256·8192/65536 = 32 vs 65536/4096 = 16 → 16 (the reference's "16 slots at 65536")
        assert_eq!(h100.n_slots(65536), 16);
        // 256·2 = 512 vs 65536/256 = 256 → 256
        assert_eq!(h100.n_slots(4096), 256);
        let a100 = Profile::preset("a100").expect("preset");
        assert_eq!(a100.n_slots(4096), 256);
        assert_eq!(a100.n_slots(65536), 16);
    }
}
