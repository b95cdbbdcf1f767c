//! Side-by-side analytic estimates of one pool's queue wait and P99 TTFT.
//!
//! Every model sees the same [`PoolCalibration`]. With `c` = total slots,
//! `μ = 1 / E[S]`, `a = λ / μ` and `C` = Erlang-C(c, a):
//!
//! | model | mean wait | P99 wait | P99 TTFT |
//! |---|---|---|---|
//! | `reference` | `C·(1+cv²) / (2(cμ−λ))` (the mean of its own tail law) | `ln(C/0.01)·(1+cv²) / (2(cμ−λ))`, 0 if `C ≤ 0.01` | P99 wait + **mean** prefill |
//! | `mmc` | exact M/M/c `C / (cμ−λ)` | exact `ln(C/0.01) / (cμ−λ)` | P99 wait + P99 prefill |
//! | `allen-cunneen` | `C/(cμ−λ) · (1+cv²)/2` | exponential tail, see below | P99 wait + P99 prefill |
//! | `birth-death` | per-instance batching chain, see [`birth_death`] | exact for the chain | P99 wait + P99 prefill |
//!
//! **Allen–Cunneen** (Allen, *Probability, Statistics and Queueing Theory*,
//! 1978; the GI/G/c mean-wait approximation with `ca² = 1` for Poisson
//! arrivals) scales the M/M/c mean wait by `(ca² + cs²)/2`. Its P99 uses the
//! standard **exponential conditional-wait approximation**: `P(W > 0) = C`
//! and, given a wait, `W` is exponential with the conditional mean
//! `E[W | W > 0] = E[W] / C = (1+cv²) / (2(cμ−λ))`, so
//! `P(W > t) = C·exp(−t / E[W | W>0])` and the P99 is
//! `E[W | W>0] · ln(C / 0.01)` (0 when `C ≤ 0.01`).
//!
//! This is *the same tail law the reference tool uses*: its P99 wait formula
//! is exactly the Allen–Cunneen exponential-tail P99, so the two
//! rows have identical waits. What differs is the TTFT: the reference adds the
//! *mean* prefill to a P99 wait, which understates the P99 TTFT when prefill
//! times are spread out (and is the "0 wait + mean prefill" defect of §12
//! whenever `C ≤ 0.01`); kvfleet adds the P99 prefill. In FCFS M/G/c a
//! request's wait is independent of its own prefill, so the true P99 TTFT is
//! at least `max(P99 wait, P99 prefill)`; the sum of the two P99s is not a
//! strict upper bound but is conservative unless both tails are thin and
//! near 1%.
//!
//! **Lee–Longton** (Lee & Longton, 1959) approximates the M/G/c mean wait as
//! `(1 + cv²)/2 · W_q(M/M/c)`. For Poisson arrivals this is *identical* to
//! Allen–Cunneen (whose `(ca² + cs²)/2` factor has `ca² = 1`), so it is not a
//! separate row: the `allen-cunneen` row is also the Lee–Longton estimate.
//!
//! Unstable queues (`λ ≥ cμ`, or the saturated service rate of the
//! birth–death chain) report `stable = false` and infinite waits, which
//! serialise as JSON `null`.

use serde::{Serialize, Serializer};

use super::calibration::PoolCalibration;
use super::erlang::MmcQueue;
use crate::profile::Profile;

/// The quantile reported as "P99".
const Q99: f64 = 0.99;

/// One model's estimate for one pool.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PoolEstimate {
    /// Model name (`reference`, `mmc`, `allen-cunneen`, `birth-death`).
    pub model: &'static str,
    /// Whether the model's queue is stable (finite waits).
    pub stable: bool,
    /// Offered load over capacity, `λ / (c μ)` (may exceed 1 when unstable).
    #[serde(serialize_with = "finite_or_null")]
    pub utilisation: f64,
    /// Mean queue wait before service starts, ms (infinite when unstable).
    #[serde(serialize_with = "finite_or_null")]
    pub mean_wait_ms: f64,
    /// 99th percentile of the queue wait, ms (infinite when unstable).
    #[serde(serialize_with = "finite_or_null")]
    pub p99_wait_ms: f64,
    /// 99th percentile of the time to first token, ms (infinite when unstable).
    #[serde(serialize_with = "finite_or_null")]
    pub p99_ttft_ms: f64,
}

