//! The per-batch step law of computed profiles.
//!
//! A pure-decode run keeps its batch `b` fixed while every context grows by
//! one token per step, so any law `step = W(b) + H(b)·Σctx` keeps the engine's
//! closed-form fast-forward exact (DESIGN §13). [`StepLaw`] takes W(b) and
//! H(b) from the roofline evaluated at each batch size (MoE expert coverage,
//! per-sequence overhead, CUDA-graph padding and the collectives all depend on
//! b, not on Σctx), tabulated up to a batch size and computed on demand
//! beyond it. Steps that carry prefill chunks are priced from the full
//! roofline ([`StepLaw::mixed_step_s`]): the chunk tokens, their attention over
//! the prompt's cached prefix, and the decode part.

use serde::Serialize;

use super::roofline::{Instance, StepMoments};

/// Per-sequence contexts (tokens) between which H(b) is the roofline's secant.
/// The roofline is piecewise linear in Σctx (`max(compute, memory)`); in the
/// memory-bound decode regime the secant is exact.
pub const SECANT_CTX_TOK: (f64, f64) = (1024.0, 8192.0);

/// A computed profile's step law: the roofline instance plus W(b), H(b).
#[derive(Debug, Clone, Serialize)]
pub struct StepLaw {
    /// The roofline instance (hardware, model, parallelism, efficiencies).
    pub instance: Instance,
    /// `(W(b) s, H(b) s per context token)` for b = 1, 2, …, `table.len()`.
    pub table: Vec<(f64, f64)>,
}

impl PartialEq for StepLaw {
    fn eq(&self, other: &Self) -> bool {
        self.table == other.table && self.instance.params == other.instance.params
    }
}

impl StepLaw {
    /// Tabulate W(b), H(b) for b = 1..=`max_batch`.
    pub fn new(instance: Instance, max_batch: u32) -> StepLaw {
        let table = (1..=max_batch.max(1))
            .map(|b| decode_coeffs(&instance, b))
            .collect();
        StepLaw { instance, table }
    }

    /// `(W(b) s, H(b) s per context token)` of a pure-decode step of `b` sequences.
    pub fn decode_coeffs_s(&self, b: u32) -> (f64, f64) {
        match self.table.get(b.max(1) as usize - 1) {
            Some(&c) => c,
            None => decode_coeffs(&self.instance, b),
        }
    }

    /// Sliding-window span of the model, tokens (0 without window layers).
    pub fn window_tok(&self) -> f64 {
        let m = &self.instance.model;
        if m.window_layers() > 0 {
            m.sliding_window as f64
        } else {
            0.0
        }
    }

    /// Roofline time of a step with `n_decode` decode sequences whose contexts
    /// sum to `decode_ctx_tok` and prefill chunks `(prior cached tokens, chunk
    /// tokens)`, seconds.
    pub fn mixed_step_s(
        &self,
        n_decode: u32,
        decode_ctx_tok: u64,
        chunks: impl IntoIterator<Item = (u64, u64)>,
    ) -> f64 {
        let w = self.window_tok();
        let mut m = StepMoments::default();
        if n_decode > 0 {
            m.add_decode(n_decode as f64, decode_ctx_tok as f64, w);
        }
        for (prior, k) in chunks {
            m.add_chunk(prior as f64, k as f64, w);
        }
        self.instance.step_moments(&m).step_s
    }
}

/// W(b), H(b) of the roofline: the secant of the pure-decode step time
/// between per-sequence contexts [`SECANT_CTX_TOK`] (contexts at least the
/// sliding window, so its layers read a full window).
fn decode_coeffs(inst: &Instance, b: u32) -> (f64, f64) {
    let w = {
        let m = &inst.model;
        if m.window_layers() > 0 {
            m.sliding_window as f64
        } else {
            0.0
        }
    };
    let (c1, c2) = SECANT_CTX_TOK;
    let n = b as f64;
    let at = |c: f64| {
        let mut m = StepMoments::default();
        m.add_decode(n, n * c, w);
        inst.step_moments(&m).step_s
    };
    let (s1, s2) = (at(c1), at(c2));
    let h = ((s2 - s1) / (n * (c2 - c1))).max(0.0);
    (s1 - h * n * c1, h)
}
