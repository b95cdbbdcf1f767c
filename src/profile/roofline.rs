//! Roofline step-time model of one serving instance (model × hardware × TP/EP ×
//! dtypes): `step = max(compute, memory) + communication + fixed overhead`.

use serde::{Deserialize, Serialize};

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
/// batch ≥ 8 is 7 %; fitting on all but one source family and predicting that
/// family gives 19–43 %, i.e. absolute accuracy for an unseen serving stack is
/// much looser than for the stacks measured. Re-run with
/// `kvfleet profile validate` and `cargo test --release --test roofline_validation`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Default 1 ms (fitted; engines replaying CUDA/HIP graphs. It was 0.5 ms
    /// while the roofline streamed the whole input-embedding table every step).
    pub step_overhead_s: f64,
    /// Fraction of device memory the engine may use (vLLM `gpu_memory_utilization`, default 0.90).
    pub mem_fraction: f64,
    /// Memory held back per GPU for activations, CUDA graphs and communication buffers, GB. Default 2.
    pub reserve_gb: f64,
    /// Bytes per activation value exchanged by collectives (BF16 = 2).
    pub act_bytes: f64,
    /// Per-sequence per-step overhead of the serving engine (scheduling, input
    /// preparation, sampling, detokenisation of one sequence), seconds.
    /// Default 0 (the step-time measurements of `data/roofline_validation.toml`
    /// cannot separate it); a serving calibration fits it.
    pub seq_overhead_s: f64,
    /// Largest token count with a captured CUDA/HIP graph (vLLM
    /// `max_cudagraph_capture_size`, 512 by default); steps up to it run padded
    /// to the next captured size ([`cuda_graph_padded_tok`]). 0 = no padding
    /// (the default of the step-time fit, whose batches are powers of two).
    pub cuda_graph_max_tok: u32,
    /// Latency a client sees per request outside the engine's steps (HTTP,
    /// tokenisation, detokenisation and streaming of the API server), seconds.
    /// No step pays it; `kvfleet benchmark` adds it to TTFT and E2E. Default 0.
    pub frontend_latency_s: f64,
}

impl Default for RooflineParams {
    fn default() -> Self {
        RooflineParams {
            compute_eff: 0.60,
            memory_eff: 0.65,
            link_eff: 0.25,
            hop_latency_s: 3e-6,
            step_overhead_s: 1.0e-3,
            mem_fraction: 0.90,
            reserve_gb: 2.0,
            act_bytes: 2.0,
            seq_overhead_s: 0.0,
            cuda_graph_max_tok: 0,
            frontend_latency_s: 0.0,
        }
    }
}

/// Sequences whose sliding-window KV is set aside when sizing the KV cache of
/// a model with sliding-window layers (vLLM's default `max_num_seqs`).
pub const WINDOW_RESERVE_SEQS: f64 = 256.0;

