//! Serde description of a router, and [`build`] to turn it into a trait object.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::builtin::{
    CompressParams, CompressRouter, LeastLoadedRouter, LengthRouter, ModelRouter,
    PrefixAffinityRouter, RandomRouter, SemanticRouter, SpilloverRouter, check_range, resolve_pool,
};
use crate::{PoolView, Router};

/// Which length a `length` router compares with pool contexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LengthSignal {
    /// ISL + OSL (an oracle: the output length is not known at routing time).
    #[default]
    Total,
    /// ISL only.
    Input,
    /// ISL + a predicted OSL (the workload's prediction, else its mean OSL).
    Estimate,
}

/// A router description, as written in TOML or JSON (`kind = "length"`, ...).
///
/// Unknown fields are errors (a misspelt parameter is never silently
/// ignored). Pool ids are resolved to pool indices by [`build`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RouterSpec {
    /// Smallest pool whose max context fits; optional short/long threshold.
    Length {
        /// Which length is compared with pool contexts. Default `total`.
        #[serde(default)]
        signal: LengthSignal,
        /// Requests with signal ≤ this go to the smallest pool, others to the next.
        /// Default: none (smallest pool that fits).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold_tok: Option<u32>,
        /// Fallback predicted OSL for `estimate` when a request has none. Default 0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mean_output_tok: Option<u32>,
    },
    /// Uniformly random among pools that fit the request.
    #[serde(deserialize_with = "no_fields")]
    Random,
    /// Compress requests in (B, γ·B] of a safe category to fit the short
    /// pool; route the rest as `length` with threshold B.
    CompressAndRoute {
        /// γ ≥ 1: the band's upper edge as a multiple of B. Default 1.5.
        #[serde(default = "default_gamma")]
        gamma: f64,
        /// B, in tokens (ISL + OSL after compression). Default: the smallest
        /// pool's max context.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold_tok: Option<u32>,
        /// Categories safe to compress. Default `["prose", "rag", "mixed"]`.
        #[serde(default = "default_safe_categories")]
        safe_categories: Vec<String>,
        /// Compressed ISL must be ≥ this fraction of the original ISL, else the
        /// request is not compressible. In [0, 1]; default 0.5.
        #[serde(default = "default_ratio_floor")]
        ratio_floor: f64,
        /// Probability a compression attempt succeeds; in [0, 1], default 1.
        #[serde(default = "default_success_prob")]
        success_prob: f64,
        /// Latency compression adds to TTFT, ns. Default 3 ms.
        #[serde(default = "default_compression_latency_ns")]
        compression_latency_ns: u64,
    },
    /// Lowest (running + waiting) / slots among pools that fit.
    #[serde(deserialize_with = "no_fields")]
    LeastLoaded,
    /// Smallest fitting pool unless its utilisation exceeds a threshold, then
    /// the next larger fitting pool.
    Spillover {
        /// Spill when running / slots (a fraction of slots, not requests per
        /// GPU) is strictly above this. ≥ 0; default 0.9.
        #[serde(default = "default_utilisation_threshold")]
        utilisation_threshold: f64,
    },
    /// By model id: explicit map, then pools' declared models, then default.
    Model {
        /// Model id → pool id. Default empty.
        #[serde(default)]
        model_pools: BTreeMap<String, String>,
        /// Pool id for unmatched models and requests without one. Default
        /// none (reject with `no_matching_pool`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default_pool: Option<String>,
    },
    /// By a trace label's value, with a fallback.
    Semantic {
        /// Label key to read. Default `selected_model`.
        #[serde(default = "default_label")]
        label: String,
        /// Label value → pool id. Default empty.
        #[serde(default)]
        label_pools: BTreeMap<String, String>,
        /// Pool id for a missing or unmapped label. Default none: the
        /// smallest pool that fits (as `length`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback_pool: Option<String>,
    },
    /// Consistent hashing on the first prefix block hash, least-loaded when
    /// the target is overloaded or the request has no prefix hashes.
    PrefixAffinity {
        /// Ring points per pool, 1..=4096. Default 128.
        #[serde(default = "default_virtual_nodes")]
        virtual_nodes: u32,
        /// The target is overloaded when its (running + waiting) / slots is
        /// strictly above this. ≥ 0; default 1.0.
        #[serde(default = "default_overload_threshold")]
        overload_threshold: f64,
    },
}

