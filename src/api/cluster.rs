//! `kvfleet cluster`: rack-scale sizing of a user population on a rack
//! preset — plan search, KV tiers, and a DES check (DESIGN §14; the seed
//! tool `dc_cluster_optimizer.py`'s flags).

use std::path::PathBuf;

use super::output::OutputArgs;
use super::{Outcome, Report};
use crate::cluster::des::DesSpec;
use crate::cluster::inventory::{lookup_preset, preset_names};
use crate::cluster::model::resolve_model;
use crate::cluster::sizing::{KvSystem, SizingSpec};
use crate::cluster::{ClusterSpec, run};
use crate::error::InputError;
use crate::profile::hardware::Dtype;

/// Flags of `cluster`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Users held concurrently (each with its cached KV and a decode slot while resident).
    #[arg(long, default_value_t = 1000)]
    pub active_users: u64,
    /// Model: a catalog name, or the seed's 1 (Qwen3-235B-A22B), 2 (DeepSeek-V3), 3 (hypothetical 1.5T MoE).
    #[arg(long, default_value = "1")]
    pub model: String,
    /// Cached tokens per user (the context each turn starts from).
    #[arg(long, default_value_t = 4096)]
    pub tokens_cached: u64,
    /// Tokens/s each user must receive while generating (1 / TPOT).
    #[arg(long, default_value_t = 20.0)]
    pub tokens_per_user_rate: f64,
    /// Weight bits: 4 (FP4), 8 (FP8) or 16 (BF16).
    #[arg(long, default_value_t = 4)]
    pub quant_bits: u32,
    /// KV-cache format: bf16, fp8 or fp4.
    #[arg(long, default_value = "bf16")]
    pub kv_dtype: String,
    /// Rack preset: a key (gb200-nvl72, gb300-nvl72, hgx-h100, hgx-h200, hgx-b200, mi300x-8, mi355x-8, vr-nvl144) or its display name ("NVIDIA GB200 NVL72").
    #[arg(long, default_value = "gb200-nvl72")]
    pub rack_preset: String,
    /// Most racks to consider.
    #[arg(long, default_value_t = 64)]
    pub max_racks: u32,
    /// Batch sizes to consider, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32,64")]
    pub batch_sizes: Vec<u32>,
    /// Size exactly this many racks and report what falls short.
    #[arg(long)]
    pub fixed_racks: Option<u32>,
    /// Among plans on the fewest racks, prefer the fewest active GPUs (default: the fastest per user).
    #[arg(long)]
    pub prefer_utilization: bool,
    /// Session arrivals per minute (with --avg-session-min: size for the simulated p95 of open sessions when higher than --active-users).
    #[arg(long, requires = "avg_session_min")]
    pub arrival_rate: Option<f64>,
    /// Mean session length, minutes (exponential).
    #[arg(long, requires = "arrival_rate")]
    pub avg_session_min: Option<f64>,
    /// Minutes of sessions simulated for the concurrency (after the warm-up).
    #[arg(long, default_value_t = 60.0)]
    pub simulation_minutes: f64,
    /// Warm-up minutes of the session simulation.
    #[arg(long, default_value_t = 10.0)]
    pub warmup_minutes: f64,
    /// Offload tiers for KV not resident in HBM: hbm, host, host-nvme, storage.
    #[arg(long, default_value = "host-nvme")]
    pub kv_system: String,
    /// Share of users whose KV is resident in HBM at once (0 < h ≤ 1); the rest wait in the offload tiers.
    #[arg(long, default_value_t = 1.0)]
    pub hbm_residency: f64,
    /// New prompt tokens per turn.
    #[arg(long, default_value_t = 256)]
    pub turn_input_tok: u64,
    /// Output tokens per turn.
    #[arg(long, default_value_t = 256)]
    pub turn_output_tok: u64,
    /// DES check: mean think time between a user's turns, s (exponential; 0: back to back).
    #[arg(long, default_value_t = 0.0)]
    pub think_time_s: f64,
    /// DES check: measured seconds.
    #[arg(long, default_value_t = 60.0)]
    pub des_seconds: f64,
    /// DES check: warm-up seconds.
    #[arg(long, default_value_t = 10.0)]
    pub des_warmup_s: f64,
    /// DES check: instances simulated (a sample of the running ones).
    #[arg(long, default_value_t = 4)]
    pub des_instances: u32,
    /// Skip the DES check (utilisation from the steady state).
    #[arg(long)]
    pub no_des: bool,
    /// Skip the sensitivity sweeps.
    #[arg(long)]
    pub no_sensitivity: bool,
    /// Seed of the session and DES draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the plan candidates as CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Rack diagram (SVG): one column per rack.
    #[arg(long, alias = "diagram-output", value_name = "FILE.svg")]
    pub diagram: Option<PathBuf>,
    /// Sensitivity plots (SVG): racks against users, batch and tokens cached.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