/// Serialise a non-finite float as `null`.
pub fn finite_or_null<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_none()
    }
}

impl PoolEstimate {
    fn unstable(model: &'static str, utilisation: f64) -> Self {
        PoolEstimate {
            model,
            stable: false,
            utilisation,
            mean_wait_ms: f64::INFINITY,
            p99_wait_ms: f64::INFINITY,
            p99_ttft_ms: f64::INFINITY,
        }
    }

    fn stable(model: &'static str, utilisation: f64, mean_s: f64, p99_s: f64, pre_s: f64) -> Self {
        PoolEstimate {
            model,
            stable: true,
            utilisation,
            mean_wait_ms: mean_s * 1e3,
            p99_wait_ms: p99_s * 1e3,
            p99_ttft_ms: (p99_s + pre_s) * 1e3,
        }
    }
}

/// `Some(estimate)` for the degenerate pools every model treats alike: no
/// traffic (zero waits), no service time (zero waits), or no servers
/// (unstable under any positive load).
fn degenerate(model: &'static str, cal: &PoolCalibration, pre_s: f64) -> Option<PoolEstimate> {
    let lam = cal.lam_req_s.max(0.0);
    if cal.total_slots() == 0 {
        return Some(if lam > 0.0 {
            PoolEstimate::unstable(model, f64::INFINITY)
        } else {
            PoolEstimate::stable(model, 0.0, 0.0, 0.0, pre_s)
        });
    }
    if lam == 0.0 || cal.mean_service_s.is_nan() || cal.mean_service_s <= 0.0 {
        return Some(PoolEstimate::stable(model, 0.0, 0.0, 0.0, pre_s));
    }
    None
}

/// The pool as an M/M/c queue over all its slots, `μ = 1 / E[S]`.
fn mmc_queue(cal: &PoolCalibration) -> MmcQueue {
    MmcQueue {
        c: cal.total_slots(),
        lambda: cal.lam_req_s,
        mu: 1.0 / cal.mean_service_s,
    }
}

/// The reference tool's P99: servers = total slots, `a = λ/μ`,
/// `C` = Erlang-C; P99 wait 0 if `C ≤ 0.01`, else
/// `ln(C/0.01)·(1+cv²) / (2(cμ−λ))`; P99 TTFT = P99 wait + **mean** prefill.
/// Its mean wait is the mean of that tail law, `C·(1+cv²) / (2(cμ−λ))`.
pub fn reference_p99(cal: &PoolCalibration) -> PoolEstimate {
    const M: &str = "reference";
    if let Some(e) = degenerate(M, cal, cal.mean_prefill_s) {
        return e;
    }
    let q = mmc_queue(cal);
    if !q.stable() {
        return PoolEstimate::unstable(M, q.rho());
    }
    let c = q.p_wait();
    let slack = q.c as f64 * q.mu - q.lambda;
    let scale = (1.0 + cal.cv2_service) / (2.0 * slack);
    let p99 = if c <= 0.01 {
        0.0
    } else {
        (c / 0.01).ln() * scale
    };
    PoolEstimate::stable(M, q.rho(), c * scale, p99, cal.mean_prefill_s)
}

/// Exact M/M/c over all slots with `μ = 1 / E[S]` (ignores the service
/// variability); P99 TTFT = P99 wait + P99 prefill.
pub fn mmc(cal: &PoolCalibration) -> PoolEstimate {
    const M: &str = "mmc";
    if let Some(e) = degenerate(M, cal, cal.p99_prefill_s) {
        return e;
    }
    let q = mmc_queue(cal);
    if !q.stable() {
        return PoolEstimate::unstable(M, q.rho());
    }
    PoolEstimate::stable(
        M,
        q.rho(),
        q.mean_wait_s(),
        q.wait_quantile_s(Q99),
        cal.p99_prefill_s,
    )
}

