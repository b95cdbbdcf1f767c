//! Rack and server presets for `kvfleet cluster`: what a rack holds (GPU
//! trays or 8-GPU servers, the NVLink / Infinity Fabric domain, scale-out
//! fabric, host DRAM and the GPU↔host path, local NVMe, storage and control
//! servers, power, price), each with its source.
//!
//! The GPUs themselves come from the hardware catalog
//! ([`crate::profile::hardware`]); only the projected Vera Rubin part, which
//! is not in the catalog, is described here. Prices and some capacities are
//! estimates (marked so in `source`), not quotes.

use serde::Serialize;

use crate::profile::hardware::{Hardware, lookup_hardware};

/// One rack preset. Per-GPU values are per GPU; per-server values per GPU
/// tray (NVL72) or per 8-GPU server (HGX / Instinct platforms).
#[derive(Debug, Clone, Serialize)]
pub struct RackPreset {
    /// Preset key (`gb200-nvl72`).
    pub key: &'static str,
    /// Display name as the seed tool prints it (`NVIDIA GB200 NVL72`).
    pub display: &'static str,
    /// Hardware-catalog key of the GPU.
    pub gpu: &'static str,
    /// The GPU (catalog entry, or the projected part).
    #[serde(skip)]
    pub hw: Hardware,
    /// GPUs per tray / server.
    pub gpus_per_server: u32,
    /// Trays / servers per rack.
    pub servers_per_rack: u32,
    /// GPUs sharing one scale-up (NVLink / Infinity Fabric) domain.
    pub nvlink_domain_gpus: u32,
    /// Name of the scale-up link class.
    pub scaleup_name: &'static str,
    /// Scale-out fabric bandwidth per GPU, per direction, GB/s.
    pub scaleout_gbps_per_gpu: f64,
    /// Scale-out one-hop latency, µs.
    pub scaleout_latency_us: f64,
    /// Host DRAM per GPU, GB.
    pub host_dram_gb_per_gpu: f64,
    /// GPU↔host path bandwidth per GPU, per direction, GB/s.
    pub host_link_gbps_per_gpu: f64,
    /// Name of the GPU↔host path.
    pub host_link_name: &'static str,
    /// Local NVMe per tray / server, TB.
    pub nvme_tb_per_server: f64,
    /// Local NVMe read bandwidth per tray / server, GB/s.
    pub nvme_gbps_per_server: f64,
    /// Storage servers per rack.
    pub storage_servers_per_rack: u32,
    /// Capacity per storage server, TB.
    pub storage_tb_per_server: f64,
    /// Read bandwidth per storage server onto the scale-out fabric, GB/s.
    pub storage_gbps_per_server: f64,
    /// Control (head / management) servers per rack.
    pub control_servers_per_rack: u32,
    /// Power per rack, kW.
    pub power_kw_per_rack: f64,
    /// Price per rack, $ (estimate).
    pub usd_per_rack: f64,
    /// Announced but not shipping: figures are projections.
    pub projected: bool,
    /// Where the numbers come from.
    pub source: &'static str,
}

impl RackPreset {
    /// GPUs per rack.
    pub fn gpus_per_rack(&self) -> u32 {
        self.gpus_per_server * self.servers_per_rack
    }

    /// Scale-up domains per rack (1 for NVL72; one per server for 8-GPU servers).
    pub fn domains_per_rack(&self) -> u32 {
        (self.gpus_per_rack() / self.nvlink_domain_gpus).max(1)
    }

    fn matches(&self, name: &str) -> bool {
        let n = name.trim();
        self.key.eq_ignore_ascii_case(n) || self.display.eq_ignore_ascii_case(n)
    }
}

/// Vera Rubin as announced (NVIDIA GTC 2025 keynote and press release):
/// NVL144 = 72 packages of two dies, 3.6 EF dense FP4 and 1.2 EF FP8 per
/// rack → 50 PF FP4 and 16.7 PF FP8 per package; 288 GB HBM4 per package,
/// ~13 TB/s; NVLink 6 3.6 TB/s bidirectional. FP16 taken as half of FP8
/// (assumption). kvfleet counts a package as one GPU.
fn rubin() -> Hardware {
    Hardware {
        name: "rubin".into(),
        aliases: vec![],
        fp16_tflops: 8_333.0,
        fp8_tflops: Some(16_667.0),
        fp4_tflops: Some(50_000.0),
        hbm_gb: 288.0,
        hbm_tbps: 13.0,
        scaleup_gbps: 1_800.0,
        scaleout_gbps: 200.0,
        tdp_w: 1_800.0,
        idle_w: 220.0,
        usd_per_gpu_hr: 12.0,
        source:
            "projected: NVIDIA GTC 2025 Vera Rubin NVL144 announcement (per package = rack / 72)"
                .into(),
    }
}

