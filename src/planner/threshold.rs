//! The arrival rate at which a fleet stops meeting its SLO, found by the
//! DES around the cross-check's answer (`whatif`'s thresholds, the
//! utilisation sweep of `tok-per-watt`).

use super::plan::FleetPlan;
use super::screen::Screen;
use super::sizing::{SizingSettings, job, summarise};
use crate::workload::spec::WorkloadSpec;

fn workload_at(w: &WorkloadSpec, lam: f64) -> WorkloadSpec {
    WorkloadSpec {
        lam: Some(lam),
        ..w.clone()
    }
}

/// Does the fleet with `counts` meet the SLO at rate `lam` in every
/// replication? The replications run one after another and the first that
/// misses decides (the same answer as running them all, in any order); the
/// one that missed last (`first`, updated) runs first, since on common
/// random numbers the same stream tends to be the hardest at nearby rates;
/// each stops as soon as some pool's P99 is certain to miss. The last
/// replication is not run when those before it predict it meets the SLO
/// too (`sizing::clear_of_slo`).
fn meets(
    plan: &FleetPlan,
    counts: &[u32],
    w: &WorkloadSpec,
    s: &SizingSettings,
    lam: f64,
    first: &std::cell::Cell<u32>,
) -> anyhow::Result<bool> {
    let mut job = job(plan, counts, &workload_at(w, lam), s, s.replications);
    job.cfg.stop_on_ttft_miss = (0..counts.len()).collect();
    let mut passed = Vec::new();
    for (k, r) in rotated(job.replications, first.get()).enumerate() {
        if k + 1 == job.replications as usize
            && k > 0
            && super::sizing::clear_of_slo(&passed, s.slo_ttft_ms)
        {
            tracing::debug!(
                "threshold probe {counts:?} at {lam:.2} req/s: meets (last replication predicted)"
            );
            return Ok(true);
        }
        let rep = crate::simulate::run_one_replication(&job, r)?;
        if !summarise(std::slice::from_ref(&rep), s.slo_ttft_ms).meets(s.slo_ttft_ms) {
            first.set(r);
            tracing::debug!(
                "threshold probe {counts:?} at {lam:.2} req/s: misses in replication {r}"
            );
            return Ok(false);
        }
        passed.push(rep);
    }
    tracing::debug!("threshold probe {counts:?} at {lam:.2} req/s: meets");
    Ok(true)
}

/// Replications `0..n` starting at `first` (wrapping).
pub fn rotated(n: u32, first: u32) -> impl Iterator<Item = u32> {
    let first = if first < n { first } else { 0 };
    (0..n).map(move |k| (first + k) % n.max(1))
}

/// The largest λ ≥ `lo` at which the cross-check says every pool of the
/// fleet meets the SLO (bisection to 0.5%), or `None` when it says none does.
/// With the DES's P99 per pool at `lo`, each pool's cross-check is rescaled
/// by the DES/analytic ratio seen there.
fn analytic_max_lam(
    screen: &Screen,
    plan: &FleetPlan,
    counts: &[u32],
    slo_ms: f64,
    lo: f64,
    des_at_lo: Option<&[Option<f64>]>,
) -> Option<f64> {
    let at_lo = screen.at_rate(lo).cross_checks(plan, counts);
    let ratio: Vec<f64> = (0..counts.len())
        .map(|i| {
            let d = des_at_lo.and_then(|d| d.get(i).copied().flatten());
            let a = at_lo[i].filter(|c| c.stable).map(|c| c.p99_ttft_ms);
            match (d, a) {
                (Some(d), Some(a)) if d.is_finite() && d > 0.0 && a > 0.0 => d / a,
                _ => 1.0,
            }
        })
        .collect();
    let ok = |lam: f64| {
        screen
            .at_rate(lam)
            .cross_checks(plan, counts)
            .iter()
            .zip(&ratio)
            .all(|(c, r)| c.is_none_or(|c| c.stable && c.p99_ttft_ms * r <= slo_ms))
    };
    if !ok(lo) {
        return None;
    }
    let (mut lo, mut hi) = (lo, lo * 2.0);
    while ok(hi) {
        lo = hi;
        hi *= 2.0;
        if hi > 1e7 {
            return Some(lo);
        }
    }
    while (hi - lo) / lo > 0.005 {
        let mid = 0.5 * (lo + hi);
        if ok(mid) { lo = mid } else { hi = mid }
    }
    Some(lo)
}

/// A rate a fleet is known to sustain, and the DES's P99 TTFT per pool
/// there when it was measured.
#[derive(Debug, Clone, Copy)]
pub struct Sustained<'a> {
    /// Arrival rate, requests/s.
    pub lam: f64,
    /// The DES's P99 TTFT per pool at `lam`, ms (`None`: not measured).
    pub p99_ttft_ms: Option<&'a [Option<f64>]>,
    /// The replication the first probe runs first: the one that looked
    /// hardest where the fleet was measured ([`SizedFleet::hardest_replication`](super::sizing::SizedFleet)).
    pub hardest_replication: u32,
}

/// The largest λ the fleet sustains (to relative tolerance `tol`), given it
/// sustains `known`: the DES brackets the cross-check's answer, rescaled by
/// the DES/analytic ratio at `known` (probing it, then stepping 2·tol,
/// 4·tol, 8·tol, ... away until the bracket holds) and bisects the bracket.
/// A first step of twice the tolerance leaves one bisection when the
/// cross-check is within it of the DES.
pub fn max_sustained_lam(
    plan: &FleetPlan,
    counts: &[u32],
    w: &WorkloadSpec,
    s: &SizingSettings,
    screen: &Screen,
    known: Sustained<'_>,
    tol: f64,
) -> anyhow::Result<f64> {
    let first = std::cell::Cell::new(known.hardest_replication);
    let lo = known.lam;
    let guess = analytic_max_lam(screen, plan, counts, s.slo_ttft_ms, lo, known.p99_ttft_ms)
        .map_or(lo * 1.05, |g| g.max(lo * 1.01));
    let known = lo;
    let (mut lo, mut hi);
    if meets(plan, counts, w, s, guess, &first)? {
        lo = guess;
        let mut step = 2.0 * tol;
        loop {
            hi = lo * (1.0 + step);
            if !meets(plan, counts, w, s, hi, &first)? {
                break;
            }
            lo = hi;
            step *= 2.0;
            if hi > 1e7 {
                return Ok(lo);
            }
        }
    } else {
        hi = guess;
        let mut step = 2.0 * tol;
        loop {
            let probe = hi / (1.0 + step);
            if probe <= known {
                lo = known;
                break;
            }
            if meets(plan, counts, w, s, probe, &first)? {
                lo = probe;
                break;
            }
            hi = probe;
            step *= 2.0;
        }
    }
    while (hi - lo) / lo > tol {
        let mid = 0.5 * (lo + hi);
        if meets(plan, counts, w, s, mid, &first)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}
