//! `kvfleet grid-flex`: power curtailment depth against latency, sustained and for an event.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::prelude::*;

use super::output::{CsvReport, HumanReport, OutputArgs, emit, write_csv};
use super::workload_args::WorkloadArgs;
use crate::engine::{PoolConfig, SimConfig};
use crate::error::InputError;
use crate::planner::gridflex::{GridFlex, GridFlexReport};
use crate::profile::{ProfileOverrides, resolve_profile};

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
    /// Event start, s [default: 600, or 11.8% of the --verify-des span].
    #[arg(long)]
    pub event_start_s: Option<f64>,
    /// Event duration, s [default: 900, or 17.6% of the --verify-des span].
    #[arg(long)]
    pub event_duration_s: Option<f64>,
    /// Window after the event in which latency is measured, s [default: 3600, or the rest of the --verify-des span].
    #[arg(long)]
    pub after_s: Option<f64>,
    /// Replications per level (event P99 is their mean).
    #[arg(long, default_value_t = 1)]
    pub replications: u32,
    /// Root seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the levels as CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Write an SVG chart of P99 TTFT and fleet kW against flex depth.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
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
        replications: a.replications,
    })
}

/// The default event layout, s: start, duration, after window.
const DEFAULT_EVENT_S: [f64; 3] = [600.0, 900.0, 3600.0];

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
            let total: f64 = DEFAULT_EVENT_S.iter().sum();
            DEFAULT_EVENT_S.map(|x| x / total * span)
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
pub fn run(args: GridFlexArgs) -> anyhow::Result<()> {
    let study = resolve(&args)?;
    let report = study.run(!args.output.quiet)?;
    // The result is printed before any file is written.
    emit(&report, &args.output)?;
    if let Some(path) = &args.csv {
        write_csv(&report, path)?;
    }
    if let Some(path) = &args.plot {
        plot(&report, path)?;
    }
    Ok(())
}

/// A chart series: legend, colour, points.
type NamedSeries = (&'static str, RGBColor, Vec<(f64, f64)>);

/// P99 TTFT (log scale, left) and fleet power (right) against flex depth:
/// the analytic sustained P99, the DES event and after-event P99, the SLO,
/// the fleet's power budget at each cap and the power it drew in the event.
fn plot(r: &GridFlexReport, path: &Path) -> anyhow::Result<()> {
    let e = |x: &dyn std::fmt::Display| anyhow::anyhow!("{x}");
    let max_pct = r.levels.iter().map(|l| l.flex_pct).fold(1.0, f64::max) * 1.05;
    let latencies = r.levels.iter().flat_map(|l| {
        [
            l.analytic.p99_ttft_ms.filter(|_| l.analytic.stable),
            l.des.event_p99_ttft_ms,
            l.des.after_p99_ttft_ms,
        ]
    });
    let finite: Vec<f64> = latencies
        .flatten()
        .filter(|x| x.is_finite() && *x > 0.0)
        .chain(std::iter::once(r.slo_ttft_ms))
        .collect();
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min) / 2.0;
    let hi = finite.iter().copied().fold(0.0, f64::max) * 2.0;
    let max_kw = r
        .levels
        .iter()
        .map(|l| l.fleet_kw.max(l.des.event_avg_kw))
        .fold(1.0, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Grid flex: {} GPUs, {} s event — P99 TTFT and power by depth",
                r.gpus, r.event_s[1]
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0.0..max_pct, (lo.max(1e-3)..hi).log_scale())
        .map_err(|x| e(&x))?
        .set_secondary_coord(0.0..max_pct, 0.0..max_kw);
    chart
        .configure_mesh()
        .x_desc("flex depth (% of full-batch power per GPU)")
        .y_desc("P99 TTFT (ms, log)")
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .configure_secondary_axes()
        .y_desc("fleet power (kW)")
        .draw()
        .map_err(|x| e(&x))?;
    let slo = r.slo_ttft_ms;
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, slo), (max_pct, slo)],
            RED.stroke_width(2),
        ))
        .map_err(|x| e(&x))?
        .label(format!("SLO {slo} ms"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    let series: [NamedSeries; 3] = [
        (
            "analytic P99, sustained",
            BLUE,
            r.levels
                .iter()
                .filter(|l| l.analytic.stable)
                .filter_map(|l| l.analytic.p99_ttft_ms.map(|p| (l.flex_pct, p)))
                .collect(),
        ),
        (
            "DES P99, event arrivals",
            MAGENTA,
            r.levels
                .iter()
                .filter_map(|l| l.des.event_p99_ttft_ms.map(|p| (l.flex_pct, p)))
                .collect(),
        ),
        (
            "DES P99, after the event",
            CYAN,
            r.levels
                .iter()
                .filter_map(|l| l.des.after_p99_ttft_ms.map(|p| (l.flex_pct, p)))
                .collect(),
        ),
    ];
    for (name, color, pts) in series {
        let pts: Vec<(f64, f64)> = pts.into_iter().filter(|p| p.1 > 0.0).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|x| e(&x))?;
    }
    let kw: [NamedSeries; 2] = [
        (
            "power budget at the cap (kW)",
            BLACK,
            r.levels.iter().map(|l| (l.flex_pct, l.fleet_kw)).collect(),
        ),
        (
            "measured power in the event (kW)",
            GREEN,
            r.levels
                .iter()
                .map(|l| (l.flex_pct, l.des.event_avg_kw))
                .collect(),
        ),
    ];
    for (name, color, pts) in kw {
        let style = ShapeStyle::from(&color.mix(0.7)).stroke_width(2);
        chart
            .draw_secondary_series(LineSeries::new(pts, style))
            .map_err(|x| e(&x))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.1}"),
        _ => "∞".into(),
    }
}

