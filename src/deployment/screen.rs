//! The analytic screen of one client on its own prefill and decode pools:
//! step costs from the workers' step laws, prefill queueing as M/M/c, the
//! decode batch as the fixed point of Little's law, closed loops solved for
//! their throughput. Coarse by design — candidates that pass are verified in
//! the simulator.

use serde::Serialize;

use super::model::{Client, Load};
use crate::analytic::erlang::MmcQueue;
use crate::profile::Profile;

/// One client's pools for the screen.
#[derive(Debug, Clone, Copy)]
pub struct Pools<'a> {
    /// Prefill worker profile and count.
    pub prefill: (&'a Profile, u32),
    /// Decode worker profile and count.
    pub decode: (&'a Profile, u32),
    /// Running sequences per decode worker, if capped.
    pub decode_max_batch: Option<u32>,
    /// KV bytes per token.
    pub kv_bytes_per_token: f64,
    /// KV link bandwidth per GPU, bytes/s, and latency, s.
    pub link: (f64, f64),
}

/// The screen's estimate.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// Requests/s served.
    pub throughput_rps: f64,
    /// Input + output tokens/s per GPU.
    pub tput_per_gpu: f64,
    /// TTFT at the SLO quantile (open loop) or mean (closed loop), s.
    pub ttft_s: f64,
    /// TPOT at the estimated decode batch, s.
    pub tpot_s: f64,
    /// Prefill utilisation.
    pub prefill_util: f64,
    /// Running sequences per decode worker.
    pub decode_batch: f64,
    /// The estimate meets the client's SLOs (with the screen's margin).
    pub passes: bool,
}

/// Margin of the screen: pass if the estimate is within this factor of the SLO.
pub const SCREEN_MARGIN: f64 = 1.3;

/// Time of one prefill of `isl` tokens alone, and requests per second one
/// worker prefills when its chunk budget is full of such prompts.
pub fn prefill_costs(p: &Profile, isl: f64) -> (f64, f64) {
    let chunk = p.chunk.max(1) as f64;
    let Some(law) = p.step_law.as_ref() else {
        let t = p.w_s + p.prefill_s_per_token * isl;
        return (t, 1.0 / t);
    };
    let isl_tok = isl.round().max(1.0) as u64;
    let c = chunk as u64;
    let mut t1 = 0.0;
    let mut prior = 0;
    while prior < isl_tok {
        let k = c.min(isl_tok - prior);
        t1 += law.mixed_step_s(0, 0, [(prior, k)]);
        prior += k;
    }
    let per_step = (c / isl_tok).max(1);
    let mu = if per_step > 1 {
        per_step as f64 / law.mixed_step_s(0, 0, (0..per_step).map(|_| (0, isl_tok)))
    } else {
        1.0 / t1
    };
    (t1, mu)
}

/// Decode time per token at `b` running sequences of mean context `ctx`, s.
pub fn tpot_at(p: &Profile, b: f64, ctx: f64) -> f64 {
    let bi = b.ceil().max(1.0) as u32;
    match p.step_law.as_ref() {
        Some(law) => {
            let (w, h) = law.decode_coeffs_s(bi);
            w + h * b.max(1.0) * ctx
        }
        None => p.step_s(b.max(1.0) * ctx, 0.0),
    }
}

/// Running sequences a decode worker holds: its cap and its KV capacity.
fn decode_cap(p: &Profile, cap: Option<u32>, ctx_max: f64) -> f64 {
    let by_kv = p.kv_capacity_tok() as f64 / ctx_max.max(1.0);
    (cap.unwrap_or(p.max_slots) as f64)
        .min(by_kv.floor())
        .max(0.0)
}

/// The per-worker decode batch carrying `x` requests/s of `osl` tokens:
/// the fixed point of `b = x·osl·tpot(b) / workers`; `None` past the cap.
fn decode_batch(p: &Profile, n: u32, x: f64, osl: f64, ctx: f64, cap: f64) -> Option<f64> {
    let mut b: f64 = 1.0;
    for _ in 0..200 {
        let nb = (x * osl * tpot_at(p, b, ctx) / n as f64).max(1e-9);
        if nb > cap {
            return None;
        }
        if (nb - b).abs() < 1e-6 * b.max(1.0) {
            return Some(nb);
        }
        b = nb;
    }
    Some(b)
}