fn catalog_gpu(key: &str) -> Hardware {
    lookup_hardware(key)
        .cloned()
        .unwrap_or_else(|| panic!("hardware catalog holds {key} (checked by a unit test)"))
}

/// All rack presets.
pub fn rack_presets() -> Vec<RackPreset> {
    let nvl72 = |key, display, gpu: &'static str, kw, usd, source| RackPreset {
        key,
        display,
        gpu,
        hw: catalog_gpu(gpu),
        gpus_per_server: 4,
        servers_per_rack: 18,
        nvlink_domain_gpus: 72,
        scaleup_name: "NVSwitch / NVLink Switch",
        scaleout_gbps_per_gpu: 50.0,
        scaleout_latency_us: 5.0,
        host_dram_gb_per_gpu: 240.0,
        host_link_gbps_per_gpu: 225.0,
        host_link_name: "Grace NVLink-C2C",
        nvme_tb_per_server: 15.36,
        nvme_gbps_per_server: 28.0,
        storage_servers_per_rack: 2,
        storage_tb_per_server: 122.0,
        storage_gbps_per_server: 50.0,
        control_servers_per_rack: 2,
        power_kw_per_rack: kw,
        usd_per_rack: usd,
        projected: false,
        source,
    };
    let hgx = |key, display, gpu: &'static str, kw, usd, scaleup, source| RackPreset {
        key,
        display,
        gpu,
        hw: catalog_gpu(gpu),
        gpus_per_server: 8,
        servers_per_rack: 4,
        nvlink_domain_gpus: 8,
        scaleup_name: scaleup,
        scaleout_gbps_per_gpu: 50.0,
        scaleout_latency_us: 5.0,
        host_dram_gb_per_gpu: 256.0,
        host_link_gbps_per_gpu: 55.0,
        host_link_name: "PCIe Gen5 x16",
        nvme_tb_per_server: 30.72,
        nvme_gbps_per_server: 50.0,
        storage_servers_per_rack: 1,
        storage_tb_per_server: 122.0,
        storage_gbps_per_server: 50.0,
        control_servers_per_rack: 1,
        power_kw_per_rack: kw,
        usd_per_rack: usd,
        projected: false,
        source,
    };
    let nvl72_src = "NVIDIA GB200 NVL72 product page: 18 compute trays of 2 Grace-Blackwell superchips (4 GPUs), one 72-GPU NVLink domain (NVLink 5, 1.8 TB/s per GPU), 480 GB LPDDR5X per Grace (240 GB per GPU), NVLink-C2C 900 GB/s bidirectional per Grace (450 GB/s per direction, shared by 2 GPUs: 225 GB/s per GPU); one ConnectX 400 Gb/s NIC per GPU; ~132 kW per rack. NVMe per tray (4 × 3.84 TB E1.S, ~7 GB/s each), storage servers (16 × 7.68 TB) and the ~$3M rack price are typical configurations / press estimates";
    let nvl72_300 = "NVIDIA GB300 NVL72 product page (Blackwell Ultra, 288 GB HBM3e per GPU, same 18-tray × 4-GPU NVLink 5 topology and Grace C2C as GB200); ~135 kW per rack and the ~$3.7M price are press estimates; NVMe and storage as for GB200 (typical configurations)";
    let hgx_src = "NVIDIA DGX/HGX H100 datasheet: 8 SXM GPUs on NVLink 4 / NVSwitch (one 8-GPU domain), 2 TB DDR5 per server (256 GB per GPU), PCIe Gen5 x16 GPU↔host (~64 GB/s peak, ~55 achieved), 8 × ConnectX-7 400 Gb/s, 8 × 3.84 TB NVMe, 10.2 kW per server; 4 servers per ~40 kW rack and ~$250k per server are typical / press estimates";
    vec![
        nvl72(
            "gb200-nvl72",
            "NVIDIA GB200 NVL72",
            "gb200",
            132.0,
            3.0e6,
            nvl72_src,
        ),
        nvl72(
            "gb300-nvl72",
            "NVIDIA GB300 NVL72",
            "gb300",
            135.0,
            3.7e6,
            nvl72_300,
        ),
        hgx(
            "hgx-h100",
            "NVIDIA HGX H100",
            "h100-sxm",
            41.0,
            1.0e6,
            "NVLink 4 / NVSwitch",
            hgx_src,
        ),
        hgx(
            "hgx-h200",
            "NVIDIA HGX H200",
            "h200",
            41.0,
            1.2e6,
            "NVLink 4 / NVSwitch",
            "NVIDIA HGX H200 datasheet (141 GB HBM3e per GPU, otherwise the HGX H100 server: NVSwitch 8-GPU domain, 2 TB DDR5, PCIe Gen5, 400 Gb/s per GPU); rack of 4 servers and price are estimates",
        ),
        hgx(
            "hgx-b200",
            "NVIDIA HGX B200",
            "b200",
            58.0,
            2.0e6,
            "NVLink 5 / NVSwitch",
            "NVIDIA DGX B200 datasheet: 8 Blackwell GPUs on NVLink 5 (one 8-GPU domain), 2 TB DDR5 per server, PCIe Gen5 GPU↔host, 8 × 400 Gb/s, 8 × 3.84 TB NVMe, 14.3 kW per server; 4 servers per rack and ~$500k per server are estimates",
        ),
        hgx(
            "mi300x-8",
            "AMD Instinct MI300X Platform",
            "mi300x",
            42.0,
            0.9e6,
            "Infinity Fabric",
            "AMD Instinct MI300X platform brief: 8 OAM GPUs fully connected by Infinity Fabric (one 8-GPU domain), PCIe Gen5 x16 to the hosts; 2 TB DDR5, 8 × 400 Gb/s, 8 NVMe and ~10 kW per server and the price are typical OEM configurations (estimates)",
        ),
        hgx(
            "mi355x-8",
            "AMD Instinct MI355X Platform",
            "mi355x",
            60.0,
            1.6e6,
            "Infinity Fabric",
            "AMD Instinct MI355X datasheet (288 GB HBM3E, 1,400 W per GPU; 8-GPU Infinity Fabric platform, PCIe Gen5 to the hosts); host DRAM, NICs, NVMe, ~14 kW per server and the price are typical OEM configurations (estimates)",
        ),
        RackPreset {
            key: "vr-nvl144",
            display: "NVIDIA Vera Rubin NVL144",
            gpu: "rubin",
            hw: rubin(),
            gpus_per_server: 4,
            servers_per_rack: 18,
            nvlink_domain_gpus: 72,
            scaleup_name: "NVLink 6 Switch",
            scaleout_gbps_per_gpu: 200.0,
            scaleout_latency_us: 4.0,
            host_dram_gb_per_gpu: 750.0,
            host_link_gbps_per_gpu: 450.0,
            host_link_name: "Vera NVLink-C2C",
            nvme_tb_per_server: 30.72,
            nvme_gbps_per_server: 56.0,
            storage_servers_per_rack: 2,
            storage_tb_per_server: 245.0,
            storage_gbps_per_server: 100.0,
            control_servers_per_rack: 2,
            power_kw_per_rack: 190.0,
            usd_per_rack: 6.0e6,
            projected: true,
            source: "PROJECTED (not shipping): NVIDIA GTC 2025 Vera Rubin NVL144 announcement — 72 Rubin packages (144 dies) in one NVLink 6 domain, 288 GB HBM4 and ~13 TB/s per package, Vera CPU with 1.5 TB LPDDR per 2 packages and 1.8 TB/s NVLink-C2C, ConnectX-9 1.6 Tb/s; power, NVMe, storage and price are kvfleet guesses",
        },
    ]
}

