//! Which model `kvfleet cluster` sizes for: a catalog name, or the seed
//! tool's numeric aliases — `1` Qwen3-235B-A22B and `2` DeepSeek-V3 with
//! their real configurations from the model catalog, and `3` a hypothetical
//! 1.5 T-parameter MoE (no such public model; its shape is kvfleet's
//! invention, documented below).

use crate::error::InputError;
use crate::profile::models::{ModelSpec, lookup_model, model_names};

/// A hypothetical ~1.5 T-parameter MoE standing in for the seed's
/// "ChatGPT5-1P5T" preset, whose architecture is not public: 96 layers,
/// hidden 8192, 64 query / 8 KV heads of 128, 208 routed experts of
/// intermediate 3072 with 8 active, vocabulary 200k. That gives ≈1.53 T
/// parameters and ≈75 B active per token. Not a real model.
pub fn hypothetical_1p5t() -> ModelSpec {
    ModelSpec {
        name: "hypothetical-1.5t-moe".into(),
        aliases: vec![],
        layers: 96,
        hidden: 8192,
        q_heads: 64,
        kv_heads: 8,
        head_dim: 128,
        intermediate: 24576,
        vocab: 200_000,
        tied_embeddings: false,
        experts: 208,
        experts_per_tok: 8,
        shared_experts: 0,
        moe_intermediate: 3072,
        dense_layers: 0,
        kv_lora_rank: 0,
        q_lora_rank: 0,
        qk_rope_head_dim: 0,
        qk_nope_head_dim: 0,
        v_head_dim: 0,
        sliding_window: 0,
        sliding_layers: 0,
        quant_experts_only: false,
        published_params_b: None,
        published_active_b: None,
        active_excludes_embedding: false,
        source: "hypothetical (kvfleet): a 1.5T-parameter MoE shape for the seed's `--model 3`; not a published model".into(),
    }
}

/// Resolve `--model`: `1`, `2`, `3` (the seed's aliases) or a catalog name.
pub fn resolve_model(name: &str) -> Result<ModelSpec, InputError> {
    let n = name.trim();
    let key = match n {
        "1" => "qwen3-235b-a22b",
        "2" => "deepseek-v3",
        "3" => return Ok(hypothetical_1p5t()),
        k if k.eq_ignore_ascii_case("hypothetical-1.5t-moe") => return Ok(hypothetical_1p5t()),
        k => k,
    };
    lookup_model(key).cloned().ok_or_else(|| {
        InputError::field(
            "--model",
            format!(
                "unknown model `{n}`; expected 1 (Qwen3-235B-A22B), 2 (DeepSeek-V3), 3 (hypothetical 1.5T MoE) or a catalog name: {}",
                model_names()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_map_to_real_configs() {
        let q = resolve_model("1").unwrap();
        assert_eq!(
            (q.layers, q.hidden, q.q_heads, q.kv_heads, q.head_dim),
            (94, 4096, 64, 4, 128)
        );
        assert_eq!((q.experts, q.experts_per_tok), (128, 8));
        assert!(resolve_model("2").unwrap().is_mla());
        let h = resolve_model("3").unwrap();
        let total_b = h.total_params() as f64 / 1e9;
        assert!((1450.0..1600.0).contains(&total_b), "{total_b}");
        assert!(resolve_model("gpt-5").is_err());
    }
}
