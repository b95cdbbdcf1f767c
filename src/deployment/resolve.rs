//! Build a [`Scenario`] from a parsed file, checking every field: the
//! clients' lengths, loads and SLOs; each design's pools (whole-tray workers
//! of the rack's GPU, prefill pools paired with decode pools, one KV size,
//! every client served); the search's candidate shapes.

use std::path::Path;

use super::file::{ClientToml, DeploymentFile, PoolToml};
use super::model::{Client, Design, Load, Pool, Role, Scenario, SimSettings};
use super::rack::RackPreset;
use crate::error::InputError;
use crate::profile::computed::handoff_kv_bytes;
use crate::profile::{Profile, ProfileOverrides, resolve_profile};
use crate::workload::cdf::LengthCdf;
use crate::workload::lengths::LengthModel;

fn client(k: usize, c: &ClientToml) -> Result<Client, InputError> {
    let f = |x: &str| format!("clients[{k}].{x}");
    if c.name.trim().is_empty() {
        return Err(InputError::field(f("name"), "expected a non-empty name"));
    }
    let (isl, osl, lengths) = match (&c.cdf, c.isl, c.osl) {
        (None, Some(i), Some(o)) => {
            for (n, v) in [("isl", i), ("osl", o)] {
                if !(1..=1_000_000).contains(&v) {
                    return Err(InputError::field(
                        f(n),
                        format!("expected 1..=1000000 tokens, got {v}"),
                    ));
                }
            }
            if c.input_frac.is_some() {
                return Err(InputError::field(
                    f("input_frac"),
                    "input_frac splits a `cdf`; with isl/osl leave it out",
                ));
            }
            (i, o, None)
        }
        (Some(path), None, None) => {
            let frac = c.input_frac.unwrap_or(0.5);
            if !(frac.is_finite() && frac > 0.0 && frac < 1.0) {
                return Err(InputError::field(
                    f("input_frac"),
                    format!("expected a fraction in (0, 1), got {frac}"),
                ));
            }
            let cdf = LengthCdf::load(Path::new(path))?;
            if cdf.max_tokens() > 2_000_000 {
                return Err(InputError::field(
                    f("cdf"),
                    format!(
                        "{path}: lengths up to {} tokens; at most 2000000",
                        cdf.max_tokens()
                    ),
                ));
            }
            let m = LengthModel::Cdf {
                cdf,
                input_frac: frac,
            };
            let (mi, mo) = (m.mean_isl(), m.mean_osl());
            (
                mi.round().max(1.0) as u32,
                mo.round().max(1.0) as u32,
                Some(m),
            )
        }
        _ => {
            return Err(InputError::field(
                f("isl"),
                "give isl and osl (uniform lengths), or a cdf (with optional input_frac)",
            ));
        }
    };
    let load = match (c.rate_rps, c.concurrency) {
        (Some(r), None) if r.is_finite() && r > 0.0 && r <= 1e5 => Load::RateRps(r),
        (Some(r), None) => {
            return Err(InputError::field(
                f("rate_rps"),
                format!("expected a rate in (0, 1e5] req/s, got {r}"),
            ));
        }
        (None, Some(n)) if (1..=100_000).contains(&n) => Load::Concurrency(n),
        (None, Some(n)) => {
            return Err(InputError::field(
                f("concurrency"),
                format!("expected 1..=100000, got {n}"),
            ));
        }
        _ => {
            return Err(InputError::field(
                f("rate_rps"),
                "give exactly one of rate_rps (open loop) or concurrency (closed loop)",
            ));
        }
    };
    crate::scenario::check_slo_ms(&f("ttft_ms"), c.ttft_ms)?;
    let mut tpot = c.tpot_ms;
    if let Some(t) = tpot {
        crate::scenario::check_slo_ms(&f("tpot_ms"), t)?;
    }
    if let Some(i) = c.min_interactivity {
        if !(i.is_finite() && i > 0.0 && i <= 1e6) {
            return Err(InputError::field(
                f("min_interactivity"),
                format!("expected tokens/s/user in (0, 1e6], got {i}"),
            ));
        }
        tpot = Some(tpot.map_or(1000.0 / i, |t| t.min(1000.0 / i)));
    }
    Ok(Client {
        name: c.name.trim().to_string(),
        isl,
        osl,
        cdf: c.cdf.clone(),
        lengths,
        range_ratio: c.range_ratio,
        load,
        ttft_ms: c.ttft_ms,
        tpot_ms: tpot,
    })
}

