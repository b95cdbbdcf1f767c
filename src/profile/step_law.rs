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
        let inst = &self.instance;
        let mut m = StepMoments::default();
        let n = n_decode as f64;
        if n_decode > 0 {
            m.add_decode(n, decode_ctx_tok as f64, w);
            m.add_drafts(n, decode_ctx_tok as f64, inst.mtp_depth as f64, w);
        }
        for (prior, k) in chunks {
            m.add_chunk(prior as f64, k as f64, w);
        }
        let full = inst.step_moments(&m).step_s;
        let tau = inst.tokens_per_step();
        if inst.mtp_depth == 0 || n_decode == 0 {
            return full;
        }
        // The engine emits one token per decode sequence per step, a
        // verification step τ: the decode part is charged 1/τ of its cost
        // (its draft passes included), the prefill chunks in full.
        let (wb, hb) = self.decode_coeffs_s(n_decode);
        let decode_part = tau * (wb + hb * decode_ctx_tok as f64);
        (full + draft_s(inst, n) - (1.0 - 1.0 / tau) * decode_part).max(full / tau)
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
        m.add_drafts(n, n * c, inst.mtp_depth as f64, w);
        inst.step_moments(&m).step_s
    };
    let (s1, s2) = (at(c1), at(c2));
    let h = ((s2 - s1) / (n * (c2 - c1))).max(0.0);
    let w0 = s1 - h * n * c1;
    if inst.mtp_depth == 0 {
        return (w0, h);
    }
    // MTP: a verification step (the drafts included in `at`) plus the
    // sequential draft passes yields τ tokens per sequence; the engine's step
    // is one token, so W(b) and H(b) are per τ.
    let tau = inst.tokens_per_step();
    ((w0 + draft_s(inst, n)) / tau, h / tau)
}

/// Time of the `mtp_depth` sequential draft passes of a step over `n`
/// sequences: each is one decoder layer of the model (DeepSeek-V3's MTP
/// module, an EAGLE head) at that batch, i.e. 1/layers of the step's
/// compute-or-memory time, without a second scheduler overhead.
fn draft_s(inst: &Instance, n: f64) -> f64 {
    if inst.mtp_depth == 0 {
        return 0.0;
    }
    let mut m = StepMoments::default();
    m.add_decode(n, n * SECANT_CTX_TOK.0, 0.0);
    let st = inst.step_moments(&m);
    inst.mtp_depth as f64 * st.compute_s.max(st.memory_s) / inst.model.layers.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::computed::parse_instance;

    #[test]
    fn mtp_divides_the_verification_step_by_the_expected_tokens() {
        let base = parse_instance("--gpu", "gb200:deepseek-r1:dep8:fp4").expect("spec");
        let mtp = parse_instance("--gpu", "gb200:deepseek-r1:dep8:fp4:mtp2:acc0.8").expect("spec");
        assert_eq!(base.tokens_per_step(), 1.0);
        assert!((mtp.tokens_per_step() - (1.0 + 0.8 + 0.64)).abs() < 1e-12);
        let default_acc = parse_instance("--gpu", "gb200:deepseek-r1:dep8:fp4:mtp1").expect("spec");
        assert_eq!(default_acc.mtp_acceptance, 0.85);
        let (lb, lm) = (StepLaw::new(base, 64), StepLaw::new(mtp.clone(), 64));
        for b in [1u32, 8, 64] {
            let (wb, hb) = lb.decode_coeffs_s(b);
            let (wm, hm) = lm.decode_coeffs_s(b);
            // Per emitted token MTP is faster, per verification step slower.
            let ctx = 2048.0 * b as f64;
            let (t_base, t_mtp) = (wb + hb * ctx, wm + hm * ctx);
            assert!(t_mtp < t_base, "b {b}: {t_mtp} vs {t_base}");
            assert!(t_mtp * mtp.tokens_per_step() > t_base, "b {b}");
        }
        // A prefill step keeps its chunk at full cost.
        let with_chunk = lm.mixed_step_s(8, 8 * 2048, [(0, 4096)]);
        let (wm, hm) = lm.decode_coeffs_s(8);
        assert!(with_chunk > wm + hm * 8.0 * 2048.0);
        assert!(parse_instance("--gpu", "gb200:deepseek-r1:dep8:fp4:mtp9").is_err());
        assert!(parse_instance("--gpu", "gb200:deepseek-r1:dep8:fp4:mtp1:acc1.5").is_err());
    }
}
