//! Simulate a design: its pools in the discrete-event engine, the clients'
//! requests routed to their entry pools, KV caches handed from prefill to
//! decode pools over the rack's NVLink, and per-client metrics.
//!
//! Clients whose pools are disjoint share nothing but the NVLink switch,
//! which is non-blocking (each prefill worker has its own per-GPU link), so
//! each group of clients connected through shared pools is one engine run.
//! A group of several clients must be open-loop (Poisson arrivals): a closed
//! loop of one client's users is a single-client group.
//!
//! TTFT, as the client sees it: queueing for and running the prefill, the
//! KV transfer (link sharing plus latency) to the decode worker — the first
//! token is produced by the prefill pass and reaches the user when its KV
//! has landed — plus the profile's frontend latency. Waiting for a decode
//! slot after the landing, and every decode step, count in TPOT and E2EL.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kvfleet_routers::RouterStats;

use super::model::{Design, Load, Role, Scenario};
pub use super::results::{ClientResult, DesignResult, LinkResult, PoolResult};
use super::traffic::{ClientRouter, Log, OpenClients, OpenStream, exp_gap};
use crate::benchmark::percentile;
use crate::engine::dispatch::DispatchPolicy;
use crate::engine::{self, Arrivals, ClosedLoop, Disagg, PoolConfig, SimConfig, Warmup};
use crate::error::InputError;
use crate::rng::{Purpose, Streams};
use crate::workload::Category;

/// Groups of pools connected through prefill→decode pairs and shared clients.
fn groups(design: &Design) -> Vec<Vec<usize>> {
    let n = design.pools.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let union = |a: usize, b: usize, p: &mut Vec<usize>| {
        let (x, y) = (find(p, a), find(p, b));
        if x != y {
            p[x.max(y)] = x.min(y);
        }
    };
    for (k, pool) in design.pools.iter().enumerate() {
        if let Some(d) = pool.decode {
            union(k, d, &mut parent);
        }
        for j in 0..k {
            if design.pools[j]
                .clients
                .iter()
                .any(|c| pool.clients.contains(c))
            {
                union(j, k, &mut parent);
            }
        }
    }
    let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for k in 0..n {
        let r = find(&mut parent, k);
        out.entry(r).or_default().push(k);
    }
    out.into_values().collect()
}

/// Accumulated raw results of the engine runs of one design.
struct Acc {
    /// Per client: ttft, tpot, e2el samples (s), met count, measured, completed, in/out tokens, window s.
    per: Vec<ClientAcc>,
    pool_util: Vec<(f64, f64)>,
    /// Per pool: requests of each client that were served there.
    pool_share: Vec<Vec<u64>>,
    links: Vec<LinkResult>,
}

#[derive(Default, Clone)]
struct ClientAcc {
    ttft: Vec<f64>,
    tpot: Vec<f64>,
    e2el: Vec<f64>,
    met: u64,
    issued: u64,
    measured: u64,
    in_tok: u64,
    out_tok: u64,
    window_s: f64,
}

/// Most requests one design's simulation may issue (every request is kept
/// as a record until the end of the run: memory is bounded by this).
pub const MAX_REQUESTS: f64 = 5e6;

/// Check that the clients' loads at `load_scale` issue at most [`MAX_REQUESTS`].
pub fn check_request_count(scn: &Scenario, load_scale: f64) -> Result<(), InputError> {
    let n: f64 = scn
        .clients
        .iter()
        .map(|c| match c.load.scaled(load_scale) {
            Load::RateRps(r) => r * scn.sim.duration_s,
            Load::Concurrency(u) => u as f64 * scn.sim.prompts_per_conc as f64,
        })
        .sum();
    if n > MAX_REQUESTS {
        return Err(InputError::field(
            "sim.duration_s",
            format!(
                "the clients would send about {n:.0} requests; at most {MAX_REQUESTS:.0} (shorten sim.duration_s or sim.prompts_per_conc, or lower the loads)"
            ),
        ));
    }
    Ok(())
}

