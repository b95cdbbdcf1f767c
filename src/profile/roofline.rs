//! Roofline step-time model of one serving instance (model × hardware × TP/EP ×
//! dtypes): `step = max(compute, memory) + communication + fixed overhead`.

use serde::Serialize;

use super::hardware::{Dtype, Hardware};
use super::models::ModelSpec;

/// Named efficiency factors and serving constants of the roofline, with defaults.
///
/// `compute_eff`, `memory_eff`, `link_eff`, `hop_latency_s` and
/// `step_overhead_s` are fitted, not assumed: they are the grid-search optimum
/// ([`super::validate::fit_efficiencies`] over [`super::validate::FIT_GRID`])
/// on the training half of the public measurements in
/// `data/roofline_validation.toml` (TensorRT-LLM v0.9.0 and v0.7a performance
/// tables for A100/H100/H200/L40S, the vLLM nightly latency benchmark on
/// A100/H100/H200, the ROCm vLLM MI300X latency table; every point names its
/// source). On the held-out half the median |error| of dense decode steps at
/// batch ≥ 8 is 8 %; fitting on all but one source family and predicting that
/// family gives 32–80 %, i.e. absolute accuracy for an unseen serving stack is
/// much looser than for the stacks measured. Re-run with
/// `kvfleet profile validate` and `cargo test --release --test roofline_validation`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RooflineParams {
    /// Fraction of dense tensor peak achieved by the step's matmuls. Default 0.60
    /// (fitted; inside the 60–75 % of dense peak that large cuBLAS/hipBLASLt
    /// GEMMs reach, which is what the large-batch TensorRT-LLM points need).
    pub compute_eff: f64,
    /// Fraction of peak HBM bandwidth achieved when streaming weights and KV.
    /// Default 0.65 (fitted; decode kernels reach less than STREAM-like copies).
    pub memory_eff: f64,
    /// Fraction of the scale-up link's per-direction bandwidth that the per-layer
    /// all-reduces achieve. Default 0.25 (fitted: decode all-reduces move
    /// 0.1–4 MB messages, far below the message sizes at which NCCL/RCCL reach
    /// link peak).
    pub link_eff: f64,
    /// Latency of one ring hop (one message), seconds. Default 3 µs (fitted).
    pub hop_latency_s: f64,
    /// Fixed per-step overhead (scheduling, sampling, kernel launches), seconds.
    /// Default 0.5 ms (fitted; engines replaying CUDA/HIP graphs).
    pub step_overhead_s: f64,
    /// Fraction of device memory the engine may use (vLLM `gpu_memory_utilization`, default 0.90).
    pub mem_fraction: f64,
    /// Memory held back per GPU for activations, CUDA graphs and communication buffers, GB. Default 2.
    pub reserve_gb: f64,
    /// Bytes per activation value exchanged by collectives (BF16 = 2).
    pub act_bytes: f64,
}

impl Default for RooflineParams {
    fn default() -> Self {
        RooflineParams {
            compute_eff: 0.60,
            memory_eff: 0.65,
            link_eff: 0.25,
            hop_latency_s: 3e-6,
            step_overhead_s: 0.5e-3,
            mem_fraction: 0.90,
            reserve_gb: 2.0,
            act_bytes: 2.0,
        }
    }
}

/// Sequences whose sliding-window KV is set aside when sizing the KV cache of
/// a model with sliding-window layers (vLLM's default `max_num_seqs`).
pub const WINDOW_RESERVE_SEQS: f64 = 256.0;

/// One serving instance: a model on `tp` GPUs of one hardware type.
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    /// The GPU.
    pub hw: Hardware,
    /// The model.
    pub model: ModelSpec,
    /// Tensor-parallel degree (GPUs per instance).
    pub tp: u64,
    /// Expert-parallel degree for MoE layers (1 = experts tensor-parallel).
    pub ep: u64,
    /// Weight storage format.
    pub weight_dtype: Dtype,
    /// KV-cache storage format.
    pub kv_dtype: Dtype,
    /// Efficiencies and serving constants.
    pub params: RooflineParams,
}

