//! Rack-scale sizing (`kvfleet cluster`, DESIGN §14): for U users each
//! holding T cached tokens and demanding r tok/s on racks of a preset, how
//! many racks, servers and GPUs, which TP × PP × EP (× DP-attention) plan
//! and batch, where the KV lives (HBM, host DRAM, NVMe, storage servers),
//! and how loaded compute, network, storage and the KV link are — checked
//! by a DES of the users as sessions.
//!
//! - [`inventory`] — rack presets with their sources;
//! - [`model`] — `--model` (catalog names and the seed's aliases 1/2/3);
//! - [`plan`] — plan enumeration and the step model's bounds per plan;
//! - [`sizing`] — fewest racks, KV tiers, shortfalls;
//! - [`sessions`] — session concurrency from an arrival process;
//! - [`des`] — the DES check of the sized plan;
//! - [`report`] — the report (the `--json` document).

pub mod des;
pub mod inventory;
pub mod model;
pub mod plan;
pub mod report;
pub mod sessions;
pub mod sizing;

use des::{AvgP95, DesSpec, Utilisation};
use plan::{active_weight_bytes, instance};
use report::*;
use sessions::Concurrency;
use sizing::{SizingSpec, size};

use crate::error::InputError;

/// Most users one simulated instance of the DES check may carry (bounded memory and time).
pub const MAX_DES_USERS_PER_INSTANCE: f64 = 20_000.0;

/// A validated `cluster` request.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// What to size (users already include the sessions' p95 when given).
    pub sizing: SizingSpec,
    /// Weight bits.
    pub quant_bits: u32,
    /// `--active-users` as given.
    pub active_users: u64,
    /// Session arrivals: (per minute, mean minutes, simulated minutes, warm-up minutes).
    pub arrival: Option<(f64, f64, f64, f64)>,
    /// The DES check (`None`: skipped).
    pub des: Option<DesSpec>,
    /// Compute the sensitivity sweeps.
    pub sensitivity: bool,
    /// Seed.
    pub seed: u64,
}

