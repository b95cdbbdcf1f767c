//! Grid demand-response: how deep can a fleet curtail power, for how long?
//!
//! For each flex depth f the per-GPU power budget is `(1 − f) · P(max_num_seqs)`
//! and the batch cap is its exact inverse (`PowerCurve::max_batch_within`).
//! The analytic answer (the cross-check of the iteration engine at that cap) says whether
//! the fleet can sustain the cap at all; the DES answer simulates a
//! demand-response event: the cap applies from `event_start_s` for
//! `event_duration_s`, then is lifted, on the same arrivals as a zero-depth run.

use rayon::prelude::*;
use serde::Serialize;

use super::shard::{ShardItem, Sweep, f64_from, f64_to, field, opt_f64_from, opt_f64_to, plain};
use crate::analytic::calibration::sample_lengths;
use crate::analytic::iteration_model::{IterationPool, cross_check};
use crate::engine::recovery::{self, EndAtRecovery};
use crate::engine::{
    self, ControlChange, MetricWindow, PoolConfig, SimConfig, SimOutcome, WindowMissWatch,
};

/// Seconds before the event whose waiting level the fleet recovers to (the
/// whole warm-up when it is shorter).
const RECOVERY_PRE_S: f64 = 300.0;

/// Seconds of arrivals simulated after the fleet has recovered (unless
/// `GridFlex::full_after_window`): the after window ends there, or at its
/// full length if that is sooner.
pub const RECOVERY_MARGIN_S: f64 = 60.0;
use crate::error::InputError;
use crate::simulate::open_arrivals;
use crate::workload::read_ahead::ReadAhead;
use crate::workload::spec::WorkloadSpec;

/// A grid-flex study.
#[derive(Debug, Clone)]
pub struct GridFlex {
    /// The simulation (one pool), run unchanged at depth 0.
    pub cfg: SimConfig,
    /// The workload (Poisson rate and lengths).
    pub workload: WorkloadSpec,
    /// Flex depths, fractions in [0, 1).
    pub depths: Vec<f64>,
    /// Event start, s.
    pub event_start_s: f64,
    /// Event duration, s.
    pub event_duration_s: f64,
    /// Longest after-event window, s: it ends [`RECOVERY_MARGIN_S`] after
    /// the fleet has recovered, unless `full_after_window`.
    pub after_s: f64,
    /// Simulate the whole after window even once the fleet has recovered.
    pub full_after_window: bool,
    /// Replications per level (event P99 is their mean).
    pub replications: u32,
    /// Simulate every depth, each to the end; otherwise, within a
    /// replication, depths deeper than the shallowest one that breaches the
    /// SLO are not run, and with one replication a capped depth stops once
    /// its breach is certain (`SimConfig::stop_on_window_ttft_miss`).
    pub all_depths: bool,
}

/// Analytic (sustained) answer at one depth.
#[derive(Debug, Clone, Serialize)]
pub struct FlexAnalytic {
    /// P99 TTFT, ms (null: unstable).
    pub p99_ttft_ms: Option<f64>,
    /// Whether the capped fleet is stable in steady state.
    pub stable: bool,
    /// The sustained P99 and the DES event's P99 differ by more than the
    /// cross-check's validated band (`planner::screen::P99_BAND`).
    pub disagrees: bool,
}

/// DES (event) answer at one depth.
#[derive(Debug, Clone, Serialize)]
pub struct FlexDes {
    /// P99 TTFT over every request arriving during the event (rejected and
    /// unfinished as infinite), ms, mean over replications; null with no
    /// arrivals (see `event_arrivals`) or when infinite.
    pub event_p99_ttft_ms: Option<f64>,
    /// The same for requests arriving in the window after the event, ms.
    pub after_p99_ttft_ms: Option<f64>,
    /// Requests arriving during the event (mean over replications).
    pub event_arrivals: u64,
    /// Requests arriving in the after-event window (mean over replications).
    pub after_arrivals: u64,
    /// `ok`, `breach` (also: the run was unstable), `no-arrivals` (a
    /// stable run in which no window had arrivals: nothing to judge), or
    /// `not-simulated` (see `not_simulated`).
    pub verdict: String,
    /// Why the depth was not simulated: a shallower depth already breached
    /// the SLO in the DES (`--all-depths` simulates every depth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_simulated: Option<String>,
    /// Time after the event until the waiting queue is back to its pre-event level, s (null: not within the run).
    pub recovery_s: Option<f64>,
    /// Length of the after window simulated, s (mean over replications): it
    /// ends `RECOVERY_MARGIN_S` after recovery, or at `--after-s` (null:
    /// not simulated).
    pub after_window_s: Option<f64>,
    /// Energy saved during the event against the zero-depth run, kWh
    /// (null: not simulated).
    pub energy_saved_kwh: Option<f64>,
    /// Mean fleet power during the event, kW (null: not simulated).
    pub event_avg_kw: Option<f64>,
    /// The run stable and the P99 of every window with arrivals within the
    /// SLO (a window without arrivals is excluded; none with arrivals: false).
    pub slo_met: bool,
    /// The depth's runs stopped at this simulated time, s (mean over the
    /// replications that stopped), once more than 1% of the event's
    /// arrivals had been rejected or served above the SLO: its event P99
    /// was certain to breach, and the P99s, recovery and energy are not
    /// measured (null). Absent: measured to the end (`--all-depths`
    /// measures every depth to the end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach_decided_at_s: Option<f64>,
}