/// A batch for one step: `n_decode` sequences whose contexts sum to
/// `decode_ctx_sum_tok`, plus `prefill_tok` prefill tokens split evenly over
/// `prefill_seqs` prompts, each following `prefill_prior_ctx_tok` tokens of its
/// own already in the KV cache (`prefill_seqs` 0 counts as one prompt; it may be
/// fractional when a step carries part of a prompt on average).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Batch {
    /// Decode sequences (one new token each).
    pub n_decode: f64,
    /// Sum of the decode sequences' contexts, tokens.
    pub decode_ctx_sum_tok: f64,
    /// Prefill tokens in the step.
    pub prefill_tok: f64,
    /// Context already cached before each prompt's prefill chunk, tokens.
    pub prefill_prior_ctx_tok: f64,
    /// Prompts the prefill tokens belong to (0 = one prompt).
    pub prefill_seqs: f64,
}

impl Batch {
    /// Prompts of the prefill part (1 when unset).
    fn prompts(&self) -> f64 {
        if self.prefill_seqs > 0.0 {
            self.prefill_seqs
        } else {
            1.0
        }
    }
}

/// Time of one step and its parts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepTime {
    /// Total step time, seconds.
    pub step_s: f64,
    /// Matmul + attention compute time, seconds.
    pub compute_s: f64,
    /// HBM traffic time (weights, KV read and write), seconds.
    pub memory_s: f64,
    /// Collective communication time, seconds.
    pub comm_s: f64,
    /// Fixed overhead, seconds.
    pub overhead_s: f64,
    /// Which term dominates: `compute`, `memory` or `comm`.
    pub bound: &'static str,
    /// FLOPs of the step (whole instance).
    pub flops: f64,
    /// HBM bytes moved per GPU.
    pub bytes_per_gpu: f64,
}

impl Instance {
    /// Weight bytes of the whole model in `weight_dtype`.
    pub fn weight_bytes(&self) -> f64 {
        self.model.total_params() as f64 * self.weight_dtype.bytes()
    }

    /// Free memory per GPU for the context-growing KV cache, bytes (negative:
    /// the model does not fit). The sliding-window layers' bounded KV is set
    /// aside for [`WINDOW_RESERVE_SEQS`] sequences.
    pub fn kv_free_bytes_per_gpu(&self) -> f64 {
        let p = &self.params;
        self.hw.hbm_gb * 1e9 * p.mem_fraction
            - self.weight_bytes() / self.tp as f64
            - p.reserve_gb * 1e9
            - WINDOW_RESERVE_SEQS * self.window_kv_bytes_per_seq_per_gpu()
    }

    /// Most KV bytes one sequence holds per GPU in the sliding-window layers.
    pub fn window_kv_bytes_per_seq_per_gpu(&self) -> f64 {
        self.model
            .window_kv_bytes_per_token_per_gpu(self.kv_dtype.bytes(), self.tp)
            * self.model.sliding_window as f64
    }

    /// KV bytes per token on each GPU.
    pub fn kv_bytes_per_token_per_gpu(&self) -> f64 {
        self.model
            .kv_bytes_per_token_per_gpu(self.kv_dtype.bytes(), self.tp)
    }

    /// KV capacity of the instance, tokens: free memory per GPU over KV bytes
    /// per token per GPU (every token lives on every rank, sharded by KV head).
    pub fn kv_capacity_tok(&self) -> f64 {
        (self.kv_free_bytes_per_gpu() / self.kv_bytes_per_token_per_gpu()).max(0.0)
    }

    /// KV blocks of `blk_size` tokens per instance.
    pub fn kv_blocks(&self, blk_size: u32) -> u64 {
        (self.kv_capacity_tok() / blk_size as f64).floor() as u64
    }

    fn ring_allreduce_s(&self, bytes: f64) -> f64 {
        let t = self.tp as f64;
        if self.tp <= 1 {
            return 0.0;
        }
        let bw = self.hw.scaleup_gbps * 1e9 * self.params.link_eff;
        2.0 * (t - 1.0) / t * bytes / bw + 2.0 * (t - 1.0) * self.params.hop_latency_s
    }

