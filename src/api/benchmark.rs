//! `kvfleet benchmark`: the fixed-concurrency serving benchmark
//! (vLLM `benchmark_serving` / InferenceMAX) on a simulated deployment, with
//! `--compare` against measured rows.

use std::path::PathBuf;

use super::output::OutputArgs;
use super::{Outcome, Report};
use crate::benchmark::measured::read_measured;
use crate::benchmark::report::BenchmarkReport;
use crate::benchmark::{BenchmarkSpec, Deployment, run_benchmark};
use crate::engine::LinkSpec;
use crate::error::InputError;
use crate::profile::computed::{handoff_kv_bytes, is_computed_spec, parse_instance};
use crate::profile::{Profile, ProfileOverrides, resolve_profile};

/// Flags of `benchmark`.
#[derive(Debug, clap::Args)]
pub struct BenchmarkArgs {
    /// Aggregated deployment: one instance of this GPU spec (e.g. h100-sxm:gpt-oss-120b:tp8:fp4).
    #[arg(long, conflicts_with_all = ["prefill", "decode"])]
    pub gpu: Option<String>,
    /// Disaggregated: N prefill instances of SPEC, as `NxSPEC`.
    #[arg(long, value_name = "NxSPEC", requires = "decode")]
    pub prefill: Option<String>,
    /// Disaggregated: M decode instances of SPEC, as `MxSPEC`.
    #[arg(long, value_name = "MxSPEC", requires = "prefill")]
    pub decode: Option<String>,
    /// KV link of a disaggregated deployment: nvlink, ib, roce, ethernet, inf, or GBPS[:LATENCY_US].
    #[arg(long, default_value = "nvlink")]
    pub link: String,
    /// MTP / speculative decoding depth (draft tokens per step) of computed specs (adds `:mtpD`).
    #[arg(long, value_name = "DEPTH")]
    pub mtp: Option<u32>,
    /// Acceptance of each MTP draft position (adds `:accA`; default 0.85).
    #[arg(long, value_name = "A", requires = "mtp")]
    pub mtp_acceptance: Option<f64>,
    /// Calibration overlay applied to every computed spec without its own `@FILE`.
    #[arg(long, value_name = "FILE.toml")]
    pub calibration: Option<PathBuf>,
    /// Input length N (inputs uniform in [r·N, N]), tokens.
    #[arg(long, default_value_t = 1024)]
    pub isl: u32,
    /// Output length N (outputs uniform in [r·N, N]), tokens.
    #[arg(long, default_value_t = 1024)]
    pub osl: u32,
    /// Range ratio r of the random lengths.
    #[arg(long, default_value_t = 0.8)]
    pub range_ratio: f64,
    /// Concurrencies, comma-separated (default 1,2,4,...,64; with --compare: the measured ones).
    #[arg(long, value_delimiter = ',')]
    pub concurrency: Vec<u32>,
    /// Requests per unit of concurrency (num_prompts = this × conc).
    #[arg(long, default_value_t = 10)]
    pub num_prompts_per_conc: u32,
    /// Chunked-prefill budget (vLLM --max-num-batched-tokens), tokens.
    #[arg(long, default_value_t = 8192)]
    pub max_num_batched_tokens: u32,
    /// Seed of the random lengths.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Measured rows to compare with (data/measured/ CSV or InferenceMAX agg_bmk.json).
    #[arg(long, value_name = "FILE")]
    pub compare: Option<PathBuf>,
    /// Write the rows as CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Plot throughput per GPU against interactivity (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `SPEC` with the `--mtp`/`--mtp-acceptance` tokens and the `--calibration`
/// overlay added to a computed spec (an overlay only when it has none).
fn with_overlay(spec: &str, args: &BenchmarkArgs) -> Result<String, InputError> {
    if !is_computed_spec(spec) {
        if args.mtp.is_some() {
            return Err(InputError::field(
                "--mtp",
                format!("MTP needs a computed spec (HW:MODEL:tpN:DTYPE), got `{spec}`"),
            ));
        }
        return Ok(spec.to_string());
    }
    let (base, overlay) = crate::profile::overlay::split_overlay(spec);
    let mut s = base.to_string();
    if let Some(d) = args.mtp {
        s += &format!(":mtp{d}");
        if let Some(a) = args.mtp_acceptance {
            s += &format!(":acc{a}");
        }
    }
    match (overlay, &args.calibration) {
        (Some(f), _) => Ok(format!("{s}@{f}")),
        (None, Some(c)) => Ok(format!("{s}@{}", c.display())),
        (None, None) => Ok(s),
    }
}

fn profile(field: &str, spec: &str, chunk: u32) -> Result<Profile, InputError> {
    let ov = ProfileOverrides {
        chunk: Some(chunk),
        ..ProfileOverrides::default()
    };
    resolve_profile(field, spec, &ov)
}

fn count_spec<'a>(field: &str, v: &'a str) -> Result<(u32, &'a str), InputError> {
    let bad = || {
        InputError::field(
            field,
            format!(
                "expected NxSPEC with N in 1..=1000 (e.g. 2xh100-sxm:gpt-oss-120b:tp8:fp4), got `{v}`"
            ),
        )
    };
    let (n, spec) = v.split_once(['x', 'X']).ok_or_else(bad)?;
    let n: u32 = n.parse().map_err(|_| bad())?;
    if !(1..=1000).contains(&n) || spec.is_empty() {
        return Err(bad());
    }
    Ok((n, spec))
}