impl FlexDes {
    /// A depth left unsimulated because a shallower one breached the SLO.
    fn not_simulated() -> Self {
        FlexDes {
            event_p99_ttft_ms: None,
            after_p99_ttft_ms: None,
            event_arrivals: 0,
            after_arrivals: 0,
            verdict: "not-simulated".into(),
            not_simulated: Some(
                "a shallower depth breached the SLO in the DES, so the deepest safe depth was decided; --all-depths simulates every depth".into(),
            ),
            recovery_s: None,
            after_window_s: None,
            energy_saved_kwh: None,
            event_avg_kw: None,
            slo_met: false,
            breach_decided_at_s: None,
        }
    }

    /// A depth whose runs stopped once its breach was certain (at
    /// `decided_at_s`), with `event_arrivals` in the event.
    fn breach_decided(event_arrivals: u64, decided_at_s: f64) -> Self {
        FlexDes {
            event_arrivals,
            verdict: "breach".into(),
            not_simulated: None,
            breach_decided_at_s: Some(decided_at_s),
            ..FlexDes::not_simulated()
        }
    }
}

/// One depth.
#[derive(Debug, Clone, Serialize)]
pub struct FlexLevel {
    /// Flex depth, percent.
    pub flex_pct: f64,
    /// Batch cap per instance.
    pub n_max: u32,
    /// Power per GPU at the cap, W.
    pub power_per_gpu_w: f64,
    /// Fleet power at the cap, kW.
    pub fleet_kw: f64,
    /// Steady-state analytic answer.
    pub analytic: FlexAnalytic,
    /// Simulated event.
    pub des: FlexDes,
}

/// The deepest safe depths.
#[derive(Debug, Clone, Serialize)]
pub struct MaxSafe {
    /// For a sustained curtailment (analytic: stable and P99 within SLO at every shallower depth too).
    pub sustained: Option<f64>,
    /// For an event of the given duration (DES), with every shallower depth safe too.
    pub event: Option<f64>,
}

/// The study's result.
#[derive(Debug, Clone, Serialize)]
pub struct GridFlexReport {
    /// One entry per depth.
    pub levels: Vec<FlexLevel>,
    /// Deepest safe depths, percent.
    pub max_safe_flex_pct: MaxSafe,
    /// SLO, ms.
    pub slo_ttft_ms: f64,
    /// Event start and duration, s.
    pub event_s: [f64; 2],
    /// The longest after-event window, s.
    pub after_s: f64,
    /// The after window ends `RECOVERY_MARGIN_S` after recovery (false:
    /// `--full-after-window`, it is `after_s` long).
    pub after_ends_at_recovery: bool,
    /// Instances and GPUs.
    pub instances: u32,
    /// GPUs.
    pub gpus: u64,
}

fn pool(cfg: &SimConfig) -> &PoolConfig {
    &cfg.pools[0]
}

/// Fleet energy over window `w`, J.
/// What a level's finishing step needs of one run: per window (event,
/// after) the arrivals and the P99 TTFT over all of them, the recovery
/// time, the event window's energy and whether the run stayed stable.
#[derive(Debug, Clone, PartialEq)]
struct RunMeasures {
    arrived: [u64; 2],
    p99_ttft_ms: [Option<f64>; 2],
    recovery_s: Option<f64>,
    /// The after window's simulated length when the run's arrivals ended
    /// at recovery (`None`: the whole window).
    after_window_s: Option<f64>,
    energy_j: f64,
    stable: bool,
    /// The run stopped at this simulated time, s, once the event window's
    /// P99 TTFT was certain to exceed the SLO
    /// (`SimConfig::stop_on_window_ttft_miss`): its P99s, recovery and
    /// energy were not measured to the end (and are not reported).
    breach_decided_s: Option<f64>,
}

