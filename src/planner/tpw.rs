//! Tokens per joule: SLO-sized fleets measured in the DES (energy integrated
//! over each instance's batch timeline, idle power when idle), an analytic
//! estimate beside it, and a utilisation sweep.

use serde::Serialize;

use super::plan::FleetPlan;
use super::screen::Screen;
use super::shard::{ShardItem, Sweep, f64_from, f64_to, field, opt_f64_from, opt_f64_to, plain};
use super::sizing::{SizingSettings, size_fleet_screened};
use super::threshold::{Sustained, max_sustained_lam};
use crate::analytic::calibration::{PoolCalibration, sample_lengths};
use crate::analytic::estimates::birth_death_mean_in_instance;
use crate::metrics::report::SimReport;
use crate::simulate::run_job;
use crate::workload::spec::WorkloadSpec;

/// How trustworthy a preset's power curve is (the reference tool's grading).
pub fn power_curve_quality(profile_name: &str) -> &'static str {
    match profile_name {
        "h100" => "measured (ML.ENERGY v3.0 fit)",
        "a100" => "fitted, fair",
        "a10g" => "projected (no published batch-vs-power data)",
        _ => "projected (from the profile's idle and nominal power)",
    }
}

/// One measured fleet.
#[derive(Debug, Clone, Serialize)]
pub struct TpwFleet {
    /// Label (`h100`, or `a10g+h100 @4096`).
    pub fleet: String,
    /// Instances per pool.
    pub counts: Vec<u32>,
    /// GPUs.
    pub gpus: u64,
    /// Arrival rate, req/s.
    pub lam: f64,
    /// λ as a fraction of the largest λ this fleet sustains within the SLO.
    pub rho: Option<f64>,
    /// Output tokens per joule, from the DES.
    pub output_tok_per_j: Option<f64>,
    /// Output tokens per joule, analytic (birth–death mean batch → power).
    pub output_tok_per_j_analytic: Option<f64>,
    /// Mean power per GPU, W (DES).
    pub power_per_gpu_w: f64,
    /// $ per million output tokens.
    pub cost_per_million_output_tok_usd: Option<f64>,
    /// Fleet P99 TTFT over all arrivals (rejected and unfinished as
    /// infinite), ms; null when infinite.
    pub p99_ttft_ms: Option<f64>,
    /// Whether this measurement is stable and its P99 over all arrivals meets the SLO.
    pub slo_met: bool,
    /// Why the SLO is not met (from sizing, e.g. the share of traffic rejected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Quality of each pool's power curve.
    pub power_curve: Vec<String>,
}

impl ShardItem for TpwFleet {
    fn to_shard(&self) -> serde_json::Value {
        serde_json::json!({
            "fleet": self.fleet,
            "counts": self.counts,
            "gpus": self.gpus,
            "lam": f64_to(self.lam),
            "rho": opt_f64_to(self.rho),
            "output_tok_per_j": opt_f64_to(self.output_tok_per_j),
            "output_tok_per_j_analytic": opt_f64_to(self.output_tok_per_j_analytic),
            "power_per_gpu_w": f64_to(self.power_per_gpu_w),
            "cost_per_million_output_tok_usd": opt_f64_to(self.cost_per_million_output_tok_usd),
            "p99_ttft_ms": opt_f64_to(self.p99_ttft_ms),
            "slo_met": self.slo_met,
            "reason": self.reason,
            "power_curve": self.power_curve,
        })
    }
    fn from_shard(v: &serde_json::Value) -> Result<Self, String> {
        let f = |name: &str| field(v, name);
        Ok(TpwFleet {
            fleet: plain(v, "fleet")?,
            counts: plain(v, "counts")?,
            gpus: plain(v, "gpus")?,
            lam: f64_from(f("lam")?)?,
            rho: opt_f64_from(f("rho")?)?,
            output_tok_per_j: opt_f64_from(f("output_tok_per_j")?)?,
            output_tok_per_j_analytic: opt_f64_from(f("output_tok_per_j_analytic")?)?,
            power_per_gpu_w: f64_from(f("power_per_gpu_w")?)?,
            cost_per_million_output_tok_usd: opt_f64_from(f("cost_per_million_output_tok_usd")?)?,
            p99_ttft_ms: opt_f64_from(f("p99_ttft_ms")?)?,
            slo_met: plain(v, "slo_met")?,
            reason: plain(v, "reason")?,
            power_curve: plain(v, "power_curve")?,
        })
    }
}

