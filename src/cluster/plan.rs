//! Parallelism plans (TP × PP × EP × DP-attention and batch) of one serving
//! instance on a rack preset, and what the serving instance's step model
//! says about each: per-GPU memory, the decode step at the plan's batch and
//! context, and the compute, HBM and communication bounds.
//!
//! The step is the roofline of [`crate::profile::roofline::Instance`] — the
//! one `simulate` prices computed profiles with: a decode step reads the
//! active (touched) weights once and every sequence's whole context KV.
//! Collectives of a stage (TP all-reduces, EP all-to-all) stay inside the
//! scale-up domain; pipeline hand-offs between stages in different domains
//! go over the scale-out fabric and are priced at its bandwidth and latency.

use serde::Serialize;

use super::inventory::RackPreset;
use crate::profile::hardware::Dtype;
use crate::profile::models::ModelSpec;
use crate::profile::roofline::{Instance, RooflineParams, StepMoments};

/// One parallelism plan of a serving instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Tensor-parallel degree (attention and dense layers, per DP rank and stage).
    pub tp: u32,
    /// Pipeline stages.
    pub pp: u32,
    /// Expert-parallel degree (1 = experts tensor-parallel; else tp × dp).
    pub ep: u32,
    /// DP-attention ranks (1 = none).
    pub dp: u32,
    /// Concurrent sequences per instance.
    pub batch: u32,
}

impl Plan {
    /// GPUs of one instance: tp × dp × pp.
    pub fn gpus(&self) -> u32 {
        self.tp * self.dp * self.pp
    }

    /// GPUs of one pipeline stage (the group its collectives span).
    pub fn stage_gpus(&self) -> u32 {
        self.tp * self.dp
    }

    /// `TPxPPxEP` with `dpN` when DP-attention is on.
    pub fn label(&self) -> String {
        let dp = if self.dp > 1 {
            format!(" dp{}", self.dp)
        } else {
            String::new()
        };
        format!("{} x {} x {}{dp}", self.tp, self.pp, self.ep)
    }
}

/// Everything the sizing needs to know that does not depend on the model and rack choice.
#[derive(Debug, Clone)]
pub struct PlanInputs<'a> {
    /// The rack preset.
    pub preset: &'a RackPreset,
    /// The model.
    pub model: &'a ModelSpec,
    /// Weight format.
    pub weight_dtype: Dtype,
    /// KV-cache format.
    pub kv_dtype: Dtype,
    /// Context each resident sequence holds at most, tokens.
    pub context_tok: u64,
}

/// A plan evaluated by the step model.
#[derive(Debug, Clone, Serialize)]
pub struct PlanEval {
    /// The plan.
    pub plan: Plan,
    /// Weight bytes per GPU.
    pub weights_bytes: f64,
    /// KV bytes per GPU of the resident sequences at full context.
    pub kv_bytes: f64,
    /// Held back per GPU (activations, graphs, buffers; sliding-window reserve).
    pub overhead_bytes: f64,
    /// Usable memory per GPU (HBM × the engine's memory fraction).
    pub limit_bytes: f64,
    /// Weights + KV + overhead fit the limit.
    pub fits: bool,
    /// Decode step at the plan's batch and context, seconds.
    pub step_s: f64,
    /// Compute part of the step, seconds.
    pub compute_s: f64,
    /// HBM part of the step, seconds.
    pub memory_s: f64,
    /// Collective part (incl. scale-out hand-offs), seconds.
    pub comm_s: f64,
    /// FLOPs of one decode step (whole instance).
    pub step_flops: f64,
    /// Pipeline hand-offs that cross scale-up domains.
    pub scaleout_crossings: u32,
    /// Tokens/s each sequence receives (1 / TPOT).
    pub tok_s_per_user: f64,
    /// Tokens/s of one instance.
    pub instance_tok_s: f64,
    /// Compute bound of one instance, tok/s.
    pub compute_tok_s: f64,
    /// HBM bound of one instance, tok/s.
    pub hbm_tok_s: f64,
    /// Communication bound of one instance, tok/s (none when there is no communication).
    pub comm_tok_s: Option<f64>,
    /// The binding bound: `compute`, `hbm` or `comm`.
    pub limit: &'static str,
}

/// The roofline instance of a plan on the preset's GPU.
pub fn instance(inp: &PlanInputs, plan: &Plan) -> Instance {
    Instance {
        hw: inp.preset.hw.clone(),
        model: inp.model.clone(),
        tp: plan.tp as u64,
        ep: plan.ep as u64,
        dp: plan.dp as u64,
        pp: plan.pp as u64,
        mtp_depth: 0,
        mtp_acceptance: 0.0,
        weight_dtype: inp.weight_dtype,
        kv_dtype: inp.kv_dtype,
        params: RooflineParams::default(),
    }
}

/// Powers of two up to `max`.
fn pow2(max: u32) -> impl Iterator<Item = u32> {
    (0..16).map(|i| 1u32 << i).take_while(move |&v| v <= max)
}

/// Every structurally valid plan: TP divides the query heads, a stage stays
/// inside one scale-up domain, EP (MoE only) spans a stage and divides the
/// experts, DP-attention only with EP, PP at most the layers, and an
/// instance either fits a domain or spans whole domains' stage slots.
pub fn enumerate(inp: &PlanInputs, batch_sizes: &[u32], max_gpus: u32) -> Vec<Plan> {
    let m = inp.model;
    let domain = inp.preset.nvlink_domain_gpus;
    let mut out = Vec::new();
    for tp in pow2(domain) {
        if !m.q_heads.is_multiple_of(tp as u64) {
            continue;
        }
        for dp in pow2(domain / tp) {
            for ep in [1, tp * dp] {
                if ep > 1 && (!m.is_moe() || !m.experts.is_multiple_of(ep as u64)) {
                    continue;
                }
                if dp > 1 && ep == 1 {
                    continue;
                }
                for pp in [1u32, 2, 3, 4, 6, 8, 12, 16] {
                    let g = tp * dp * pp;
                    if pp as u64 > m.layers || g > max_gpus {
                        continue;
                    }
                    for &batch in batch_sizes {
                        if batch < dp {
                            continue;
                        }
                        out.push(Plan {
                            tp,
                            pp,
                            ep,
                            dp,
                            batch,
                        });
                    }
                }
                if tp * dp == 1 {
                    break; // ep 1 and tp·dp 1 are the same plan
                }
            }
        }
    }
    out.dedup();
    out
}

