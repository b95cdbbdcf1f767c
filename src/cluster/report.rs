//! The report of `kvfleet cluster`; its serde form is the `--json` document
//! (keys fixed by the JSON contract: other tools read them).

use serde::Serialize;

use super::des::{DesReport, Utilisation};
use super::plan::Plan;
use super::sessions::Concurrency;

/// Active and provisioned counts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct GpuCounts {
    /// GPUs running instances.
    pub active: u64,
    /// GPUs in the provisioned racks.
    pub provisioned: u64,
}

/// Trays / servers.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServerCounts {
    /// Trays / servers the running instances occupy.
    pub needed: u64,
    /// Trays / servers in the provisioned racks.
    pub provisioned: u64,
}

/// Serving instances.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct InstanceCounts {
    /// Instances the users need (at most `available`).
    pub running: u64,
    /// Instances the racks hold.
    pub available: u64,
}

/// Users.
#[derive(Debug, Clone, Serialize)]
pub struct Users {
    /// Users to hold (`--active-users`, or the sessions' p95 when higher).
    pub required: u64,
    /// Users the provisioned racks hold with this plan.
    pub supported: u64,
    /// Decode slots in the provisioned racks (instances × batch).
    pub slots: u64,
    /// The sessions' concurrency when `--arrival-rate` was given.
    pub arrival: Option<Concurrency>,
}

/// The KV cache.
#[derive(Debug, Clone, Serialize)]
pub struct Kv {
    /// Bytes per stored value (`--kv-dtype`).
    pub bytes_per_element: f64,
    /// Bytes per token of context, whole model (GQA: 2·layers·kv_heads·head_dim·bytes; MLA: layers·(latent + RoPE key)·bytes).
    pub bytes_per_token: f64,
    /// Every user's cached KV, one copy.
    pub needed_bytes: f64,
    /// KV in HBM over the active GPUs (incl. copies replicated across TP ranks).
    pub hbm_bytes: f64,
    /// Offloaded to host DRAM.
    pub host_bytes: f64,
    /// Offloaded to local NVMe.
    pub nvme_bytes: f64,
    /// Offloaded to storage servers.
    pub storage_bytes: f64,
    /// Storage servers the storage tier needs.
    pub storage_servers_needed: u64,
    /// Storage servers in the provisioned racks.
    pub storage_servers_available: u64,
    /// Reload of one user's cached KV from its (slowest used) tier, ms.
    pub reload_ms: f64,
    /// The offload tiers (`--kv-system`).
    pub system: String,
}

/// Memory of one GPU on the chosen plan.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MemoryPerGpu {
    /// Weights (its TP·PP share of dense weights, EP share of experts).
    pub weights_bytes: f64,
    /// KV of its rank's resident sequences at full context.
    pub kv_bytes: f64,
    /// Activations, graphs, buffers.
    pub overhead_bytes: f64,
    /// HBM × the engine's memory fraction.
    pub limit_bytes: f64,
}

/// Ceilings of one instance's decode rate at its batch and context.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Bounds {
    /// If only compute counted, tok/s per instance.
    pub compute_tok_s: f64,
    /// If only HBM traffic counted (active weights once per step + every sequence's KV), tok/s per instance.
    pub hbm_tok_s: f64,
    /// If only collectives counted, tok/s per instance (`null`: no communication).
    pub comm_tok_s: Option<f64>,
}

/// Throughput.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Throughput {
    /// Running instances × each one's decode rate, tok/s.
    pub capacity_tok_s: f64,
    /// Resident users × `--tokens-per-user-rate`, tok/s.
    pub demand_tok_s: f64,
    /// Capacity per active GPU, tok/s.
    pub per_gpu_tok_s: f64,
    /// Decode rate each user receives on the plan (1 / TPOT), tok/s.
    pub per_user_tok_s: f64,
}

