//! Sizing racks for a user population: the smallest number of racks whose
//! best plan holds the users' KV and serves each of them at the required
//! rate, with the KV tiers (HBM, host DRAM, local NVMe, storage servers)
//! filled in that order.
//!
//! A user occupies one decode slot (a sequence of its instance's batch)
//! while its KV is resident; `--hbm-residency h` < 1 keeps only the share h
//! of users resident at once (an instance of batch b serves b / h users),
//! the others' cached KV waiting in the offload tiers to be reloaded before
//! their next turn (the DES check prices that).

use serde::Serialize;

use super::inventory::RackPreset;
use super::plan::{Plan, PlanEval, PlanInputs, enumerate, evaluate, instance};
use crate::profile::hardware::Dtype;
use crate::profile::models::ModelSpec;

/// Where the KV of users that are not resident in HBM lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KvSystem {
    /// HBM only (no offload; needs `--hbm-residency 1`).
    Hbm,
    /// Host DRAM over the GPU↔host path.
    Host,
    /// Host DRAM, then the servers' local NVMe.
    HostNvme,
    /// Host DRAM, then the racks' storage servers over the scale-out fabric.
    Storage,
}

impl KvSystem {
    /// Valid names, for error messages.
    pub const NAMES: &'static str = "hbm, host, host-nvme, storage";

    /// Parse a `--kv-system` value.
    pub fn parse(s: &str) -> Option<KvSystem> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hbm" | "none" => Some(KvSystem::Hbm),
            "host" | "host-offload" | "dram" => Some(KvSystem::Host),
            "host-nvme" | "nvme" => Some(KvSystem::HostNvme),
            "storage" => Some(KvSystem::Storage),
            _ => None,
        }
    }

    /// A description naming the preset's links.
    pub fn describe(&self, p: &RackPreset) -> String {
        match self {
            KvSystem::Hbm => "HBM only (no offload)".into(),
            KvSystem::Host => format!("host-DRAM offload ({})", p.host_link_name),
            KvSystem::HostNvme => format!("host DRAM ({}) + local NVMe", p.host_link_name),
            KvSystem::Storage => "host DRAM + storage servers (scale-out)".into(),
        }
    }
}

/// Share of host DRAM usable for KV (the rest: OS, runtime, pinned buffers).
pub const HOST_DRAM_KV_FRACTION: f64 = 0.8;

/// What to size.
#[derive(Debug, Clone)]
pub struct SizingSpec {
    /// The rack preset.
    pub preset: RackPreset,
    /// The model.
    pub model: ModelSpec,
    /// Weight format (from `--quant-bits`).
    pub weight_dtype: Dtype,
    /// KV-cache format.
    pub kv_dtype: Dtype,
    /// Users to hold concurrently.
    pub users: u64,
    /// Cached tokens per user (the context each turn starts from).
    pub tokens_cached: u64,
    /// New prompt tokens per turn.
    pub turn_input_tok: u64,
    /// Output tokens per turn.
    pub turn_output_tok: u64,
    /// Tokens/s each user must receive while generating.
    pub tokens_per_user_rate: f64,
    /// Candidate batch sizes.
    pub batch_sizes: Vec<u32>,
    /// Most racks to consider.
    pub max_racks: u32,
    /// Size exactly this many racks (shortfalls reported).
    pub fixed_racks: Option<u32>,
    /// Among plans on the fewest racks, prefer the fewest active GPUs (highest utilisation).
    pub prefer_utilization: bool,
    /// Share of users whose KV is resident in HBM at once.
    pub hbm_residency: f64,
    /// Offload tiers.
    pub kv_system: KvSystem,
}

impl SizingSpec {
    /// Most context a resident sequence holds, tokens (cached + one turn).
    pub fn context_tok(&self) -> u64 {
        self.tokens_cached + self.turn_input_tok + self.turn_output_tok
    }