fn default_gamma() -> f64 {
    1.5
}
fn default_safe_categories() -> Vec<String> {
    ["prose", "rag", "mixed"].map(String::from).to_vec()
}
fn default_ratio_floor() -> f64 {
    0.5
}
fn default_success_prob() -> f64 {
    1.0
}
fn default_compression_latency_ns() -> u64 {
    3_000_000
}
fn default_utilisation_threshold() -> f64 {
    0.9
}
fn default_label() -> String {
    "selected_model".to_string()
}
fn default_virtual_nodes() -> u32 {
    128
}
fn default_overload_threshold() -> f64 {
    1.0
}

/// Deserialise a parameterless variant, rejecting any field. (Serde ignores
/// extra keys on internally tagged unit variants, even with
/// `deny_unknown_fields`.)
fn no_fields<'de, D: serde::Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoFields {}
    NoFields::deserialize(d).map(|_| ())
}

impl RouterSpec {
    /// Every router kind name, as written in `kind = "..."` and `--routers`.
    pub const KINDS: [&'static str; 8] = [
        "length",
        "compress-and-route",
        "random",
        "least-loaded",
        "spillover",
        "model",
        "semantic",
        "prefix-affinity",
    ];

    /// The default `length` router (total-token signal, no threshold).
    pub fn length() -> Self {
        RouterSpec::Length {
            signal: LengthSignal::Total,
            threshold_tok: None,
            mean_output_tok: None,
        }
    }

    /// Short name of the router kind (one of [`RouterSpec::KINDS`]).
    pub fn kind(&self) -> &'static str {
        match self {
            RouterSpec::Length { .. } => "length",
            RouterSpec::Random => "random",
            RouterSpec::CompressAndRoute { .. } => "compress-and-route",
            RouterSpec::LeastLoaded => "least-loaded",
            RouterSpec::Spillover { .. } => "spillover",
            RouterSpec::Model { .. } => "model",
            RouterSpec::Semantic { .. } => "semantic",
            RouterSpec::PrefixAffinity { .. } => "prefix-affinity",
        }
    }

    /// The spec of `kind` with every parameter at its default, or `None` for
    /// an unknown kind.
    pub fn default_for(kind: &str) -> Option<Self> {
        Some(match kind {
            "length" => RouterSpec::length(),
            "random" => RouterSpec::Random,
            "compress-and-route" => RouterSpec::CompressAndRoute {
                gamma: default_gamma(),
                threshold_tok: None,
                safe_categories: default_safe_categories(),
                ratio_floor: default_ratio_floor(),
                success_prob: default_success_prob(),
                compression_latency_ns: default_compression_latency_ns(),
            },
            "least-loaded" => RouterSpec::LeastLoaded,
            "spillover" => RouterSpec::Spillover {
                utilisation_threshold: default_utilisation_threshold(),
            },
            "model" => RouterSpec::Model {
                model_pools: BTreeMap::new(),
                default_pool: None,
            },
            "semantic" => RouterSpec::Semantic {
                label: default_label(),
                label_pools: BTreeMap::new(),
                fallback_pool: None,
            },
            "prefix-affinity" => RouterSpec::PrefixAffinity {
                virtual_nodes: default_virtual_nodes(),
                overload_threshold: default_overload_threshold(),
            },
            _ => return None,
        })
    }

    /// Default specs from a comma-separated list of kind names (the
    /// `--routers length,random,compress-and-route` flag). Whitespace around
    /// names is ignored; an unknown name or an empty list is an error that
    /// lists the valid kinds.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, UnknownKindError> {
        let specs = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Self>, _>>()?;
        if specs.is_empty() {
            return Err(UnknownKindError {
                name: list.trim().to_string(),
            });
        }
        Ok(specs)
    }
}

impl FromStr for RouterSpec {
    type Err = UnknownKindError;

    /// The default spec of one kind name (see [`RouterSpec::default_for`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RouterSpec::default_for(s.trim()).ok_or_else(|| UnknownKindError {
            name: s.trim().to_string(),
        })
    }
}

/// A router kind name that is not one of [`RouterSpec::KINDS`] (or an empty
/// `--routers` list).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown router kind `{name}`; valid kinds: {}", RouterSpec::KINDS.join(", "))]
pub struct UnknownKindError {
    /// The name as given (empty for an empty list).
    pub name: String,
}