/// Pipeline hand-offs that cross a scale-up domain boundary at the best placement.
pub fn crossings(preset: &RackPreset, plan: &Plan) -> u32 {
    plan.gpus()
        .div_ceil(preset.nvlink_domain_gpus)
        .saturating_sub(1)
}

/// Evaluate a plan: memory per GPU and the decode step at its batch, every
/// sequence at `context_tok`.
pub fn evaluate(inp: &PlanInputs, plan: &Plan) -> PlanEval {
    let inst = instance(inp, plan);
    let p = inst.params;
    let limit = inst.hw.hbm_gb * 1e9 * p.mem_fraction;
    let weights = inst.weight_bytes_per_gpu();
    let overhead = limit - weights - inst.kv_free_bytes_per_gpu();
    let per_rank = plan.batch.div_ceil(plan.dp) as f64;
    let kv = per_rank * inp.context_tok as f64 * inst.kv_bytes_per_token_per_gpu();
    let b = plan.batch as f64;
    let mut mom = StepMoments::default();
    mom.add_decode(b, b * inp.context_tok as f64, window(inp.model));
    let st = inst.step_moments(&mom);
    // Hand-offs across domains: scale-out instead of scale-up bandwidth and latency.
    let cross = crossings(inp.preset, plan);
    let extra = if cross > 0 {
        let msg = per_rank / plan.pp as f64 * inp.model.hidden as f64 * p.act_bytes;
        let so = inp.preset.scaleout_gbps_per_gpu * 1e9 * p.link_eff;
        let nv = inst.hw.scaleup_gbps * 1e9 * p.link_eff;
        cross as f64
            * ((inp.preset.scaleout_latency_us * 1e-6 - p.hop_latency_s).max(0.0)
                + msg * (1.0 / so - 1.0 / nv).max(0.0))
    } else {
        0.0
    };
    let comm_s = st.comm_s + extra;
    let step_s = st.step_s + extra;
    let inf_or = |t: f64| if t > 0.0 { b / t } else { f64::INFINITY };
    let (compute_tok_s, hbm_tok_s) = (inf_or(st.compute_s), inf_or(st.memory_s));
    let comm_tok_s = (comm_s > 0.0).then(|| b / comm_s);
    let limit_name = if comm_s > st.compute_s.max(st.memory_s) {
        "comm"
    } else if st.compute_s >= st.memory_s {
        "compute"
    } else {
        "hbm"
    };
    PlanEval {
        plan: *plan,
        weights_bytes: weights,
        kv_bytes: kv,
        overhead_bytes: overhead,
        limit_bytes: limit,
        fits: weights + kv + overhead <= limit,
        step_s,
        compute_s: st.compute_s,
        memory_s: st.memory_s,
        comm_s,
        step_flops: st.flops,
        scaleout_crossings: cross,
        tok_s_per_user: 1.0 / step_s,
        instance_tok_s: b / step_s,
        compute_tok_s,
        hbm_tok_s,
        comm_tok_s,
        limit: limit_name,
    }
}

/// Sliding-window span the step model needs (0 without window layers).
pub fn window(m: &ModelSpec) -> f64 {
    if m.window_layers() > 0 {
        m.sliding_window as f64
    } else {
        0.0
    }
}

/// Active weight bytes of one decode token: non-expert weights plus
/// `experts_per_tok` experts per MoE layer (the input embedding is a lookup).
pub fn active_weight_bytes(inst: &Instance) -> f64 {
    let (other, active_routed) = active_params_split(inst);
    other * inst.dense_dtype().bytes() + active_routed * inst.expert_dtype().bytes()
}

/// A decode token's active parameters split into non-expert ones and the
/// `experts_per_tok` routed experts per MoE layer it reads.
fn active_params_split(inst: &Instance) -> (f64, f64) {
    let m = &inst.model;
    let routed = m.routed_expert_params() as f64;
    let active_routed = if m.is_moe() {
        routed / m.experts as f64 * m.experts_per_tok as f64
    } else {
        0.0
    };
    (m.active_params() as f64 - active_routed, active_routed)
}

/// The ideal HBM ceiling of a plan's decode rate, tok/s per instance:
/// `batch × HBM_bw / (active weight bytes + batch × context × KV bytes)`,
/// per GPU (each GPU's share of the active weights and of its rank's KV).
pub fn ideal_hbm_ceiling_tok_s(inp: &PlanInputs, plan: &Plan) -> f64 {
    let inst = instance(inp, plan);
    let (other, active_routed) = active_params_split(&inst);
    let shards = if plan.ep > 1 { plan.ep } else { plan.tp } as f64;
    let w_gpu = other * inst.dense_dtype().bytes() / plan.tp as f64
        + active_routed * inst.expert_dtype().bytes() / shards;
    let per_rank = plan.batch.div_ceil(plan.dp) as f64;
    let kv_gpu = per_rank * inp.context_tok as f64 * inst.kv_bytes_per_token_per_gpu();
    plan.batch as f64 * inst.hw.hbm_tbps * 1e12 / (w_gpu + kv_gpu)
}
