//! Helpers shared by the built-in routers.

use crate::spec::BuildError;
use crate::{Decision, FleetView, PoolView, RejectReason};

/// Pool indices sorted by ascending max context, ties by index.
pub(crate) fn by_ctx(pools: &[PoolView]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..pools.len()).collect();
    order.sort_by_key(|&i| (pools[i].max_ctx_tok, i));
    order
}

/// The pool with the lowest [`PoolView::load`] among those in `order` that fit
/// `total_tok`; ties go to the earlier pool in `order` (the smaller context
/// when `order` comes from [`by_ctx`]).
pub(crate) fn least_loaded(
    order: &[usize],
    fleet: &FleetView<'_>,
    total_tok: u64,
) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for &i in order {
        let pool = &fleet.pools[i];
        if !pool.fits(total_tok) {
            continue;
        }
        let load = pool.load();
        if best.is_none_or(|(_, b)| load < b) {
            best = Some((i, load));
        }
    }
    best.map(|(i, _)| i)
}

/// Route to `pool` if the request fits it, else reject as too long.
pub(crate) fn route_if_fits(fleet: &FleetView<'_>, pool: usize, total_tok: u64) -> Decision {
    if fleet.pools[pool].fits(total_tok) {
        Decision::Route { pool }
    } else {
        no_fit([&fleet.pools[pool]], total_tok)
    }
}

/// The rejection for a request of `total_tok` tokens that no pool of the
/// fleet can hold (see [`no_fit`]).
pub(crate) fn too_long(fleet: &FleetView<'_>, total_tok: u64) -> Decision {
    no_fit(fleet.pools, total_tok)
}

/// The rejection for a request no pool of `candidates` can hold:
/// [`RejectReason::ExceedsKvCapacity`] when some candidate's max context
/// admits it (so its KV cache is what is too small), otherwise
/// [`RejectReason::ExceedsMaxContext`].
pub(crate) fn no_fit<'a>(
    candidates: impl IntoIterator<Item = &'a PoolView>,
    total_tok: u64,
) -> Decision {
    let ctx_admits = candidates
        .into_iter()
        .any(|p| total_tok <= p.max_ctx_tok as u64);
    Decision::Reject {
        reason: if ctx_admits {
            RejectReason::ExceedsKvCapacity
        } else {
            RejectReason::ExceedsMaxContext
        },
    }
}

/// Resolve a pool id from a spec to its index, or explain which ids exist.
pub(crate) fn resolve_pool(
    router: &'static str,
    field: &str,
    pools: &[PoolView],
    id: &str,
) -> Result<usize, BuildError> {
    pools.iter().position(|p| p.id == id).ok_or_else(|| {
        let known: Vec<&str> = pools.iter().map(|p| p.id.as_str()).collect();
        BuildError::Invalid {
            router,
            message: format!(
                "{field}: unknown pool id `{id}` (fleet pools: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        }
    })
}

/// Check that a fractional parameter is finite and within `[lo, hi]`.
pub(crate) fn check_range(
    router: &'static str,
    field: &str,
    value: f64,
    lo: f64,
    hi: f64,
) -> Result<(), BuildError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(BuildError::Invalid {
            router,
            message: format!("{field} = {value} is outside [{lo}, {hi}]"),
        })
    }
}