/// Allen–Cunneen (= Lee–Longton for Poisson arrivals) M/G/c: mean wait
/// `C/(cμ−λ) · (1+cv²)/2`; P99 by the exponential conditional-wait
/// approximation (module docs); P99 TTFT = P99 wait + P99 prefill.
pub fn allen_cunneen(cal: &PoolCalibration) -> PoolEstimate {
    const M: &str = "allen-cunneen";
    if let Some(e) = degenerate(M, cal, cal.p99_prefill_s) {
        return e;
    }
    let q = mmc_queue(cal);
    if !q.stable() {
        return PoolEstimate::unstable(M, q.rho());
    }
    let c = q.p_wait();
    let mean = q.mean_wait_s() * (1.0 + cal.cv2_service) / 2.0;
    let p99 = exp_tail_quantile(c, if c > 0.0 { mean / c } else { 0.0 }, Q99);
    PoolEstimate::stable(M, q.rho(), mean, p99, cal.p99_prefill_s)
}

/// The `q` quantile of a wait with `P(W > 0) = p_wait` and, given a wait,
/// an exponential law with mean `cond_mean_s`.
fn exp_tail_quantile(p_wait: f64, cond_mean_s: f64, q: f64) -> f64 {
    let tail = 1.0 - q;
    if p_wait <= tail {
        0.0
    } else {
        (p_wait / tail).ln() * cond_mean_s
    }
}

/// The birth–death chain of one instance of the iteration model (see
/// [`birth_death`]): arrival rate, per-state service rates for
/// `n = 1..=B` running, and the saturated rate `μ(B)`.
#[derive(Debug, Clone)]
struct Chain {
    lam_s: f64,
    mu_s: Vec<f64>,
}

impl Chain {
    fn of(cal: &PoolCalibration, profile: &Profile) -> Chain {
        let b = cal.max_num_seqs.max(1);
        // Average context of a sequence over its decode life, tokens.
        let mean_ctx_tok = cal.mean_isl_tok + cal.mean_osl_tok / 2.0;
        let mu_s = (1..=b)
            .map(|k| {
                let step = profile.step_s(k as f64 * mean_ctx_tok, 0.0);
                k as f64 / (cal.mean_prefill_s + cal.mean_osl_tok * step)
            })
            .collect();
        Chain {
            lam_s: cal.lam_req_s / cal.instances.max(1) as f64,
            mu_s,
        }
    }

    fn saturated(&self) -> f64 {
        // `of` builds at least one state (B ≥ 1).
        self.mu_s.last().copied().unwrap_or(0.0)
    }
}

/// Result of solving a [`Chain`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct ChainSolution {
    /// Mean number waiting (not yet running).
    mean_queue: f64,
    /// Mean number in the instance.
    mean_in_system: f64,
    /// Probability an arrival finds all `B` running positions taken.
    p_wait: f64,
    /// `μ(B) − λ`, the decay rate of the conditional wait tail, 1/s.
    slack_s: f64,
}

/// Solve a stable chain: `π(n) ∝ Π_{k=1..n} λ/μ(k)` for `n ≤ B` (in log
/// space, normalised by the largest term), and the geometric tail
/// `π(B+j) = π(B)·r^j`, `r = λ/μ(B) < 1`, summed in closed form — so there
/// is no truncation at all.
fn solve(chain: &Chain) -> ChainSolution {
    let b = chain.mu_s.len();
    let mut log_pi = Vec::with_capacity(b + 1);
    log_pi.push(0.0f64);
    for k in 1..=b {
        log_pi.push(log_pi[k - 1] + (chain.lam_s / chain.mu_s[k - 1]).ln());
    }
    let top = log_pi.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_pi.iter().map(|l| (l - top).exp()).collect();
    let r = chain.lam_s / chain.saturated();
    let wb = w[b];
    // Mass of states n ≥ B: w_B / (1 − r); of n > B: w_B · r / (1 − r).
    let tail_mass = wb / (1.0 - r);
    let z: f64 = w[..b].iter().sum::<f64>() + tail_mass;
    let mean_finite: f64 = w[..b].iter().enumerate().map(|(n, p)| n as f64 * p).sum();
    // Σ_{j≥0} (B+j) w_B r^j = w_B (B/(1−r) + r/(1−r)²); Σ_{j≥1} j w_B r^j = w_B r/(1−r)².
    let mean_tail = wb * (b as f64 / (1.0 - r) + r / (1.0 - r).powi(2));
    let mean_queue = wb * r / (1.0 - r).powi(2) / z;
    ChainSolution {
        mean_queue,
        mean_in_system: (mean_finite + mean_tail) / z,
        p_wait: tail_mass / z,
        slack_s: chain.saturated() - chain.lam_s,
    }
}