/// Simulate `design` with the scenario's clients, loads scaled by `load_scale`.
pub fn simulate_design(
    scn: &Scenario,
    design: &Design,
    load_scale: f64,
) -> Result<DesignResult, InputError> {
    check_request_count(scn, load_scale)?;
    let nc = scn.clients.len();
    let mut acc = Acc {
        per: vec![ClientAcc::default(); nc],
        pool_util: vec![(0.0, 0.0); design.pools.len()],
        pool_share: vec![vec![0; nc]; design.pools.len()],
        links: Vec::new(),
    };
    for g in groups(design) {
        run_group(scn, design, &g, load_scale, &mut acc)?;
    }
    let target = scn.sim.slo_target;
    // GPUs per client: pools' GPUs split by the share of requests served there.
    let mut gpus_of = vec![0.0; nc];
    for (k, p) in design.pools.iter().enumerate() {
        let tot: u64 = acc.pool_share[k].iter().sum();
        for (c, g) in gpus_of.iter_mut().enumerate() {
            if tot > 0 {
                *g += p.gpus() as f64 * acc.pool_share[k][c] as f64 / tot as f64;
            }
        }
    }
    let mut clients = Vec::new();
    let mut all_tok_s = 0.0;
    for (c, a) in acc.per.iter_mut().enumerate() {
        for v in [&mut a.ttft, &mut a.tpot, &mut a.e2el] {
            v.sort_by(f64::total_cmp);
        }
        let att = if a.measured > 0 {
            a.met as f64 / a.measured as f64
        } else {
            0.0
        };
        let w = a.window_s.max(1e-9);
        let (out_s, tot_s) = (a.out_tok as f64 / w, (a.in_tok + a.out_tok) as f64 / w);
        all_tok_s += tot_s;
        let mean_tpot = if a.tpot.is_empty() {
            f64::NAN
        } else {
            a.tpot.iter().sum::<f64>() / a.tpot.len() as f64
        };
        let cl = &scn.clients[c];
        clients.push(ClientResult {
            client: cl.name.clone(),
            load: cl.load.scaled(load_scale).label(),
            issued: a.issued,
            requests: a.measured,
            completed: a.ttft.len() as u64,
            slo_attainment: att,
            meets_slo: att >= target,
            ttft_p50_s: percentile(&a.ttft, 50.0),
            ttft_p90_s: percentile(&a.ttft, 90.0),
            ttft_p99_s: percentile(&a.ttft, 99.0),
            tpot_p50_s: percentile(&a.tpot, 50.0),
            tpot_p90_s: percentile(&a.tpot, 90.0),
            tpot_p99_s: percentile(&a.tpot, 99.0),
            mean_intvty: 1.0 / mean_tpot,
            p90_intvty: 1.0 / percentile(&a.tpot, 90.0),
            mean_e2el_s: if a.e2el.is_empty() {
                f64::NAN
            } else {
                a.e2el.iter().sum::<f64>() / a.e2el.len() as f64
            },
            output_tok_s: out_s,
            total_tok_s: tot_s,
            gpus: gpus_of[c],
            tput_per_gpu: if gpus_of[c] > 0.0 {
                tot_s / gpus_of[c]
            } else {
                0.0
            },
        });
    }
    let mut tray = 0;
    let pools = design
        .pools
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let first = tray;
            tray += p.trays();
            let served: Vec<String> = (0..nc)
                .filter(|&c| acc.pool_share[k][c] > 0 || p.clients.contains(&c))
                .map(|c| scn.clients[c].name.clone())
                .collect();
            PoolResult {
                pool: p.name.clone(),
                role: p.role,
                workers: format!("{}x{}", p.workers, p.spec),
                trays: (first, tray.saturating_sub(1).max(first)),
                gpus: p.gpus(),
                clients: served,
                utilisation: acc.pool_util[k].0,
                mean_batch: acc.pool_util[k].1,
            }
        })
        .collect();
    let gpus = design.gpus();
    Ok(DesignResult {
        design: design.name.clone(),
        note: design.note.clone(),
        trays: design.trays(),
        gpus,
        fits: design.trays() <= scn.rack.trays,
        meets_all: clients.iter().all(|c| c.meets_slo),
        tput_per_gpu: all_tok_s / gpus.max(1) as f64,
        clients,
        pools,
        kv_links: acc.links,
    })
}