/// Parse `N x SPEC` (`4xgb200:deepseek-r1:tep8:fp4`, spaces allowed around `x`).
pub fn parse_workers(field: &str, v: &str) -> Result<(u32, String), InputError> {
    let bad = || {
        InputError::field(
            field,
            format!(
                "expected N x SPEC with N in 1..=576 (e.g. 4xgb200:deepseek-r1:tep8:fp4), got `{v}`"
            ),
        )
    };
    let (n, spec) = v.split_once(['x', 'X']).ok_or_else(bad)?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    let spec = spec.trim();
    if !(1..=576).contains(&n) || spec.is_empty() {
        return Err(bad());
    }
    Ok((n, spec.to_string()))
}

/// A worker's profile on `rack`: a computed spec of the rack's GPU whose
/// GPUs fill whole trays; returns the profile and its trays per worker.
pub fn worker_profile(
    field: &str,
    spec: &str,
    rack: &RackPreset,
    chunk_tok: u32,
) -> Result<(Profile, u32), InputError> {
    let hw = spec.split(':').next().unwrap_or("");
    if !hw.eq_ignore_ascii_case(rack.hardware) {
        return Err(InputError::field(
            field,
            format!(
                "`{spec}`: the {} rack holds {} GPUs, expected a spec starting `{}:`",
                rack.name, rack.hardware, rack.hardware
            ),
        ));
    }
    let ov = ProfileOverrides {
        chunk: Some(chunk_tok),
        ..ProfileOverrides::default()
    };
    let p = resolve_profile(field, spec, &ov)?;
    let g = p.gpus_per_instance;
    if g % rack.gpus_per_tray != 0 {
        return Err(InputError::field(
            field,
            format!(
                "`{spec}` spans {g} GPUs; a worker is whole {}-GPU trays (e.g. tep4, tep8, dep16, dep32)",
                rack.gpus_per_tray
            ),
        ));
    }
    Ok((p, g / rack.gpus_per_tray))
}

fn pool(
    d: usize,
    k: usize,
    t: &PoolToml,
    rack: &RackPreset,
    chunk: u32,
    clients: &[Client],
) -> Result<Pool, InputError> {
    let f = |x: &str| format!("deployments[{d}].pools[{k}].{x}");
    let role = Role::parse(&f("role"), &t.role)?;
    let (workers, spec) = parse_workers(&f("workers"), &t.workers)?;
    if let Some(m) = t.max_tokens
        && !(1..=1_000_000).contains(&m)
    {
        return Err(InputError::field(
            f("max_tokens"),
            format!("expected 1..=1000000 tokens, got {m}"),
        ));
    }
    if let Some(b) = t.max_batch
        && !(1..=100_000).contains(&b)
    {
        return Err(InputError::field(
            f("max_batch"),
            format!("expected 1..=100000, got {b}"),
        ));
    }
    let (profile, trays_per_worker) =
        worker_profile(&f("workers"), &spec, rack, t.max_tokens.unwrap_or(chunk))?;
    let mut cs = Vec::new();
    for name in &t.clients {
        let i = clients
            .iter()
            .position(|c| &c.name == name)
            .ok_or_else(|| {
                InputError::field(
                    f("clients"),
                    format!("no client named `{name}` in [[clients]]"),
                )
            })?;
        cs.push(i);
    }
    if role == Role::Decode && !cs.is_empty() {
        return Err(InputError::field(
            f("clients"),
            "a decode pool is reached through its prefill pools; list the clients there",
        ));
    }
    if role != Role::Prefill && t.decode.is_some() {
        return Err(InputError::field(
            f("decode"),
            "only a prefill pool names a decode pool",
        ));
    }
    Ok(Pool {
        name: t.name.clone(),
        role,
        spec,
        workers,
        profile,
        trays_per_worker,
        decode: None,
        clients: cs,
        max_batch: t.max_batch,
    })
}