impl RunMeasures {
    /// The measures of run `o`, which watched its event window with
    /// `watch` (`SimConfig::stop_on_window_ttft_miss`).
    fn of(
        o: &SimOutcome,
        cfg: &SimConfig,
        t_start_s: f64,
        t_end_s: f64,
        watch: Option<WindowMissWatch>,
    ) -> Self {
        let w = |i: usize| o.windows.get(i).map(|w| &w.metrics);
        let decided = match (&o.verdict, watch) {
            (engine::Verdict::SloMissed { detected_at_s, .. }, Some(watch)) => {
                Some((*detected_at_s, watch.arrivals))
            }
            _ => None,
        };
        if let Some((at_s, event_arrivals)) = decided {
            return RunMeasures {
                arrived: [event_arrivals, 0],
                p99_ttft_ms: [None, None],
                recovery_s: None,
                after_window_s: None,
                // Not measured to the end, and not reported.
                energy_j: 0.0,
                stable: false,
                breach_decided_s: Some(at_s),
            };
        }
        RunMeasures {
            arrived: [0, 1].map(|i| w(i).map_or(0, |m| m.arrived)),
            p99_ttft_ms: [0, 1].map(|i| {
                w(i).and_then(|m| m.ttft_percentile_all_ns(99.0))
                    .map(|x| x / 1e6)
            }),
            recovery_s: recovery::recovery_s(&o.queue_trace, t_start_s, t_end_s, RECOVERY_PRE_S),
            after_window_s: o.arrivals_ended_s.map(|t| (t - t_end_s).max(0.0)),
            energy_j: window_energy_j(o, cfg, 0),
            stable: o.verdict == engine::Verdict::Stable,
            breach_decided_s: None,
        }
    }
}

impl ShardItem for RunMeasures {
    fn to_shard(&self) -> serde_json::Value {
        serde_json::json!({
            "arrived": self.arrived,
            "p99_ttft_ms": self.p99_ttft_ms.map(opt_f64_to),
            "recovery_s": opt_f64_to(self.recovery_s),
            "after_window_s": opt_f64_to(self.after_window_s),
            "energy_j": f64_to(self.energy_j),
            "stable": self.stable,
            "breach_decided_s": opt_f64_to(self.breach_decided_s),
        })
    }
    fn from_shard(v: &serde_json::Value) -> Result<Self, String> {
        let p = field(v, "p99_ttft_ms")?
            .as_array()
            .filter(|a| a.len() == 2)
            .ok_or("field `p99_ttft_ms`: expected two values")?;
        Ok(RunMeasures {
            arrived: plain(v, "arrived")?,
            p99_ttft_ms: [opt_f64_from(&p[0])?, opt_f64_from(&p[1])?],
            recovery_s: opt_f64_from(field(v, "recovery_s")?)?,
            after_window_s: opt_f64_from(field(v, "after_window_s")?)?,
            energy_j: f64_from(field(v, "energy_j")?)?,
            stable: plain(v, "stable")?,
            breach_decided_s: opt_f64_from(field(v, "breach_decided_s")?)?,
        })
    }
}

/// The measures of one replication: the baseline's, then each depth's
/// (`None`: not simulated, being deeper than a depth that breached).
#[derive(Debug, Clone, PartialEq)]
struct RepMeasures(RunMeasures, Vec<Option<RunMeasures>>);

impl ShardItem for RepMeasures {
    fn to_shard(&self) -> serde_json::Value {
        serde_json::Value::Array(
            std::iter::once(self.0.to_shard())
                .chain(self.1.iter().map(|m| match m {
                    Some(m) => m.to_shard(),
                    None => serde_json::Value::Null,
                }))
                .collect(),
        )
    }
    fn from_shard(v: &serde_json::Value) -> Result<Self, String> {
        let runs = v.as_array().ok_or("expected a list of runs")?;
        let base = RunMeasures::from_shard(runs.first().ok_or("expected the baseline's run")?)?;
        let levels = runs[1..]
            .iter()
            .map(|m| {
                (!m.is_null())
                    .then(|| RunMeasures::from_shard(m))
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        Ok(RepMeasures(base, levels))
    }
}

/// The verdict on the windows `(arrivals, P99 TTFT over them)` of a run,
/// or of a level over its runs: `breach` when unstable (a run stopped
/// early breaches whatever arrived) or when a window with arrivals has its
/// P99 above `slo_ms` (a missing P99 counts as infinite), `no-arrivals`
/// when no window had any (nothing to judge), else `ok`.
fn window_verdict(stable: bool, windows: [(u64, Option<f64>); 2], slo_ms: f64) -> &'static str {
    let judged: Vec<f64> = windows
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(_, p)| p.unwrap_or(f64::INFINITY))
        .collect();
    if !stable {
        "breach"
    } else if judged.is_empty() {
        "no-arrivals"
    } else if judged.iter().all(|&p| p <= slo_ms) {
        "ok"
    } else {
        "breach"
    }
}