/// One plan's sweep item: its SLO-sized fleet and its utilisation sweep.
impl ShardItem for (TpwFleet, Vec<TpwFleet>) {
    fn to_shard(&self) -> serde_json::Value {
        serde_json::json!({
            "fleet": self.0.to_shard(),
            "sweep": self.1.iter().map(ShardItem::to_shard).collect::<Vec<_>>(),
        })
    }
    fn from_shard(v: &serde_json::Value) -> Result<Self, String> {
        let sweep = field(v, "sweep")?
            .as_array()
            .ok_or("field `sweep`: expected a list")?
            .iter()
            .map(TpwFleet::from_shard)
            .collect::<Result<_, _>>()?;
        Ok((TpwFleet::from_shard(field(v, "fleet")?)?, sweep))
    }
}

/// The study.
#[derive(Debug, Clone, Serialize)]
pub struct TpwReport {
    /// SLO-sized fleets.
    pub fleets: Vec<TpwFleet>,
    /// The same fleets at fractions of their capacity.
    pub rho_sweep: Vec<TpwFleet>,
    /// SLO, ms.
    pub slo_ttft_ms: f64,
}

fn label(plan: &FleetPlan) -> String {
    match plan.b_short {
        None => plan.long.name.clone(),
        Some(b) => format!("{}+{} @{b}", plan.short.name, plan.long.name),
    }
}

fn measure(
    plan: &FleetPlan,
    counts: &[u32],
    w: &WorkloadSpec,
    s: &SizingSettings,
    lam: f64,
) -> anyhow::Result<SimReport> {
    run_job(
        &super::sizing::job(
            plan,
            counts,
            &WorkloadSpec {
                lam: Some(lam),
                ..w.clone()
            },
            s,
            1,
        ),
        crate::progress::SILENT,
    )
}

/// Analytic tokens per joule: per pool, the birth–death mean number of
/// sequences in an instance gives its mean batch and so its power.
fn analytic_tpj(
    plan: &FleetPlan,
    counts: &[u32],
    w: &WorkloadSpec,
    lam: f64,
    seed: u64,
) -> Option<f64> {
    let model = w.length_model().ok()??;
    let samples = sample_lengths(&model, 50_000, seed);
    let pools = plan.pools(counts);
    let (mut tok_s, mut watts) = (0.0, 0.0);
    let mut lo = 0u64;
    for p in &pools {
        let hi = p.max_ctx_tok as u64;
        let mine: Vec<(u32, u32)> = samples
            .iter()
            .copied()
            .filter(|&(a, b)| (a as u64 + b as u64) > lo && (a as u64 + b as u64) <= hi)
            .collect();
        lo = hi;
        let lam_p = lam * mine.len() as f64 / samples.len() as f64;
        if mine.is_empty() {
            watts += p.instances as f64 * p.profile.power.p_idle_w;
            continue;
        }
        let cal =
            PoolCalibration::from_samples(&p.profile, p.max_ctx_tok, p.instances, lam_p, &mine);
        let n = birth_death_mean_in_instance(&cal, &p.profile)?;
        let b = n.min(cal.max_num_seqs as f64);
        // Power at a fractional batch: interpolate between the neighbouring integers.
        let (b0, b1) = (b.floor() as u32, b.ceil() as u32);
        let pw = |x: u32| p.profile.power.power_w(x, p.profile.max_slots);
        let pb = pw(b0) + (b - b0 as f64) * (pw(b1) - pw(b0));
        watts += p.instances as f64 * pb;
        tok_s += lam_p * cal.mean_osl_tok;
    }
    (watts > 0.0).then(|| tok_s / watts)
}