/// One serving instance: a model on `tp·dp·pp` GPUs of one hardware type.
///
/// Attention and the dense layers are tensor-parallel over `tp` GPUs within
/// each of `dp` data-parallel attention ranks (DP-attention: each rank holds
/// its own sequences and their KV; an MLA latent is then not replicated); the
/// routed experts are expert-parallel over `ep` GPUs (`ep` 1: tensor-parallel
/// over `tp` within each rank); the layers are split into `pp` pipeline
/// stages. `tepN` = tp N, ep N; `depN` = tp 1, dp N, ep N.
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    /// The GPU.
    pub hw: Hardware,
    /// The model.
    pub model: ModelSpec,
    /// Tensor-parallel degree of attention and dense layers (per DP rank and stage).
    pub tp: u64,
    /// Expert-parallel degree for MoE layers (1 = experts tensor-parallel).
    pub ep: u64,
    /// Data-parallel attention ranks (1 = none).
    pub dp: u64,
    /// Pipeline-parallel stages (1 = none).
    pub pp: u64,
    /// MTP / speculative decoding: draft tokens verified per sequence and
    /// step (0 = none).
    pub mtp_depth: u64,
    /// Acceptance probability of each draft position (given the previous ones).
    pub mtp_acceptance: f64,
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
    /// Weight bytes of the whole model (experts in `weight_dtype`, the rest
    /// in [`Self::dense_dtype`]).
    pub fn weight_bytes(&self) -> f64 {
        let routed = self.model.routed_expert_params() as f64;
        (self.model.total_params() as f64 - routed) * self.dense_dtype().bytes()
            + routed * self.expert_dtype().bytes()
    }

    /// Expected tokens a decode sequence gains per verification step with
    /// MTP depth d and acceptance α: `Σ_{i=0..d} α^i` (1 without MTP).
    pub fn tokens_per_step(&self) -> f64 {
        (0..=self.mtp_depth)
            .map(|i| self.mtp_acceptance.powi(i as i32))
            .sum()
    }

    /// GPUs of the instance: `tp · dp · pp`.
    pub fn gpus(&self) -> u64 {
        self.tp * self.dp * self.pp
    }

    /// GPUs one routed expert's weights are split over (per stage): `ep`, or `tp` without EP.
    fn expert_shards(&self) -> f64 {
        (if self.ep > 1 { self.ep } else { self.tp }) as f64
    }

    /// Weight bytes held by each GPU.
    pub fn weight_bytes_per_gpu(&self) -> f64 {
        let routed = self.model.routed_expert_params() as f64;
        let other = self.model.total_params() as f64 - routed;
        (other * self.dense_dtype().bytes() / self.tp as f64
            + routed * self.expert_dtype().bytes() / self.expert_shards())
            / self.pp as f64
    }

    /// Free memory per GPU for the context-growing KV cache, bytes (negative:
    /// the model does not fit). The sliding-window layers' bounded KV is set
    /// aside for [`WINDOW_RESERVE_SEQS`] sequences.
    pub fn kv_free_bytes_per_gpu(&self) -> f64 {
        let p = &self.params;
        self.hw.hbm_gb * 1e9 * p.mem_fraction
            - self.weight_bytes_per_gpu()
            - p.reserve_gb * 1e9
            - WINDOW_RESERVE_SEQS * self.window_kv_bytes_per_seq_per_gpu()
    }

    /// Most KV bytes one sequence holds per GPU in the sliding-window layers.
    pub fn window_kv_bytes_per_seq_per_gpu(&self) -> f64 {
        self.model
            .window_kv_bytes_per_token_per_gpu(self.kv_dtype.bytes(), self.tp)
            * self.model.sliding_window as f64
            / self.pp as f64
    }

    /// KV bytes per token on each GPU holding it (its stage's layers; sharded
    /// by KV head over `tp`, an MLA latent replicated over `tp`).
    pub fn kv_bytes_per_token_per_gpu(&self) -> f64 {
        self.model
            .kv_bytes_per_token_per_gpu(self.kv_dtype.bytes(), self.tp)
            / self.pp as f64
    }

    /// KV capacity of the instance, tokens: free memory per GPU over KV bytes
    /// per token per GPU, times the DP-attention ranks (each holds the KV of
    /// its own sequences only).
    pub fn kv_capacity_tok(&self) -> f64 {
        (self.kv_free_bytes_per_gpu() / self.kv_bytes_per_token_per_gpu()).max(0.0) * self.dp as f64
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

    /// Roofline time of one step (a batch given by its averages; see [`Batch`]).
    pub fn step(&self, b: &Batch) -> StepTime {
        self.step_moments(&StepMoments::of_batch(self, b))
    }

    /// Roofline time of one step given by its exact sums ([`StepMoments`]).
    ///
    /// The step lasts as long as its slowest DP-attention rank, which carries
    /// `ceil(n/dp)` of the step's `n` sequences (and that share of their
    /// tokens and context); the experts of an EP instance see every rank's
    /// tokens. With `pp` stages the batch runs as `pp` microbatches, so a
    /// token takes one pass of a microbatch (1/pp of the batch) through all
    /// layers, plus the `pp − 1` hand-offs between stages.
    pub fn step_moments(&self, b: &StepMoments) -> StepTime {
        let m = &self.model;
        let p = &self.params;
        let t = self.tp as f64;
        let pp = self.pp as f64;
        let seqs = b.n_decode + b.prefill_seqs;
        let rank = if self.dp > 1 && seqs > 0.0 {
            (seqs / self.dp as f64).ceil() / seqs
        } else {
            1.0
        } / pp;
        let all_tokens = (b.n_decode + b.spec_tok + b.prefill_tok) / pp;
        let tokens = all_tokens * rank * pp;
        let expert_tokens = if self.ep > 1 { all_tokens } else { tokens };
        // CUDA/HIP graphs are captured for a fixed list of token counts; a step
        // runs the graph of the next captured size, so its matmuls see padded rows.
        let pad = |x: f64| cuda_graph_padded_tok(x, p.cuda_graph_max_tok);
        // Compute: 2·active params per token for the linear layers (experts at the
        // math precision of their weights, the rest at its own), plus attention.
        let (expert_active, other_active) = self.active_split();
        let linear_s = 2.0 * pad(expert_tokens) * expert_active
            / self.expert_shards()
            / self.peak_flops_eff(self.expert_dtype())
            + 2.0 * pad(tokens) * other_active / t / self.peak_flops_eff(self.dense_dtype());
        let attn_flops = (m.attn_flops_per_token_ctx() * b.attn_pairs
            + m.window_attn_flops_per_token_ctx() * b.win_attn_pairs)
            * rank;
        let attn_s = attn_flops / t / self.peak_flops_eff(self.attention_dtype());
        let flops = 2.0 * tokens * other_active + 2.0 * expert_tokens * expert_active + attn_flops;
        let compute_s = linear_s + attn_s;
        // Memory: weights once per microbatch pass (only the experts some token
        // was routed to), KV read for every context token, written for every new one.
        let weights_read = self.weight_bytes_read_per_gpu(tokens, expert_tokens);
        let kv_tok = m.kv_bytes_per_token_per_gpu(self.kv_dtype.bytes(), self.tp);
        let kv_win_tok = m.window_kv_bytes_per_token_per_gpu(self.kv_dtype.bytes(), self.tp);
        let kv_read = (kv_tok * b.kv_read_tok + kv_win_tok * b.win_kv_read_tok) * rank;
        let kv_write = (kv_tok + kv_win_tok) * tokens;
        let bytes_per_gpu = weights_read + kv_read + kv_write;
        let memory_s = bytes_per_gpu / (self.hw.hbm_tbps * 1e12 * p.memory_eff);
        let comm_s = self.comm_s(tokens)
            + if self.pp > 1 && tokens > 0.0 {
                (pp - 1.0)
                    * (p.hop_latency_s
                        + tokens * m.hidden as f64 * p.act_bytes
                            / (self.hw.scaleup_gbps * 1e9 * p.link_eff))
            } else {
                0.0
            };
        let overhead_s = p.step_overhead_s + p.seq_overhead_s * seqs * rank * pp;
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

    /// Format of the routed experts' weights.
    pub fn expert_dtype(&self) -> Dtype {
        self.weight_dtype
    }

    /// Format of the non-expert weights (attention, dense MLP, embeddings): BF16
    /// when the checkpoint quantises only its experts ([`ModelSpec::quant_experts_only`]).
    pub fn dense_dtype(&self) -> Dtype {
        if self.model.quant_experts_only && self.model.is_moe() {
            Dtype::Bf16
        } else {
            self.weight_dtype
        }
    }

    /// Math format of attention: the KV cache's (FP8 attention with an FP8 cache, else BF16).
    pub fn attention_dtype(&self) -> Dtype {
        match self.kv_dtype {
            Dtype::Fp8 => Dtype::Fp8,
            _ => Dtype::Bf16,
        }
    }

    /// Effective FLOP/s of one GPU multiplying weights stored as `d`.
    fn peak_flops_eff(&self, d: Dtype) -> f64 {
        self.hw.peak_flops(d) * self.params.compute_eff
    }

    /// (routed-expert, other) parameters multiplied per token.
    fn active_split(&self) -> (f64, f64) {
        let m = &self.model;
        let active = m.active_params() as f64;
        if !m.is_moe() {
            return (0.0, active);
        }
        let e = m.routed_expert_params() as f64 / m.experts as f64 * m.experts_per_tok as f64;
        (e, active - e)
    }

    /// Expected distinct experts per MoE layer touched by `tokens` tokens, each
    /// routed to k of E experts uniformly: `E·(1 − (1 − k/E)^tokens)`.
    pub fn experts_touched(&self, tokens: f64) -> f64 {
        let m = &self.model;
        if !m.is_moe() || tokens <= 0.0 {
            return 0.0;
        }
        let e = m.experts as f64;
        e * (1.0 - (1.0 - m.experts_per_tok as f64 / e).powf(tokens))
    }

    /// Weight bytes streamed from HBM by a pass of `tokens` tokens through
    /// the non-expert weights whose experts see `expert_tokens` tokens, for
    /// the whole instance: (non-expert bytes, expert bytes touched). The input
    /// embedding is a lookup of `tokens` rows, not a stream of the table (a
    /// tied LM head streams it).
    fn weight_bytes_split(&self, tokens: f64, expert_tokens: f64) -> (f64, f64) {
        let m = &self.model;
        let routed = m.routed_expert_params() as f64;
        let embed = m.embedding_params() as f64;
        let looked_up = if m.tied_embeddings {
            embed
        } else {
            (tokens * m.hidden as f64).min(embed)
        };
        let other = m.total_params() as f64 - routed - embed + looked_up;
        let touched_frac = if m.is_moe() {
            self.experts_touched(expert_tokens) / m.experts as f64
        } else {
            0.0
        };
        (
            other * self.dense_dtype().bytes(),
            routed * touched_frac * self.expert_dtype().bytes(),
        )
    }

    /// Weight bytes a step of `tokens` tokens streams from HBM (whole instance):
    /// every non-expert weight plus the experts touched.
    pub fn weight_bytes_read(&self, tokens: f64) -> f64 {
        let (dense, experts) = self.weight_bytes_split(tokens, tokens);
        dense + experts
    }

    /// Weight bytes each GPU streams in one microbatch pass through all layers:
    /// its shard of the non-expert weights (`rank_tokens` tokens on its DP
    /// rank) and of the experts touched by `expert_tokens` tokens.
    fn weight_bytes_read_per_gpu(&self, rank_tokens: f64, expert_tokens: f64) -> f64 {
        let (dense, experts) = self.weight_bytes_split(rank_tokens, expert_tokens);
        dense / self.tp as f64 + experts / self.expert_shards()
    }

    /// Collective time of a step of `tokens` tokens: 2 all-reduces of the
    /// hidden state per layer; MoE layers with EP > 1 replace the MLP
    /// all-reduce by an all-to-all dispatch + combine.
    fn comm_s(&self, tokens: f64) -> f64 {
        let m = &self.model;
        let p = &self.params;
        let t = self.tp as f64;
        if tokens == 0.0 {
            return 0.0;
        }
        let msg = tokens * m.hidden as f64 * p.act_bytes;
        let moe_layers = if m.is_moe() {
            m.layers - m.dense_layers.min(m.layers)
        } else {
            0
        } as f64;
        if self.ep > 1 && m.is_moe() {
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
        }
    }
}

/// Token counts for which vLLM captures CUDA graphs by default
/// (`cudagraph_capture_sizes`: 1, 2, 4, then every multiple of 8 up to
/// `max_tok`): a step of `tokens` tokens is padded to the next one; above
/// `max_tok` (or with `max_tok` 0) it runs unpadded.
pub fn cuda_graph_padded_tok(tokens: f64, max_tok: u32) -> f64 {
    if max_tok == 0 || tokens > max_tok as f64 || tokens <= 0.0 {
        return tokens;
    }
    let n = tokens.ceil();
    let padded = if n <= 2.0 {
        n
    } else if n <= 4.0 {
        4.0
    } else {
        (n / 8.0).ceil() * 8.0
    };
    padded.min(max_tok as f64).max(tokens)
}

/// A step given by exact sums over its sequences: what [`Instance::step_moments`]
/// prices. The engine builds these from its batch; [`StepMoments::of_batch`]
/// from a [`Batch`] of averages.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StepMoments {
    /// Decode sequences (one new token each).
    pub n_decode: f64,
    /// Prefill tokens in the step.
    pub prefill_tok: f64,
    /// Prompts with a prefill chunk in the step.
    pub prefill_seqs: f64,
    /// Draft tokens verified beyond one per decode sequence (MTP).
    pub spec_tok: f64,
    /// (query, key) pairs of the full-attention layers: Σ decode ctx +
    /// Σ over chunks (k·prior + k²/2).
    pub attn_pairs: f64,
    /// The same for the sliding-window layers (context capped at the window).
    pub win_attn_pairs: f64,
    /// Cached tokens whose full-attention KV the step reads.
    pub kv_read_tok: f64,
    /// Cached tokens whose sliding-window KV the step reads.
    pub win_kv_read_tok: f64,
}