impl RunMeasures {
    /// This run breaches the SLO on its own ([`window_verdict`]).
    fn breaches(&self, slo_ms: f64) -> bool {
        let w = |i: usize| (self.arrived[i], self.p99_ttft_ms[i]);
        window_verdict(self.stable, [w(0), w(1)], slo_ms) == "breach"
    }
}

/// The most requests any instance held at once (waiting at or running on
/// it) during the event window, as the run tracked it
/// (`SimConfig::peak_held_window`); `None` when the run cannot show it (it
/// stopped early or left requests unfinished, or a central queue).
/// Running sequences are a subset of those held, so a batch cap at least
/// this large never refuses an admission the run made.
fn peak_held(o: &SimOutcome) -> Option<u64> {
    o.peak_held
        .filter(|_| o.in_flight == 0 && o.verdict == engine::Verdict::Stable)
}

fn window_energy_j(out: &SimOutcome, cfg: &SimConfig, w: usize) -> f64 {
    crate::metrics::report::pools_energy_j(&cfg.pools, &out.windows[w].stats_by_pool)
}

impl GridFlex {
    fn caps(&self) -> Vec<u32> {
        let p = pool(&self.cfg);
        let full = p.max_num_seqs();
        let p_full = p.profile.power.power_w(full, p.profile.max_slots);
        self.depths
            .iter()
            .map(|&f| {
                p.profile
                    .power
                    .max_batch_within((1.0 - f) * p_full, full)
                    .unwrap_or(1)
            })
            .collect()
    }

    fn run_level(
        &self,
        cap: Option<u32>,
        rep: u32,
        record: bool,
    ) -> Result<SimOutcome, InputError> {
        self.run_level_watched(cap, rep, record).map(|(o, _)| o)
    }

    /// [`GridFlex::run_level`], with the event-window watch the run kept
    /// (with one replication, a capped depth stops once its breach is
    /// certain, unless `all_depths`).
    fn run_level_watched(
        &self,
        cap: Option<u32>,
        rep: u32,
        record: bool,
    ) -> Result<(SimOutcome, Option<WindowMissWatch>), InputError> {
        let (t0, d) = (self.event_start_s, self.event_duration_s);
        let mut cfg = self.cfg.clone();
        cfg.record_requests = record;
        // Only the baseline's peak is read (which depths can bind).
        cfg.peak_held_window = cap.is_none().then_some(0);
        if !self.full_after_window {
            cfg.end_at_recovery = Some(EndAtRecovery {
                event_start_s: t0,
                event_end_s: t0 + d,
                pre_s: RECOVERY_PRE_S,
                margin_s: RECOVERY_MARGIN_S,
            });
        }
        cfg.windows = vec![
            MetricWindow {
                name: "event".into(),
                start_s: t0,
                end_s: t0 + d,
            },
            MetricWindow {
                name: "after".into(),
                start_s: t0 + d,
                end_s: t0 + d + self.after_s,
            },
        ];
        if let Some(cap) = cap {
            let full = pool(&self.cfg).max_num_seqs();
            cfg.controls = vec![
                ControlChange::cap(t0, 0, cap),
                ControlChange::cap(t0 + d, 0, full),
            ];
            // A depth stops once its event P99 is certain to breach: the
            // answer needs no more (`all_depths` measures every depth whole).
            // Only with one replication: a level's P99 is the replications'
            // mean, which one replication's breach does not decide.
            if !self.all_depths
                && self.replications <= 1
                && let engine::Arrivals::Open(mut src) =
                    open_arrivals(&self.workload, cfg.seed, rep)?
                && let Some(n) = engine::window_arrivals(src.as_mut(), &cfg.windows[0])?
                && n > 0
            {
                cfg.stop_on_window_ttft_miss = Some(WindowMissWatch {
                    window: 0,
                    arrivals: n,
                });
            }
        }
        let mut arrivals = open_arrivals(&self.workload, cfg.seed, rep)?;
        // The baseline of a single replication is the study's critical path,
        // with the other core mostly idle: its workload is generated there.
        if cap.is_none()
            && self.replications <= 1
            && let engine::Arrivals::Open(src) = arrivals
        {
            arrivals = engine::Arrivals::Open(Box::new(ReadAhead::new(src)));
        }
        let o = engine::run(&cfg, arrivals, rep, None)?;
        tracing::debug!(
            "grid-flex cap {cap:?}, replication {rep}: {} requests, {} events in {:.3} s",
            o.arrived,
            o.events,
            o.wall_s
        );
        Ok((o, cfg.stop_on_window_ttft_miss))
    }

