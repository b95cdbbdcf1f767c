//! Model catalog (`data/models.toml`, embedded) and Hugging Face `config.json`
//! loading: architecture, parameter counts, KV bytes per token, attention FLOPs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::InputError;

/// A transformer's architecture (dense or MoE; GQA or multi-head latent attention).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Catalog key or config path, filled in on load.
    #[serde(default)]
    pub name: String,
    /// Other accepted names.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Decoder layers.
    pub layers: u64,
    /// Hidden size.
    pub hidden: u64,
    /// Query heads.
    pub q_heads: u64,
    /// KV heads (GQA); equal to `q_heads` for MHA.
    pub kv_heads: u64,
    /// Per-head dimension (from the config, not hidden / heads).
    pub head_dim: u64,
    /// Dense MLP intermediate size.
    pub intermediate: u64,
    /// Vocabulary size.
    pub vocab: u64,
    /// Input embedding and LM head share weights.
    #[serde(default)]
    pub tied_embeddings: bool,
    /// Routed experts (0 = dense).
    #[serde(default)]
    pub experts: u64,
    /// Routed experts per token.
    #[serde(default)]
    pub experts_per_tok: u64,
    /// Always-active shared experts.
    #[serde(default)]
    pub shared_experts: u64,
    /// Expert MLP intermediate size.
    #[serde(default)]
    pub moe_intermediate: u64,
    /// Leading dense layers of an MoE model.
    #[serde(default)]
    pub dense_layers: u64,
    /// MLA compressed-KV rank (0 = no MLA).
    #[serde(default)]
    pub kv_lora_rank: u64,
    /// MLA query compression rank (0 = full-rank queries).
    #[serde(default)]
    pub q_lora_rank: u64,
    /// MLA decoupled RoPE key dims.
    #[serde(default)]
    pub qk_rope_head_dim: u64,
    /// MLA non-RoPE query/key dims per head.
    #[serde(default)]
    pub qk_nope_head_dim: u64,
    /// MLA value dims per head.
    #[serde(default)]
    pub v_head_dim: u64,
    /// Sliding-window attention span, tokens (0 = every layer attends to the full context).
    #[serde(default)]
    pub sliding_window: u64,
    /// Layers that attend only to the last `sliding_window` tokens (gpt-oss:
    /// every other layer). When every layer slides the model is treated as
    /// full attention (the engine's KV model grows with context).
    #[serde(default)]
    pub sliding_layers: u64,
    /// The quantised checkpoint stores only the routed experts in the requested
    /// format; attention, dense layers, router and embeddings stay BF16
    /// (gpt-oss MXFP4: `quantization_config.modules_to_not_convert`).
    #[serde(default)]
    pub quant_experts_only: bool,
    /// Publisher's total parameters, billions (catalog only).
    #[serde(default)]
    pub published_params_b: Option<f64>,
    /// Publisher's active parameters per token, billions (MoE, catalog only).
    #[serde(default)]
    pub published_active_b: Option<f64>,
    /// The publisher's active count leaves out the input embedding table.
    #[serde(default)]
    pub active_excludes_embedding: bool,
    /// Where the numbers come from.
    #[serde(default)]
    pub source: String,
}

impl ModelSpec {
    /// True for multi-head latent attention (DeepSeek-V2/V3/R1).
    pub fn is_mla(&self) -> bool {
        self.kv_lora_rank > 0
    }

    /// True for mixture-of-experts models.
    pub fn is_moe(&self) -> bool {
        self.experts > 0
    }