/// Validate a design's pools: names unique, prefill pools paired with decode
/// pools, every client with an entry pool, one KV size.
pub fn check_design(
    d: usize,
    name: &str,
    pools: &mut [Pool],
    decode_names: &[Option<String>],
    clients: &[Client],
) -> Result<f64, InputError> {
    let f = |k: usize, x: &str| format!("deployments[{d}].pools[{k}].{x}");
    for k in 0..pools.len() {
        if pools[..k].iter().any(|p| p.name == pools[k].name) {
            return Err(InputError::field(
                f(k, "name"),
                format!("two pools are called `{}`", pools[k].name),
            ));
        }
    }
    let mut kv: Option<f64> = None;
    for k in 0..pools.len() {
        if pools[k].role != Role::Prefill {
            continue;
        }
        let Some(dn) = &decode_names[k] else {
            return Err(InputError::field(
                f(k, "decode"),
                "a prefill pool names the decode pool its KV caches go to",
            ));
        };
        let j = pools
            .iter()
            .position(|p| &p.name == dn && p.role == Role::Decode)
            .ok_or_else(|| {
                InputError::field(
                    f(k, "decode"),
                    format!("no decode pool named `{dn}` in this design"),
                )
            })?;
        let b = handoff_kv_bytes(
            (&f(k, "workers"), &pools[k].spec),
            (&f(j, "workers"), &pools[j].spec),
        )?;
        if kv.is_some_and(|x| (x - b).abs() > 0.5) {
            return Err(InputError::field(
                f(k, "workers"),
                "every pool of a design serves the same model (one KV size)",
            ));
        }
        kv = Some(b);
        pools[k].decode = Some(j);
    }
    for (j, p) in pools.iter().enumerate() {
        if p.role == Role::Decode && !pools.iter().any(|q| q.decode == Some(j)) {
            return Err(InputError::field(
                f(j, "name"),
                format!("decode pool `{}` has no prefill pool feeding it", p.name),
            ));
        }
        if p.role != Role::Decode && p.clients.is_empty() {
            return Err(InputError::field(
                f(j, "clients"),
                format!("pool `{}` serves no client", p.name),
            ));
        }
    }
    for c in clients {
        if !pools
            .iter()
            .any(|p| p.clients.iter().any(|&i| clients[i].name == c.name))
        {
            return Err(InputError::field(
                format!("deployments[{d}].pools"),
                format!("design `{name}` gives client `{}` no pool", c.name),
            ));
        }
    }
    Ok(
        kv.unwrap_or(crate::profile::computed::kv_bytes_per_token_of(
            "workers",
            &pools[0].spec,
        )?),
    )
}