impl StepMoments {
    /// Sums of a [`Batch`] of averages (decode contexts all at their mean,
    /// prompts alike).
    pub fn of_batch(inst: &Instance, b: &Batch) -> StepMoments {
        let m = &inst.model;
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
        let has_prefill = b.prefill_tok > 0.0;
        StepMoments {
            spec_tok: 0.0,
            n_decode: b.n_decode,
            prefill_tok: b.prefill_tok,
            prefill_seqs: if has_prefill { b.prompts() } else { 0.0 },
            attn_pairs,
            win_attn_pairs: win_pairs,
            kv_read_tok: b.decode_ctx_sum_tok
                + if has_prefill {
                    b.prefill_prior_ctx_tok * b.prompts()
                } else {
                    0.0
                },
            win_kv_read_tok: win_dec_ctx
                + if has_prefill {
                    win_prior * b.prompts()
                } else {
                    0.0
                },
        }
    }

    /// Add decode sequences whose contexts sum to `ctx_sum_tok`, all at least
    /// as long as the sliding window (`window_tok`; 0 = none).
    pub fn add_decode(&mut self, n: f64, ctx_sum_tok: f64, window_tok: f64) {
        self.n_decode += n;
        self.attn_pairs += ctx_sum_tok;
        self.kv_read_tok += ctx_sum_tok;
        let win = n * window_tok.min(if n > 0.0 { ctx_sum_tok / n } else { 0.0 });
        self.win_attn_pairs += win;
        self.win_kv_read_tok += win;
    }