/// A preset by key or display name (case-insensitive).
pub fn lookup_preset(name: &str) -> Option<RackPreset> {
    rack_presets().into_iter().find(|p| p.matches(name))
}

/// Preset keys and display names, for error messages.
pub fn preset_names() -> String {
    rack_presets()
        .iter()
        .map(|p| format!("{} (\"{}\")", p.key, p.display))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_resolve_and_are_consistent() {
        let ps = rack_presets();
        assert_eq!(ps.len(), 8);
        for p in &ps {
            assert!(
                p.gpus_per_rack().is_multiple_of(p.nvlink_domain_gpus),
                "{}",
                p.key
            );
            assert!(p.hw.hbm_gb >= 80.0 && !p.source.is_empty(), "{}", p.key);
            assert_eq!(lookup_preset(p.display).unwrap().key, p.key);
        }
        let g = lookup_preset("NVIDIA GB200 NVL72").unwrap();
        // One 72-GPU NVLink domain of 18 trays × 4, not 9 × 8.
        assert_eq!(
            (g.gpus_per_server, g.servers_per_rack, g.domains_per_rack()),
            (4, 18, 1)
        );
        assert!(lookup_preset("vr-nvl144").unwrap().projected);
        assert_eq!(lookup_preset("hgx-h100").unwrap().domains_per_rack(), 4);
    }
}