    /// Roofline time of one step.
    pub fn step(&self, b: &Batch) -> StepTime {
        let m = &self.model;
        let p = &self.params;
        let t = self.tp as f64;
        let tokens = b.n_decode + b.prefill_tok;
        // Compute: 2·active params per token for the linear layers, plus attention over context.
        // Each prompt's chunk attends to its cached prefix and causally to itself.
        let attn_pairs = b.decode_ctx_sum_tok
            + b.prefill_tok * b.prefill_prior_ctx_tok
            + 0.5 * b.prefill_tok * b.prefill_tok / b.prompts();
        // Sliding-window layers see at most `sliding_window` tokens of context.
        let w = m.sliding_window as f64;
        let (win_dec_ctx, win_prior) = if m.window_layers() > 0 {
            let mean_ctx = if b.n_decode > 0.0 {
                b.decode_ctx_sum_tok / b.n_decode
            } else {
                0.0
            };
            (b.n_decode * mean_ctx.min(w), b.prefill_prior_ctx_tok.min(w))
        } else {
            (0.0, 0.0)
        };
        let win_pairs =
            win_dec_ctx + b.prefill_tok * (win_prior + 0.5 * b.prefill_tok / b.prompts()).min(w);
        let flops = 2.0 * m.active_params() as f64 * tokens
            + m.attn_flops_per_token_ctx() * attn_pairs
            + m.window_attn_flops_per_token_ctx() * win_pairs;
        let compute_s = flops / t / (self.hw.peak_flops(self.weight_dtype) * p.compute_eff);
        // Memory: weights once per step (only the experts some token was routed to),
        // KV read for every context token, KV written for every new token.
        let routed = m.routed_expert_params() as f64;
        let touched = if m.is_moe() && tokens > 0.0 {
            let miss = 1.0 - m.experts_per_tok as f64 / m.experts as f64;
            1.0 - miss.powf(tokens)
        } else {
            0.0
        };
        let weights_read =
            (m.total_params() as f64 - routed + routed * touched) * self.weight_dtype.bytes() / t;
        let kv_tok = self.kv_bytes_per_token_per_gpu();
        let kv_read = kv_tok
            * (b.decode_ctx_sum_tok
                + if b.prefill_tok > 0.0 {
                    b.prefill_prior_ctx_tok * b.prompts()
                } else {
                    0.0
                });
        let kv_win_tok = m.window_kv_bytes_per_token_per_gpu(self.kv_dtype.bytes(), self.tp);
        let kv_read = kv_read
            + kv_win_tok
                * (win_dec_ctx
                    + if b.prefill_tok > 0.0 {
                        win_prior * b.prompts()
                    } else {
                        0.0
                    });
        let kv_write = (kv_tok + kv_win_tok) * tokens;
        let bytes_per_gpu = weights_read + kv_read + kv_write;
        let memory_s = bytes_per_gpu / (self.hw.hbm_tbps * 1e12 * p.memory_eff);
        // Communication: 2 all-reduces of the hidden state per layer; MoE layers
        // with EP > 1 replace the MLP all-reduce by an all-to-all dispatch + combine.
        let msg = tokens * m.hidden as f64 * p.act_bytes;
        let moe_layers = if m.is_moe() {
            m.layers - m.dense_layers.min(m.layers)
        } else {
            0
        } as f64;
        let comm_s = if tokens == 0.0 {
            0.0
        } else if self.ep > 1 && m.is_moe() {
            let e = self.ep as f64;
            let a2a_bytes =
                tokens / t * m.hidden as f64 * p.act_bytes * m.experts_per_tok as f64 * (e - 1.0)
                    / e;
            let a2a =
                a2a_bytes / (self.hw.scaleup_gbps * 1e9 * p.link_eff) + (e - 1.0) * p.hop_latency_s;
            (m.layers as f64 + (m.layers as f64 - moe_layers)) * self.ring_allreduce_s(msg)
                + moe_layers * 2.0 * a2a
        } else {
            2.0 * m.layers as f64 * self.ring_allreduce_s(msg)
        };
        let overhead_s = p.step_overhead_s;
        let step_s = compute_s.max(memory_s) + comm_s + overhead_s;
        let bound = if comm_s > compute_s.max(memory_s) {
            "comm"
        } else if compute_s >= memory_s {
            "compute"
        } else {
            "memory"
        };
        StepTime {
            step_s,
            compute_s,
            memory_s,
            comm_s,
            overhead_s,
            bound,
            flops,
            bytes_per_gpu,
        }
    }
}