/// Estimate `client` at `load` on `pools`; `target` is the SLO quantile.
pub fn estimate(client: &Client, load: Load, pools: &Pools<'_>, target: f64) -> Estimate {
    let (isl, osl) = client.mean_lengths_tok();
    let ctx = isl + osl / 2.0;
    let (pp, np) = pools.prefill;
    let (dp, nd) = pools.decode;
    let (t1, mu) = prefill_costs(pp, isl);
    let g = pp.gpus_per_instance.min(dp.gpus_per_instance).max(1) as f64;
    let xfer = isl * pools.kv_bytes_per_token / (pools.link.0 * g) + pools.link.1;
    let front = pp
        .step_law
        .as_ref()
        .map_or(0.0, |l| l.instance.params.frontend_latency_s);
    let cap = decode_cap(dp, pools.decode_max_batch, client.max_ctx_tok() as f64);
    let gpus = (np * pp.gpus_per_instance + nd * dp.gpus_per_instance) as f64;
    let x_dec_max = if cap >= 1.0 {
        nd as f64 * cap / (osl * tpot_at(dp, cap, ctx))
    } else {
        0.0
    };
    let x_max = (np as f64 * mu).min(x_dec_max);
    let fail = |x: f64| Estimate {
        throughput_rps: x,
        tput_per_gpu: x * (isl + osl) / gpus,
        ttft_s: f64::INFINITY,
        tpot_s: f64::INFINITY,
        prefill_util: 1.0,
        decode_batch: cap,
        passes: false,
    };
    let (x, ttft, b) = match load {
        Load::RateRps(lam) => {
            let q = MmcQueue {
                c: np as u64,
                lambda: lam,
                mu,
            };
            if lam >= 0.98 * x_max || !q.stable() {
                return fail(x_max);
            }
            let Some(b) = decode_batch(dp, nd, lam, osl, ctx, cap) else {
                return fail(x_max);
            };
            (lam, t1 + q.wait_quantile_s(target) + xfer + front, b)
        }
        Load::Concurrency(c) => {
            // X·(TTFT(X) + osl·tpot(X)) = C, increasing in X: bisect.
            let cycle = |x: f64| -> Option<(f64, f64, f64)> {
                let q = MmcQueue {
                    c: np as u64,
                    lambda: x,
                    mu,
                };
                let b = decode_batch(dp, nd, x, osl, ctx, cap)?;
                let ttft =
                    t1 + if q.stable() {
                        q.mean_wait_s()
                    } else {
                        f64::INFINITY
                    } + xfer;
                Some((ttft, tpot_at(dp, b, ctx), b))
            };
            let (mut lo, mut hi) = (0.0, x_max * 0.999);
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                match cycle(mid) {
                    Some((t, p, _)) if mid * (t + osl * p) < c as f64 => lo = mid,
                    _ => hi = mid,
                }
            }
            let x = lo.max(1e-12);
            let Some((_, p, b)) = cycle(x) else {
                return fail(x);
            };
            // Little's law gives the time to first token the loop leaves.
            let ttft = (c as f64 / x - osl * p).max(t1 + xfer) + front;
            (x, ttft, b)
        }
    };
    let tpot = tpot_at(dp, b, ctx);
    let ok_t = ttft * 1e3 <= client.ttft_ms * SCREEN_MARGIN;
    let ok_p = client
        .tpot_ms
        .is_none_or(|s| tpot * 1e3 <= s * SCREEN_MARGIN);
    Estimate {
        throughput_rps: x,
        tput_per_gpu: x * (isl + osl) / gpus,
        ttft_s: ttft,
        tpot_s: tpot,
        prefill_util: x / (np as f64 * mu),
        decode_batch: b,
        passes: ok_t && ok_p,
    }
}
