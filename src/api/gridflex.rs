//! `kvfleet grid-flex`: power curtailment depth against latency, sustained and for an event.

use std::path::PathBuf;

use super::output::OutputArgs;
use super::workload_args::WorkloadArgs;
use super::{Outcome, Report};
use crate::engine::{PoolConfig, SimConfig};
use crate::error::InputError;
use crate::planner::gridflex::GridFlex;
use crate::profile::{ProfileOverrides, resolve_profile};
use crate::progress::Reporter;

/// Flags of `grid-flex`.
#[derive(Debug, clap::Args)]
pub struct GridFlexArgs {
    /// Workload flags (a Poisson `--lam` with CDF or ISL/OSL lengths).
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// GPU profile.
    #[arg(long, default_value = "h100")]
    pub gpu: String,
    /// GPUs in the fleet (a multiple of the profile's GPUs per instance).
    #[arg(long, default_value_t = 40)]
    pub n_gpus: u32,
    /// Max context, tokens.
    #[arg(long, default_value_t = 8192)]
    pub max_ctx: u32,
    /// TTFT SLO, ms.
    #[arg(long, default_value_t = 500.0)]
    pub slo: f64,
    /// Flex depths to study, percent of the per-GPU power at full batch.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0,5,10,15,20,25,30,40,50"
    )]
    pub flex_pcts: Vec<f64>,
    /// Requests per simulated level (default: enough for the event and the
    /// after window). Without event times, the warm-up, event and after
    /// window are placed inside these N requests (in the default 600 : 900 :
    /// 3600 proportions); with event times, N must cover them.
    #[arg(long, value_name = "N")]
    pub verify_des: Option<u64>,
    /// Event start, s [default: 120, or 11.8% of the --verify-des span].
    #[arg(long)]
    pub event_start_s: Option<f64>,
    /// Event duration, s [default: 900, or 17.6% of the --verify-des span].
    #[arg(long)]
    pub event_duration_s: Option<f64>,
    /// Longest window after the event in which latency is measured, s
    /// [default: 3600, or the rest of the --verify-des span]. The window
    /// ends 60 s after the fleet has recovered (its waiting queue back at
    /// the pre-event level) unless `--full-after-window`.
    #[arg(long)]
    pub after_s: Option<f64>,
    /// Simulate the whole `--after-s` window, not only until 60 s after
    /// recovery (the rest is the steady state the depth-0 run measures).
    #[arg(long)]
    pub full_after_window: bool,
    /// Replications per level (event P99 is their mean).
    #[arg(long, default_value_t = 1)]
    pub replications: u32,
    /// Simulate every depth, each to the end. By default a depth deeper
    /// than one that breaches the SLO in the DES (in the same replication)
    /// is not simulated, and with one replication a breaching depth stops
    /// once more than 1% of the event's arrivals were served above the SLO
    /// (its breach certain): the answer, the deepest safe depth, is decided
    /// by then.
    #[arg(long)]
    pub all_depths: bool,
    /// Root seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the levels as CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Write an SVG chart of P99 TTFT and fleet kW against flex depth.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Sharding (`--shard I/N`).
    #[command(flatten)]
    pub sweep: super::merge::SweepArgs,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Resolve the flags.
pub fn resolve(a: &GridFlexArgs) -> Result<GridFlex, InputError> {
    let profile = resolve_profile("--gpu", &a.gpu, &ProfileOverrides::default())?;
    let g = profile.gpus_per_instance;
    let max = crate::scenario::MAX_INSTANCES_PER_POOL as u64 * g as u64;
    if a.n_gpus == 0 || !a.n_gpus.is_multiple_of(g) || a.n_gpus as u64 > max {
        return Err(InputError::field(
            "--n-gpus",
            format!("expected a positive multiple of {g} GPUs per instance, at most {max}"),
        ));
    }
    if let Some(f) = a
        .flex_pcts
        .iter()
        .find(|f| !(f.is_finite() && **f >= 0.0 && **f < 100.0))
    {
        return Err(InputError::field(
            "--flex-pcts",
            format!("expected percentages in [0, 100), got {f}"),
        ));
    }
    let given = [
        ("--event-start-s", a.event_start_s),
        ("--event-duration-s", a.event_duration_s),
        ("--after-s", a.after_s),
    ];
    for (flag, v) in given {
        if let Some(v) = v
            && !(v.is_finite() && v > 0.0)
        {
            return Err(InputError::field(
                flag,
                format!("expected a positive number of seconds, got {v}"),
            ));
        }
    }
    if a.replications == 0 || a.replications > crate::simulate::MAX_REPLICATIONS {
        return Err(InputError::field(
            "--replications",
            format!(
                "expected 1 to {} replications per level, got {}",
                crate::simulate::MAX_REPLICATIONS,
                a.replications
            ),
        ));
    }
    if !(a.slo.is_finite() && a.slo > 0.0) {
        return Err(InputError::field(
            "--slo",
            "expected a positive number of ms",
        ));
    }
    let mut workload = a.workload.resolve()?;
    let lam = workload
        .lam
        .ok_or_else(|| InputError::field("--lam", "grid-flex needs a Poisson arrival rate"))?;
    let t = event_times(a, lam)?;
    workload.n_requests = Some(t.n_requests);
    let cfg = SimConfig::new(
        vec![PoolConfig::new("pool", profile, a.n_gpus / g, a.max_ctx)],
        a.seed,
        a.slo,
    );
    Ok(GridFlex {
        cfg,
        workload,
        depths: a.flex_pcts.iter().map(|p| p / 100.0).collect(),
        event_start_s: t.start_s,
        event_duration_s: t.duration_s,
        after_s: t.after_s,
        full_after_window: a.full_after_window,
        replications: a.replications,
        all_depths: a.all_depths,
    })
}