    /// Run the study (levels × replications in parallel; deterministic).
    pub fn run(
        &self,
        progress: &dyn crate::progress::Reporter,
        sweep: &Sweep,
    ) -> anyhow::Result<GridFlexReport> {
        let started = std::time::Instant::now();
        let p = pool(&self.cfg).clone();
        let caps = self.caps();
        let reps = self.replications.max(1);
        let slo = self.cfg.slo.ttft_ms;
        // Analytic calibration at the pool's context.
        let model = self
            .workload
            .length_model()?
            .ok_or_else(|| InputError::field("--cdf", "grid-flex needs a length model"))?;
        let lam = self
            .workload
            .lam
            .ok_or_else(|| InputError::field("--lam", "grid-flex needs a Poisson rate"))?;
        // The cross-check with the batch capped at each depth, and the
        // shallowest depths it finds unsustainable. Nothing in the baseline
        // run depends on it, so it is computed beside the baseline's first
        // replication (once, whichever replication asks first).
        let mut order: Vec<usize> = (0..caps.len()).collect();
        order.sort_by(|&a, &b| self.depths[a].total_cmp(&self.depths[b]));
        let screen = std::sync::OnceLock::new();
        let screened = || {
            screen.get_or_init(|| {
                const SAMPLES: usize = 50_000;
                let samples: Vec<(u32, u32)> = sample_lengths(&model, SAMPLES, self.cfg.seed)
                    .into_iter()
                    .filter(|&(a, b)| a as u64 + b as u64 <= p.max_ctx_tok as u64)
                    .collect();
                let lam_served = lam * samples.len() as f64 / SAMPLES as f64;
                let analytic: Vec<_> = caps
                    .par_iter()
                    .map(|&cap| {
                        let mut capped = p.profile.clone();
                        capped.max_slots = cap.min(p.max_num_seqs()).max(1);
                        cross_check(
                            &IterationPool {
                                profile: &capped,
                                instances: p.instances,
                                lam_req_s: lam_served,
                                dispatch: p.dispatch,
                                samples: &samples,
                            },
                            self.cfg.seed,
                        )
                    })
                    .collect();
                let unsustainable: Vec<usize> = order
                    .iter()
                    .copied()
                    .filter(|&i| !analytic[i].stable)
                    .take(if self.all_depths { caps.len() } else { 1 })
                    .collect();
                tracing::debug!(
                    "grid-flex: analytic screen of {} depths at {:.3} s",
                    caps.len(),
                    started.elapsed().as_secs_f64()
                );
                (analytic, unsustainable)
            })
        };
        // DES, one sweep item per replication: the baseline (no event), then
        // the depths, shallowest first. A depth whose cap is at least the
        // most requests any instance held (running or waiting) during the
        // baseline's event cannot bind — every admission the baseline made
        // fits under it — so its run is the baseline's, step for step, and
        // is not repeated. The shallowest depth the cross-check finds
        // unsustainable almost surely binds: it runs beside the baseline
        // (with `all_depths`, every such depth does). Binding depths then
        // run two at a time, and once one breaches the SLO the deeper ones
        // are not simulated in that replication (unless `all_depths`).
        let pb = crate::progress::bar(progress, true, reps as u64, "grid-flex replications");
        let t_end = self.event_start_s + self.event_duration_s;
        let rep_ids: Vec<u32> = (0..reps).collect();
        let per_rep: anyhow::Result<Vec<RepMeasures>> = sweep.map(&rep_ids, |_, &r| {
            let level = |i: usize| -> anyhow::Result<RunMeasures> {
                let (o, watch) = self.run_level_watched(Some(caps[i]), r, false)?;
                Ok(RunMeasures::of(
                    &o,
                    &self.cfg,
                    self.event_start_s,
                    t_end,
                    watch,
                ))
            };
            let (base, speculative) = rayon::join(
                || -> anyhow::Result<(Option<u64>, RunMeasures)> {
                    let base = self.run_level(None, r, false)?;
                    let peak = peak_held(&base);
                    Ok((
                        peak,
                        RunMeasures::of(&base, &self.cfg, self.event_start_s, t_end, None),
                    ))
                },
                || -> anyhow::Result<Vec<(usize, RunMeasures)>> {
                    screened()
                        .1
                        .par_iter()
                        .map(|&i| Ok((i, level(i)?)))
                        .collect()
                },
            );
            let ((peak, base_m), speculative) = (base?, speculative?);
            let binds = |i: usize| peak.is_none_or(|p| (caps[i] as u64) < p);
            let mut runs: Vec<Option<RunMeasures>> = vec![None; caps.len()];
            for (i, m) in speculative {
                if binds(i) {
                    runs[i] = Some(m);
                }
            }
            let mut k = 0;
            while k < order.len() {
                let i = order[k];
                if !binds(i) {
                    runs[i] = Some(base_m.clone());
                }
                match &runs[i] {
                    Some(m) => {
                        k += 1;
                        if !self.all_depths && m.breaches(slo) {
                            break;
                        }
                    }
                    None => {
                        let batch: Vec<usize> = order[k..]
                            .iter()
                            .copied()
                            .filter(|&j| binds(j) && runs[j].is_none())
                            .take(2)
                            .collect();
                        let ran: Vec<(usize, RunMeasures)> = batch
                            .par_iter()
                            .map(|&j| Ok((j, level(j)?)))
                            .collect::<anyhow::Result<_>>()?;
                        for (j, m) in ran {
                            runs[j] = Some(m);
                        }
                    }
                }
            }
            if let Some(pb) = &pb {
                pb.inc(1);
            }
            Ok(RepMeasures(base_m, runs))
        });
        if let Some(pb) = &pb {
            pb.finish();
        }
        let per_rep = per_rep?;
        let analytic = &screened().0;
        let base_energy: Vec<f64> = per_rep.iter().map(|m| m.0.energy_j).collect();
        let gpus_per_inst = p.profile.gpus_per_instance as f64;
        let mut levels = Vec::new();
        for (i, (&f, &cap)) in self.depths.iter().zip(&caps).enumerate() {
            let x = analytic[i];
            let analytic_p99 = (x.stable && x.p99_ttft_ms.is_finite()).then_some(x.p99_ttft_ms);
            // The power curve is per instance.
            let pw = p.profile.power.power_w(cap, p.profile.max_slots) / gpus_per_inst.max(1.0);
            let mut level = FlexLevel {
                flex_pct: 100.0 * f,
                n_max: cap,
                power_per_gpu_w: pw,
                fleet_kw: pw * p.gpus() as f64 / 1e3,
                analytic: FlexAnalytic {
                    p99_ttft_ms: analytic_p99,
                    stable: x.stable,
                    disagrees: false,
                },
                des: FlexDes::not_simulated(),
            };
            let Some(runs) = per_rep
                .iter()
                .map(|m| m.1[i].as_ref())
                .collect::<Option<Vec<&RunMeasures>>>()
            else {
                levels.push(level);
                continue;
            };
            let decided: Vec<f64> = runs.iter().filter_map(|o| o.breach_decided_s).collect();
            if !decided.is_empty() {
                let arrivals: u64 = runs.iter().map(|o| o.arrived[0]).sum();
                level.des = FlexDes::breach_decided(
                    (arrivals as f64 / reps as f64).round() as u64,
                    decided.iter().sum::<f64>() / decided.len() as f64,
                );
                levels.push(level);
                continue;
            }
            let mean = |v: Vec<Option<f64>>| -> Option<f64> {
                let v: Option<Vec<f64>> = v.into_iter().collect();
                v.filter(|v| !v.is_empty())
                    .map(|v| v.iter().sum::<f64>() / v.len() as f64)
            };
            // Per window: mean arrivals, and the mean P99 over all arrivals of
            // the replications that had any (infinity dominates).
            let window = |w: usize| -> (u64, Option<f64>) {
                let arrivals: u64 = runs.iter().map(|o| o.arrived[w]).sum();
                let p99 = mean(
                    runs.iter()
                        .filter(|o| o.arrived[w] > 0)
                        .map(|o| o.p99_ttft_ms[w])
                        .collect(),
                );
                ((arrivals as f64 / reps as f64).round() as u64, p99)
            };
            let ((ev_n, ev), (after_n, after)) = (window(0), window(1));
            let rec = mean(runs.iter().map(|o| o.recovery_s).collect());
            let after_window_s = mean(
                runs.iter()
                    .map(|o| {
                        Some(
                            o.after_window_s
                                .map_or(self.after_s, |w| w.min(self.after_s)),
                        )
                    })
                    .collect(),
            );
            let saved_j: f64 = runs
                .iter()
                .enumerate()
                .map(|(r, o)| base_energy[r] - o.energy_j)
                .sum::<f64>()
                / reps as f64;
            let event_kw = runs.iter().map(|o| o.energy_j).sum::<f64>()
                / reps as f64
                / self.event_duration_s.max(1e-9)
                / 1e3;
            let stable = runs.iter().all(|o| o.stable);
            let verdict = window_verdict(stable, [(ev_n, ev), (after_n, after)], slo);
            let slo_met = verdict == "ok";
            // Only a sustained (stable) answer is comparable with the
            // event's P99; an event can outlast a shortfall.
            level.analytic.disagrees = x.stable
                && ev_n > 0
                && ev.is_some()
                && super::screen::p99_disagrees(analytic_p99, ev);
            level.des = FlexDes {
                event_p99_ttft_ms: ev,
                after_p99_ttft_ms: after,
                event_arrivals: ev_n,
                after_arrivals: after_n,
                verdict: verdict.into(),
                not_simulated: None,
                recovery_s: rec,
                after_window_s,
                energy_saved_kwh: Some(saved_j / 3.6e6),
                event_avg_kw: Some(event_kw),
                slo_met,
                breach_decided_at_s: None,
            };
            levels.push(level);
        }
        // Deepest depth such that it and every shallower depth are safe.
        let deepest = |ok: &dyn Fn(&FlexLevel) -> bool| {
            let mut order: Vec<&FlexLevel> = levels.iter().collect();
            order.sort_by(|a, b| a.flex_pct.total_cmp(&b.flex_pct));
            order
                .iter()
                .take_while(|l| ok(l))
                .last()
                .map(|l| l.flex_pct)
        };
        let max_safe_flex_pct = MaxSafe {
            sustained: deepest(&|l: &FlexLevel| {
                l.analytic.stable && l.analytic.p99_ttft_ms.is_some_and(|v| v <= slo)
            }),
            event: deepest(&|l: &FlexLevel| l.des.slo_met),
        };
        Ok(GridFlexReport {
            levels,
            max_safe_flex_pct,
            slo_ttft_ms: slo,
            event_s: [self.event_start_s, self.event_duration_s],
            after_s: self.after_s,
            after_ends_at_recovery: !self.full_after_window,
            instances: p.instances,
            gpus: p.gpus(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    fn study() -> GridFlex {
        let profile = Profile::preset("h100").expect("preset");
        let cfg = SimConfig::new(vec![PoolConfig::new("p", profile, 4, 8192)], 11, 500.0);
        GridFlex {
            cfg,
            workload: WorkloadSpec {
                lam: Some(20.0),
                n_requests: Some(2_000),
                ..WorkloadSpec::default_chat()
            },
            depths: vec![],
            event_start_s: 20.0,
            event_duration_s: 30.0,
            after_s: 20.0,
            full_after_window: false,
            replications: 1,
            all_depths: false,
        }
    }

    #[test]
    fn a_cap_at_the_peak_held_reproduces_the_baseline_and_a_tighter_one_does_not() {
        let g = study();
        let (t0, t1) = (g.event_start_s, g.event_start_s + g.event_duration_s);
        let base = g.run_level(None, 0, false).expect("runs");
        let peak = peak_held(&base).expect("all requests finished");
        let full = g.cfg.pools[0].max_num_seqs() as u64;
        assert!(peak >= 2 && peak < full, "peak {peak} of {full}");
        let m = RunMeasures::of(&base, &g.cfg, t0, t1, None);
        // Exactly the baseline at the peak (the skip grid-flex makes).
        let at_peak = g.run_level(Some(peak as u32), 0, false).expect("runs");
        assert_eq!(RunMeasures::of(&at_peak, &g.cfg, t0, t1, None), m);
        // A cap of one sequence binds: the event's measures change.
        let tight = g.run_level(Some(1), 0, false).expect("runs");
        assert_ne!(RunMeasures::of(&tight, &g.cfg, t0, t1, None), m);
    }

    /// A capped depth stops once its event P99 is certain to breach, and
    /// only then: the run measured to the end (`all_depths`) of a depth that
    /// stopped has its event P99 above the SLO, one that did not stop is
    /// that run, and the event's arrivals counted beforehand are the run's.
    #[test]
    fn a_depth_stops_once_its_breach_is_certain_and_only_then() {
        let mut g = study();
        // Tight enough that a depth within it still serves some requests
        // above it (a rule stopping at the first such request would fail).
        g.cfg.slo.ttft_ms = 100.0;
        let mut whole = g.clone();
        whole.all_depths = true;
        let (t0, t1) = (g.event_start_s, g.event_start_s + g.event_duration_s);
        let slo = g.cfg.slo.ttft_ms;
        let (mut stopped, mut kept) = (0, 0);
        for cap in 1..=8 {
            let (o, watch) = g.run_level_watched(Some(cap), 0, false).expect("runs");
            let (f, none) = whole.run_level_watched(Some(cap), 0, false).expect("runs");
            assert_eq!(none, None);
            let m = RunMeasures::of(&o, &g.cfg, t0, t1, watch);
            let mf = RunMeasures::of(&f, &g.cfg, t0, t1, None);
            assert_eq!(watch.map(|w| w.arrivals), Some(mf.arrived[0]), "cap {cap}");
            match m.breach_decided_s {
                Some(at) => {
                    stopped += 1;
                    assert!(mf.p99_ttft_ms[0].is_none_or(|p| p > slo), "cap {cap}");
                    assert!(at >= t0 && o.arrived < f.arrived, "cap {cap}: at {at} s");
                    assert!(m.breaches(slo) && mf.breaches(slo));
                }
                None => {
                    assert_eq!(m, mf, "cap {cap}");
                    let max_ns = f.windows[0].metrics.ttft.percentile_ns(100.0);
                    kept += max_ns.is_some_and(|x| x / 1e6 > slo) as u32;
                }
            }
        }
        assert!(
            stopped > 0 && kept > 0,
            "{stopped} stopped, {kept} kept with misses"
        );
        // With replications a level's P99 is their mean: no replication stops.
        let mut reps = g.clone();
        reps.replications = 2;
        let (_, watch) = reps.run_level_watched(Some(1), 0, false).expect("runs");
        assert_eq!(watch, None);
    }

    #[test]
    fn arrivals_end_a_margin_after_recovery_as_if_the_workload_ended_there() {
        let mut g = study();
        // Measured to the end (a breaching depth would stop at its breach).
        g.all_depths = true;
        g.after_s = 200.0;
        g.workload.n_requests = Some(5_000);
        let (t0, t1) = (g.event_start_s, g.event_start_s + g.event_duration_s);
        let mut full_g = g.clone();
        full_g.full_after_window = true;
        let full = full_g.run_level(Some(2), 0, true).expect("runs");
        assert_eq!(full.arrivals_ended_s, None);
        let cut = g.run_level(Some(2), 0, true).expect("runs");
        // A binding cap: the queue grew and took time to drain.
        let rec = recovery::recovery_s(&full.queue_trace, t0, t1, RECOVERY_PRE_S)
            .expect("recovers within the window");
        assert!(rec > 0.0, "recovery {rec} s");
        let ended = cut.arrivals_ended_s.expect("arrivals ended at recovery");
        assert!((ended - (t1 + rec + RECOVERY_MARGIN_S)).abs() < 1e-6);
        // The event, the recovery and the energy are the full run's.
        let (mf, mc) = (
            RunMeasures::of(&full, &g.cfg, t0, t1, None),
            RunMeasures::of(&cut, &g.cfg, t0, t1, None),
        );
        assert_eq!(
            (mf.arrived[0], mf.p99_ttft_ms[0], mf.recovery_s, mf.energy_j),
            (mc.arrived[0], mc.p99_ttft_ms[0], mc.recovery_s, mc.energy_j)
        );
        assert!(mc.arrived[1] < mf.arrived[1]);
        let w = mc.after_window_s.expect("the window ended early");
        assert!((w - (rec + RECOVERY_MARGIN_S)).abs() < 1e-6, "window {w} s");
        // Request for request, the run is the one whose workload ends there.
        let kept = full
            .records
            .iter()
            .filter(|r| (r.arrival_ns as f64) < ended * 1e9)
            .count() as u64;
        assert_eq!(cut.arrived, kept);
        let mut short = full_g.clone();
        short.workload.n_requests = Some(kept);
        let truncated = short.run_level(Some(2), 0, true).expect("runs");
        assert_eq!(truncated.records, cut.records);
        // One event more: the arrival found past the end, not offered.
        assert_eq!(truncated.events + 1, cut.events);
    }

    #[test]
    fn the_peak_held_is_the_most_requests_an_instance_held_in_the_event() {
        let g = study();
        let base = g.run_level(None, 0, true).expect("runs");
        let (a, b) = (
            (g.event_start_s * 1e9) as u64,
            ((g.event_start_s + g.event_duration_s) * 1e9) as u64,
        );
        let recs = &base.records;
        assert!(recs.iter().all(|r| r.done_ns != u64::MAX));
        // Brute force from the records. As the window opens (after the
        // steps ending at its first instant): arrived before it, not done.
        let at_open = (0..g.cfg.pools[0].instances)
            .map(|i| {
                recs.iter()
                    .filter(|r| r.instance == i && r.arrival_ns < a && r.done_ns > a)
                    .count() as u64
            })
            .max();
        // At each arrival in the window: its instance's requests that
        // arrived up to it and are not done (a step ending at that instant
        // ends first).
        let at_arrivals = recs
            .iter()
            .filter(|x| x.arrival_ns >= a && x.arrival_ns < b)
            .map(|x| {
                recs.iter()
                    .filter(|y| y.instance == x.instance && y.id <= x.id)
                    .filter(|y| y.done_ns > x.arrival_ns)
                    .count() as u64
            })
            .max();
        let brute = at_open.max(at_arrivals);
        assert!(brute.is_some_and(|p| p >= 2));
        assert_eq!(peak_held(&base), brute);
    }
}