/// Run the sizing, the DES check and the sensitivity sweeps.
pub fn run(spec: &ClusterSpec) -> Result<ClusterReport, InputError> {
    let mut sz = spec.sizing.clone();
    let arrival: Option<Concurrency> = spec.arrival.map(|(rate, len, sim, warm)| {
        sessions::simulate_concurrency(rate, len, sim, warm, spec.seed)
    });
    if let Some(c) = &arrival {
        sz.users = sz.users.max(c.p95);
    }
    let s = size(&sz).ok_or_else(|| {
        InputError::field(
            "--model",
            format!(
                "{} does not fit any plan on {} (weights at {} bits plus one sequence of {} tokens exceed the HBM of up to {} GPUs)",
                sz.model.name,
                sz.preset.display,
                spec.quant_bits,
                sz.context_tok(),
                (sz.max_racks.max(sz.fixed_racks.unwrap_or(0)) * sz.preset.gpus_per_rack()).min(1024)
            ),
        )
    })?;
    let p = &sz.preset;
    let ev = &s.chosen.eval;
    let inst = instance(&sz.plan_inputs(), &ev.plan);
    let g = ev.plan.gpus() as u64;
    let running = s.instances_running;
    let active = running * g;
    let mut notes = Vec::new();
    // Users one simulated instance carries (closed population or sessions).
    let per_instance = match spec.arrival {
        Some((rate, len, _, _)) => rate * len / running.max(1) as f64,
        None => sz.users as f64 / running.max(1) as f64,
    };
    let des = match spec.des.as_ref() {
        Some(_) if per_instance > MAX_DES_USERS_PER_INSTANCE => {
            notes.push(format!(
                "DES check skipped: {per_instance:.0} users per instance exceeds {MAX_DES_USERS_PER_INSTANCE} (raise --hbm-residency)"
            ));
            None
        }
        Some(d) => {
            let mut d = *d;
            if let Some((rate, len, _, _)) = spec.arrival {
                d.sessions = Some((rate / 60.0, len * 60.0));
            }
            Some(des::run(&sz, ev, &s.kv, running, &d))
        }
        None => None,
    };
    let resident = sz.slots_needed().min(running * ev.plan.batch as u64);
    let occupancy = resident as f64 / (running.max(1) * ev.plan.batch as u64) as f64;
    let steady = |x: f64| AvgP95 { avg: x, p95: x };
    let peak = inst.hw.peak_flops(inst.weight_dtype);
    let utilisation = match &des {
        Some(d) => d.utilisation,
        None => Utilisation {
            compute: steady(ev.step_flops / (ev.step_s * peak * g as f64) * occupancy),
            network: steady(ev.comm_s / ev.step_s),
            storage: steady(0.0),
            kv_link: steady(0.0),
        },
    };
    let supported = sizing::users_supported(&sz, &ev.plan, s.racks);
    let capacity = running as f64 * ev.instance_tok_s;
    let candidates = s
        .candidates
        .iter()
        .take(200)
        .map(|c| CandidateRow {
            plan: c.eval.plan,
            gpus_per_instance: c.eval.plan.gpus(),
            racks_needed: c.racks_needed,
            gpus_active: c.gpus_active,
            tok_s_per_user: c.eval.tok_s_per_user,
            instance_tok_s: c.eval.instance_tok_s,
            limit: c.eval.limit.into(),
            memory_fraction: (c.eval.weights_bytes + c.eval.kv_bytes + c.eval.overhead_bytes)
                / c.eval.limit_bytes,
            feasible: c.meets_rate && c.tiers_fit,
        })
        .collect();
    let sensitivity = if spec.sensitivity {
        sensitivity(&sz)
    } else {
        Vec::new()
    };
    let network = if ev.scaleout_crossings > 0 {
        format!(
            "{} inside stages; scale-out {:.0} GB/s per GPU between {} domains",
            p.scaleup_name,
            p.scaleout_gbps_per_gpu,
            ev.scaleout_crossings + 1
        )
    } else if g == 1 {
        "none (one GPU per instance)".into()
    } else {
        p.scaleup_name.to_string()
    };
    let kvb = sz.model.kv_bytes_per_token(sz.kv_dtype.bytes());
    Ok(ClusterReport {
        racks: s.racks,
        plan: ev.plan,
        gpus: GpuCounts {
            active,
            provisioned: s.racks as u64 * p.gpus_per_rack() as u64,
        },
        servers: ServerCounts {
            needed: sizing::servers_needed(p, &ev.plan, running),
            provisioned: s.racks as u64 * p.servers_per_rack as u64,
        },
        instances: InstanceCounts {
            running,
            available: s.instances_available,
        },
        users: Users {
            required: sz.users,
            supported,
            slots: s.instances_available * ev.plan.batch as u64,
            arrival,
        },
        kv: Kv {
            bytes_per_element: sz.kv_dtype.bytes(),
            bytes_per_token: kvb,
            needed_bytes: sz.users as f64 * sz.user_kv_bytes(),
            hbm_bytes: s.kv.hbm_bytes,
            host_bytes: s.kv.host_bytes,
            nvme_bytes: s.kv.nvme_bytes,
            storage_bytes: s.kv.storage_bytes,
            storage_servers_needed: s.kv.storage_servers_needed,
            storage_servers_available: s.racks as u64 * p.storage_servers_per_rack as u64,
            reload_ms: if sz.kv_system == sizing::KvSystem::Hbm {
                0.0
            } else {
                s.kv.reload_ms()
            },
            system: sz.kv_system.describe(p),
        },
        memory_per_gpu: MemoryPerGpu {
            weights_bytes: ev.weights_bytes,
            kv_bytes: ev.kv_bytes,
            overhead_bytes: ev.overhead_bytes,
            limit_bytes: ev.limit_bytes,
        },
        bounds: Bounds {
            compute_tok_s: ev.compute_tok_s,
            hbm_tok_s: ev.hbm_tok_s,
            comm_tok_s: ev.comm_tok_s,
        },
        limit: ev.limit.into(),
        throughput: Throughput {
            capacity_tok_s: capacity,
            demand_tok_s: resident as f64 * sz.tokens_per_user_rate,
            per_gpu_tok_s: capacity / active.max(1) as f64,
            per_user_tok_s: ev.tok_s_per_user,
        },
        hardware: HardwareInfo {
            preset: p.key.into(),
            display: p.display.into(),
            gpu: p.hw.name.clone(),
            hbm_bytes: p.hw.hbm_gb * 1e9,
            hbm_bw_bytes_s: p.hw.hbm_tbps * 1e12,
            peak_flops: peak,
            gpus_per_server: p.gpus_per_server,
            servers_per_rack: p.servers_per_rack,
            nvlink_domain_gpus: p.nvlink_domain_gpus,
            scaleup_bw_bytes_s: p.hw.scaleup_gbps * 1e9,
            scaleout_bw_bytes_s: p.scaleout_gbps_per_gpu * 1e9,
            host_link_bw_bytes_s: p.host_link_gbps_per_gpu * 1e9,
            power_kw_per_rack: p.power_kw_per_rack,
            usd_per_rack: p.usd_per_rack,
            projected: p.projected,
            source: format!("{}; GPU: {}", p.source, p.hw.source),
        },
        model: ModelInfo {
            name: sz.model.name.clone(),
            total_params: sz.model.total_params(),
            active_params: sz.model.active_params(),
            active_weight_bytes: active_weight_bytes(&inst),
            weight_bytes: inst.weight_bytes(),
            quant_bits: spec.quant_bits,
            kv_dtype: sz.kv_dtype.as_str().into(),
            source: sz.model.source.clone(),
        },
        utilisation,
        des,
        shortfall: s.shortfall,
        why: s.why,
        network,
        tokens_per_user_rate: sz.tokens_per_user_rate,
        tokens_cached: sz.tokens_cached,
        hbm_residency: sz.hbm_residency,
        control_servers: s.racks as u64 * p.control_servers_per_rack as u64,
        candidates,
        sensitivity,
        notes,
    })
}

/// Racks needed when users, the batch sizes or the cached tokens change
/// (users and tokens ×0.8…1.2; each batch size alone).
fn sensitivity(base: &SizingSpec) -> Vec<SensitivityPoint> {
    let mut out = Vec::new();
    let mut point = |sweep: &str, value: f64, s: &SizingSpec| {
        let mut s = s.clone();
        s.fixed_racks = None;
        let r = size(&s).filter(|x| x.shortfall.is_empty());
        out.push(SensitivityPoint {
            sweep: sweep.into(),
            value,
            racks: r.as_ref().map(|x| x.racks),
            gpus_active: r
                .as_ref()
                .map(|x| x.instances_running * x.chosen.eval.plan.gpus() as u64),
        });
    };
    for f in [0.8, 0.9, 1.0, 1.1, 1.2] {
        let mut s = base.clone();
        s.users = ((base.users as f64) * f).round() as u64;
        point("users", s.users as f64, &s);
    }
    for &b in &base.batch_sizes {
        let mut s = base.clone();
        s.batch_sizes = vec![b];
        point("batch", b as f64, &s);
    }
    for f in [0.8, 0.9, 1.0, 1.1, 1.2] {
        let mut s = base.clone();
        s.tokens_cached = ((base.tokens_cached as f64) * f).round() as u64;
        point("tokens_cached", s.tokens_cached as f64, &s);
    }
    out
}