fn positive(flag: &str, v: f64) -> Result<f64, InputError> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(InputError::field(
            flag,
            format!("expected a number > 0, got {v}"),
        ))
    }
}

fn svg(flag: &str, p: &Option<PathBuf>) -> Result<(), InputError> {
    match p {
        Some(p) if p.extension().and_then(|e| e.to_str()) != Some("svg") => Err(InputError::field(
            flag,
            format!("{}: kvfleet writes SVG; expected a FILE.svg", p.display()),
        )),
        _ => Ok(()),
    }
}

impl ClusterArgs {
    /// Resolve into a validated request.
    pub fn resolve(&self) -> Result<ClusterSpec, InputError> {
        let preset = lookup_preset(&self.rack_preset).ok_or_else(|| {
            InputError::field(
                "--rack-preset",
                format!(
                    "unknown preset `{}`; expected one of {}",
                    self.rack_preset,
                    preset_names()
                ),
            )
        })?;
        let model = resolve_model(&self.model)?;
        let weight_dtype = match self.quant_bits {
            4 => Dtype::Fp4,
            8 => Dtype::Fp8,
            16 => Dtype::Bf16,
            b => {
                return Err(InputError::field(
                    "--quant-bits",
                    format!("expected 4, 8 or 16, got {b}"),
                ));
            }
        };
        let kv_dtype = Dtype::parse(&self.kv_dtype).ok_or_else(|| {
            InputError::field(
                "--kv-dtype",
                format!("expected one of {}, got `{}`", Dtype::NAMES, self.kv_dtype),
            )
        })?;
        let kv_system = KvSystem::parse(&self.kv_system).ok_or_else(|| {
            InputError::field(
                "--kv-system",
                format!(
                    "expected one of {}, got `{}`",
                    KvSystem::NAMES,
                    self.kv_system
                ),
            )
        })?;
        if !(self.hbm_residency.is_finite()
            && self.hbm_residency > 0.0
            && self.hbm_residency <= 1.0)
        {
            return Err(InputError::field(
                "--hbm-residency",
                format!("expected a share in (0, 1], got {}", self.hbm_residency),
            ));
        }
        if self.hbm_residency < 1.0 && kv_system == KvSystem::Hbm {
            return Err(InputError::field(
                "--hbm-residency",
                "a residency below 1 needs an offload tier; --kv-system hbm has none",
            ));
        }
        if !(1..=10_000_000).contains(&self.active_users) {
            return Err(InputError::field(
                "--active-users",
                format!("expected 1..=10000000 users, got {}", self.active_users),
            ));
        }
        if !(1..=4_000_000).contains(&self.tokens_cached) {
            return Err(InputError::field(
                "--tokens-cached",
                format!("expected 1..=4000000 tokens, got {}", self.tokens_cached),
            ));
        }
        if self.turn_input_tok > 1_000_000 || !(1..=1_000_000).contains(&self.turn_output_tok) {
            return Err(InputError::field(
                "--turn-output-tok",
                "expected --turn-input-tok 0..=1000000 and --turn-output-tok 1..=1000000",
            ));
        }
        positive("--tokens-per-user-rate", self.tokens_per_user_rate)?;
        if self.batch_sizes.is_empty() || self.batch_sizes.iter().any(|&b| !(1..=4096).contains(&b))
        {
            return Err(InputError::field(
                "--batch-sizes",
                format!(
                    "expected batch sizes in 1..=4096, got {:?}",
                    self.batch_sizes
                ),
            ));
        }
        let mut batch_sizes = self.batch_sizes.clone();
        batch_sizes.sort_unstable();
        batch_sizes.dedup();
        if !(1..=10_000).contains(&self.max_racks) {
            return Err(InputError::field(
                "--max-racks",
                format!("expected 1..=10000 racks, got {}", self.max_racks),
            ));
        }
        if let Some(n) = self.fixed_racks
            && !(1..=10_000).contains(&n)
        {
            return Err(InputError::field(
                "--fixed-racks",
                format!("expected 1..=10000 racks, got {n}"),
            ));
        }
        let arrival = match (self.arrival_rate, self.avg_session_min) {
            (Some(r), Some(s)) => {
                positive("--arrival-rate", r)?;
                positive("--avg-session-min", s)?;
                positive("--simulation-minutes", self.simulation_minutes)?;
                if !(self.warmup_minutes.is_finite() && self.warmup_minutes >= 0.0) {
                    return Err(InputError::field(
                        "--warmup-minutes",
                        "expected minutes ≥ 0",
                    ));
                }
                if r * (self.simulation_minutes + self.warmup_minutes) > 5e7 || r * s > 1e7 {
                    return Err(InputError::field(
                        "--arrival-rate",
                        "too many sessions to simulate: keep rate × minutes ≤ 5e7 and rate × session length ≤ 1e7",
                    ));
                }
                Some((r, s, self.simulation_minutes, self.warmup_minutes))
            }
            _ => None,
        };
        if !(self.think_time_s.is_finite() && self.think_time_s >= 0.0) {
            return Err(InputError::field("--think-time-s", "expected seconds ≥ 0"));
        }
        if !self.no_des {
            positive("--des-seconds", self.des_seconds)?;
            if self.des_seconds > 86_400.0 {
                return Err(InputError::field(
                    "--des-seconds",
                    "expected at most 86400 s",
                ));
            }
            if !(self.des_warmup_s.is_finite() && (0.0..=86_400.0).contains(&self.des_warmup_s)) {
                return Err(InputError::field("--des-warmup-s", "expected 0..=86400 s"));
            }
            if !(1..=64).contains(&self.des_instances) {
                return Err(InputError::field(
                    "--des-instances",
                    "expected 1..=64 instances",
                ));
            }
        }
        svg("--diagram", &self.diagram)?;
        svg("--plot", &self.plot)?;
        Ok(ClusterSpec {
            sizing: SizingSpec {
                preset,
                model,
                weight_dtype,
                kv_dtype,
                users: self.active_users,
                tokens_cached: self.tokens_cached,
                turn_input_tok: self.turn_input_tok,
                turn_output_tok: self.turn_output_tok,
                tokens_per_user_rate: self.tokens_per_user_rate,
                batch_sizes,
                max_racks: self.max_racks,
                fixed_racks: self.fixed_racks,
                prefer_utilization: self.prefer_utilization,
                hbm_residency: self.hbm_residency,
                kv_system,
            },
            quant_bits: self.quant_bits,
            active_users: self.active_users,
            arrival,
            des: (!self.no_des).then_some(DesSpec {
                seconds: self.des_seconds,
                warmup_s: self.des_warmup_s,
                instances: self.des_instances,
                think_time_s: self.think_time_s,
                sessions: None,
                seed: self.seed,
            }),
            sensitivity: !self.no_sensitivity,
            seed: self.seed,
        })
    }
}

/// Run `cluster`.
pub fn execute(args: ClusterArgs) -> anyhow::Result<Outcome> {
    let spec = args.resolve()?;
    let report = run(&spec)?;
    let mut notices = Vec::new();
    if spec.sizing.preset.projected {
        notices.push(format!(
            "{} is projected hardware: its figures are announcements, not measurements",
            spec.sizing.preset.display
        ));
    }
    if spec.sizing.model.published_params_b.is_none() {
        notices.push(format!(
            "{}: {}",
            spec.sizing.model.name, spec.sizing.model.source
        ));
    }
    Ok(Outcome {
        report: Report::Cluster(Box::new(report)),
        notices,
    })
}
