//! Built-in routers, one per file. Each is normally built from a
//! [`crate::RouterSpec`] by [`crate::build`], which validates parameters and
//! resolves pool ids; the constructors here take already-resolved indices.

mod common;
mod compress;
mod least_loaded;
mod length;
mod model;
mod prefix_affinity;
mod random;
mod semantic;
mod spillover;

pub use compress::{CompressParams, CompressRouter};
pub use least_loaded::LeastLoadedRouter;
pub use length::LengthRouter;
pub use model::ModelRouter;
pub use prefix_affinity::PrefixAffinityRouter;
pub use random::RandomRouter;
pub use semantic::SemanticRouter;
pub use spillover::SpilloverRouter;

pub(crate) use common::{check_range, resolve_pool};

#[cfg(test)]
pub(crate) mod testutil;