/// Batching-aware per-instance birth–death model of the iteration engine
///.
///
/// Each instance receives `λ / instances` (a random split: it ignores the
/// join-shortest-queue dispatch, so it is conservative for JSQ fleets).
/// With `n` requests in the instance, `k = min(n, max_num_seqs)` run, and the
/// instance completes requests at rate
/// `μ(n) = k / (mean prefill + E[OSL] · step(k sequences at mean context))`,
/// where the mean context is `E[ISL] + E[OSL]/2` (a sequence's average
/// context over its decode life) and the prefill time is the calibration's
/// mean (priced at the slot model's full-occupancy step, which errs long).
/// KV capacity is not a separate limit here (`max_num_seqs` is).
///
/// Method: the stationary law is solved exactly (log-space products up to
/// `B = max_num_seqs`, then a closed-form geometric tail with ratio
/// `r = λ/μ(B)`), giving the mean number waiting `Lq` and in the instance;
/// mean wait = `Lq / λ` (Little's law); `P(wait)` = probability an arrival
/// finds `n ≥ B` (PASTA). For the wait quantile: an arrival that finds
/// `B + j` requests waits for `j + 1` departures, which in the saturated
/// states occur at the constant rate `μ(B)`; with `j` geometric this makes
/// the conditional wait exponential with rate `μ(B) − λ`, so
/// `P(W > t) = P(wait)·e^{−(μ(B)−λ)t}` and the P99 follows in closed form.
/// Unstable exactly when `λ / instances ≥ μ(B)`, the saturated rate.
pub fn birth_death(cal: &PoolCalibration, profile: &Profile) -> PoolEstimate {
    const M: &str = "birth-death";
    let lam = cal.lam_req_s.max(0.0);
    if cal.instances == 0 {
        return if lam > 0.0 {
            PoolEstimate::unstable(M, f64::INFINITY)
        } else {
            PoolEstimate::stable(M, 0.0, 0.0, 0.0, cal.p99_prefill_s)
        };
    }
    let chain = Chain::of(cal, profile);
    let mu_b = chain.saturated();
    if lam == 0.0 || !mu_b.is_finite() {
        return PoolEstimate::stable(M, 0.0, 0.0, 0.0, cal.p99_prefill_s);
    }
    let util = chain.lam_s / mu_b;
    if util.is_nan() || util >= 1.0 {
        return PoolEstimate::unstable(M, util);
    }
    let sol = solve(&chain);
    let mean_wait_s = sol.mean_queue / chain.lam_s;
    let p99 = exp_tail_quantile(sol.p_wait, 1.0 / sol.slack_s, Q99);
    PoolEstimate::stable(M, util, mean_wait_s, p99, cal.p99_prefill_s)
}

/// Mean number of requests in one instance under the birth–death model
/// (`None` when unstable or degenerate).
pub fn birth_death_mean_in_instance(cal: &PoolCalibration, profile: &Profile) -> Option<f64> {
    if cal.instances == 0 || cal.lam_req_s.is_nan() || cal.lam_req_s <= 0.0 {
        return None;
    }
    let chain = Chain::of(cal, profile);
    (chain.lam_s < chain.saturated()).then(|| solve(&chain).mean_in_system)
}