fn row(
    plan: &FleetPlan,
    counts: &[u32],
    r: &SimReport,
    lam: f64,
    rho: Option<f64>,
    w: &WorkloadSpec,
    seed: u64,
) -> TpwFleet {
    let gpus = plan.gpus(counts);
    TpwFleet {
        fleet: label(plan),
        counts: counts.to_vec(),
        gpus,
        lam,
        rho,
        output_tok_per_j: r.fleet.energy.output_tok_per_j,
        output_tok_per_j_analytic: analytic_tpj(plan, counts, w, lam, seed),
        power_per_gpu_w: r.fleet.energy.avg_power_w / gpus.max(1) as f64,
        cost_per_million_output_tok_usd: r.fleet.cost.per_million_output_tok_usd,
        p99_ttft_ms: r.fleet.slo.p99_ttft_over_arrivals_ms(),
        slo_met: r.verdict == "stable"
            && r.fleet
                .slo
                .p99_ttft_over_arrivals_ms()
                .is_some_and(|p| p <= r.fleet.slo.ttft_ms),
        reason: super::sizing::rejection_bound(r, r.fleet.slo.ttft_ms),
        power_curve: plan
            .pools(counts)
            .iter()
            .map(|p| {
                format!(
                    "{}: {}",
                    p.profile.name,
                    power_curve_quality(&p.profile.name)
                )
            })
            .collect(),
    }
}

/// Size each plan for `lam` with the DES, measure tokens per joule, and
/// optionally sweep utilisation (fractions of each fleet's capacity).
pub fn tokens_per_watt(
    plans: &[FleetPlan],
    w: &WorkloadSpec,
    s: &SizingSettings,
    lam: f64,
    rhos: &[f64],
    sweep: &Sweep,
) -> anyhow::Result<TpwReport> {
    let wl = WorkloadSpec {
        lam: Some(lam),
        ..w.clone()
    };
    let results: Vec<(TpwFleet, Vec<TpwFleet>)> =
        sweep.map(plans, |_, plan| -> anyhow::Result<_> {
            let screen = Screen::new(&wl, s.seed)?;
            let sized = size_fleet_screened(plan, &wl, s, &screen)?;
            let r = measure(plan, &sized.counts, w, s, lam)?;
            let cap = if rhos.is_empty() {
                None
            } else {
                let des: Vec<Option<f64>> = sized.pools.iter().map(|p| p.p99_ttft_ms).collect();
                Some(max_sustained_lam(
                    plan,
                    &sized.counts,
                    w,
                    s,
                    &screen,
                    Sustained {
                        lam,
                        p99_ttft_ms: Some(&des),
                        hardest_replication: sized.hardest_replication,
                    },
                    0.02,
                )?)
            };
            let mut fleet = row(
                plan,
                &sized.counts,
                &r,
                lam,
                cap.map(|c| lam / c),
                w,
                s.seed,
            );
            // The sizing search's verdict (every replication) is the fleet's.
            fleet.slo_met &= sized.slo_met;
            fleet.reason = sized.reason.clone().or(fleet.reason);
            let rho_rows = match cap {
                None => Vec::new(),
                Some(c) => rhos
                    .iter()
                    .map(|&rho| {
                        Ok(row(
                            plan,
                            &sized.counts,
                            &measure(plan, &sized.counts, w, s, rho * c)?,
                            rho * c,
                            Some(rho),
                            w,
                            s.seed,
                        ))
                    })
                    .collect::<anyhow::Result<_>>()?,
            };
            Ok((fleet, rho_rows))
        })?;
    let (fleets, sweeps): (Vec<_>, Vec<_>) = results.into_iter().unzip();
    Ok(TpwReport {
        fleets,
        rho_sweep: sweeps.into_iter().flatten().collect(),
        slo_ttft_ms: s.slo_ttft_ms,
    })
}