/// The GPU and rack.
#[derive(Debug, Clone, Serialize)]
pub struct HardwareInfo {
    /// Preset key.
    pub preset: String,
    /// Preset display name.
    pub display: String,
    /// GPU.
    pub gpu: String,
    /// HBM per GPU, bytes.
    pub hbm_bytes: f64,
    /// HBM bandwidth per GPU, bytes/s.
    pub hbm_bw_bytes_s: f64,
    /// Dense peak of the weights' math format, FLOP/s per GPU.
    pub peak_flops: f64,
    /// GPUs per tray / server.
    pub gpus_per_server: u32,
    /// Trays / servers per rack.
    pub servers_per_rack: u32,
    /// GPUs per scale-up domain.
    pub nvlink_domain_gpus: u32,
    /// Scale-up bandwidth per GPU, bytes/s.
    pub scaleup_bw_bytes_s: f64,
    /// Scale-out bandwidth per GPU, bytes/s.
    pub scaleout_bw_bytes_s: f64,
    /// GPU↔host bandwidth per GPU, bytes/s.
    pub host_link_bw_bytes_s: f64,
    /// Power per rack, kW.
    pub power_kw_per_rack: f64,
    /// Price per rack, $ (estimate).
    pub usd_per_rack: f64,
    /// Projected (not shipping) hardware.
    pub projected: bool,
    /// Sources.
    pub source: String,
}

/// The model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Name.
    pub name: String,
    /// Parameters.
    pub total_params: u64,
    /// Parameters multiplied per token.
    pub active_params: u64,
    /// Bytes of the active weights (one decode token's weights).
    pub active_weight_bytes: f64,
    /// Bytes of all weights.
    pub weight_bytes: f64,
    /// Weight bits (`--quant-bits`).
    pub quant_bits: u32,
    /// KV format.
    pub kv_dtype: String,
    /// Where the configuration comes from.
    pub source: String,
}

/// One plan candidate (the `--csv` rows).
#[derive(Debug, Clone, Serialize)]
pub struct CandidateRow {
    /// The plan.
    pub plan: Plan,
    /// GPUs per instance.
    pub gpus_per_instance: u32,
    /// Racks it needs for the users.
    pub racks_needed: u64,
    /// Active GPUs.
    pub gpus_active: u64,
    /// Decode rate per user, tok/s.
    pub tok_s_per_user: f64,
    /// Decode rate per instance, tok/s.
    pub instance_tok_s: f64,
    /// Binding bound.
    pub limit: String,
    /// Memory used per GPU / limit.
    pub memory_fraction: f64,
    /// Meets the rate and the KV tiers hold the offload.
    pub feasible: bool,
}

/// One point of a sensitivity sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SensitivityPoint {
    /// `users`, `batch` or `tokens_cached`.
    pub sweep: String,
    /// The swept value.
    pub value: f64,
    /// Racks the sizing needs (`null`: nothing fits).
    pub racks: Option<u32>,
    /// Active GPUs.
    pub gpus_active: Option<u64>,
}

/// `kvfleet cluster`'s report.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    /// Racks provisioned.
    pub racks: u32,
    /// The chosen plan.
    pub plan: Plan,
    /// GPUs.
    pub gpus: GpuCounts,
    /// Trays / servers.
    pub servers: ServerCounts,
    /// Instances.
    pub instances: InstanceCounts,
    /// Users.
    pub users: Users,
    /// KV cache.
    pub kv: Kv,
    /// Memory per GPU.
    pub memory_per_gpu: MemoryPerGpu,
    /// Bounds per instance.
    pub bounds: Bounds,
    /// The binding bound: `compute`, `hbm` or `comm`.
    pub limit: String,
    /// Throughput.
    pub throughput: Throughput,
    /// Hardware.
    pub hardware: HardwareInfo,
    /// Model.
    pub model: ModelInfo,
    /// Utilisation over time (from the DES check; steady state without it).
    pub utilisation: Utilisation,
    /// The DES check (`null` with `--no-des`).
    pub des: Option<DesReport>,
    /// What falls short (empty when nothing does).
    pub shortfall: Vec<String>,
    /// Why this plan.
    pub why: String,
    /// The link class the plan's collectives use.
    pub network: String,
    /// Tokens/s each user must receive.
    pub tokens_per_user_rate: f64,
    /// Cached tokens per user.
    pub tokens_cached: u64,
    /// Share of users whose KV is resident in HBM at once.
    pub hbm_residency: f64,
    /// Control servers in the provisioned racks.
    pub control_servers: u64,
    /// Plan candidates (fewest racks first), at most 200.
    pub candidates: Vec<CandidateRow>,
    /// Sensitivity sweeps (users, batch, tokens cached ×0.8…1.2).
    pub sensitivity: Vec<SensitivityPoint>,
    /// Notes about the run (e.g. a skipped DES check).
    pub notes: Vec<String>,
}