    /// Add `k` draft tokens per decode sequence to verify (MTP): each attends
    /// to its sequence's context; the KV is read once per sequence.
    pub fn add_drafts(&mut self, n: f64, ctx_sum_tok: f64, k: f64, window_tok: f64) {
        self.spec_tok += n * k;
        self.attn_pairs += k * ctx_sum_tok;
        let win = n * window_tok.min(if n > 0.0 { ctx_sum_tok / n } else { 0.0 });
        self.win_attn_pairs += k * win;
    }

    /// Add one prompt's chunk of `k` tokens following `prior` cached tokens.
    pub fn add_chunk(&mut self, prior_tok: f64, k: f64, window_tok: f64) {
        self.prefill_tok += k;
        self.prefill_seqs += 1.0;
        self.attn_pairs += k * prior_tok + 0.5 * k * k;
        self.kv_read_tok += prior_tok;
        if window_tok > 0.0 {
            self.win_attn_pairs += k * (prior_tok + 0.5 * k).min(window_tok);
            self.win_kv_read_tok += prior_tok.min(window_tok);
        }
    }
}

#[cfg(test)]
mod parallel_tests {
    use super::*;
    use crate::profile::computed::parse_instance;

    fn inst(spec: &str) -> Instance {
        parse_instance("--gpu", spec).expect("spec")
    }