    /// The plan inputs.
    pub fn plan_inputs(&self) -> PlanInputs<'_> {
        PlanInputs {
            preset: &self.preset,
            model: &self.model,
            weight_dtype: self.weight_dtype,
            kv_dtype: self.kv_dtype,
            context_tok: self.context_tok(),
        }
    }

    /// Decode slots the users need (resident users).
    pub fn slots_needed(&self) -> u64 {
        ((self.users as f64 * self.hbm_residency) - 1e-9)
            .ceil()
            .max(0.0) as u64
    }

    /// KV bytes of one user's cached context (one copy, whole model).
    pub fn user_kv_bytes(&self) -> f64 {
        self.tokens_cached as f64 * self.model.kv_bytes_per_token(self.kv_dtype.bytes())
    }
}

/// Instances of `plan` that `racks` racks hold: inside one scale-up domain
/// when the instance fits one; otherwise whole stages per domain.
pub fn instances_available(p: &RackPreset, plan: &Plan, racks: u32) -> u64 {
    let domains = racks as u64 * p.domains_per_rack() as u64;
    let (g, d) = (plan.gpus() as u64, p.nvlink_domain_gpus as u64);
    if g <= d {
        domains * (d / g)
    } else {
        domains * (d / plan.stage_gpus() as u64) / plan.pp as u64
    }
}

/// Fewest racks holding `n` instances of `plan`.
pub fn racks_for_instances(p: &RackPreset, plan: &Plan, n: u64) -> u64 {
    let (g, d) = (plan.gpus() as u64, p.nvlink_domain_gpus as u64);
    let domains = if g <= d {
        n.div_ceil(d / g)
    } else {
        (n * plan.pp as u64).div_ceil(d / plan.stage_gpus() as u64)
    };
    domains.div_ceil(p.domains_per_rack() as u64).max(1)
}

/// Trays / servers that `running` instances packed in order occupy.
pub fn servers_needed(p: &RackPreset, plan: &Plan, running: u64) -> u64 {
    let (g, d, s) = (
        plan.gpus() as u64,
        p.nvlink_domain_gpus as u64,
        p.gpus_per_server as u64,
    );
    if g <= d {
        let per_domain = d / g;
        let full = running / per_domain;
        let rest = running % per_domain;
        full * (per_domain * g).div_ceil(s) + (rest * g).div_ceil(s)
    } else {
        (running * g).div_ceil(s)
    }
}

/// Where the KV lives and what reloading it costs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KvPlacement {
    /// KV bytes in HBM over all active GPUs (incl. replication across TP ranks).
    pub hbm_bytes: f64,
    /// Offloaded KV in host DRAM.
    pub host_bytes: f64,
    /// Offloaded KV on local NVMe.
    pub nvme_bytes: f64,
    /// Offloaded KV on storage servers.
    pub storage_bytes: f64,
    /// Offloaded KV that fits no tier.
    pub unplaced_bytes: f64,
    /// Storage servers the storage tier needs.
    pub storage_servers_needed: u64,
    /// Host DRAM usable for KV on the active servers.
    pub host_capacity_bytes: f64,
    /// NVMe on the active servers.
    pub nvme_capacity_bytes: f64,
    /// Storage on the provisioned racks' storage servers.
    pub storage_capacity_bytes: f64,
    /// Reload of one user's cached KV from host DRAM, ms.
    pub reload_host_ms: f64,
    /// ... from NVMe, ms.
    pub reload_nvme_ms: f64,
    /// ... from storage servers, ms.
    pub reload_storage_ms: f64,
}

impl KvPlacement {
    /// Reload time from the slowest tier in use (host DRAM's when nothing is offloaded), ms.
    pub fn reload_ms(&self) -> f64 {
        if self.storage_bytes > 0.0 {
            self.reload_storage_ms
        } else if self.nvme_bytes > 0.0 {
            self.reload_nvme_ms
        } else {
            self.reload_host_ms
        }
    }
}

