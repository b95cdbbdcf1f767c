//! The `simulate` job: open the workload, run R replications in parallel
//! (each with its own seed stream, derived before any parallel work), and
//! build the report (means and 95% CIs of headline metrics for R > 1).

use std::fmt::Write as _;

use anyhow::Context;
use rayon::prelude::*;
use serde_json::Value;

use crate::engine::{self, Arrivals, ClosedLoop, SimConfig};
use crate::error::InputError;
use crate::metrics::report::{Replications, SimReport};
use crate::metrics::stats::mean_ci95;
use crate::progress::Reporter;
use crate::report_format::HumanReport;
use crate::rng::Streams;
use crate::workload::merge::MergedSource;
use crate::workload::replay::StreamCache;
use crate::workload::spec::{Workload, WorkloadSpec};
use crate::workload::trace;
use crate::workload::{Request, RequestSource, SkipCounts};

/// A fully resolved simulation job.
#[derive(Debug, Clone)]
pub struct SimulateJob {
    /// Fleet, router, engine and statistics settings.
    pub cfg: SimConfig,
    /// The workload (its `lam` and `n_requests` are the totals when `per_pool` is set).
    pub workload: WorkloadSpec,
    /// Per-pool workload streams (pool index, spec), merged in time order;
    /// each request carries its pool's id as its model. Empty: one shared stream.
    pub per_pool: Vec<(usize, WorkloadSpec)>,
    /// Independent replications (≥ 1).
    pub replications: u32,
    /// Report wall-clock timing (off for byte-identical output).
    pub timing: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Streams shared with other jobs on the same workload and seed (a
    /// planner's evaluations): drawn once, replayed after (`None`: each
    /// replication draws its own).
    pub streams: Option<std::sync::Arc<StreamCache>>,
}

/// A trace source with a known length (counted in a pre-pass) so that the
/// warm-up fraction and saturation checkpoints can be placed.
struct Counted {
    inner: Box<dyn RequestSource>,
    n: u64,
}

impl RequestSource for Counted {
    fn next_request(&mut self) -> Result<Option<Request>, InputError> {
        self.inner.next_request()
    }
    fn len_hint(&self) -> Option<u64> {
        Some(self.n)
    }
    fn skipped(&self) -> SkipCounts {
        self.inner.skipped()
    }
}

/// Open the workload of replication `replication` as engine arrivals.
pub fn open_arrivals(
    spec: &WorkloadSpec,
    seed: u64,
    replication: u32,
) -> Result<Arrivals, InputError> {
    let streams = Streams::new(seed, replication);
    Ok(match spec.open(&streams)? {
        Workload::Open(src) => match (&spec.trace, src.len_hint()) {
            (Some(t), None) => Arrivals::Open(Box::new(Counted {
                n: trace::count_requests(&t.path, &t.options())?,
                inner: src,
            })),
            _ => Arrivals::Open(src),
        },
        Workload::Closed(c) => {
            let (lengths, cats) = (c.lengths, c.categories);
            Arrivals::Closed(ClosedLoop {
                users: c.users,
                think_time_mean_s: c.think_time_mean_s,
                n_requests: c.n_requests,
                sampler: Box::new(move |rng| {
                    let (i, o) = lengths.sample(rng);
                    (i, o, cats.sample(rng))
                }),
            })
        }
    })
}

/// Open the arrivals of one replication of a job: its workload, or its
/// per-pool workloads merged (each on an independent stream family).
pub fn open_job_arrivals(job: &SimulateJob, replication: u32) -> Result<Arrivals, InputError> {
    if job.per_pool.is_empty() {
        if let Some(cache) = &job.streams
            && let Some(src) = cache.open(&job.workload, job.cfg.seed, replication)?
        {
            return Ok(Arrivals::Open(src));
        }
        return open_arrivals(&job.workload, job.cfg.seed, replication);
    }
    let streams = Streams::new(job.cfg.seed, replication);
    let mut sources: Vec<Box<dyn RequestSource>> = Vec::new();
    for (pool, spec) in &job.per_pool {
        let sub = streams.derived(crate::rng::Purpose::PoolWorkload(*pool as u32));
        let Workload::Open(src) = spec.open(&sub)? else {
            return Err(InputError::field(
                "workloads",
                "per-pool workloads must be open (Poisson) streams",
            ));
        };
        sources.push(Box::new(Labelled {
            inner: src,
            model: job.cfg.pools[*pool].id.clone(),
        }));
    }
    Ok(Arrivals::Open(Box::new(MergedSource::new(
        sources,
        Some(job.workload.n_requests()),
    ))))
}

/// Tags every request of a stream with a model id.
struct Labelled {
    inner: Box<dyn RequestSource>,
    model: String,
}

impl RequestSource for Labelled {
    fn next_request(&mut self) -> Result<Option<Request>, InputError> {
        Ok(self.inner.next_request()?.map(|mut r| {
            r.extra.get_or_insert_with(Default::default).model = Some(self.model.clone());
            r
        }))
    }
    fn len_hint(&self) -> Option<u64> {
        self.inner.len_hint()
    }
    fn skipped(&self) -> SkipCounts {
        self.inner.skipped()
    }
}

/// Run the job and build its report.
pub fn run_job(job: &SimulateJob, reporter: &dyn Reporter) -> anyhow::Result<SimReport> {
    aggregate(run_replications(job, reporter)?)
}

/// The runtime failure (exit 1) of a run that measured nothing (`no-data`
/// or `all-rejected`), to return after its report has been printed.
pub fn fail_if_nothing_measured(report: &SimReport) -> anyhow::Result<()> {
    if report.measured_nothing() {
        anyhow::bail!(
            "verdict {}: {}",
            report.verdict,
            report
                .verdict_reason
                .as_deref()
                .unwrap_or("nothing was measured")
        );
    }
    Ok(())
}

/// Most replications of one job: each keeps only its report (a few kB,
/// never its per-request records or histograms), so this bounds memory.
pub const MAX_REPLICATIONS: u32 = 1000;

/// Run every replication of the job and report each one separately. Each
/// replication's raw outcome (histograms, queue trace) becomes its report as
/// soon as it finishes, so memory is O(one outcome per worker thread) plus a
/// few kB per replication.
pub fn run_replications(
    job: &SimulateJob,
    reporter: &dyn Reporter,
) -> anyhow::Result<Vec<SimReport>> {
    let reps = job.replications.max(1);
    anyhow::ensure!(
        reps <= MAX_REPLICATIONS,
        InputError::field(
            "replications",
            format!("expected at most {MAX_REPLICATIONS}, got {reps}")
        )
    );
    let n_hint = job
        .workload
        .trace
        .as_ref()
        .and_then(|t| t.max_requests)
        .unwrap_or(job.workload.n_requests());
    let pb = crate::progress::bar(
        reporter,
        job.progress,
        n_hint.saturating_mul(reps as u64),
        "simulating",
    );
    // Open the first replication's workload before any work (its errors are
    // every replication's); the others are opened when they start.
    let first = std::sync::Mutex::new(Some(open_job_arrivals(job, 0)?));
    let desc = describe_job(job);
    let reports: Vec<SimReport> = (0..reps)
        .into_par_iter()
        .map(|r| -> anyhow::Result<SimReport> {
            let taken = if r == 0 {
                first
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .take()
            } else {
                None
            };
            let arrivals = match taken {
                Some(a) => a,
                None => open_job_arrivals(job, r)?,
            };
            let o = engine::run(&job.cfg, arrivals, r, pb.as_deref())?;
            if let engine::Verdict::Unstable {
                detected_at_s,
                reason,
            } = &o.verdict
                && job.progress
            {
                tracing::warn!(
                    "replication {r}: unstable at t = {detected_at_s:.1} s ({reason}); {}",
                    if job.cfg.run_to_completion {
                        "simulated to the end"
                    } else {
                        "the run stopped early"
                    }
                );
            }
            tracing::info!(
                "replication {r}: {} requests, {} events in {:.3} s",
                o.arrived,
                o.events,
                o.wall_s
            );
            Ok(SimReport::from_outcome(&job.cfg, &o, &desc, job.timing))
        })
        .collect::<anyhow::Result<_>>()?;
    if let Some(pb) = &pb {
        pb.finish();
    }
    Ok(reports)
}

/// Run replication `r` of a job alone (no progress), as
/// [`run_replications`] runs it: the same streams, the same report.
pub fn run_one_replication(job: &SimulateJob, r: u32) -> anyhow::Result<SimReport> {
    let o = engine::run(&job.cfg, open_job_arrivals(job, r)?, r, None)?;
    tracing::debug!(
        "replication {r} alone of {:?} instances: {} requests, {} events in {:.3} s",
        job.cfg
            .pools
            .iter()
            .map(|p| p.instances)
            .collect::<Vec<_>>(),
        o.arrived,
        o.events,
        o.wall_s
    );
    Ok(SimReport::from_outcome(
        &job.cfg,
        &o,
        &describe_job(job),
        job.timing,
    ))
}

/// The workload line of a job's report.
fn describe_job(job: &SimulateJob) -> String {
    if job.per_pool.is_empty() {
        return job.workload.describe();
    }
    let parts: Vec<String> = job
        .per_pool
        .iter()
        .map(|(i, w)| {
            let cdf = w
                .cdf
                .as_ref()
                .map(|c| c.display().to_string())
                .unwrap_or_default();
            format!(
                "{}: {} at {:.1} req/s",
                job.cfg.pools[*i].id,
                cdf,
                w.lam.unwrap_or(0.0)
            )
        })
        .collect();
    format!(
        "{} requests from per-pool streams [{}]",
        job.workload.n_requests(),
        parts.join("; ")
    )
}

/// JSON paths of the headline metrics averaged over replications.
const HEADLINE: &[&str] = &[
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "queue_wait_ms",
    "p_wait",
    "slo.attainment",
    "goodput_req_per_s",
    "throughput",
    "utilisation",
    "mean_batch",
    "kv_occupancy",
    "preemptions",
    "energy",
];

fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Number(n) => out.push((prefix.to_string(), n.as_f64().unwrap_or(f64::NAN))),
        Value::Object(m) => {
            for (k, x) in m {
                leaves(&format!("{prefix}.{k}"), x, out);
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.').try_fold(v, |v, k| match v {
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => v.get_mut(k),
    })
}

