//! Hand-built pools, requests and fleets for the routers' unit tests.

use crate::{FleetView, PoolView, RequestView};

/// A pool with `slots` = 100, idle, KV capacity larger than any request.
pub(crate) fn pool(id: &str, max_ctx_tok: u32) -> PoolView {
    PoolView {
        id: id.to_string(),
        max_ctx_tok,
        instances: 1,
        slots: 100,
        running: 0,
        waiting: 0,
        kv_capacity_tok: 1 << 40,
        models: Vec::new(),
    }
}

/// A prose request with no model, labels or prefix hashes.
pub(crate) fn req(input_tokens: u32, output_tokens: u32) -> RequestView<'static> {
    RequestView {
        id: 0,
        arrival_s: 0.0,
        input_tokens,
        output_tokens,
        predicted_output_tokens: None,
        category: "prose",
        model: None,
        labels: &[],
        prefix_hashes: &[],
    }
}

/// A fleet view at time 0.
pub(crate) fn fleet(pools: &[PoolView]) -> FleetView<'_> {
    FleetView { now_s: 0.0, pools }
}