/// Validate a parsed file; `path` names it in errors about the whole file.
pub fn resolve(path: &Path, file: DeploymentFile) -> Result<Scenario, InputError> {
    let rack = RackPreset::lookup(&file.rack).ok_or_else(|| {
        InputError::field(
            "rack",
            format!(
                "unknown rack `{}`; expected one of {}",
                file.rack,
                RackPreset::names()
            ),
        )
    })?;
    let s = &file.sim;
    if !(s.duration_s.is_finite() && (1.0..=1e6).contains(&s.duration_s)) {
        return Err(InputError::field(
            "sim.duration_s",
            format!("expected 1 to 1e6 s, got {}", s.duration_s),
        ));
    }
    if !(s.warmup_frac.is_finite() && (0.0..0.9).contains(&s.warmup_frac)) {
        return Err(InputError::field(
            "sim.warmup_frac",
            format!("expected a fraction in [0, 0.9), got {}", s.warmup_frac),
        ));
    }
    if !(1..=1000).contains(&s.prompts_per_conc) {
        return Err(InputError::field(
            "sim.prompts_per_conc",
            format!("expected 1..=1000, got {}", s.prompts_per_conc),
        ));
    }
    if !(s.slo_target.is_finite() && s.slo_target > 0.0 && s.slo_target <= 1.0) {
        return Err(InputError::field(
            "sim.slo_target",
            format!("expected a fraction in (0, 1], got {}", s.slo_target),
        ));
    }
    if !(1..=1_000_000).contains(&s.max_num_batched_tokens) {
        return Err(InputError::field(
            "sim.max_num_batched_tokens",
            format!(
                "expected 1..=1000000 tokens, got {}",
                s.max_num_batched_tokens
            ),
        ));
    }
    if file.clients.is_empty() {
        return Err(InputError::File {
            path: path.to_path_buf(),
            reason: "`clients`: expected at least one [[clients]] table".into(),
        });
    }
    let clients = file
        .clients
        .iter()
        .enumerate()
        .map(|(k, c)| client(k, c))
        .collect::<Result<Vec<_>, _>>()?;
    for k in 0..clients.len() {
        if clients[..k].iter().any(|c| c.name == clients[k].name) {
            return Err(InputError::field(
                format!("clients[{k}].name"),
                format!("two clients are called `{}`", clients[k].name),
            ));
        }
    }
    let mut designs = Vec::new();
    for (d, t) in file.deployments.iter().enumerate() {
        if t.pools.is_empty() {
            return Err(InputError::field(
                format!("deployments[{d}].pools"),
                "expected at least one pool",
            ));
        }
        if designs.iter().any(|x: &Design| x.name == t.name) {
            return Err(InputError::field(
                format!("deployments[{d}].name"),
                format!("two designs are called `{}`", t.name),
            ));
        }
        let mut pools = t
            .pools
            .iter()
            .enumerate()
            .map(|(k, p)| pool(d, k, p, rack, s.max_num_batched_tokens, &clients))
            .collect::<Result<Vec<_>, _>>()?;
        let decode_names: Vec<Option<String>> = t.pools.iter().map(|p| p.decode.clone()).collect();
        let kv = check_design(d, &t.name, &mut pools, &decode_names, &clients)?;
        designs.push(Design {
            name: t.name.clone(),
            note: t.note.clone(),
            pools,
            kv_bytes_per_token: kv,
        });
    }
    if let Some(p) = &file.rack_plan {
        if p.prefill.is_empty() || p.decode.is_empty() {
            return Err(InputError::field(
                "rack_plan.prefill",
                "expected at least one prefill and one decode worker spec",
            ));
        }
        if !(1..=64).contains(&p.verify_top) {
            return Err(InputError::field(
                "rack_plan.verify_top",
                format!("expected 1..=64, got {}", p.verify_top),
            ));
        }
        if !(1..=72).contains(&p.max_workers) {
            return Err(InputError::field(
                "rack_plan.max_workers",
                format!("expected 1..=72, got {}", p.max_workers),
            ));
        }
    }
    Ok(Scenario {
        description: file.description,
        rack,
        seed: file.seed,
        sim: SimSettings {
            duration_s: s.duration_s,
            warmup_frac: s.warmup_frac,
            prompts_per_conc: s.prompts_per_conc,
            slo_target: s.slo_target,
            chunk_tok: s.max_num_batched_tokens,
        },
        clients,
        designs,
        plan: file.rack_plan,
    })
}

/// Load and validate a scenario file.
pub fn load(path: &Path) -> Result<Scenario, InputError> {
    resolve(path, DeploymentFile::load(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_parse_with_or_without_spaces() {
        assert_eq!(
            parse_workers("w", "4xgb200:deepseek-r1:tep8:fp4").unwrap(),
            (4, "gb200:deepseek-r1:tep8:fp4".to_string())
        );
        assert_eq!(parse_workers("w", "2 x gb200:m").unwrap().0, 2);
        for bad in ["x", "0xgb200:m", "gb200:m", "4x", "999xgb200:m"] {
            assert!(parse_workers("w", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn workers_fill_whole_trays() {
        let rack = RackPreset::lookup("gb200-nvl72").unwrap();
        let (_, t) = worker_profile("w", "gb200:deepseek-r1:dep32:fp4", rack, 8192).unwrap();
        assert_eq!(t, 8);
        let (_, t) = worker_profile("w", "gb200:deepseek-r1:tep4:fp4", rack, 8192).unwrap();
        assert_eq!(t, 1);
        assert!(worker_profile("w", "gb200:deepseek-r1:tp2:fp4", rack, 8192).is_err());
        assert!(worker_profile("w", "h100-sxm:deepseek-r1:tp8:fp4", rack, 8192).is_err());
    }
}