/// Fill the offload tiers for `plan` with `running` instances on `racks` racks.
pub fn place_kv(spec: &SizingSpec, ev: &PlanEval, running: u64, racks: u32) -> KvPlacement {
    let p = &spec.preset;
    let gpus = running * ev.plan.gpus() as u64;
    let servers = servers_needed(p, &ev.plan, running);
    let offloaded = spec.users.saturating_sub(spec.slots_needed()) as f64 * spec.user_kv_bytes();
    let mut k = KvPlacement {
        hbm_bytes: ev.kv_bytes * gpus as f64,
        host_capacity_bytes: p.host_dram_gb_per_gpu * 1e9 * gpus as f64 * HOST_DRAM_KV_FRACTION,
        nvme_capacity_bytes: p.nvme_tb_per_server * 1e12 * servers as f64,
        storage_capacity_bytes: p.storage_tb_per_server
            * 1e12
            * (p.storage_servers_per_rack as u64 * racks as u64) as f64,
        ..KvPlacement::default()
    };
    let mut rest = offloaded;
    let take = |cap: f64, rest: &mut f64| {
        let t = rest.min(cap);
        *rest -= t;
        t
    };
    match spec.kv_system {
        KvSystem::Hbm => {}
        KvSystem::Host => k.host_bytes = take(k.host_capacity_bytes, &mut rest),
        KvSystem::HostNvme => {
            k.host_bytes = take(k.host_capacity_bytes, &mut rest);
            k.nvme_bytes = take(k.nvme_capacity_bytes, &mut rest);
        }
        KvSystem::Storage => {
            k.host_bytes = take(k.host_capacity_bytes, &mut rest);
            k.storage_bytes = take(k.storage_capacity_bytes, &mut rest);
        }
    }
    k.unplaced_bytes = rest;
    k.storage_servers_needed = (k.storage_bytes / (p.storage_tb_per_server * 1e12)).ceil() as u64;
    // A reload: every GPU of the user's rank loads its share over its own path.
    let inst = instance(&spec.plan_inputs(), &ev.plan);
    let per_gpu = spec.tokens_cached as f64 * inst.kv_bytes_per_token_per_gpu();
    let host = p.host_link_gbps_per_gpu * 1e9;
    let nvme = host.min(p.nvme_gbps_per_server * 1e9 / p.gpus_per_server as f64);
    let storage_servers = (p.storage_servers_per_rack as u64 * racks as u64).max(1) as f64;
    let storage = (p.scaleout_gbps_per_gpu * 1e9)
        .min(p.storage_gbps_per_server * 1e9 * storage_servers / gpus.max(1) as f64);
    k.reload_host_ms = per_gpu / host * 1e3;
    k.reload_nvme_ms = per_gpu / nvme * 1e3;
    k.reload_storage_ms = per_gpu / storage * 1e3;
    k
}

/// A plan with what it needs to hold the users.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// The plan's step-model evaluation.
    pub eval: PlanEval,
    /// Instances the users need.
    pub instances_needed: u64,
    /// Fewest racks for them (and for the storage tier).
    pub racks_needed: u64,
    /// Active GPUs.
    pub gpus_active: u64,
    /// Meets the per-user rate.
    pub meets_rate: bool,
    /// The offloaded KV fits its tiers at `racks_needed`.
    pub tiers_fit: bool,
}

/// Every plan that fits in memory, with the racks it needs.
pub fn candidates(spec: &SizingSpec) -> (Vec<Candidate>, Vec<PlanEval>) {
    let inp = spec.plan_inputs();
    let max_gpus = (spec.max_racks.max(spec.fixed_racks.unwrap_or(0)) as u64
        * spec.preset.gpus_per_rack() as u64)
        .min(1024) as u32;
    let evals: Vec<PlanEval> = enumerate(&inp, &spec.batch_sizes, max_gpus)
        .iter()
        .map(|pl| evaluate(&inp, pl))
        .collect();
    let slots = spec.slots_needed().max(1);
    let mut out = Vec::new();
    for ev in evals.iter().filter(|e| e.fits) {
        let n = slots.div_ceil(ev.plan.batch as u64);
        let mut racks = racks_for_instances(&spec.preset, &ev.plan, n);
        let mut kv = place_kv(spec, ev, n, racks as u32);
        // The storage tier grows with racks (its servers are per rack).
        if spec.kv_system == KvSystem::Storage && kv.unplaced_bytes > 0.0 {
            let per_rack = spec.preset.storage_servers_per_rack as f64
                * spec.preset.storage_tb_per_server
                * 1e12;
            racks = racks.max(((kv.storage_bytes + kv.unplaced_bytes) / per_rack).ceil() as u64);
            kv = place_kv(spec, ev, n, racks as u32);
        }
        out.push(Candidate {
            eval: ev.clone(),
            instances_needed: n,
            racks_needed: racks,
            gpus_active: n * ev.plan.gpus() as u64,
            meets_rate: ev.tok_s_per_user >= spec.tokens_per_user_rate,
            tiers_fit: kv.unplaced_bytes <= 0.0,
        });
    }
    out.sort_by(|a, b| {
        (
            !(a.meets_rate && a.tiers_fit),
            a.racks_needed,
            a.gpus_active,
        )
            .cmp(&(
                !(b.meets_rate && b.tiers_fit),
                b.racks_needed,
                b.gpus_active,
            ))
            .then(b.eval.tok_s_per_user.total_cmp(&a.eval.tok_s_per_user))
    });
    (out, evals)
}

