//! `kvfleet rack-plan`: split a rack's trays between the clients. For each
//! client, every (prefill shape × count, decode shape × count) from the
//! candidate set that fits the trays left for it is screened analytically
//! ([`super::screen`]); the cheapest passing candidates are verified in the
//! simulator; the verified candidates of all clients are combined into
//! plans within the rack, and the Pareto set of (GPUs, worst client SLO
//! attainment, throughput per GPU) and the best plan are reported, with the
//! file's named designs simulated beside it and the reason each wins or
//! loses.

use serde::Serialize;

use super::model::{Client, Design, Pool, Role, Scenario, worker_profile};
use super::screen::{Estimate, Pools, estimate};
use super::simulate::{ClientResult, DesignResult, simulate_design};
use crate::error::InputError;
use crate::profile::Profile;
use crate::profile::computed::handoff_kv_bytes;

/// Most combinations of per-client candidates evaluated.
pub const MAX_COMBINATIONS: usize = 100_000;

/// One client's candidate pools.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Client name.
    pub client: String,
    /// Prefill workers, `N x SPEC`.
    pub prefill: String,
    /// Decode workers, `N x SPEC`.
    pub decode: String,
    /// Trays.
    pub trays: u32,
    /// GPUs.
    pub gpus: u32,
    /// The analytic screen.
    pub screen: Estimate,
    /// The simulation, when verified.
    pub verified: Option<ClientResult>,
}

/// A plan: one verified candidate per client.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Candidates per client, `client: P x SPEC + D x SPEC`.
    pub parts: Vec<String>,
    /// GPUs used.
    pub gpus: u32,
    /// Trays used.
    pub trays: u32,
    /// SLO attainment per client, in client order.
    pub attainment: Vec<f64>,
    /// The worst client's attainment.
    pub min_attainment: f64,
    /// Every client meets its target.
    pub meets_all: bool,
    /// All tokens/s over the plan's GPUs.
    pub tput_per_gpu: f64,
    #[serde(skip)]
    idx: Vec<usize>,
}

/// A named design beside the plan.
#[derive(Debug, Clone, Serialize)]
pub struct NamedVerdict {
    /// `wins` or `loses` against the best plan.
    pub verdict: String,
    /// Why.
    pub reason: String,
    /// The design's simulation.
    pub result: DesignResult,
}

/// `kvfleet rack-plan`'s report.
#[derive(Debug, Clone, Serialize)]
pub struct RackPlanReport {
    /// The scenario's description.
    pub description: Option<String>,
    /// Rack preset.
    pub rack: String,
    /// Trays in the rack.
    pub rack_trays: u32,
    /// GPUs in the rack.
    pub rack_gpus: u32,
    /// Load multiplier applied to every client.
    pub load_scale: f64,
    /// Required fraction of requests meeting the SLOs.
    pub slo_target: f64,
    /// Clients.
    pub clients: Vec<Client>,
    /// Candidates screened (all clients).
    pub screened: usize,
    /// Of which passed the screen.
    pub screen_passed: usize,
    /// Candidates verified by simulation.
    pub verified: Vec<Candidate>,
    /// Non-dominated plans within the rack, by GPUs.
    pub pareto: Vec<Plan>,
    /// The best plan: meets every client's SLO target, highest throughput per GPU, then fewest GPUs.
    pub best: Option<Plan>,
    /// The best plan simulated as one deployment (tray map, pool and link loads).
    pub best_design: Option<DesignResult>,
    /// The file's named designs.
    pub named: Vec<NamedVerdict>,
    /// What the search could not do.
    pub notes: Vec<String>,
}

struct Shape {
    spec: String,
    profile: Profile,
    trays: u32,
}

fn shapes(scn: &Scenario, field: &str, specs: &[String]) -> Result<Vec<Shape>, InputError> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let f = format!("rack_plan.{field}[{i}]");
            let (profile, trays) = worker_profile(&f, s, scn.rack, scn.sim.chunk_tok)?;
            Ok(Shape {
                spec: s.clone(),
                profile,
                trays,
            })
        })
        .collect()
}

