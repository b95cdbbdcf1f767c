//! Hardware catalog (`data/hardware.toml`, embedded): per-GPU peak compute,
//! memory, interconnect, power and price, each entry with its source.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Number formats of weights, KV cache and tensor-core math.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// FP16 / BF16 (2 bytes).
    Bf16,
    /// FP8 (E4M3/E5M2, 1 byte).
    Fp8,
    /// FP4 (MXFP4/NVFP4: 4-bit values plus one 8-bit scale per 32 → 4.25 bits).
    Fp4,
}

impl Dtype {
    /// Valid spellings, for error messages.
    pub const NAMES: &'static str = "bf16, fp16, fp8, fp4, mxfp4, nvfp4";

    /// Parse a dtype name (case-insensitive).
    pub fn parse(s: &str) -> Option<Dtype> {
        match s.to_ascii_lowercase().as_str() {
            "bf16" | "fp16" | "f16" | "half" => Some(Dtype::Bf16),
            "fp8" | "f8" | "e4m3" | "int8" => Some(Dtype::Fp8),
            "fp4" | "mxfp4" | "nvfp4" | "int4" => Some(Dtype::Fp4),
            _ => None,
        }
    }

    /// Storage bytes per value (FP4 includes its block scales).
    pub fn bytes(self) -> f64 {
        match self {
            Dtype::Bf16 => 2.0,
            Dtype::Fp8 => 1.0,
            Dtype::Fp4 => 4.25 / 8.0,
        }
    }

    /// Short name.
    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::Bf16 => "bf16",
            Dtype::Fp8 => "fp8",
            Dtype::Fp4 => "fp4",
        }
    }
}

/// One GPU model of the catalog. All values are per GPU.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    /// Catalog key (`h100-sxm`), filled in on load.
    #[serde(default)]
    pub name: String,
    /// Other accepted names.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Dense FP16/BF16 tensor peak, TFLOPS.
    pub fp16_tflops: f64,
    /// Dense FP8 tensor peak, TFLOPS (absent: no FP8 math).
    #[serde(default)]
    pub fp8_tflops: Option<f64>,
    /// Dense FP4 tensor peak, TFLOPS (absent: no FP4 math).
    #[serde(default)]
    pub fp4_tflops: Option<f64>,
    /// Device memory, GB (1e9 bytes).
    pub hbm_gb: f64,
    /// Peak memory bandwidth, TB/s.
    pub hbm_tbps: f64,
    /// Scale-up bandwidth per direction (NVLink / Infinity Fabric / PCIe), GB/s.
    pub scaleup_gbps: f64,
    /// Scale-out network bandwidth, GB/s.
    pub scaleout_gbps: f64,
    /// Board power limit, W.
    pub tdp_w: f64,
    /// Idle draw with the model resident, W (estimate).
    pub idle_w: f64,
    /// Default price per GPU-hour, $.
    pub usd_per_gpu_hr: f64,
    /// Where the numbers come from.
    pub source: String,
}

impl Hardware {
    /// The math format used for weights stored as `weights` (weight precision
    /// and compute precision are two numbers). A device with tensor cores for
    /// the format multiplies in it (FP8 on Hopper/Ada/CDNA3, FP4 on
    /// Blackwell/CDNA4). Without them the weights are dequantised in the kernel
    /// and multiplied with BF16 activations: FP4 on Hopper, Ada, Ampere and
    /// CDNA3 (vLLM's MXFP4 MoE paths there — Marlin and Triton `matmul_ogs` —
    /// are W4A16), FP8 on Ampere (Marlin W8A16).
    pub fn compute_dtype(&self, weights: Dtype) -> Dtype {
        match weights {
            Dtype::Fp4 if self.fp4_tflops.is_some() => Dtype::Fp4,
            Dtype::Fp8 if self.fp8_tflops.is_some() => Dtype::Fp8,
            _ => Dtype::Bf16,
        }
    }