/// The sizing's answer: racks, the chosen plan and why, and what falls short.
#[derive(Debug, Clone)]
pub struct Sizing {
    /// Racks provisioned.
    pub racks: u32,
    /// The chosen plan.
    pub chosen: Candidate,
    /// Instances the racks hold.
    pub instances_available: u64,
    /// Instances running.
    pub instances_running: u64,
    /// Where the KV lives.
    pub kv: KvPlacement,
    /// Why this plan.
    pub why: String,
    /// What falls short (empty when nothing does).
    pub shortfall: Vec<String>,
    /// All candidates (sorted: feasible first, fewest racks, fewest GPUs).
    pub candidates: Vec<Candidate>,
}

/// Users a plan's instances on `racks` racks hold.
pub fn users_supported(spec: &SizingSpec, plan: &Plan, racks: u32) -> u64 {
    let slots = instances_available(&spec.preset, plan, racks) * plan.batch as u64;
    (slots as f64 / spec.hbm_residency + 1e-9).floor() as u64
}

fn better(spec: &SizingSpec, a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    let faster = b.eval.tok_s_per_user.total_cmp(&a.eval.tok_s_per_user);
    let fewer = a.gpus_active.cmp(&b.gpus_active);
    if spec.prefer_utilization {
        fewer.then(faster)
    } else {
        faster.then(fewer)
    }
}