/// The default event layout, s: start, duration (the seed's shortest DR
/// event, 15 minutes), longest after window. The start is the warm-up
/// (whose waiting level the fleet recovers to): two minutes, several times
/// the service time of all but the rarest requests, fill a fleet that meets
/// a sub-second TTFT target to its steady state. On ten flag sets (three
/// CDFs, three GPUs, baselines 23–386 ms, `--all-depths`, 2 replications)
/// warm-ups of 60, 120, 300 and 600 s gave every depth the same verdict.
const DEFAULT_EVENT_S: [f64; 3] = [120.0, 900.0, 3600.0];

/// How `--verify-des N` without event times splits the N requests' span:
/// warm-up, event and after window in these proportions.
const VERIFY_DES_PROPORTIONS: [f64; 3] = [600.0, 900.0, 3600.0];

/// Longest simulated horizon (event start + duration + after window), s: 30 days.
pub const MAX_HORIZON_S: f64 = 30.0 * 86_400.0;

/// Most requests simulated per level (and replication).
pub const MAX_LEVEL_REQUESTS: u64 = 20_000_000;

/// Where the event lies and how many requests each level simulates.
struct EventTimes {
    start_s: f64,
    duration_s: f64,
    after_s: f64,
    n_requests: u64,
}

/// Event times and the request count: given times (defaults for the rest)
/// need `--verify-des` to cover them; without times, `--verify-des N` places
/// the default proportions inside the N requests' span. Horizons beyond
/// [`MAX_HORIZON_S`] or [`MAX_LEVEL_REQUESTS`] are refused.
fn event_times(a: &GridFlexArgs, lam: f64) -> Result<EventTimes, InputError> {
    let flags = ["--event-start-s", "--event-duration-s", "--after-s"];
    let given = [a.event_start_s, a.event_duration_s, a.after_s];
    let any_given = given.iter().any(Option::is_some);
    if let Some(n) = a.verify_des
        && !(100..=MAX_LEVEL_REQUESTS).contains(&n)
    {
        return Err(InputError::field(
            "--verify-des",
            format!("expected 100 to {MAX_LEVEL_REQUESTS} requests per level, got {n}"),
        ));
    }
    let [s, d, w] = match a.verify_des {
        Some(n) if !any_given => {
            let span = n as f64 / lam;
            let total: f64 = VERIFY_DES_PROPORTIONS.iter().sum();
            VERIFY_DES_PROPORTIONS.map(|x| x / total * span)
        }
        _ => [0, 1, 2].map(|i| given[i].unwrap_or(DEFAULT_EVENT_S[i])),
    };
    let horizon_s = s + d + w;
    let named: Vec<&str> = flags
        .iter()
        .zip(&given)
        .filter(|(_, g)| g.is_some())
        .map(|(f, _)| *f)
        .collect();
    let named = if named.is_empty() {
        "the default event times".to_string()
    } else {
        named.join(" + ")
    };
    if horizon_s > MAX_HORIZON_S {
        return Err(InputError::field(
            named,
            format!(
                "event start + duration + after window = {horizon_s:.3e} s; expected at most {MAX_HORIZON_S} s (30 days) of simulated time"
            ),
        ));
    }
    let needed = (lam * horizon_s).ceil() as u64;
    let n = a.verify_des.unwrap_or(needed);
    if n > MAX_LEVEL_REQUESTS {
        return Err(InputError::field(
            format!("--lam × ({named})"),
            format!(
                "{n} requests per level; expected at most {MAX_LEVEL_REQUESTS} (lower the rate, the event times or --verify-des)"
            ),
        ));
    }
    if let Some(n) = a.verify_des
        && any_given
        && n < needed
    {
        return Err(InputError::field(
            format!("--verify-des / {named}"),
            format!(
                "{n} requests at --lam {lam} span {:.0} s, but the event and after window end at {horizon_s:.0} s (need --verify-des ≥ {needed}, or omit the event times to fit them inside the N requests)",
                n as f64 / lam
            ),
        ));
    }
    Ok(EventTimes {
        start_s: s,
        duration_s: d,
        after_s: w,
        n_requests: n,
    })
}

/// Run `grid-flex`.
pub fn execute(args: GridFlexArgs, reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
    let study = resolve(&args)?;
    let sweep = args.sweep.sweep();
    let report = study.run(super::progress_for(reporter, &args.output), &sweep);
    super::merge::finish_sweep(report, &sweep, "grid-flex", |r| {
        Report::GridFlex(Box::new(r))
    })
}
