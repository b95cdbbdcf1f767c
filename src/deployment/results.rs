//! What a design's simulation reports: per client, per pool, per KV link.

use serde::Serialize;

use super::model::Role;

/// One client's results in a design.
#[derive(Debug, Clone, Serialize)]
pub struct ClientResult {
    /// Client name.
    pub client: String,
    /// Load simulated.
    pub load: String,
    /// Requests issued (warm-up included).
    pub issued: u64,
    /// Requests measured (arrived after the warm-up).
    pub requests: u64,
    /// Of which completed.
    pub completed: u64,
    /// Fraction meeting every SLO (unfinished requests miss).
    pub slo_attainment: f64,
    /// Attainment ≥ the scenario's target.
    pub meets_slo: bool,
    /// TTFT percentiles, s.
    pub ttft_p50_s: f64,
    /// TTFT p90, s.
    pub ttft_p90_s: f64,
    /// TTFT p99, s.
    pub ttft_p99_s: f64,
    /// TPOT p50, s.
    pub tpot_p50_s: f64,
    /// TPOT p90, s.
    pub tpot_p90_s: f64,
    /// TPOT p99, s.
    pub tpot_p99_s: f64,
    /// Interactivity 1 / mean TPOT, tok/s/user.
    pub mean_intvty: f64,
    /// Interactivity of the p90 TPOT (what 90% of requests get at least), tok/s/user.
    pub p90_intvty: f64,
    /// End-to-end latency, mean, s.
    pub mean_e2el_s: f64,
    /// Output tokens/s.
    pub output_tok_s: f64,
    /// Input + output tokens/s.
    pub total_tok_s: f64,
    /// GPUs attributed to the client (its own pools plus its share of shared ones).
    pub gpus: f64,
    /// total_tok_s / gpus.
    pub tput_per_gpu: f64,
}

/// One pool's placement and load.
#[derive(Debug, Clone, Serialize)]
pub struct PoolResult {
    /// Pool name.
    pub pool: String,
    /// Role.
    pub role: Role,
    /// `N x SPEC`.
    pub workers: String,
    /// First and last tray (0-based).
    pub trays: (u32, u32),
    /// GPUs.
    pub gpus: u32,
    /// Clients served (directly or through prefill pools).
    pub clients: Vec<String>,
    /// Fraction of time its workers were stepping.
    pub utilisation: f64,
    /// Mean running sequences per worker while stepping.
    pub mean_batch: f64,
}

/// KV transfers of one engine run (a group of clients).
#[derive(Debug, Clone, Serialize)]
pub struct LinkResult {
    /// Clients of the group.
    pub clients: Vec<String>,
    /// Links (one per prefill worker).
    pub links: usize,
    /// Transfers.
    pub transfers: u64,
    /// Mean KV bytes/s over the run, GB/s.
    pub mean_gb_s: f64,
    /// Mean fraction of time a link carried a transfer.
    pub link_utilisation: f64,
    /// Transfer time, median, ms.
    pub transfer_p50_ms: f64,
    /// Transfer time, p99, ms.
    pub transfer_p99_ms: f64,
}

/// A design's simulated results.
#[derive(Debug, Clone, Serialize)]
pub struct DesignResult {
    /// Design name.
    pub design: String,
    /// Note from the file.
    pub note: Option<String>,
    /// Trays used.
    pub trays: u32,
    /// GPUs used.
    pub gpus: u32,
    /// The design fits the rack's trays.
    pub fits: bool,
    /// Every client meets its SLO target.
    pub meets_all: bool,
    /// All tokens/s over all the design's GPUs.
    pub tput_per_gpu: f64,
    /// Per client.
    pub clients: Vec<ClientResult>,
    /// Per pool, in tray order.
    pub pools: Vec<PoolResult>,
    /// KV transfer load per engine run.
    pub kv_links: Vec<LinkResult>,
}