/// Every model's estimate, in the order reference, mmc, allen-cunneen, birth-death.
pub fn all_estimates(cal: &PoolCalibration, profile: &Profile) -> Vec<PoolEstimate> {
    vec![
        reference_p99(cal),
        mmc(cal),
        allen_cunneen(cal),
        birth_death(cal, profile),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::PowerCurve;

    fn cal(instances: u32, slots: u32, lam: f64, mean_s: f64, cv2: f64) -> PoolCalibration {
        PoolCalibration {
            lam_req_s: lam,
            instances,
            slots_per_instance: slots,
            max_num_seqs: slots,
            mean_service_s: mean_s,
            cv2_service: cv2,
            mean_prefill_s: 0.05,
            p99_prefill_s: 0.2,
            mean_isl_tok: 1.0,
            mean_osl_tok: 100.0,
        }
    }

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(1e-300)
    }

    fn profile(w_s: f64, h_s: f64, max_slots: u32) -> Profile {
        Profile {
            name: "t".into(),
            w_s,
            h_s,
            calibration_ctx: 8192,
            chunk: 1,
            blk_size: 16,
            total_kv_blks: 1 << 30,
            max_slots,
            cost_per_hr: 1.0,
            gpus_per_instance: 1,
            prefill_s_per_token: 0.0,
            power: PowerCurve::new(0.0, 0.0, 0.0, 0.0),
            step_law: None,
        }
    }

    #[test]
    fn allen_cunneen_with_cv2_one_is_exact_mmc() {
        for (inst, slots, lam) in [(1, 1, 0.5), (2, 5, 8.0), (4, 64, 250.0), (10, 100, 990.0)] {
            let c = cal(inst, slots, lam, 1.0, 1.0);
            let (a, m) = (allen_cunneen(&c), mmc(&c));
            assert!(a.stable && m.stable);
            assert!(rel(a.mean_wait_ms, m.mean_wait_ms) < 1e-12, "{a:?} {m:?}");
            assert!(
                (a.p99_wait_ms - m.p99_wait_ms).abs() <= 1e-9 * m.p99_wait_ms.max(1.0),
                "{a:?} {m:?}"
            );
            assert!((a.p99_ttft_ms - (a.p99_wait_ms + 200.0)).abs() < 1e-9);
        }
        // cv² = 0 halves the mean wait (M/D/c by Allen–Cunneen).
        let d = allen_cunneen(&cal(2, 5, 8.0, 1.0, 0.0));
        let m = mmc(&cal(2, 5, 8.0, 1.0, 0.0));
        assert!(rel(d.mean_wait_ms, m.mean_wait_ms / 2.0) < 1e-12);
    }

    #[test]
    fn reference_formula_on_hand_computed_inputs() {
        // c = 2 instances × 5 slots = 10, E[S] = 1 s (μ = 1), λ = 8 → a = 8,
        // Erlang-C(10, 8) = 0.409 18 (tables), cμ − λ = 2, cv² = 0.5:
        // P99 wait = ln(0.40918 / 0.01) · 1.5 / (2·2) = 3.711 57 · 0.375 = 1.391 84 s;
        // mean wait = 0.40918 · 1.5 / 4 = 0.153 44 s;
        // P99 TTFT = 1391.84 ms + mean prefill 50 ms = 1441.84 ms.
        let e = reference_p99(&cal(2, 5, 8.0, 1.0, 0.5));
        assert!(e.stable);
        assert!((e.utilisation - 0.8).abs() < 1e-12);
        assert!(rel(e.p99_wait_ms, 1391.84) < 1e-4, "{e:?}");
        assert!(rel(e.mean_wait_ms, 153.44) < 1e-4, "{e:?}");
        assert!(rel(e.p99_ttft_ms, 1441.84) < 1e-4, "{e:?}");
        // Its wait equals Allen–Cunneen's; only the TTFT's prefill term differs.
        let a = allen_cunneen(&cal(2, 5, 8.0, 1.0, 0.5));
        assert!(rel(a.p99_wait_ms, e.p99_wait_ms) < 1e-12);
        assert!(rel(a.p99_ttft_ms, 1391.84 + 200.0) < 1e-4);
        // λ = 2 (a = 2, c = 10): C = 3.6e-5 ≤ 0.01 → "0 wait + mean prefill".
        let low = reference_p99(&cal(2, 5, 2.0, 1.0, 0.5));
        assert_eq!((low.p99_wait_ms, low.p99_ttft_ms), (0.0, 50.0));
        // λ = 10 = cμ: unstable, serialised as null.
        let u = reference_p99(&cal(2, 5, 10.0, 1.0, 0.5));
        assert!(!u.stable && u.p99_ttft_ms.is_infinite());
        let j = serde_json::to_value(u).expect("json");
        assert!(j["p99_wait_ms"].is_null() && j["mean_wait_ms"].is_null());
        assert_eq!(j["utilisation"], 1.0);
    }

    #[test]
    fn birth_death_with_constant_rate_is_mmc() {
        // H = 0: step = W whatever the batch, so each running sequence
        // completes at the constant rate 1/(prefill + E[OSL]·W): M/M/B.
        let w = 0.002;
        for (b, rho) in [(1u32, 0.5), (8, 0.8), (8, 0.97), (256, 0.9), (1024, 0.99)] {
            let p = profile(w, 0.0, b);
            let mut c = cal(1, b, 0.0, 0.0, 1.0);
            c.mean_service_s = c.mean_prefill_s + c.mean_osl_tok * w;
            c.lam_req_s = rho * b as f64 / c.mean_service_s;
            let (bd, m) = (birth_death(&c, &p), mmc(&c));
            assert!(bd.stable && m.stable);
            assert!(rel(bd.utilisation, rho) < 1e-12);
            assert!(
                rel(bd.mean_wait_ms, m.mean_wait_ms) < 1e-6,
                "B={b} ρ={rho}: {bd:?} vs {m:?}"
            );
            assert!(
                (bd.p99_wait_ms - m.p99_wait_ms).abs() <= 1e-6 * m.p99_wait_ms.max(1e-3),
                "B={b} ρ={rho}: {bd:?} vs {m:?}"
            );
            // Little's law: L = Lq + λ·E[S].
            let l = birth_death_mean_in_instance(&c, &p).expect("stable");
            let lq = bd.mean_wait_ms * 1e-3 * c.lam_req_s;
            assert!(rel(l, lq + rho * b as f64) < 1e-9);
        }
    }

    #[test]
    fn birth_death_unstable_exactly_above_saturated_rate() {
        // H > 0: the step grows with the batch, μ(B) = B / (T_pre + E[OSL]·step(B)).
        let p = profile(0.004, 0.00032, 64);
        let mut c = cal(3, 64, 0.0, 1.0, 1.0);
        c.mean_isl_tok = 1000.0;
        c.mean_osl_tok = 200.0;
        let ctx = 1000.0 + 100.0;
        let step = 0.004 + 0.00032 * 64.0 * ctx / 8192.0;
        let mu_b = 64.0 / (0.05 + 200.0 * step);
        c.lam_req_s = 3.0 * mu_b * (1.0 - 1e-9);
        let s = birth_death(&c, &p);
        assert!(
            s.stable && s.mean_wait_ms.is_finite() && s.mean_wait_ms > 0.0,
            "{s:?}"
        );
        c.lam_req_s = 3.0 * mu_b * (1.0 + 1e-9);
        let u = birth_death(&c, &p);
        assert!(!u.stable && u.mean_wait_ms.is_infinite(), "{u:?}");
        assert!(u.utilisation > 1.0 && u.utilisation < 1.0 + 1e-8);
        // Batching helps: at half the saturated rate fewer than B sequences run
        // at a time, so the wait is far below the saturated one.
        c.lam_req_s = 1.5 * mu_b;
        let half = birth_death(&c, &p);
        assert!(half.stable && half.mean_wait_ms < 1.0, "{half:?}");
    }

    #[test]
    fn degenerate_pools_never_panic() {
        let p = profile(0.001, 0.0, 4);
        let zero_slots = cal(2, 0, 5.0, 1.0, 1.0);
        assert!(
            all_estimates(&zero_slots, &p)[..3]
                .iter()
                .all(|e| !e.stable)
        );
        let idle = cal(2, 4, 0.0, 1.0, 1.0);
        assert!(
            all_estimates(&idle, &p)
                .iter()
                .all(|e| e.stable && e.mean_wait_ms == 0.0)
        );
        let mut none = cal(0, 4, 5.0, 1.0, 1.0);
        assert!(all_estimates(&none, &p).iter().all(|e| !e.stable));
        none.lam_req_s = 0.0;
        assert!(all_estimates(&none, &p).iter().all(|e| e.stable));
        let empty = PoolCalibration::from_samples(&p, 100, 1, 3.0, &[]);
        for e in all_estimates(&empty, &p) {
            assert!(e.mean_wait_ms.is_finite(), "{e:?}");
        }
    }
}