/// A DES window's P99 cell: "no arrivals" when nothing arrived in it.
fn window_ms(arrivals: u64, v: Option<f64>) -> String {
    if arrivals == 0 {
        "no arrivals".into()
    } else {
        ms(v)
    }
}

impl HumanReport for GridFlexReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Grid flexibility: {} instances ({} GPUs), SLO P99 TTFT ≤ {} ms, event at t = {:.1} s for {:.1} s",
            self.instances, self.gpus, self.slo_ttft_ms, self.event_s[0], self.event_s[1]
        );
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "flex",
            "n_max",
            "W/GPU",
            "fleet kW (cap)",
            "analytic P99 (sustained)",
            "event P99",
            "after P99",
            "event kW",
            "recovery",
            "saved kWh",
            "SLO",
        ]);
        for l in &self.levels {
            t.add_row(vec![
                format!("{:.0}%", l.flex_pct),
                l.n_max.to_string(),
                format!("{:.0}", l.power_per_gpu_w),
                format!("{:.1}", l.fleet_kw),
                if l.analytic.stable {
                    ms(l.analytic.p99_ttft_ms)
                } else {
                    "unstable".into()
                },
                window_ms(l.des.event_arrivals, l.des.event_p99_ttft_ms),
                window_ms(l.des.after_arrivals, l.des.after_p99_ttft_ms),
                format!("{:.1}", l.des.event_avg_kw),
                l.des
                    .recovery_s
                    .map(|r| format!("{r:.0} s"))
                    .unwrap_or_else(|| "—".into()),
                format!("{:.2}", l.des.energy_saved_kwh),
                match l.des.verdict.as_str() {
                    "ok" => "OK".into(),
                    "no-arrivals" => "no arrivals".into(),
                    _ => "BREACH".into(),
                },
            ]);
        }
        let _ = writeln!(s, "{t}");
        let pct = |v: Option<f64>| {
            v.map(|x| format!("{x:.0}%"))
                .unwrap_or_else(|| "none".into())
        };
        let _ = writeln!(
            s,
            "Max safe flex depth: sustained {} (analytic steady state), event of {:.1} s {} (DES: event and after-event P99 within SLO)",
            pct(self.max_safe_flex_pct.sustained),
            self.event_s[1],
            pct(self.max_safe_flex_pct.event)
        );
        s
    }
}

impl CsvReport for GridFlexReport {
    fn csv(&self) -> String {
        let mut s = String::from(
            "flex_pct,n_max,power_per_gpu_w,fleet_kw,analytic_p99_ttft_ms,analytic_stable,event_p99_ttft_ms,after_p99_ttft_ms,event_avg_kw,recovery_s,energy_saved_kwh,slo_met\n",
        );
        let f = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        for l in &self.levels {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                l.flex_pct,
                l.n_max,
                l.power_per_gpu_w,
                l.fleet_kw,
                f(l.analytic.p99_ttft_ms),
                l.analytic.stable,
                f(l.des.event_p99_ttft_ms),
                f(l.des.after_p99_ttft_ms),
                l.des.event_avg_kw,
                f(l.des.recovery_s),
                l.des.energy_saved_kwh,
                l.des.slo_met
            );
        }
        s
    }
}