    /// Attention weights of one layer.
    pub fn attn_params_per_layer(&self) -> u64 {
        let (h, nq) = (self.hidden, self.q_heads);
        if self.is_mla() {
            let qk = self.qk_nope_head_dim + self.qk_rope_head_dim;
            let q = if self.q_lora_rank > 0 {
                h * self.q_lora_rank + self.q_lora_rank * nq * qk
            } else {
                h * nq * qk
            };
            let kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim);
            let kv_b = self.kv_lora_rank * nq * (self.qk_nope_head_dim + self.v_head_dim);
            let o = nq * self.v_head_dim * h;
            q + kv_a + kv_b + o
        } else {
            let hd = self.head_dim;
            2 * h * nq * hd + 2 * h * self.kv_heads * hd
        }
    }

    fn gated_mlp(&self, inter: u64) -> u64 {
        3 * self.hidden * inter
    }

    fn moe_layers(&self) -> u64 {
        if self.is_moe() {
            self.layers - self.dense_layers.min(self.layers)
        } else {
            0
        }
    }

    /// Parameters of the input embedding table.
    pub fn embedding_params(&self) -> u64 {
        self.vocab * self.hidden
    }

    /// LM head parameters (0 when tied).
    pub fn lm_head_params(&self) -> u64 {
        if self.tied_embeddings {
            0
        } else {
            self.vocab * self.hidden
        }
    }

    /// Parameters of all routed experts (what expert parallelism shards and what
    /// a step reads only in part).
    pub fn routed_expert_params(&self) -> u64 {
        self.moe_layers() * self.experts * self.gated_mlp(self.moe_intermediate)
    }

    /// Total parameters (norms and biases omitted: < 0.1 %).
    pub fn total_params(&self) -> u64 {
        let dense_mlp = (self.layers - self.moe_layers()) * self.gated_mlp(self.intermediate);
        let moe_other = self.moe_layers()
            * (self.shared_experts * self.gated_mlp(self.moe_intermediate)
                + self.hidden * self.experts);
        self.layers * self.attn_params_per_layer()
            + dense_mlp
            + moe_other
            + self.routed_expert_params()
            + self.embedding_params()
            + self.lm_head_params()
    }

    /// Parameters multiplied per token (attention, MLP or active experts, router,
    /// LM head); the input embedding is a lookup and not counted. `2 ×` this is
    /// the linear-layer FLOPs per token.
    pub fn active_params(&self) -> u64 {
        let routed_all = self.routed_expert_params();
        let routed_active = if self.is_moe() {
            routed_all / self.experts * self.experts_per_tok
        } else {
            0
        };
        self.total_params() - routed_all + routed_active - self.embedding_params()
            + if self.tied_embeddings {
                self.embedding_params()
            } else {
                0
            }
    }

    /// Active parameters counted the way the publisher counts them.
    pub fn active_params_published_convention(&self) -> u64 {
        if self.active_excludes_embedding || self.tied_embeddings {
            self.active_params()
        } else {
            self.active_params() + self.embedding_params()
        }
    }

    /// KV-cache values stored per token per layer (all heads): K and V for GQA;
    /// the compressed latent plus the RoPE key for MLA.
    pub fn kv_values_per_token_layer(&self) -> u64 {
        if self.is_mla() {
            self.kv_lora_rank + self.qk_rope_head_dim
        } else {
            2 * self.kv_heads * self.head_dim
        }
    }

    /// Layers whose attention spans the sliding window (0 when none, or when
    /// every layer would slide: such models are treated as full attention).
    pub fn window_layers(&self) -> u64 {
        if self.sliding_window > 0 && self.sliding_layers < self.layers {
            self.sliding_layers
        } else {
            0
        }
    }

    /// Layers attending to the whole context.
    pub fn full_attention_layers(&self) -> u64 {
        self.layers - self.window_layers()
    }

    /// KV values per token per layer held by one GPU at tensor parallelism `tp`:
    /// GQA shards KV heads (replicating them when `tp` > KV heads); the MLA
    /// latent is shared by all heads and is replicated on every rank.
    fn kv_values_per_token_layer_per_gpu(&self, tp: u64) -> u64 {
        if self.is_mla() {
            self.kv_values_per_token_layer()
        } else {
            2 * self.kv_heads.div_ceil(tp.max(1)) * self.head_dim
        }
    }

    /// KV-cache bytes per token of context for the whole model at `kv_bytes`
    /// per value: the full-attention layers. Sliding-window layers add a
    /// bounded amount per sequence ([`Self::window_kv_bytes_per_seq`]).
    pub fn kv_bytes_per_token(&self, kv_bytes: f64) -> f64 {
        (self.full_attention_layers() * self.kv_values_per_token_layer()) as f64 * kv_bytes
    }

    /// KV-cache bytes per token of context held by *each* GPU at tensor parallelism `tp`.
    pub fn kv_bytes_per_token_per_gpu(&self, kv_bytes: f64, tp: u64) -> f64 {
        (self.full_attention_layers() * self.kv_values_per_token_layer_per_gpu(tp)) as f64
            * kv_bytes
    }

    /// KV bytes per token per GPU of the sliding-window layers (each such
    /// layer keeps at most `sliding_window` tokens of a sequence).
    pub fn window_kv_bytes_per_token_per_gpu(&self, kv_bytes: f64, tp: u64) -> f64 {
        (self.window_layers() * self.kv_values_per_token_layer_per_gpu(tp)) as f64 * kv_bytes
    }

    /// Most KV bytes one sequence holds in the sliding-window layers (whole model).
    pub fn window_kv_bytes_per_seq(&self, kv_bytes: f64) -> f64 {
        (self.window_layers() * self.kv_values_per_token_layer() * self.sliding_window) as f64
            * kv_bytes
    }

    /// Attention FLOPs per (query token, context token) pair, whole model:
    /// QKᵀ and A·V, `2·2·heads·dim` per layer (MLA in its absorbed decode form:
    /// scores over latent + RoPE dims, values over the latent).
    pub fn attn_flops_per_token_ctx(&self) -> f64 {
        (self.full_attention_layers() * self.attn_flops_per_layer()) as f64
    }

    /// Attention FLOPs per (query, context token) pair of the sliding-window
    /// layers (pairs only within the window).
    pub fn window_attn_flops_per_token_ctx(&self) -> f64 {
        (self.window_layers() * self.attn_flops_per_layer()) as f64
    }

    fn attn_flops_per_layer(&self) -> u64 {
        if self.is_mla() {
            2 * self.q_heads * (self.kv_lora_rank + self.qk_rope_head_dim)
                + 2 * self.q_heads * self.kv_lora_rank
        } else {
            4 * self.q_heads * self.head_dim
        }
    }

    fn matches(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }

    fn check(&self) -> Result<(), String> {
        let req = [
            ("num_hidden_layers", self.layers),
            ("hidden_size", self.hidden),
            ("num_attention_heads", self.q_heads),
            ("head_dim", self.head_dim),
            ("vocab_size", self.vocab),
        ];
        if self.sliding_layers > self.layers {
            return Err(format!(
                "{} sliding-window layers in a {}-layer model",
                self.sliding_layers, self.layers
            ));
        }
        if let Some((f, _)) = req.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{f} must be ≥ 1"));
        }
        if !self.is_mla() && self.kv_heads == 0 {
            return Err("num_key_value_heads must be ≥ 1".into());
        }
        if self.is_moe()
            && (self.experts_per_tok == 0
                || self.experts_per_tok > self.experts
                || self.moe_intermediate == 0)
        {
            return Err(
                "MoE needs 1 ≤ num_experts_per_tok ≤ experts and a moe_intermediate_size".into(),
            );
        }
        if self.layers > self.dense_layers && self.intermediate == 0 && !self.is_moe() {
            return Err("intermediate_size must be ≥ 1".into());
        }
        Ok(())
    }
}