    fn decode(n: f64, ctx: f64) -> StepMoments {
        let mut m = StepMoments::default();
        m.add_decode(n, n * ctx, 0.0);
        m
    }

    #[test]
    fn dp_attention_holds_each_ranks_kv_once_and_waits_for_the_slowest_rank() {
        // MLA: under TP every rank holds the whole latent; under DEP each rank
        // holds only its own sequences'.
        let (tep, dep) = (
            inst("gb200:deepseek-r1:tep8:fp4"),
            inst("gb200:deepseek-r1:dep8:fp4"),
        );
        assert_eq!((tep.gpus(), dep.gpus()), (8, 8));
        assert_eq!((dep.tp, dep.dp, dep.ep), (1, 8, 8));
        assert_eq!(
            tep.kv_bytes_per_token_per_gpu(),
            dep.kv_bytes_per_token_per_gpu()
        );
        assert!(
            dep.kv_capacity_tok() > 4.0 * tep.kv_capacity_tok(),
            "dep {} tep {}",
            dep.kv_capacity_tok(),
            tep.kv_capacity_tok()
        );
        // A dense model on 4 DP ranks: 5 sequences put 2 on the slowest rank, as 8 do.
        let d = inst("h100-sxm:llama-3.1-8b:dp4:bf16");
        assert_eq!(d.gpus(), 4);
        let s5 = d.step_moments(&decode(5.0, 2048.0)).step_s;
        let s8 = d.step_moments(&decode(8.0, 2048.0)).step_s;
        let s9 = d.step_moments(&decode(9.0, 2048.0)).step_s;
        assert!((s5 - s8).abs() < 1e-15 && s9 > s8, "{s5} {s8} {s9}");
    }