/// Size the cluster. `None` when no plan fits the model in memory.
pub fn size(spec: &SizingSpec) -> Option<Sizing> {
    let (cands, _) = candidates(spec);
    let mut shortfall = Vec::new();
    if cands.is_empty() {
        return None;
    }
    let ok: Vec<&Candidate> = cands
        .iter()
        .filter(|c| c.meets_rate && c.tiers_fit)
        .collect();
    let min_racks = ok.iter().map(|c| c.racks_needed).min();
    let racks = match (spec.fixed_racks, min_racks) {
        (Some(n), _) => n,
        (None, Some(r)) if r <= spec.max_racks as u64 => r as u32,
        (None, Some(r)) => {
            shortfall.push(format!(
                "needs {r} racks, more than --max-racks {}",
                spec.max_racks
            ));
            spec.max_racks
        }
        // No plan meets the rate (or its tiers): the racks of the fastest plan.
        (None, None) => cands
            .iter()
            .max_by(|a, b| a.eval.tok_s_per_user.total_cmp(&b.eval.tok_s_per_user))
            .map_or(spec.max_racks, |c| {
                c.racks_needed.min(spec.max_racks as u64) as u32
            }),
    };
    // Plans that hold every user on `racks` racks at the rate.
    let feasible: Vec<&Candidate> = ok
        .iter()
        .copied()
        .filter(|c| c.racks_needed <= racks as u64)
        .collect();
    let (chosen, why) = if let Some(best) =
        feasible.iter().copied().min_by(|a, b| better(spec, a, b))
    {
        let why = if spec.prefer_utilization {
            format!(
                "fewest racks ({racks}) holding {} users at ≥ {} tok/s each; among {} such plans the fewest active GPUs (--prefer-utilization)",
                spec.users,
                spec.tokens_per_user_rate,
                feasible.len()
            )
        } else {
            format!(
                "fewest racks ({racks}) holding {} users at ≥ {} tok/s each; among {} such plans the fastest per user (lowest TPOT), then fewest GPUs",
                spec.users,
                spec.tokens_per_user_rate,
                feasible.len()
            )
        };
        (best.clone(), why)
    } else {
        // Nothing holds everyone: the plan holding the most users (at the rate when any does).
        let pool: Vec<&Candidate> = if ok.is_empty() {
            cands.iter().collect()
        } else {
            ok.clone()
        };
        let fastest_fitting = pool
            .iter()
            .copied()
            .filter(|c| ok.is_empty() && c.racks_needed <= racks as u64)
            .max_by(|a, b| a.eval.tok_s_per_user.total_cmp(&b.eval.tok_s_per_user));
        let best = fastest_fitting
            .or_else(|| {
                pool.iter().copied().max_by(|a, b| {
                    users_supported(spec, &a.eval.plan, racks)
                        .cmp(&users_supported(spec, &b.eval.plan, racks))
                        .then(a.eval.tok_s_per_user.total_cmp(&b.eval.tok_s_per_user))
                })
            })
            .expect("candidates are not empty");
        (
            best.clone(),
            format!("no plan holds every user on {racks} racks; this one holds the most"),
        )
    };
    let avail = instances_available(&spec.preset, &chosen.eval.plan, racks);
    let running = chosen.instances_needed.min(avail);
    let kv = place_kv(spec, &chosen.eval, running, racks);
    let supported = users_supported(spec, &chosen.eval.plan, racks);
    if supported < spec.users {
        let need = ok
            .iter()
            .map(|c| c.racks_needed)
            .min()
            .map(|r| format!("; {r} racks would"))
            .unwrap_or_default();
        shortfall.push(format!(
            "users: {supported} of {} held on {racks} racks (short by {}){need}",
            spec.users,
            spec.users - supported
        ));
    }
    if !chosen.meets_rate {
        shortfall.push(format!(
            "rate: {:.1} tok/s per user, below --tokens-per-user-rate {} (no plan within --batch-sizes {:?} and the racks reaches it)",
            chosen.eval.tok_s_per_user,
            spec.tokens_per_user_rate,
            spec.batch_sizes
        ));
    }
    if kv.unplaced_bytes > 0.0 {
        shortfall.push(format!(
            "KV tiers: {:.2} TB of offloaded KV fits no tier of --kv-system {:?}",
            kv.unplaced_bytes / 1e12,
            spec.kv_system
        ));
    }
    Some(Sizing {
        racks,
        chosen,
        instances_available: avail,
        instances_running: running,
        kv,
        why,
        shortfall,
        candidates: cands,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::inventory::rack_presets;

    #[test]
    fn racks_for_instances_is_the_fewest_that_hold_them() {
        for p in rack_presets() {
            for (tp, dp, pp) in [
                (1, 1, 1),
                (2, 1, 3),
                (4, 2, 1),
                (8, 1, 2),
                (1, 8, 12),
                (16, 1, 1),
            ] {
                if tp * dp > p.nvlink_domain_gpus {
                    continue;
                }
                let plan = Plan {
                    tp,
                    pp,
                    ep: 1,
                    dp,
                    batch: 8,
                };
                for n in [1u64, 5, 9, 125, 1000] {
                    let r = racks_for_instances(&p, &plan, n) as u32;
                    assert!(
                        instances_available(&p, &plan, r) >= n,
                        "{} {plan:?} {n}",
                        p.key
                    );
                    if r > 1 {
                        assert!(
                            instances_available(&p, &plan, r - 1) < n,
                            "{} {plan:?} {n}",
                            p.key
                        );
                    }
                    let servers = servers_needed(&p, &plan, n);
                    assert!(servers <= r as u64 * p.servers_per_rack as u64);
                    assert!(servers * p.gpus_per_server as u64 >= n * plan.gpus() as u64);
                }
            }
        }
    }
}