    /// Dense peak of the math format used for `weights`, FLOP/s.
    pub fn peak_flops(&self, weights: Dtype) -> f64 {
        let tflops = match self.compute_dtype(weights) {
            Dtype::Fp4 => self.fp4_tflops.unwrap_or(self.fp16_tflops),
            Dtype::Fp8 => self.fp8_tflops.unwrap_or(self.fp16_tflops),
            Dtype::Bf16 => self.fp16_tflops,
        };
        tflops * 1e12
    }

    /// True if `name` (case-insensitive) is this device's key or an alias.
    fn matches(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

/// The embedded hardware catalog, sorted by name.
pub fn hardware_catalog() -> &'static [Hardware] {
    static CAT: OnceLock<Vec<Hardware>> = OnceLock::new();
    CAT.get_or_init(|| {
        let map: BTreeMap<String, Hardware> =
            toml::from_str(include_str!("../../data/hardware.toml"))
                .expect("data/hardware.toml is valid (checked by a unit test)");
        map.into_iter()
            .map(|(name, mut h)| {
                h.name = name;
                h
            })
            .collect()
    })
}

/// A catalog device by name or alias (case-insensitive). A bare `h100` means H100 SXM.
pub fn lookup_hardware(name: &str) -> Option<&'static Hardware> {
    let name = if name.eq_ignore_ascii_case("h100") {
        "h100-sxm"
    } else {
        name
    };
    let name = if name.eq_ignore_ascii_case("a100") {
        "a100-80gb"
    } else {
        name
    };
    hardware_catalog().iter().find(|h| h.matches(name))
}

/// Catalog device names, comma-separated (for error messages).
pub fn hardware_names() -> String {
    hardware_catalog()
        .iter()
        .map(|h| h.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_covers_the_issue_list_and_is_sane() {
        for n in [
            "a10g",
            "l4",
            "l40s",
            "a100-40gb",
            "a100-80gb",
            "h100-sxm",
            "h100-pcie",
            "h200",
            "b200",
            "gb200",
            "gb300",
            "mi300x",
            "mi325x",
            "mi355x",
        ] {
            let h = lookup_hardware(n).unwrap_or_else(|| panic!("{n} missing"));
            assert!(
                h.fp16_tflops > 10.0 && h.hbm_gb >= 24.0 && h.hbm_tbps > 0.2,
                "{n}"
            );
            assert!(
                h.idle_w < h.tdp_w && h.usd_per_gpu_hr > 0.0 && !h.source.is_empty(),
                "{n}"
            );
            if let Some(f8) = h.fp8_tflops {
                assert!(
                    (f8 / h.fp16_tflops - 2.0).abs() < 0.05,
                    "{n}: fp8 should be ~2x fp16"
                );
            }
        }
        assert_eq!(
            lookup_hardware("H100").map(|h| h.name.as_str()),
            Some("h100-sxm")
        );
        assert!(lookup_hardware("tpu-v5").is_none());
    }

    #[test]
    fn fp4_weights_compute_at_best_available_precision() {
        let h100 = lookup_hardware("h100-sxm").unwrap();
        // Hopper has no FP4 tensor cores: MXFP4 weights are multiplied in BF16.
        assert_eq!(h100.compute_dtype(Dtype::Fp4), Dtype::Bf16);
        assert_eq!(h100.compute_dtype(Dtype::Fp8), Dtype::Fp8);
        let a100 = lookup_hardware("a100-80gb").unwrap();
        assert_eq!(a100.compute_dtype(Dtype::Fp4), Dtype::Bf16);
        assert_eq!(a100.peak_flops(Dtype::Fp8), 312e12);
        let b200 = lookup_hardware("b200").unwrap();
        assert_eq!(b200.compute_dtype(Dtype::Fp4), Dtype::Fp4);
        assert_eq!(Dtype::parse("MXFP4"), Some(Dtype::Fp4));
    }
}