    #[test]
    fn pipeline_stages_split_weights_and_kv_and_run_microbatches() {
        let (p1, p2) = (
            inst("h100-sxm:llama-3.1-70b:tp4:fp8"),
            inst("h100-sxm:llama-3.1-70b:tp4:pp2:fp8"),
        );
        assert_eq!(p2.gpus(), 8);
        assert!((p2.weight_bytes_per_gpu() * 2.0 - p1.weight_bytes_per_gpu()).abs() < 1.0);
        assert!(p2.kv_capacity_tok() > 2.0 * p1.kv_capacity_tok());
        // A batch of 2b at pp2 is two microbatches of b through all layers.
        let a = p1.step_moments(&decode(16.0, 4096.0));
        let b = p2.step_moments(&decode(32.0, 4096.0));
        assert!((b.memory_s - a.memory_s).abs() < 1e-12 * a.memory_s.max(1.0));
        assert!(b.comm_s > a.comm_s, "stage hand-offs add time");
    }

    #[test]
    fn expert_parallel_sees_every_ranks_tokens() {
        let e = inst("h200:deepseek-r1:tp8:fp8:ep8");
        let t = inst("h200:deepseek-r1:tep8:fp8");
        assert_eq!((e.tp, e.ep), (t.tp, t.ep));
        // Coverage grows with batch: E·(1 − (1 − k/E)^B).
        let m = &e.model;
        let want = m.experts as f64
            * (1.0 - (1.0 - m.experts_per_tok as f64 / m.experts as f64).powf(32.0));
        assert!((e.experts_touched(32.0) - want).abs() < 1e-9);
        assert!(e.experts_touched(256.0) > e.experts_touched(32.0));
        for bad in [
            "h200:deepseek-r1:tp8:ep3:fp8",
            "h200:llama-3.1-70b:tp8:ep8:fp8",
            "h200:llama-3.1-8b:pp64:bf16",
        ] {
            assert!(parse_instance("--gpu", bad).is_err(), "{bad}");
        }
    }
}
