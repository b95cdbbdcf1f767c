//! Multi-pool fleet files: the reference tool's JSON
//! (`pools[{id, gpu, n_gpus, max_ctx}]`, `router`, optional
//! `workloads{pool: {cdf, lam_frac}}`) or a kvfleet scenario TOML.
//!
//! In the JSON, keys starting with `_` are comments; any other unknown key is
//! an error. `n_gpus` is the number of serving instances (each preset
//! instance is one GPU). A workload's CDF path is looked up, in order,
//! relative to the fleet file's folder, its parent folder, and as a bare file
//! name in the fleet file's folder and its `cdf/` subfolder (the reference
//! repository's layout differs from where its files are usually copied); an
//! error names every place tried.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kvfleet_routers::RouterSpec;
use serde::Deserialize;
use serde_json::Value;

use crate::engine::dispatch::DispatchPolicy;
use crate::error::InputError;
use crate::profile::ProfileOverrides;
use crate::scenario::{PoolSpec, PoolWorkloadSpec, RunSpec, Scenario};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetJson {
    pools: Vec<PoolJson>,
    #[serde(default)]
    router: Option<RouterField>,
    #[serde(default)]
    workloads: BTreeMap<String, PoolWorkloadJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolJson {
    id: String,
    gpu: String,
    n_gpus: u32,
    max_ctx: u32,
    #[serde(default)]
    dispatch: DispatchPolicy,
    #[serde(default)]
    max_queue: Option<u32>,
    #[serde(default)]
    max_num_seqs: Option<u32>,
    #[serde(default)]
    models: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RouterField {
    Kind(String),
    Spec(RouterSpec),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolWorkloadJson {
    cdf: PathBuf,
    lam_frac: f64,
}

/// Drop `_comment`-style keys everywhere.
fn strip_comments(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('_'));
            m.values_mut().for_each(strip_comments);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_comments),
        _ => {}
    }
}

fn find_cdf(base: &Path, p: &Path) -> Result<PathBuf, InputError> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let name = p
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| p.to_path_buf());
    let candidates = [
        base.join(p),
        base.join("..").join(p),
        base.join(&name),
        base.join("cdf").join(&name),
    ];
    if let Some(found) = candidates.iter().find(|c| c.is_file()) {
        return Ok(found.clone());
    }
    if crate::workload::builtin_cdf::lookup(p).is_some() {
        // A built-in name (or the reference's data/azure_cdf.json spelling).
        return Ok(p.to_path_buf());
    }
    Err(InputError::Field {
        field: format!("workloads: cdf `{}`", p.display()),
        reason: format!(
            "file not found; looked for {}",
            candidates
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// Load a fleet file (`.json` in the reference layout, otherwise a scenario TOML).
pub fn load_fleet(path: &Path) -> Result<Scenario, InputError> {
    if path.extension().is_some_and(|e| e != "json") {
        return Scenario::load(path);
    }
    let file_err = |reason: String| InputError::File {
        path: path.to_path_buf(),
        reason,
    };
    let text = crate::input_file::read_text(path)?;
    let mut v: Value = serde_json::from_str(&text).map_err(|e| file_err(e.to_string()))?;
    strip_comments(&mut v);
    let f: FleetJson = serde_json::from_value(v).map_err(|e| file_err(e.to_string()))?;
    if f.pools.is_empty() {
        return Err(file_err("`pools`: expected at least one pool".into()));
    }
    let router = match f.router {
        None => RouterSpec::length(),
        Some(RouterField::Spec(s)) => s,
        Some(RouterField::Kind(k)) => RouterSpec::default_for(&k).ok_or_else(|| {
            file_err(format!(
                "`router`: unknown router `{k}`; expected one of {}",
                RouterSpec::KINDS.join(", ")
            ))
        })?,
    };
    // The reference layout's key is `n_gpus`: name it (not the scenario's `instances`).
    let max = crate::scenario::MAX_INSTANCES_PER_POOL;
    if let Some((i, p)) = f
        .pools
        .iter()
        .enumerate()
        .find(|(_, p)| !(1..=max).contains(&p.n_gpus))
    {
        return Err(file_err(format!(
            "`pools[{i}].n_gpus`: expected 1 to {max} instances, got {}",
            p.n_gpus
        )));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut workloads = BTreeMap::new();
    for (id, w) in f.workloads {
        workloads.insert(
            id,
            PoolWorkloadSpec {
                cdf: find_cdf(base, &w.cdf)?,
                lam_frac: w.lam_frac,
            },
        );
    }
    let scenario = Scenario {
        description: None,
        workload: Default::default(),
        pools: f
            .pools
            .into_iter()
            .map(|p| PoolSpec {
                id: p.id,
                gpu: p.gpu,
                instances: p.n_gpus,
                max_ctx: p.max_ctx,
                dispatch: p.dispatch,
                max_queue: p.max_queue,
                max_num_seqs: p.max_num_seqs,
                models: p.models,
                profile: ProfileOverrides::default(),
            })
            .collect(),
        router,
        sim: RunSpec::default(),
        workloads,
        events: Vec::new(),
        windows: Vec::new(),
        disagg: None,
    };
    scenario.check_pools_and_shares(path)?;
    Ok(scenario)
}
