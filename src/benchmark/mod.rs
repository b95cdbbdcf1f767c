//! `kvfleet benchmark`: a fixed-concurrency serving benchmark run the way
//! vLLM's `benchmark_serving` and InferenceMAX run it (DESIGN §13): a closed
//! loop of C clients with no think time, `num_prompts = N·C` requests, random
//! input and output lengths uniform in `[r·ISL, ISL]` and `[r·OSL, OSL]`
//! (`--ignore-eos`: every request produces its drawn OSL), every request
//! measured (no warm-up exclusion), the duration from the first request to
//! the last completion. Rows carry InferenceMAX's field names, times in
//! seconds.

pub mod measured;
pub mod report;
pub mod serving_fit;
pub mod validation;

use std::sync::{Arc, Mutex};

use rand::RngExt;
use serde::Serialize;

use crate::engine::dispatch::DispatchPolicy;
use crate::engine::{self, Arrivals, ClosedLoop, Disagg, LinkSpec, PoolConfig, SimConfig, Warmup};
use crate::error::InputError;
use crate::profile::Profile;
use crate::workload::Category;

/// The serving deployment under test.
#[derive(Debug, Clone)]
pub enum Deployment {
    /// One aggregated instance (prefill and decode on the same GPUs).
    Aggregated(Profile),
    /// `prefill.1` prefill instances hand KV caches over `link` to `decode.1` decode instances.
    Disaggregated {
        /// Prefill profile and instance count.
        prefill: (Profile, u32),
        /// Decode profile and instance count.
        decode: (Profile, u32),
        /// KV-transfer link.
        link: LinkSpec,
        /// KV bytes per token of the model (whole model).
        kv_bytes_per_token: f64,
    },
}

impl Deployment {
    /// The client-visible latency per request outside the engine
    /// ([`crate::profile::roofline::RooflineParams::frontend_latency_s`]) of the
    /// serving side's step law (0 for profiles without one).
    pub fn frontend_latency_s(&self) -> f64 {
        let p = match self {
            Deployment::Aggregated(p) => p,
            Deployment::Disaggregated { prefill, .. } => &prefill.0,
        };
        p.step_law
            .as_ref()
            .map_or(0.0, |l| l.instance.params.frontend_latency_s)
    }

    /// GPUs of the prefill side (aggregated: all), of the decode side (aggregated: all), in total.
    pub fn gpus(&self) -> (u64, u64, u64) {
        match self {
            Deployment::Aggregated(p) => {
                let g = p.gpus_per_instance as u64;
                (g, g, g)
            }
            Deployment::Disaggregated {
                prefill, decode, ..
            } => {
                let pg = prefill.0.gpus_per_instance as u64 * prefill.1 as u64;
                let dg = decode.0.gpus_per_instance as u64 * decode.1 as u64;
                (pg, dg, pg + dg)
            }
        }
    }
}

/// One benchmark's settings.
#[derive(Debug, Clone)]
pub struct BenchmarkSpec {
    /// What is served.
    pub deployment: Deployment,
    /// Input length N (inputs uniform in `[r·N, N]`), tokens.
    pub isl: u32,
    /// Output length N (outputs uniform in `[r·N, N]`), tokens.
    pub osl: u32,
    /// Range ratio r in (0, 1].
    pub range_ratio: f64,
    /// Concurrencies C.
    pub concurrency: Vec<u32>,
    /// Requests per unit of concurrency (`num_prompts = this × C`).
    pub prompts_per_conc: u32,
    /// Root seed of the lengths.
    pub seed: u64,
}