fn client_design(c: usize, name: &str, p: (&Shape, u32), d: (&Shape, u32), kv: f64) -> Design {
    let pool = |suffix: &str, role, s: &Shape, n: u32, decode, clients: Vec<usize>| Pool {
        name: format!("{name}-{suffix}"),
        role,
        spec: s.spec.clone(),
        workers: n,
        profile: s.profile.clone(),
        trays_per_worker: s.trays,
        decode,
        clients,
        max_batch: None,
    };
    Design {
        name: name.to_string(),
        note: None,
        pools: vec![
            pool("prefill", Role::Prefill, p.0, p.1, Some(1), vec![c]),
            pool("decode", Role::Decode, d.0, d.1, None, vec![]),
        ],
        kv_bytes_per_token: kv,
    }
}

/// Run the search on `scn` at loads scaled by `load_scale`.
pub fn rack_plan(scn: &Scenario, load_scale: f64) -> Result<RackPlanReport, InputError> {
    let plan = scn.plan.as_ref().ok_or_else(|| {
        InputError::field(
            "rack_plan",
            "the file has no [rack_plan] table (candidate prefill and decode worker specs)",
        )
    })?;
    let pre = shapes(scn, "prefill", &plan.prefill)?;
    let dec = shapes(scn, "decode", &plan.decode)?;
    let mut kv = vec![vec![0.0; dec.len()]; pre.len()];
    for (i, p) in pre.iter().enumerate() {
        for (j, d) in dec.iter().enumerate() {
            kv[i][j] = handoff_kv_bytes(
                (&format!("rack_plan.prefill[{i}]"), &p.spec),
                (&format!("rack_plan.decode[{j}]"), &d.spec),
            )?;
        }
    }
    let min_trays = pre.iter().map(|s| s.trays).min().unwrap_or(1)
        + dec.iter().map(|s| s.trays).min().unwrap_or(1);
    let nc = scn.clients.len() as u32;
    let mut notes = Vec::new();
    if min_trays * nc > scn.rack.trays {
        return Err(InputError::field(
            "rack_plan",
            format!(
                "{nc} clients need at least {} trays with these shapes; the {} has {}",
                min_trays * nc,
                scn.rack.name,
                scn.rack.trays
            ),
        ));
    }
    let budget = scn.rack.trays - min_trays * (nc - 1);
    let link = (
        scn.rack.nvlink_bytes_per_s_per_gpu,
        scn.rack.nvlink_latency_s,
    );
    let target = scn.sim.slo_target;
    let (mut screened, mut passed) = (0, 0);
    let mut verified: Vec<Candidate> = Vec::new();
    let mut per_client: Vec<Vec<usize>> = Vec::new();
    for (c, cl) in scn.clients.iter().enumerate() {
        let load = cl.load.scaled(load_scale);
        let mut cands: Vec<(usize, u32, usize, u32, Estimate)> = Vec::new();
        for (i, p) in pre.iter().enumerate() {
            for np in 1..=plan.max_workers {
                for (j, d) in dec.iter().enumerate() {
                    for nd in 1..=plan.max_workers {
                        if np * p.trays + nd * d.trays > budget {
                            continue;
                        }
                        let pools = Pools {
                            prefill: (&p.profile, np),
                            decode: (&d.profile, nd),
                            decode_max_batch: None,
                            kv_bytes_per_token: kv[i][j],
                            link,
                        };
                        let e = estimate(cl, load, &pools, target);
                        screened += 1;
                        if e.passes {
                            passed += 1;
                            cands.push((i, np, j, nd, e));
                        }
                    }
                }
            }
        }
        let gpus = |x: &(usize, u32, usize, u32, Estimate)| {
            x.1 * pre[x.0].profile.gpus_per_instance + x.3 * dec[x.2].profile.gpus_per_instance
        };
        cands.sort_by(|a, b| {
            gpus(a)
                .cmp(&gpus(b))
                .then(b.4.tput_per_gpu.total_cmp(&a.4.tput_per_gpu))
        });
        let mut mine = Vec::new();
        let (mut ok, mut tried) = (0, 0);
        for x in &cands {
            if ok >= plan.verify_top || tried >= 3 * plan.verify_top {
                break;
            }
            tried += 1;
            let (p, d) = (&pre[x.0], &dec[x.2]);
            let design = client_design(c, &cl.name, (p, x.1), (d, x.3), kv[x.0][x.2]);
            let r = simulate_design(scn, &design, load_scale)?;
            let res = r.clients[c].clone();
            if res.meets_slo {
                ok += 1;
            }
            mine.push(verified.len());
            verified.push(Candidate {
                client: cl.name.clone(),
                prefill: format!("{}x{}", x.1, p.spec),
                decode: format!("{}x{}", x.3, d.spec),
                trays: design.trays(),
                gpus: design.gpus(),
                screen: x.4.clone(),
                verified: Some(res),
            });
        }
        if cands.is_empty() {
            notes.push(format!(
                "no candidate passes the screen for client `{}` within {budget} trays",
                cl.name
            ));
        } else if ok == 0 {
            notes.push(format!("none of the {tried} cheapest screened candidates of client `{}` meets its SLO in simulation", cl.name));
        }
        per_client.push(mine);
    }
    // Combine one verified candidate per client.
    let mut plans: Vec<Plan> = Vec::new();
    let mut idx = vec![0usize; per_client.len()];
    let total: usize = per_client.iter().map(|v| v.len().max(1)).product();
    if per_client.iter().all(|v| !v.is_empty()) {
        if total > MAX_COMBINATIONS {
            notes.push(format!(
                "{total} combinations; only the first {MAX_COMBINATIONS} evaluated"
            ));
        }
        'outer: for _ in 0..total.min(MAX_COMBINATIONS) {
            let pick: Vec<usize> = idx.iter().zip(&per_client).map(|(&k, v)| v[k]).collect();
            let trays: u32 = pick.iter().map(|&k| verified[k].trays).sum();
            if trays <= scn.rack.trays {
                let res: Vec<&ClientResult> = pick
                    .iter()
                    .map(|&k| verified[k].verified.as_ref().expect("verified"))
                    .collect();
                let gpus: u32 = pick.iter().map(|&k| verified[k].gpus).sum();
                let att: Vec<f64> = res.iter().map(|r| r.slo_attainment).collect();
                let tok: f64 = res.iter().map(|r| r.total_tok_s).sum();
                plans.push(Plan {
                    parts: pick
                        .iter()
                        .map(|&k| {
                            format!(
                                "{}: {} + {}",
                                verified[k].client, verified[k].prefill, verified[k].decode
                            )
                        })
                        .collect(),
                    gpus,
                    trays,
                    min_attainment: att.iter().copied().fold(1.0, f64::min),
                    attainment: att,
                    meets_all: res.iter().all(|r| r.meets_slo),
                    tput_per_gpu: tok / gpus.max(1) as f64,
                    idx: pick,
                });
            }
            for (k, v) in idx.iter_mut().enumerate() {
                *v += 1;
                if *v < per_client[k].len() {
                    continue 'outer;
                }
                *v = 0;
            }
            break;
        }
    }
    let dominates = |a: &Plan, b: &Plan| {
        a.gpus <= b.gpus
            && a.min_attainment >= b.min_attainment
            && a.tput_per_gpu >= b.tput_per_gpu
            && (a.gpus < b.gpus
                || a.min_attainment > b.min_attainment
                || a.tput_per_gpu > b.tput_per_gpu)
    };
    let mut pareto: Vec<Plan> = plans
        .iter()
        .filter(|p| !plans.iter().any(|q| dominates(q, p)))
        .cloned()
        .collect();
    pareto.sort_by(|a, b| {
        a.gpus
            .cmp(&b.gpus)
            .then(b.tput_per_gpu.total_cmp(&a.tput_per_gpu))
    });
    pareto.dedup_by(|a, b| a.parts == b.parts);
    let best = plans
        .iter()
        .filter(|p| p.meets_all)
        .max_by(|a, b| {
            a.tput_per_gpu
                .total_cmp(&b.tput_per_gpu)
                .then(b.gpus.cmp(&a.gpus))
        })
        .cloned();
    if best.is_none() {
        notes.push("no plan within the rack meets every client's SLO target at these loads".into());
    }
    let best_design = match &best {
        Some(b) => {
            let mut pools = Vec::new();
            let mut kv_best = kv[0][0];
            for &k in &b.idx {
                let cand = &verified[k];
                let c = scn
                    .clients
                    .iter()
                    .position(|x| x.name == cand.client)
                    .expect("client");
                let find = |s: &[Shape], w: &str| -> (usize, u32) {
                    let (n, spec) = w.split_once('x').expect("NxSPEC");
                    (
                        s.iter().position(|x| x.spec == spec).expect("shape"),
                        n.parse().expect("count"),
                    )
                };
                let (pi, np) = find(&pre, &cand.prefill);
                let (di, nd) = find(&dec, &cand.decode);
                let mut d =
                    client_design(c, &cand.client, (&pre[pi], np), (&dec[di], nd), kv[pi][di]);
                kv_best = kv[pi][di];
                let base = pools.len();
                d.pools[0].decode = Some(base + 1);
                pools.extend(d.pools);
            }
            let design = Design {
                name: "kvfleet best".into(),
                note: Some("the search's best plan".into()),
                kv_bytes_per_token: kv_best,
                pools,
            };
            Some(simulate_design(scn, &design, load_scale)?)
        }
        None => None,
    };
    let mut named = Vec::new();
    for d in &scn.designs {
        let r = simulate_design(scn, d, load_scale)?;
        let (verdict, reason) = judge(scn, &r, best_design.as_ref());
        named.push(NamedVerdict {
            verdict,
            reason,
            result: r,
        });
    }
    Ok(RackPlanReport {
        description: scn.description.clone(),
        rack: scn.rack.name.to_string(),
        rack_trays: scn.rack.trays,
        rack_gpus: scn.rack.gpus(),
        load_scale,
        slo_target: target,
        clients: scn.clients.clone(),
        screened,
        screen_passed: passed,
        verified,
        pareto,
        best,
        best_design,
        named,
        notes,
    })
}