fn run_group(
    scn: &Scenario,
    design: &Design,
    g: &[usize],
    load_scale: f64,
    acc: &mut Acc,
) -> Result<(), InputError> {
    let local = |k: usize| g.iter().position(|&x| x == k).expect("pool in group");
    let mut cs: Vec<usize> = g
        .iter()
        .flat_map(|&k| design.pools[k].clients.iter().copied())
        .collect();
    cs.sort_unstable();
    cs.dedup();
    if cs.is_empty() {
        return Ok(());
    }
    let closed: Vec<usize> = cs
        .iter()
        .copied()
        .filter(|&c| matches!(scn.clients[c].load, Load::Concurrency(_)))
        .collect();
    if cs.len() > 1 && !closed.is_empty() {
        return Err(InputError::field(
            format!("clients[{}].concurrency", closed[0]),
            format!(
                "design `{}` shares pools between clients {}: a shared pool needs open-loop clients (rate_rps)",
                design.name,
                cs.iter()
                    .map(|&c| scn.clients[c].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let max_ctx = |k: usize| -> u32 {
        let p = &design.pools[k];
        let mut feeders: Vec<usize> = p.clients.clone();
        for q in &design.pools {
            if q.decode == Some(k) {
                feeders.extend(q.clients.iter().copied());
            }
        }
        feeders
            .iter()
            .map(|&c| scn.clients[c].max_ctx_tok())
            .max()
            .unwrap_or(2)
    };
    let mut pools = Vec::new();
    for &k in g {
        let p = &design.pools[k];
        let mut pc = PoolConfig::new(p.name.clone(), p.profile.clone(), p.workers, max_ctx(k));
        pc.dispatch = if p.role == Role::Decode {
            DispatchPolicy::FreeKv
        } else {
            DispatchPolicy::Jsq
        };
        pc.max_num_seqs = p.max_batch;
        pools.push(pc);
    }
    let pairs: Vec<(usize, usize)> = g
        .iter()
        .filter_map(|&k| design.pools[k].decode.map(|d| (local(k), local(d))))
        .collect();
    let disagg = (!pairs.is_empty()).then(|| Disagg {
        pairs,
        link: scn.rack.kv_link(),
        kv_bytes_per_token: design.kv_bytes_per_token,
    });
    let cfg = SimConfig {
        warmup: Warmup {
            fraction: 0.0,
            seconds: None,
        },
        record_requests: true,
        max_waiting: Some(u64::MAX),
        run_to_completion: true,
        disagg,
        ..SimConfig::new(pools, scn.seed, 1e9)
    };
    if let Some(d) = &cfg.disagg {
        d.validate(&cfg.pools)
            .map_err(|e| InputError::field(format!("deployments.{}", design.name), e))?;
    }
    // Router views are the entry (non-decode) pools in group order.
    let entries_local: Vec<usize> = engine::entry_pools(&cfg);
    let view_of = |k: usize| entries_local.iter().position(|&e| e == local(k));
    let mut entries = Vec::new();
    let mut names = BTreeMap::new();
    for (ci, &c) in cs.iter().enumerate() {
        let e: Vec<usize> = g
            .iter()
            .filter(|&&k| design.pools[k].clients.contains(&c))
            .filter_map(|&k| view_of(k))
            .collect();
        entries.push(e);
        names.insert(scn.clients[c].name.clone(), ci);
    }
    let routed = Arc::new(Mutex::new(vec![vec![0u64; entries_local.len()]; cs.len()]));
    let router = ClientRouter {
        entries,
        names,
        routed: routed.clone(),
        stats: RouterStats::for_pools(entries_local.len()),
    };
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let streams = Streams::new(scn.seed, 0);
    let (arrivals, warm_s, window) = if cs.len() == 1 && !closed.is_empty() {
        let c = cs[0];
        let cl = &scn.clients[c];
        let users = match cl.load.scaled(load_scale) {
            Load::Concurrency(u) => u,
            Load::RateRps(_) => unreachable!("closed client"),
        };
        let spec = cl.clone();
        let l = log.clone();
        let a = Arrivals::Closed(ClosedLoop {
            users,
            think_time_mean_s: 0.0,
            n_requests: scn.sim.prompts_per_conc as u64 * users as u64,
            sampler: Box::new(move |rng| {
                let (i, o) = spec.draw(rng);
                if let Ok(mut v) = l.lock() {
                    v.push((c, i, o));
                }
                (i, o, Category::Prose)
            }),
        });
        (a, 0.0, None)
    } else {
        let mut st = Vec::new();
        for &c in &cs {
            let cl = &scn.clients[c];
            let Load::RateRps(rate) = cl.load.scaled(load_scale) else {
                unreachable!("open clients")
            };
            let fam = streams.derived(Purpose::PoolWorkload(c as u32));
            let mut arr = fam.stream(Purpose::Arrivals);
            let first = exp_gap(&mut arr, rate);
            st.push(OpenStream {
                client: c,
                name: cl.name.clone(),
                rate_rps: rate,
                spec: cl.clone(),
                next_s: first,
                arrivals: arr,
                lengths: fam.stream(Purpose::Lengths),
            });
        }
        let src = OpenClients {
            streams: st,
            end_s: scn.sim.duration_s,
            log: log.clone(),
        };
        let w = scn.sim.warmup_frac * scn.sim.duration_s;
        (
            Arrivals::Open(Box::new(src)),
            w,
            Some(scn.sim.duration_s - w),
        )
    };
    let out = engine::run_with_router(&cfg, arrivals, 0, None, Box::new(router))?;
    let lens = log.lock().map(|v| v.clone()).unwrap_or_default();
    let front_s = design.pools[g[0]]
        .profile
        .step_law
        .as_ref()
        .map_or(0.0, |l| l.instance.params.frontend_latency_s);
    let warm_ns = crate::workload::secs_to_ns(warm_s);
    let mut last_done = vec![0u64; scn.clients.len()];
    let mut seen = vec![false; lens.len()];
    for rec in &out.records {
        let Some(&(c, i, o)) = lens.get(rec.id as usize) else {
            continue;
        };
        seen[rec.id as usize] = true;
        if rec.arrival_ns < warm_ns {
            continue;
        }
        let a = &mut acc.per[c];
        a.measured += 1;
        if rec.pool != u16::MAX && (rec.pool as usize) < g.len() {
            let k = g[rec.pool as usize];
            if design.pools[k].role == Role::Decode {
                acc.pool_share[k][c] += 1;
            }
        }
        if rec.done_ns == u64::MAX || rec.first_token_ns == u64::MAX {
            continue;
        }
        last_done[c] = last_done[c].max(rec.done_ns);
        let t = (rec.first_token_ns - rec.arrival_ns) as f64 / 1e9 + front_s;
        let e = (rec.done_ns - rec.arrival_ns) as f64 / 1e9 + front_s;
        a.ttft.push(t);
        a.e2el.push(e);
        a.in_tok += i as u64;
        a.out_tok += o as u64;
        let cl = &scn.clients[c];
        let tpot = if o > 1 {
            Some((e - t) / (o - 1) as f64)
        } else {
            None
        };
        if let Some(x) = tpot {
            a.tpot.push(x);
        }
        let ok_t = t * 1e3 <= cl.ttft_ms;
        let ok_p = match (cl.tpot_ms, tpot) {
            (Some(s), Some(x)) => x * 1e3 <= s,
            _ => true,
        };
        if ok_t && ok_p {
            a.met += 1;
        }
    }
    // Requests issued but without a record (should not happen): misses.
    for (id, &(c, _, _)) in lens.iter().enumerate() {
        acc.per[c].issued += 1;
        if !seen[id] && warm_s == 0.0 {
            acc.per[c].measured += 1;
        }
    }
    for &c in &cs {
        acc.per[c].window_s = match window {
            Some(w) => w,
            // Closed loop: first request to the last completion, plus the
            // frontend latency of each user's back-to-back requests.
            None => last_done[c] as f64 / 1e9 + front_s * scn.sim.prompts_per_conc as f64,
        };
    }
    if let Ok(r) = routed.lock() {
        for (ci, &c) in cs.iter().enumerate() {
            for (v, &n) in r[ci].iter().enumerate() {
                let k = g[entries_local[v]];
                acc.pool_share[k][c] += n;
            }
        }
    }
    let end_s = out.end_s.max(1e-9);
    for (li, &k) in g.iter().enumerate() {
        let st = &out.pools[li].total_stats;
        let w = design.pools[k].workers as f64;
        acc.pool_util[k] = (
            st.busy_ns / 1e9 / (w * end_s),
            if st.busy_ns > 0.0 {
                st.batch_ns / st.busy_ns
            } else {
                0.0
            },
        );
    }
    if let Some(t) = &out.kv_transfer {
        acc.links.push(LinkResult {
            clients: cs.iter().map(|&c| scn.clients[c].name.clone()).collect(),
            links: t.links,
            transfers: t.transfers,
            mean_gb_s: t.bytes / end_s / 1e9,
            link_utilisation: if t.links > 0 {
                t.link_busy_s / (t.links as f64 * end_s)
            } else {
                0.0
            },
            transfer_p50_ms: t.transfer.percentile_ns(50.0).unwrap_or(0.0) / 1e6,
            transfer_p99_ms: t.transfer.percentile_ns(99.0).unwrap_or(0.0) / 1e6,
        });
    }
    Ok(())
}