/// The embedded model catalog, sorted by name.
pub fn model_catalog() -> &'static [ModelSpec] {
    static CAT: OnceLock<Vec<ModelSpec>> = OnceLock::new();
    CAT.get_or_init(|| {
        let map: BTreeMap<String, ModelSpec> =
            toml::from_str(include_str!("../../data/models.toml"))
                .expect("data/models.toml is valid (checked by a unit test)");
        map.into_iter()
            .map(|(name, mut m)| {
                m.name = name;
                m
            })
            .collect()
    })
}

/// A catalog model by name or alias (case-insensitive).
pub fn lookup_model(name: &str) -> Option<&'static ModelSpec> {
    model_catalog().iter().find(|m| m.matches(name))
}

/// Catalog model names, comma-separated (for error messages).
pub fn model_names() -> String {
    model_catalog()
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Load a Hugging Face `config.json` (a file, or a directory holding one).
/// `field` names the flag for errors.
pub fn load_hf_config(field: &str, path: &Path) -> Result<ModelSpec, InputError> {
    let file = if path.is_dir() {
        path.join("config.json")
    } else {
        path.to_path_buf()
    };
    let text = crate::input_file::read_text(&file)?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| InputError::File {
        path: file.clone(),
        reason: format!("not JSON: {e}"),
    })?;
    // Multimodal configs nest the language model under `text_config`.
    let v = v.get("text_config").cloned().unwrap_or(v);
    let u = |keys: &[&str]| -> u64 {
        keys.iter()
            .find_map(|k| v.get(*k).and_then(|x| x.as_u64()))
            .unwrap_or(0)
    };
    let hidden = u(&["hidden_size", "d_model", "n_embd"]);
    let q_heads = u(&["num_attention_heads", "n_head"]);
    let mut head_dim = u(&["head_dim"]);
    if head_dim == 0 && q_heads > 0 {
        head_dim = hidden / q_heads;
    }
    let kv_heads = match u(&["num_key_value_heads"]) {
        0 => q_heads,
        k => k,
    };
    let experts = u(&["num_local_experts", "num_experts", "n_routed_experts"]);
    let intermediate = u(&["intermediate_size"]);
    let moe_intermediate = match u(&["moe_intermediate_size"]) {
        0 if experts > 0 => intermediate,
        m => m,
    };
    // Sliding-window attention: `layer_types` names the sliding layers
    // (gpt-oss); a window without `layer_types` applies to every layer unless
    // `use_sliding_window` is false (Qwen2/3 configs carry an unused window).
    let layers = u(&["num_hidden_layers", "n_layer"]);
    let use_window = v
        .get("use_sliding_window")
        .and_then(|x| x.as_bool())
        .unwrap_or(true);
    let sliding_window = if use_window {
        u(&["sliding_window"])
    } else {
        0
    };
    let sliding_layers = match v.get("layer_types").and_then(|x| x.as_array()) {
        _ if sliding_window == 0 => 0,
        Some(types) => types
            .iter()
            .filter(|t| t.as_str() == Some("sliding_attention"))
            .count() as u64,
        None => layers,
    };
    let m = ModelSpec {
        name: path.display().to_string(),
        aliases: vec![],
        layers,
        hidden,
        q_heads,
        kv_heads,
        head_dim,
        intermediate,
        vocab: u(&["vocab_size"]),
        tied_embeddings: v
            .get("tie_word_embeddings")
            .and_then(|x| x.as_bool())
            .unwrap_or(false),
        experts,
        experts_per_tok: u(&["num_experts_per_tok", "experts_per_token"]),
        shared_experts: u(&["n_shared_experts"]),
        moe_intermediate,
        dense_layers: u(&["first_k_dense_replace"]),
        kv_lora_rank: u(&["kv_lora_rank"]),
        q_lora_rank: u(&["q_lora_rank"]),
        qk_rope_head_dim: u(&["qk_rope_head_dim"]),
        qk_nope_head_dim: u(&["qk_nope_head_dim"]),
        v_head_dim: u(&["v_head_dim"]),
        sliding_window,
        sliding_layers,
        // An MXFP4 checkpoint (gpt-oss) quantises only the experts: its
        // `modules_to_not_convert` lists attention, router, embeddings and head.
        quant_experts_only: experts > 0
            && v.pointer("/quantization_config/quant_method")
                .and_then(|x| x.as_str())
                == Some("mxfp4"),
        published_params_b: None,
        published_active_b: None,
        active_excludes_embedding: false,
        source: format!("Hugging Face config {}", file.display()),
    };
    m.check().map_err(|reason| InputError::File {
        path: file,
        reason: format!("{field}: {reason}"),
    })?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b
    }

    /// Published totals (and active counts for MoE) from the model cards / papers
    /// named in `data/models.toml`; e.g. Llama-3.1-70B 70.6B (Llama 3.1 model card),
    /// Mixtral 46.7B/12.9B (Mistral AI), DeepSeek-V3 671B/37B (technical report),
    /// gpt-oss-120b 117B/5.1B (OpenAI model card).
    #[test]
    fn parameter_counts_within_two_percent_of_published() {
        let required = [
            "llama-2-70b",
            "llama-3.1-8b",
            "llama-3.1-70b",
            "llama-3.1-405b",
            "mixtral-8x7b",
            "qwen3-8b",
            "qwen3-32b",
            "qwen3-30b-a3b",
            "qwen3-235b-a22b",
            "deepseek-v3",
            "deepseek-r1",
            "gpt-oss-20b",
            "gpt-oss-120b",
        ];
        for n in required {
            let m = lookup_model(n).unwrap_or_else(|| panic!("{n} missing"));
            m.check().expect("valid");
            let total = m.total_params() as f64 / 1e9;
            let publ = m.published_params_b.expect("published total");
            assert!(
                rel(total, publ) < 0.02,
                "{n}: {total:.2}B vs published {publ}B"
            );
            if m.is_moe() {
                let act = m.active_params_published_convention() as f64 / 1e9;
                let pa = m.published_active_b.expect("published active");
                assert!(
                    rel(act, pa) < 0.02,
                    "{n}: active {act:.2}B vs published {pa}B"
                );
            }
        }
        // Spot values.
        let l70 = lookup_model("llama-3.1-70b").unwrap();
        assert!(rel(l70.total_params() as f64, 70.6e9) < 0.01);
        let ds = lookup_model("deepseek-v3").unwrap();
        assert!(rel(ds.total_params() as f64, 671e9) < 0.01);
    }

    #[test]
    fn kv_bytes_per_token_match_hand_counts() {
        let l70 = lookup_model("llama-3.1-70b").unwrap();
        // 80 layers × 8 KV heads × 128 × (K,V) × 2 B.
        assert_eq!(l70.kv_bytes_per_token(2.0), 327_680.0);
        assert_eq!(l70.kv_bytes_per_token_per_gpu(2.0, 8), 40_960.0);
        // TP 16 > 8 KV heads: heads are replicated, not split further.
        assert_eq!(l70.kv_bytes_per_token_per_gpu(2.0, 16), 40_960.0);
        let ds = lookup_model("deepseek-r1").unwrap();
        // MLA: (512 latent + 64 RoPE) × 61 layers × 2 B, replicated on every TP rank.
        assert_eq!(ds.kv_bytes_per_token(2.0), (576 * 61 * 2) as f64);
        assert_eq!(ds.kv_bytes_per_token_per_gpu(2.0, 8), 70_272.0);
        let l8 = lookup_model("llama-3.1-8b").unwrap();
        assert_eq!(l8.kv_bytes_per_token(2.0), 131_072.0);
        let g = lookup_model("gpt-oss-120b").unwrap();
        // 18 full-attention layers × 8 × 64 × 2 × 2 B (head_dim 64 from config,
        // not 2880/64 = 45); the 18 sliding layers hold at most 128 tokens:
        // 18 × 8 × 64 × 2 × 2 B × 128 per sequence.
        assert_eq!(g.kv_bytes_per_token(2.0), 36_864.0);
        assert_eq!(g.window_kv_bytes_per_seq(2.0), 36_864.0 * 128.0);
        assert_eq!(g.full_attention_layers(), 18);
        let q = lookup_model("qwen3-235b-a22b").unwrap();
        assert_eq!(q.kv_bytes_per_token(2.0), (94 * 4 * 128 * 2 * 2) as f64);
    }

    #[test]
    fn sliding_window_layers_come_from_layer_types() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let types: Vec<&str> = (0..24)
            .map(|i| {
                if i % 2 == 0 {
                    "sliding_attention"
                } else {
                    "full_attention"
                }
            })
            .collect();
        let cfg = serde_json::json!({
            "hidden_size": 2880, "num_hidden_layers": 24, "num_attention_heads": 64,
            "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 2880,
            "num_local_experts": 32, "num_experts_per_tok": 4, "vocab_size": 201088,
            "sliding_window": 128, "layer_types": types
        });
        std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
        let m = load_hf_config("--gpu", dir).expect("loads");
        let c = lookup_model("gpt-oss-20b").unwrap();
        assert_eq!((m.sliding_window, m.sliding_layers), (128, 12));
        assert_eq!(m.kv_bytes_per_token(2.0), c.kv_bytes_per_token(2.0));
        // An unused window (Qwen-style `use_sliding_window: false`) is ignored.
        let qwen = serde_json::json!({
            "hidden_size": 4096, "num_hidden_layers": 36, "num_attention_heads": 32,
            "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 12288,
            "vocab_size": 151936, "sliding_window": 32768, "use_sliding_window": false
        });
        std::fs::write(dir.join("config.json"), qwen.to_string()).unwrap();
        let q = load_hf_config("--gpu", dir).expect("loads");
        assert_eq!(q.full_attention_layers(), 36);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn hf_config_loads_and_matches_catalog() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let cfg = r#"{"architectures":["Qwen3MoeForCausalLM"],"hidden_size":2048,"num_hidden_layers":48,
            "num_attention_heads":32,"num_key_value_heads":4,"head_dim":128,"intermediate_size":6144,
            "moe_intermediate_size":768,"num_experts":128,"num_experts_per_tok":8,"vocab_size":151936,
            "tie_word_embeddings":false}"#;
        std::fs::write(dir.join("config.json"), cfg).unwrap();
        let m = load_hf_config("--gpu", dir).expect("loads");
        let c = lookup_model("qwen3-30b-a3b").unwrap();
        assert_eq!(m.total_params(), c.total_params());
        assert_eq!(m.kv_bytes_per_token(2.0), c.kv_bytes_per_token(2.0));
        std::fs::write(dir.join("bad.json"), r#"{"hidden_size": 10}"#).unwrap();
        let err = load_hf_config("--gpu", &dir.join("bad.json")).expect_err("incomplete");
        assert!(err.to_string().contains("num_hidden_layers"), "{err}");
    }
}