/// Why a named design wins or loses against the best plan.
fn judge(scn: &Scenario, r: &DesignResult, best: Option<&DesignResult>) -> (String, String) {
    let mut why = Vec::new();
    if !r.fits {
        why.push(format!(
            "does not fit: {} trays ({} GPUs) > the rack's {} ({} GPUs)",
            r.trays,
            r.gpus,
            scn.rack.trays,
            scn.rack.gpus()
        ));
    }
    for (c, cr) in r.clients.iter().enumerate() {
        if cr.meets_slo {
            continue;
        }
        let cl = &scn.clients[c];
        let mut what = vec![format!(
            "TTFT p90 {:.2} s vs SLO {:.2} s",
            cr.ttft_p90_s,
            cl.ttft_ms / 1e3
        )];
        if let Some(t) = cl.tpot_ms {
            what.push(format!(
                "TPOT p90 {:.1} ms vs SLO {:.1} ms",
                cr.tpot_p90_s * 1e3,
                t
            ));
        }
        why.push(format!(
            "misses `{}`: {:.0}% of requests meet the SLO (target {:.0}%; {})",
            cr.client,
            cr.slo_attainment * 100.0,
            scn.sim.slo_target * 100.0,
            what.join(", ")
        ));
    }
    let ok = r.fits && r.meets_all;
    match best {
        Some(b) if ok => {
            let wins = r.tput_per_gpu >= b.tput_per_gpu;
            why.push(format!(
                "meets every SLO at {:.0} tok/s/GPU on {} GPUs vs kvfleet's {:.0} tok/s/GPU on {} GPUs",
                r.tput_per_gpu, r.gpus, b.tput_per_gpu, b.gpus
            ));
            (if wins { "wins" } else { "loses" }.into(), why.join("; "))
        }
        Some(b) => {
            why.push(format!(
                "kvfleet's plan meets every SLO on {} GPUs at {:.0} tok/s/GPU",
                b.gpus, b.tput_per_gpu
            ));
            ("loses".into(), why.join("; "))
        }
        None if ok => (
            "wins".into(),
            "meets every SLO; the search found no plan that does".into(),
        ),
        None => ("loses".into(), why.join("; ")),
    }
}
