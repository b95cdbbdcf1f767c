//! Rack presets for deployments: GPUs in trays on one NVLink domain.
//!
//! Kept minimal on purpose (rack-scale sizing has its own presets): what a
//! deployment needs is the tray size, the number of trays, the GPU of the
//! computed specs placed on it, and the KV-transfer link between pools.
//!
//! Sources: NVIDIA GB200 NVL72 and GB300 NVL72 product pages — 72 GPUs in 18
//! compute trays of 4 GPUs (2 Grace CPUs + 4 Blackwell GPUs per tray), one
//! 72-GPU NVLink domain through the NVLink switch trays, fifth-generation
//! NVLink at 1.8 TB/s per GPU (bidirectional, i.e. 900 GB/s each way).

use serde::Serialize;

use crate::engine::LinkSpec;

/// A rack of GPU trays on one NVLink domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RackPreset {
    /// Preset name (`gb200-nvl72`).
    pub name: &'static str,
    /// Hardware name of the GPUs in the catalog (the first field of a computed spec).
    pub hardware: &'static str,
    /// Compute trays.
    pub trays: u32,
    /// GPUs per tray.
    pub gpus_per_tray: u32,
    /// NVLink bandwidth per GPU, one direction, bytes/s.
    pub nvlink_bytes_per_s_per_gpu: f64,
    /// Fixed latency of one KV transfer on the NVLink domain, s (an
    /// assumption of the right order: transfer set-up, not a measurement).
    pub nvlink_latency_s: f64,
}

/// The built-in rack presets.
pub const RACKS: [RackPreset; 2] = [
    RackPreset {
        name: "gb200-nvl72",
        hardware: "gb200",
        trays: 18,
        gpus_per_tray: 4,
        nvlink_bytes_per_s_per_gpu: 900e9,
        nvlink_latency_s: 5e-6,
    },
    RackPreset {
        name: "gb300-nvl72",
        hardware: "gb300",
        trays: 18,
        gpus_per_tray: 4,
        nvlink_bytes_per_s_per_gpu: 900e9,
        nvlink_latency_s: 5e-6,
    },
];

impl RackPreset {
    /// The preset called `name` (case-insensitive).
    pub fn lookup(name: &str) -> Option<&'static RackPreset> {
        RACKS.iter().find(|r| r.name.eq_ignore_ascii_case(name))
    }

    /// Names of the presets, comma-separated (for error messages).
    pub fn names() -> String {
        RACKS.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
    }

    /// GPUs in the rack.
    pub fn gpus(&self) -> u32 {
        self.trays * self.gpus_per_tray
    }

    /// The KV-transfer link between pools of the rack: NVLink, per GPU of
    /// the smaller of the two instances, one link per prefill instance (the
    /// NVLink switch is non-blocking, so pools do not share bandwidth).
    pub fn kv_link(&self) -> LinkSpec {
        LinkSpec {
            name: format!("nvlink ({})", self.name),
            bandwidth_bytes_per_s: self.nvlink_bytes_per_s_per_gpu,
            per_gpu: true,
            latency_s: self.nvlink_latency_s,
            shared: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvl72_is_18_trays_of_4() {
        let r = RackPreset::lookup("GB200-NVL72").expect("preset");
        assert_eq!((r.trays, r.gpus_per_tray, r.gpus()), (18, 4, 72));
        assert!(r.kv_link().validate().is_ok());
        assert!(RackPreset::lookup("dgx-h100").is_none());
    }
}