/// Errors building a router from a spec.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BuildError {
    /// The spec names something the fleet does not have (a pool id, say).
    #[error("router `{router}`: {message}")]
    Invalid {
        /// Router kind.
        router: &'static str,
        /// What is wrong and what was expected.
        message: String,
    },
}

/// Build a router for a fleet with these pools. `seed` feeds the router's own
/// random stream (used by randomised routers only). Parameters are validated
/// and pool ids resolved to indices here: an unknown pool id or an
/// out-of-range parameter is a [`BuildError`] naming it.
pub fn build(
    spec: &RouterSpec,
    pools: &[PoolView],
    seed: u64,
) -> Result<Box<dyn Router>, BuildError> {
    let kind = spec.kind();
    let resolve_map = |field: &str, map: &BTreeMap<String, String>| {
        map.iter()
            .map(|(k, id)| Ok((k.clone(), resolve_pool(kind, field, pools, id)?)))
            .collect::<Result<BTreeMap<String, usize>, BuildError>>()
    };
    let resolve_opt = |field: &str, id: &Option<String>| {
        id.as_deref()
            .map(|id| resolve_pool(kind, field, pools, id))
            .transpose()
    };
    Ok(match spec {
        RouterSpec::Length {
            signal,
            threshold_tok,
            mean_output_tok,
        } => Box::new(LengthRouter::new(
            pools,
            *signal,
            *threshold_tok,
            *mean_output_tok,
        )),
        RouterSpec::Random => Box::new(RandomRouter::new(pools.len(), seed)),
        RouterSpec::CompressAndRoute {
            gamma,
            threshold_tok,
            safe_categories,
            ratio_floor,
            success_prob,
            compression_latency_ns,
        } => {
            check_range(kind, "gamma", *gamma, 1.0, 1e6)?;
            check_range(kind, "ratio_floor", *ratio_floor, 0.0, 1.0)?;
            check_range(kind, "success_prob", *success_prob, 0.0, 1.0)?;
            let b = match threshold_tok {
                Some(b) => *b,
                None => pools.iter().map(|p| p.max_ctx_tok).min().ok_or_else(|| {
                    BuildError::Invalid {
                        router: kind,
                        message: "threshold_tok has no default in a fleet without pools"
                            .to_string(),
                    }
                })?,
            };
            if b == 0 {
                return Err(BuildError::Invalid {
                    router: kind,
                    message: "threshold_tok must be positive".to_string(),
                });
            }
            if !pools.iter().any(|p| p.max_ctx_tok >= b) {
                return Err(BuildError::Invalid {
                    router: kind,
                    message: format!(
                        "threshold_tok = {b}: no pool has a max context of at least {b} tokens"
                    ),
                });
            }
            let params = CompressParams {
                gamma: *gamma,
                threshold_tok: b,
                safe_categories: safe_categories.clone(),
                ratio_floor: *ratio_floor,
                success_prob: *success_prob,
                compression_latency_ns: *compression_latency_ns,
            };
            Box::new(CompressRouter::new(pools, params, seed))
        }
        RouterSpec::LeastLoaded => Box::new(LeastLoadedRouter::new(pools)),
        RouterSpec::Spillover {
            utilisation_threshold,
        } => {
            check_range(
                kind,
                "utilisation_threshold",
                *utilisation_threshold,
                0.0,
                1e6,
            )?;
            Box::new(SpilloverRouter::new(pools, *utilisation_threshold))
        }
        RouterSpec::Model {
            model_pools,
            default_pool,
        } => Box::new(ModelRouter::new(
            pools,
            resolve_map("model_pools", model_pools)?,
            resolve_opt("default_pool", default_pool)?,
        )),
        RouterSpec::Semantic {
            label,
            label_pools,
            fallback_pool,
        } => Box::new(SemanticRouter::new(
            pools,
            label.clone(),
            resolve_map("label_pools", label_pools)?,
            resolve_opt("fallback_pool", fallback_pool)?,
        )),
        RouterSpec::PrefixAffinity {
            virtual_nodes,
            overload_threshold,
        } => {
            check_range(kind, "virtual_nodes", *virtual_nodes as f64, 1.0, 4096.0)?;
            check_range(kind, "overload_threshold", *overload_threshold, 0.0, 1e6)?;
            Box::new(PrefixAffinityRouter::new(
                pools,
                *virtual_nodes,
                *overload_threshold,
            ))
        }
    })
}