/// One concurrency's results (InferenceMAX field names; times in seconds,
/// throughputs in tokens/s).
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchRow {
    /// Concurrency.
    pub conc: u32,
    /// Requests sent.
    pub num_prompts: u64,
    /// Requests completed.
    pub completed: u64,
    /// First request to last completion, seconds.
    pub duration: f64,
    /// (input + output tokens/s) / all GPUs.
    pub tput_per_gpu: f64,
    /// Output tokens/s / GPUs (decode GPUs when disaggregated).
    pub output_tput_per_gpu: f64,
    /// Input tokens/s / GPUs (prefill GPUs when disaggregated).
    pub input_tput_per_gpu: f64,
    /// Time to first token, mean, s.
    pub mean_ttft: f64,
    /// Time to first token, median, s.
    pub median_ttft: f64,
    /// Time to first token, 99th percentile, s.
    pub p99_ttft: f64,
    /// Time per output token (after the first), mean over requests, s.
    pub mean_tpot: f64,
    /// Time per output token, median, s.
    pub median_tpot: f64,
    /// Time per output token, 99th percentile, s.
    pub p99_tpot: f64,
    /// Inter-token latency, mean over all token gaps, s.
    pub mean_itl: f64,
    /// Interactivity `1 / mean_tpot`, tokens/s/user.
    pub mean_intvty: f64,
    /// Interactivity `1 / median_tpot`, tokens/s/user.
    pub median_intvty: f64,
    /// End-to-end latency, mean, s.
    pub mean_e2el: f64,
    /// End-to-end latency, median, s.
    pub median_e2el: f64,
    /// End-to-end latency, 99th percentile, s.
    pub p99_e2el: f64,
    /// Recompute preemptions.
    pub preemptions: u64,
}

/// Percentile `q` (0..=100) with linear interpolation between order
/// statistics (numpy's default, which `benchmark_serving` uses); `xs` sorted.
pub fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let pos = q / 100.0 * (xs.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64)
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        f64::NAN
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Lengths uniform in `[floor(r·n), n]` (at least 1).
fn draw_len(rng: &mut crate::rng::SimRng, n: u32, ratio: f64) -> u32 {
    let lo = ((ratio * n as f64).floor() as u32).clamp(1, n.max(1));
    rng.random_range(lo..=n.max(1))
}

/// The simulation of one concurrency.
fn sim_config(spec: &BenchmarkSpec, conc: u32) -> Result<SimConfig, InputError> {
    let max_ctx = spec.isl + spec.osl + 1;
    let pool = |id: &str, p: &Profile, n: u32, d: DispatchPolicy| {
        let mut pc = PoolConfig::new(id, p.clone(), n, max_ctx);
        pc.dispatch = d;
        pc.max_num_seqs = Some(conc);
        pc
    };
    let (pools, disagg) = match &spec.deployment {
        Deployment::Aggregated(p) => (vec![pool("serve", p, 1, DispatchPolicy::Jsq)], None),
        Deployment::Disaggregated {
            prefill,
            decode,
            link,
            kv_bytes_per_token,
        } => (
            vec![
                pool("prefill", &prefill.0, prefill.1, DispatchPolicy::Jsq),
                pool("decode", &decode.0, decode.1, DispatchPolicy::FreeKv),
            ],
            Some(Disagg {
                pairs: vec![(0, 1)],
                link: link.clone(),
                kv_bytes_per_token: *kv_bytes_per_token,
            }),
        ),
    };
    Ok(SimConfig {
        warmup: Warmup {
            fraction: 0.0,
            seconds: None,
        },
        record_requests: true,
        max_waiting: Some(u64::MAX),
        disagg,
        ..SimConfig::new(pools, spec.seed, 1e9)
    })
}

