//! Serde description of a router, and [`build`] to turn it into a trait object.

use serde::{Deserialize, Serialize};

use crate::builtin::{LengthRouter, RandomRouter};
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RouterSpec {
    /// Smallest pool whose max context fits; optional short/long threshold.
    Length {
        /// Which length is compared with pool contexts.
        #[serde(default)]
        signal: LengthSignal,
        /// Requests with signal ≤ this go to the smallest pool, others to the next.
        #[serde(default)]
        threshold_tok: Option<u32>,
        /// Fallback predicted OSL for `estimate` when a request has none.
        #[serde(default)]
        mean_output_tok: Option<u32>,
    },
    /// Uniformly random among pools that fit the request.
    #[serde(deserialize_with = "no_fields")]
    Random,
}

impl RouterSpec {
    /// The default `length` router (total-token signal, no threshold).
    pub fn length() -> Self {
        RouterSpec::Length {
            signal: LengthSignal::Total,
            threshold_tok: None,
            mean_output_tok: None,
        }
    }

    /// Short name of the router kind.
    pub fn kind(&self) -> &'static str {
        match self {
            RouterSpec::Length { .. } => "length",
            RouterSpec::Random => "random",
        }
    }
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
/// random stream (used by randomised routers only).
pub fn build(
    spec: &RouterSpec,
    pools: &[PoolView],
    seed: u64,
) -> Result<Box<dyn Router>, BuildError> {
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
    })
}

fn no_fields<'de, D: serde::Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoFields {}
    NoFields::deserialize(d).map(|_| ())
}