/// One report from the replications' reports: a single report as it is;
/// otherwise the first report with its headline metrics (fleet, pools,
/// windows, KV transfers) replaced by their means over all replications and
/// 95% CI half-widths attached (other fields: replication 0).
pub fn aggregate(reports: Vec<SimReport>) -> anyhow::Result<SimReport> {
    if reports.len() == 1 {
        return reports.into_iter().next().context("one report");
    }
    let values: Vec<Value> = reports
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    let mut base = values[0].clone();
    let mut ci95 = std::collections::BTreeMap::new();
    let mut prefixes: Vec<String> = HEADLINE.iter().map(|s| s.to_string()).collect();
    for i in 0..reports[0].pools.len() {
        prefixes.extend(HEADLINE.iter().map(|h| format!("pools.{i}.{h}")));
    }
    // Request counts (fleet and windows) stay replication 0's: means of
    // counts rounded one by one would break arrived = completed + rejected + in flight.
    for i in 0..reports[0].windows.len() {
        prefixes.extend(
            ["ttft_ms", "tpot_ms", "slo_attainment", "energy_j"]
                .iter()
                .map(|h| format!("windows.{i}.{h}")),
        );
    }
    prefixes.extend(
        [
            "requests.restarted_after_failure",
            "kv_transfer.transfer_ms",
            "kv_transfer.prefill_phase_ms",
            "kv_transfer.link_busy_fraction",
        ]
        .map(String::from),
    );
    for prefix in prefixes {
        let Some(node) = get_path(&values[0], &prefix) else {
            continue;
        };
        let mut paths = Vec::new();
        leaves(&prefix, node, &mut paths);
        for (path, _) in paths {
            let xs: Vec<f64> = values
                .iter()
                .filter_map(|v| get_path(v, &path).and_then(Value::as_f64))
                .collect();
            if xs.len() != values.len() {
                continue;
            }
            let (mean, half) = mean_ci95(&xs);
            if let Some(slot) = get_mut(&mut base, &path) {
                // Counts (integers in the report) stay integers.
                *slot = if slot.is_u64() {
                    serde_json::json!(mean.round() as u64)
                } else {
                    serde_json::json!(mean)
                };
            }
            ci95.insert(path, half);
        }
    }
    let unstable = values.iter().filter(|v| v["verdict"] == "unstable").count() as u32;
    let mut report: SimReport =
        serde_json::from_value(base).context("re-reading the averaged report")?;
    report.replications = Some(Replications {
        count: values.len() as u32,
        unstable,
        ci95,
    });
    if unstable > 0 {
        report.verdict = "unstable".into();
        report.verdict_reason = None;
    } else if let Some(r) = reports.iter().find(|r| r.verdict != "stable") {
        // A replication that measured nothing makes the whole run say so.
        report.verdict = r.verdict.clone();
        report.verdict_reason = r.verdict_reason.clone();
    }
    Ok(report)
}

fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| match v {
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => v.get(k),
    })
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "—".into(),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.2}%", 100.0 * x))
        .unwrap_or_else(|| "—".into())
}

impl HumanReport for SimReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Workload: {}", self.workload);
        let _ = writeln!(
            s,
            "Fleet: {} instances, {} GPUs, ${:.2}/hr (${:.0}K/yr)   Engine: {} ({})",
            self.instances,
            self.gpus,
            self.fleet.cost.per_hr_usd,
            self.fleet.cost.per_year_usd / 1e3,
            self.engine.name,
            self.engine.service_model
        );
        let r = &self.requests;
        let _ = writeln!(
            s,
            "Requests: {} arrived, {} completed, {} rejected, {} in flight, {} measured",
            r.arrived, r.completed, r.rejected, r.in_flight, r.measured
        );
        for (why, n) in &r.rejected_by_reason {
            let _ = writeln!(s, "  rejected {why}: {n}");
        }
        let k = &self.skipped_rows;
        if k.bad_rows > 0 || k.failed_requests > 0 {
            let _ = writeln!(
                s,
                "Trace rows skipped: {} malformed (--skip-bad-rows), {} failed requests (not replayed)",
                k.bad_rows, k.failed_requests
            );
        }
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "pool",
            "gpu",
            "inst",
            "max ctx",
            "P50 TTFT ms",
            "P99 TTFT ms",
            "P99 TPOT ms",
            "P99 E2E ms",
            "util",
            "batch",
            "KV",
            "SLO",
            "preempt",
        ]);
        let row = |name: &str,
                   gpu: &str,
                   inst: String,
                   ctx: String,
                   m: &crate::metrics::report::MetricBlock| {
            vec![
                name.to_string(),
                gpu.to_string(),
                inst,
                ctx,
                ms(m.ttft_ms.p50),
                ms(m.ttft_ms.p99),
                ms(m.tpot_ms.p99),
                ms(m.e2e_ms.p99),
                format!("{:.1}%", 100.0 * m.utilisation),
                format!("{:.1}", m.mean_batch),
                format!("{:.1}%", 100.0 * m.kv_occupancy),
                pct(m.slo.attainment),
                m.preemptions.to_string(),
            ]
        };
        for p in &self.pools {
            t.add_row(row(
                &p.id,
                &p.gpu,
                p.instances.to_string(),
                p.max_ctx.to_string(),
                &p.metrics,
            ));
        }
        if self.pools.len() > 1 {
            t.add_row(row(
                "fleet",
                "",
                self.instances.to_string(),
                String::new(),
                &self.fleet,
            ));
        }
        let _ = writeln!(s, "{t}");
        let f = &self.fleet;
        let span_s = self.window_s[1] - self.window_s[0];
        if span_s * 1e9 < crate::metrics::report::MIN_RATE_WINDOW_NS {
            let _ = writeln!(
                s,
                "Rates: none (the measurement window spans {span_s:.6} s: too short for a rate; rates are reported as 0)"
            );
        }
        let _ = writeln!(
            s,
            "Throughput {:.1} req/s, {:.0} out tok/s; goodput {:.1} req/s; SLO TTFT ≤ {} ms{} met by {}",
            f.throughput.req_per_s,
            f.throughput.output_tok_per_s,
            f.goodput_req_per_s,
            f.slo.ttft_ms,
            f.slo
                .tpot_ms
                .map(|t| format!(" and TPOT ≤ {t} ms"))
                .unwrap_or_default(),
            pct(f.slo.attainment)
        );
        if self.kv_transfer.is_some() {
            let _ = writeln!(
                s,
                "(Latencies of a disaggregated pair are reported at its prefill pool, where requests arrive.)"
            );
        }
        let _ = writeln!(
            s,
            "Power {:.1} kW avg, {} out tok/J, ${} per M out tok",
            f.energy.avg_power_w / 1e3,
            f.energy
                .output_tok_per_j
                .map(|x| format!("{x:.2}"))
                .unwrap_or_else(|| "—".into()),
            f.cost
                .per_million_output_tok_usd
                .map(|x| format!("{x:.3}"))
                .unwrap_or_else(|| "—".into())
        );
        if r.restarted_after_failure > 0 {
            let _ = writeln!(
                s,
                "Requests restarted after an instance failure: {}",
                r.restarted_after_failure
            );
        }
        if let Some(k) = &self.kv_transfer {
            let _ = writeln!(
                s,
                "KV transfers over `{}`: {} ({:.1} GB); transfer mean {} ms, P99 {} ms; prefill phase P99 {} ms; {} link(s) busy {:.1}% of the time",
                k.link,
                k.transfers,
                k.gb,
                ms(k.transfer_ms.mean),
                ms(k.transfer_ms.p99),
                ms(k.prefill_phase_ms.p99),
                k.links,
                100.0 * k.link_busy_fraction
            );
        }
        if !self.windows.is_empty() {
            let mut w = comfy_table::Table::new();
            w.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
            w.set_header(vec![
                "window",
                "from s",
                "to s",
                "arrived",
                "completed",
                "unfinished",
                "P50 TTFT ms",
                "P99 TTFT ms",
                "P99 TPOT ms",
                "SLO",
                "energy kWh",
            ]);
            for x in &self.windows {
                w.add_row(vec![
                    x.name.clone(),
                    format!("{:.0}", x.start_s),
                    format!("{:.0}", x.end_s),
                    x.requests.measured.to_string(),
                    x.requests.completed.to_string(),
                    x.requests.in_flight.to_string(),
                    ms(x.ttft_ms.p50),
                    ms(x.ttft_ms.p99),
                    ms(x.tpot_ms.p99),
                    if x.requests.measured == 0 {
                        "no arrivals".into()
                    } else {
                        pct(x.slo_attainment)
                    },
                    format!("{:.2}", x.energy_j / 3.6e6),
                ]);
            }
            let _ = writeln!(s, "Windows (requests by arrival time):\n{w}");
            for x in &self.windows {
                if let Some(n) = &x.note {
                    let _ = writeln!(s, "  window `{}`: {n}", x.name);
                }
            }
        }
        match &self.unstable {
            Some(u) => {
                let _ = writeln!(
                    s,
                    "Verdict: UNSTABLE at t = {:.1} s ({})",
                    u.detected_at_s, u.reason
                );
            }
            None => match &self.verdict_reason {
                Some(why) => {
                    let _ = writeln!(s, "Verdict: {} — {why}", self.verdict.to_uppercase());
                }
                None => {
                    let _ = writeln!(s, "Verdict: stable");
                }
            },
        }
        if let Some(rep) = &self.replications {
            let h = rep.ci95.get("ttft_ms.p99").copied().flatten();
            let _ = writeln!(
                s,
                "Replications: {} (means shown; P99 TTFT ± {} ms at 95%)",
                rep.count,
                h.map(|x| format!("{x:.2}")).unwrap_or_else(|| "—".into())
            );
        }
        if let (Some(w), Some(rps)) = (self.engine.wall_s, self.engine.sim_requests_per_s) {
            let _ = writeln!(
                s,
                "Simulated in {w:.2} s ({:.2} M requests/s, {} events)",
                rps / 1e6,
                self.engine.events
            );
        }
        s
    }
}
