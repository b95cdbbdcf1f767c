//! Read-only views of a request and of the fleet, handed to routers.

/// What a router may know about one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Arrival sequence number (unique within a run).
    pub id: u64,
    /// Arrival time in seconds since the start of the run.
    pub arrival_s: f64,
    /// Prompt length in tokens.
    pub input_tokens: u32,
    /// Output length in tokens (known to the simulator; an oracle for routers).
    pub output_tokens: u32,
    /// A predicted output length, when the workload carries one.
    pub predicted_output_tokens: Option<u32>,
    /// Category (`prose`, `code`, `rag`, `mixed` or free text).
    pub category: &'a str,
    /// Model id requested, if any.
    pub model: Option<&'a str>,
    /// Free-form labels from a trace (e.g. `selected_model`, `complexity`).
    pub labels: &'a [(String, String)],
    /// Prefix block hashes (Mooncake-style traces), possibly empty.
    pub prefix_hashes: &'a [u64],
}

impl RequestView<'_> {
    /// Total tokens (input + output), the KV footprint the request needs.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens as u64 + self.output_tokens as u64
    }

    /// The value of a label, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Read-only state of one pool at the moment of routing.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolView {
    /// Pool id as written in the fleet description.
    pub id: String,
    /// Largest ISL + OSL the pool accepts, in tokens.
    pub max_ctx_tok: u32,
    /// Serving instances in the pool.
    pub instances: u32,
    /// Concurrent sequences the whole pool can run (instances × slots per instance
    /// at the pool's max context).
    pub slots: u32,
    /// Sequences currently running in the pool.
    pub running: u32,
    /// Requests waiting in the pool's queues.
    pub waiting: u32,
    /// KV capacity of one instance, in tokens.
    pub kv_capacity_tok: u64,
    /// Model ids this pool serves (empty: any).
    pub models: Vec<String>,
}

impl PoolView {
    /// Whether a request needing `total_tokens` of context fits this pool.
    pub fn fits(&self, total_tokens: u64) -> bool {
        total_tokens <= self.max_ctx_tok as u64 && total_tokens <= self.kv_capacity_tok
    }

    /// Running sequences as a fraction of slots (0 when the pool has no slots).
    pub fn utilisation(&self) -> f64 {
        if self.slots == 0 {
            0.0
        } else {
            self.running as f64 / self.slots as f64
        }
    }

    /// (running + waiting) / slots: the load measure of `least-loaded`.
    pub fn load(&self) -> f64 {
        if self.slots == 0 {
            f64::INFINITY
        } else {
            (self.running + self.waiting) as f64 / self.slots as f64
        }
    }
}

/// Read-only state of the whole fleet.
#[derive(Debug, Clone, Copy)]
pub struct FleetView<'a> {
    /// Simulated time, seconds.
    pub now_s: f64,
    /// Pools in fleet order; a [`crate::Decision`] names a pool by its index here.
    pub pools: &'a [PoolView],
}