/// The TP degree of a computed spec, if it has one.
fn spec_tp(spec: &str) -> Option<u32> {
    parse_instance("--gpu", spec).ok().map(|i| i.tp as u32)
}

/// Run `benchmark`.
pub fn execute(args: BenchmarkArgs) -> anyhow::Result<Outcome> {
    let chunk = args.max_num_batched_tokens;
    if !(1..=1_000_000).contains(&chunk) {
        return Err(InputError::field(
            "--max-num-batched-tokens",
            format!("expected 1..=1000000 tokens, got {chunk}"),
        )
        .into());
    }
    let (deployment, name, tp) = match (&args.gpu, &args.prefill, &args.decode) {
        (Some(g), None, None) => {
            let g = with_overlay(g, &args)?;
            (
                Deployment::Aggregated(profile("--gpu", &g, chunk)?),
                g.clone(),
                spec_tp(&g),
            )
        }
        (None, Some(p), Some(d)) => {
            let (np, ps) = count_spec("--prefill", p)?;
            let (nd, ds) = count_spec("--decode", d)?;
            let (ps, ds) = (with_overlay(ps, &args)?, with_overlay(ds, &args)?);
            let link = LinkSpec::parse(&args.link).map_err(|e| InputError::field("--link", e))?;
            let kv = handoff_kv_bytes(("--prefill", &ps), ("--decode", &ds))?;
            (
                Deployment::Disaggregated {
                    prefill: (profile("--prefill", &ps, chunk)?, np),
                    decode: (profile("--decode", &ds, chunk)?, nd),
                    link,
                    kv_bytes_per_token: kv,
                },
                format!("{np}x{ps} + {nd}x{ds}"),
                None,
            )
        }
        _ => {
            return Err(InputError::field(
                "--gpu",
                "give --gpu SPEC (aggregated) or both --prefill NxSPEC and --decode MxSPEC",
            )
            .into());
        }
    };
    let measured = match &args.compare {
        Some(path) => {
            let rows = read_measured(path)?;
            Some(
                rows.into_iter()
                    .filter(|m| m.isl == args.isl && m.osl == args.osl)
                    .filter(|m| match (m.tp, tp) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    })
                    .collect::<Vec<_>>(),
            )
        }
        None => None,
    };
    let concurrency = if !args.concurrency.is_empty() {
        args.concurrency.clone()
    } else if let Some(m) = measured.as_ref().filter(|m| !m.is_empty()) {
        let mut c: Vec<u32> = m.iter().map(|r| r.conc).collect();
        c.sort_unstable();
        c.dedup();
        c
    } else {
        vec![1, 2, 4, 8, 16, 32, 64]
    };
    let spec = BenchmarkSpec {
        deployment,
        isl: args.isl,
        osl: args.osl,
        range_ratio: args.range_ratio,
        concurrency,
        prompts_per_conc: args.num_prompts_per_conc,
        seed: args.seed,
    };
    let rows = run_benchmark(&spec)?;
    let mut report = BenchmarkReport {
        deployment: name,
        gpus: spec.deployment.gpus().2,
        isl: spec.isl,
        osl: spec.osl,
        range_ratio: spec.range_ratio,
        max_num_batched_tokens: chunk,
        rows,
        comparison: None,
    };
    if let Some(m) = &measured {
        report.compare_with(m);
    }
    Ok(Report::Benchmark(Box::new(report)).into())
}