/// Run the benchmark at one concurrency.
pub fn run_conc(spec: &BenchmarkSpec, conc: u32) -> Result<BenchRow, InputError> {
    let cfg = sim_config(spec, conc)?;
    let n = spec.prompts_per_conc as u64 * conc as u64;
    let lengths: Arc<Mutex<Vec<(u32, u32)>>> = Arc::new(Mutex::new(Vec::new()));
    let (isl, osl, r) = (spec.isl, spec.osl, spec.range_ratio);
    let log = lengths.clone();
    let arrivals = Arrivals::Closed(ClosedLoop {
        users: conc,
        think_time_mean_s: 0.0,
        n_requests: n,
        sampler: Box::new(move |rng| {
            let (i, o) = (draw_len(rng, isl, r), draw_len(rng, osl, r));
            if let Ok(mut v) = log.lock() {
                v.push((i, o));
            }
            (i, o, Category::Prose)
        }),
    });
    let out = engine::run(&cfg, arrivals, 0, None)?;
    let front_s = spec.deployment.frontend_latency_s();
    let lens = lengths.lock().map(|v| v.clone()).unwrap_or_default();
    let (mut ttft, mut tpot, mut e2el) = (vec![], vec![], vec![]);
    let (mut in_tok, mut out_tok, mut gaps_s, mut gaps) = (0u64, 0u64, 0.0, 0u64);
    let mut end_ns = 0u64;
    for rec in &out.records {
        let Some(&(i, o)) = lens.get(rec.id as usize) else {
            continue;
        };
        if rec.done_ns == u64::MAX || rec.first_token_ns == u64::MAX {
            continue;
        }
        end_ns = end_ns.max(rec.done_ns);
        in_tok += i as u64;
        out_tok += o as u64;
        let t = (rec.first_token_ns - rec.arrival_ns) as f64 / 1e9 + front_s;
        let e = (rec.done_ns - rec.arrival_ns) as f64 / 1e9 + front_s;
        ttft.push(t);
        e2el.push(e);
        if o > 1 {
            tpot.push((e - t) / (o - 1) as f64);
            gaps_s += e - t;
            gaps += o as u64 - 1;
        }
    }
    for v in [&mut ttft, &mut tpot, &mut e2el] {
        v.sort_by(f64::total_cmp);
    }
    // Each client's requests run back to back, each also paying the frontend
    // latency: the run lasts that much longer per sequential request.
    let duration = end_ns as f64 / 1e9 + front_s * spec.prompts_per_conc as f64;
    let (pg, dg, all) = spec.deployment.gpus();
    let per = |tok: u64, g: u64| {
        if duration > 0.0 {
            tok as f64 / duration / g as f64
        } else {
            0.0
        }
    };
    let mean_tpot = mean(&tpot);
    let median_tpot = percentile(&tpot, 50.0);
    Ok(BenchRow {
        conc,
        num_prompts: n,
        completed: ttft.len() as u64,
        duration,
        tput_per_gpu: per(in_tok + out_tok, all),
        output_tput_per_gpu: per(out_tok, dg),
        input_tput_per_gpu: per(in_tok, pg),
        mean_ttft: mean(&ttft),
        median_ttft: percentile(&ttft, 50.0),
        p99_ttft: percentile(&ttft, 99.0),
        mean_tpot,
        median_tpot,
        p99_tpot: percentile(&tpot, 99.0),
        mean_itl: if gaps > 0 {
            gaps_s / gaps as f64
        } else {
            f64::NAN
        },
        mean_intvty: 1.0 / mean_tpot,
        median_intvty: 1.0 / median_tpot,
        mean_e2el: mean(&e2el),
        median_e2el: percentile(&e2el, 50.0),
        p99_e2el: percentile(&e2el, 99.0),
        preemptions: out.pools.iter().map(|p| p.total_stats.preemptions).sum(),
    })
}

/// Check a spec's numbers; the error names the flag.
pub fn check_spec(spec: &BenchmarkSpec) -> Result<(), InputError> {
    if !(spec.range_ratio.is_finite() && spec.range_ratio > 0.0 && spec.range_ratio <= 1.0) {
        return Err(InputError::field(
            "--range-ratio",
            format!("expected a ratio in (0, 1], got {}", spec.range_ratio),
        ));
    }
    for (f, v) in [("--isl", spec.isl), ("--osl", spec.osl)] {
        if !(1..=1_000_000).contains(&v) {
            return Err(InputError::field(
                f,
                format!("expected 1..=1000000 tokens, got {v}"),
            ));
        }
    }
    if spec.concurrency.is_empty()
        || spec
            .concurrency
            .iter()
            .any(|&c| !(1..=100_000).contains(&c))
    {
        return Err(InputError::field(
            "--concurrency",
            "expected a comma-separated list of concurrencies 1..=100000",
        ));
    }
    if !(1..=1000).contains(&spec.prompts_per_conc) {
        return Err(InputError::field(
            "--num-prompts-per-conc",
            format!("expected 1..=1000, got {}", spec.prompts_per_conc),
        ));
    }
    Ok(())
}

/// Run every concurrency of the benchmark.
pub fn run_benchmark(spec: &BenchmarkSpec) -> Result<Vec<BenchRow>, InputError> {
    check_spec(spec)?;
    spec.concurrency
        .iter()
        .map(|&c| run_conc(spec, c))
        .collect()
}
