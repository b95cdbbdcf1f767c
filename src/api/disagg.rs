//! `kvfleet disagg`: prefill/decode pool sizes (nP, nD) for TTFT and TPOT
//! targets, verified in the DES, against aggregated fleets.

use std::path::PathBuf;

use super::output::OutputArgs;
use super::workload_args::WorkloadArgs;
use super::{Outcome, Report};
use crate::engine::LinkSpec;
use crate::error::InputError;
use crate::planner::disagg::DisaggStudy;
use crate::profile::computed::handoff_kv_bytes;
use crate::profile::{Profile, ProfileOverrides, resolve_profile};
use crate::progress::Reporter;

/// Flags of `disagg`.
#[derive(Debug, clap::Args)]
pub struct DisaggArgs {
    /// Workload flags (a Poisson `--lam` with a CDF or ISL/OSL lengths).
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// P99 TTFT target, ms (TTFT ends when the KV cache lands at the decode instance).
    #[arg(long, default_value_t = 500.0)]
    pub slo_ttft: f64,
    /// P99 TPOT target, ms.
    #[arg(long, default_value_t = 100.0)]
    pub slo_tpot: f64,
    /// Prefill GPU: preset, computed spec HW:MODEL:tpN:DTYPE, or profile TOML.
    #[arg(long, default_value = "h100")]
    pub gpu_prefill: String,
    /// Decode GPU.
    #[arg(long, default_value = "h100")]
    pub gpu_decode: String,
    /// Max context (ISL + OSL), tokens.
    #[arg(long, default_value_t = 8192)]
    pub max_ctx: u32,
    /// Largest prefill pool searched, instances.
    #[arg(long, default_value_t = 16)]
    pub max_prefill: u32,
    /// Largest decode pool searched, instances.
    #[arg(long, default_value_t = 64)]
    pub max_decode: u32,
    /// KV link: `nvlink`, `ib`, `roce`, `ethernet`, `inf`, or `GBPS[:LATENCY_US]`; prefix `shared:` for one fleet-wide link.
    #[arg(long, default_value = "ib")]
    pub link: String,
    /// KV bytes per token [default: from the model of a computed spec, else 327,680 (70B GQA, BF16)].
    #[arg(long)]
    pub kv_bytes_per_token: Option<f64>,
    /// GPUs of the aggregated fleets to compare with [default: the prefill and decode GPUs].
    #[arg(long, value_delimiter = ',')]
    pub aggregated_gpus: Vec<String>,
    /// Requests per simulation.
    #[arg(long, default_value_t = 20_000)]
    pub n_sim_req: u64,
    /// Replications per evaluation (the SLOs must hold in each).
    #[arg(long, default_value_t = 3)]
    pub replications: u32,
    /// Root seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the candidates as CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

fn profile(field: &str, spec: &str) -> Result<Profile, InputError> {
    resolve_profile(field, spec, &ProfileOverrides::default())
}

/// Resolve the flags into a validated study.
pub fn resolve(a: &DisaggArgs) -> Result<DisaggStudy, InputError> {
    for (flag, v) in [("--slo-ttft", a.slo_ttft), ("--slo-tpot", a.slo_tpot)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(InputError::field(
                flag,
                format!("expected a positive number of ms, got {v}"),
            ));
        }
    }
    for (flag, v) in [
        ("--max-prefill", a.max_prefill),
        ("--max-decode", a.max_decode),
        ("--replications", a.replications),
    ] {
        if v == 0 {
            return Err(InputError::field(flag, "expected at least 1"));
        }
    }
    if a.replications > crate::simulate::MAX_REPLICATIONS {
        return Err(InputError::field(
            "--replications",
            format!(
                "expected 1 to {} replications per evaluation, got {}",
                crate::simulate::MAX_REPLICATIONS,
                a.replications
            ),
        ));
    }
    if a.n_sim_req < 100 {
        return Err(InputError::field(
            "--n-sim-req",
            format!("expected at least 100 requests, got {}", a.n_sim_req),
        ));
    }
    let prefill = profile("--gpu-prefill", &a.gpu_prefill)?;
    let decode = profile("--gpu-decode", &a.gpu_decode)?;
    let link = LinkSpec::parse(&a.link).map_err(|e| InputError::field("--link", e))?;
    let kv_bytes_per_token = match a.kv_bytes_per_token {
        Some(v) => crate::engine::config::check_kv_bytes_per_token(v)
            .map_err(|e| InputError::field("--kv-bytes-per-token", e))?,
        None => handoff_kv_bytes(
            ("--gpu-prefill", &a.gpu_prefill),
            ("--gpu-decode", &a.gpu_decode),
        )?,
    };
    if decode.kv_capacity_tok() < a.max_ctx as u64 {
        return Err(InputError::field(
            "--max-ctx",
            format!(
                "a decode instance of `{}` holds {} KV tokens, less than --max-ctx {}",
                decode.name,
                decode.kv_capacity_tok(),
                a.max_ctx
            ),
        ));
    }
    let specs: Vec<String> = if a.aggregated_gpus.is_empty() {
        let mut v = vec![a.gpu_prefill.clone()];
        if a.gpu_decode != a.gpu_prefill {
            v.push(a.gpu_decode.clone());
        }
        v
    } else {
        a.aggregated_gpus.clone()
    };
    let aggregated = specs
        .iter()
        .map(|s| profile("--aggregated-gpus", s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut workload = a.workload.resolve()?;
    if workload.trace.is_none() {
        workload.n_requests = Some(a.n_sim_req);
    }
    Ok(DisaggStudy {
        workload,
        prefill,
        decode,
        max_ctx_tok: a.max_ctx,
        slo_ttft_ms: a.slo_ttft,
        slo_tpot_ms: a.slo_tpot,
        max_prefill: a.max_prefill,
        max_decode: a.max_decode,
        link,
        kv_bytes_per_token,
        aggregated,
        seed: a.seed,
        replications: a.replications,
        progress: !a.output.quiet,
        streams: Default::default(),
    })
}

/// Run `disagg`.
pub fn execute(args: DisaggArgs, reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
    let study = resolve(&args)?;
    Ok(Report::Disagg(Box::new(study.run_with(reporter)?)).into())
}
