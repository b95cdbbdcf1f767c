//! Readers for measured sweeps: NAT `calc_runner_output.json`, a NAT output
//! directory of jobs, or a CSV.
//!
//! * **NAT JSON**: top-level `calc_data`, keyed by concurrency, each with
//!   `sizing_metrics` (`llm_latency_p95`, `workflow_runtime_p95`,
//!   `total_runtime`, `alerts.workflow_interrupted`, `per_item_metrics`).
//!   A missing or `null` p95 is read as "not measured" (the point is then
//!   excluded from the fits, as NAT does with its default of 0); a value of
//!   the wrong type, a negative time or a missing `calc_data` /
//!   `sizing_metrics` is bad input.
//! * **Job directory**: a NAT `--calc_output_dir` (its `online/`
//!   subdirectory is used when present) or any directory of `job_*`
//!   subdirectories each holding `calc_runner_output.json`. For each
//!   concurrency the newest job that has it wins. A job's time is the number
//!   in its name when the name is `job_<unix seconds>` (NAT's default
//!   naming), otherwise the modification time of its
//!   `calc_runner_output.json`; equal times fall back to the name, larger
//!   first. A directory holding `calc_runner_output.json` itself and no jobs
//!   is read as one file.
//! * **CSV** ([`super::csv_input`]): header row with `concurrency`, `llm_latency_p95`,
//!   `workflow_runtime_p95`, `total_runtime` and optionally `interrupted`
//!   (true/false/1/0/yes/no); other columns are ignored, `#` starts a comment
//!   line, an empty time cell means "not measured".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde_json::{Map, Value};

use super::{ItemMetrics, SweepPoint};
use crate::error::InputError;

/// File name NAT writes in each job directory.
pub const NAT_OUTPUT_FILE: &str = "calc_runner_output.json";

/// A sweep read from disk.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadedSweep {
    /// The points, ascending concurrency, unique.
    pub points: Vec<SweepPoint>,
    /// Which file each concurrency came from.
    pub sources: BTreeMap<u32, String>,
    /// Remarks worth telling the user (skipped job directories).
    pub notes: Vec<String>,
}

/// Read a NAT JSON file, a job directory or a CSV (see the module docs).
pub fn load(path: &Path) -> Result<LoadedSweep, InputError> {
    let meta = std::fs::metadata(path).map_err(|e| cannot_read(path, &e))?;
    if meta.is_dir() {
        return load_dir(path);
    }
    let text = read(path)?;
    if text.trim().is_empty() {
        return Err(InputError::EmptyFile {
            path: path.to_path_buf(),
            expected: "NAT calc_runner_output.json or a CSV of concurrency measurements".into(),
        });
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let is_json = match ext.as_deref() {
        Some("json") => true,
        Some("csv") => false,
        _ => text.trim_start().starts_with('{'),
    };
    let points = if is_json {
        parse_nat_json(path, &text)?
    } else {
        super::csv_input::parse_csv(path, &text)?
    };
    let source = path.display().to_string();
    Ok(LoadedSweep {
        sources: points
            .iter()
            .map(|p| (p.concurrency, source.clone()))
            .collect(),
        points,
        notes: Vec::new(),
    })
}

/// An unreadable file or directory. (`InputError::Io` would print the OS
/// error twice under `{:#}`, once in its message and once as its source.)
fn cannot_read(path: &Path, e: &std::io::Error) -> InputError {
    InputError::File {
        path: path.to_path_buf(),
        reason: format!("cannot read: {e}"),
    }
}

fn read(path: &Path) -> Result<String, InputError> {
    crate::input_file::read_text(path)
}

pub(super) fn entry_err(path: &Path, location: String, reason: impl Into<String>) -> InputError {
    InputError::FileEntry {
        path: path.to_path_buf(),
        location,
        reason: reason.into(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn get_object<'a>(
    path: &Path,
    obj: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<&'a Map<String, Value>, InputError> {
    let field = if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    };
    match obj.get(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(entry_err(
            path,
            format!("field `{field}`"),
            format!("expected an object, got {}", type_name(other)),
        )),
        None => Err(entry_err(
            path,
            format!("field `{field}`"),
            "missing; expected NAT calc_runner_output.json layout",
        )),
    }
}

/// An optional non-negative time in seconds.
fn get_seconds(
    path: &Path,
    obj: &Map<String, Value>,
    key: &str,
    at: &str,
    required: bool,
) -> Result<Option<f64>, InputError> {
    let loc = || format!("field `{at}.{key}`");
    match obj.get(key) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(entry_err(path, loc(), "missing; expected seconds")),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
            _ => Err(entry_err(
                path,
                loc(),
                format!("expected seconds >= 0, got {n}"),
            )),
        },
        Some(other) => Err(entry_err(
            path,
            loc(),
            format!("expected a number of seconds, got {}", type_name(other)),
        )),
    }
}

pub(super) fn parse_concurrency(s: &str) -> Option<u32> {
    s.trim().parse::<u32>().ok().filter(|&c| c > 0)
}

/// Parse the text of a NAT `calc_runner_output.json`.
pub fn parse_nat_json(path: &Path, text: &str) -> Result<Vec<SweepPoint>, InputError> {
    let value: Value = serde_json::from_str(text).map_err(|e| InputError::File {
        path: path.to_path_buf(),
        reason: format!("invalid JSON: {e}"),
    })?;
    let Value::Object(top) = &value else {
        return Err(InputError::File {
            path: path.to_path_buf(),
            reason: format!(
                "expected a JSON object at the top level, got {}",
                type_name(&value)
            ),
        });
    };
    let calc = get_object(path, top, "calc_data", "")?;
    let mut points = Vec::with_capacity(calc.len());
    for (key, entry) in calc {
        let at = format!("calc_data.{key}");
        let concurrency = parse_concurrency(key).ok_or_else(|| {
            entry_err(
                path,
                format!("field `{at}`"),
                "key must be a positive integer concurrency",
            )
        })?;
        let Value::Object(entry) = entry else {
            return Err(entry_err(
                path,
                format!("field `{at}`"),
                format!("expected an object, got {}", type_name(entry)),
            ));
        };
        let sm = get_object(path, entry, "sizing_metrics", &at)?;
        let at = format!("{at}.sizing_metrics");
        let interrupted = match sm.get("alerts") {
            None | Some(Value::Null) => false,
            Some(Value::Object(alerts)) => match alerts.get("workflow_interrupted") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(entry_err(
                        path,
                        format!("field `{at}.alerts.workflow_interrupted`"),
                        format!("expected true or false, got {}", type_name(other)),
                    ));
                }
            },
            Some(other) => {
                return Err(entry_err(
                    path,
                    format!("field `{at}.alerts`"),
                    format!("expected an object, got {}", type_name(other)),
                ));
            }
        };
        points.push(SweepPoint {
            concurrency,
            llm_latency_p95_s: get_seconds(path, sm, "llm_latency_p95", &at, false)?,
            workflow_runtime_p95_s: get_seconds(path, sm, "workflow_runtime_p95", &at, false)?,
            total_runtime_s: get_seconds(path, sm, "total_runtime", &at, false)?,
            workflow_interrupted: interrupted,
            items: parse_items(path, sm, &at)?,
        });
    }
    points.sort_by_key(|p| p.concurrency);
    Ok(points)
}

fn parse_items(
    path: &Path,
    sm: &Map<String, Value>,
    at: &str,
) -> Result<Vec<ItemMetrics>, InputError> {
    let items = match sm.get("per_item_metrics") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(entry_err(
                path,
                format!("field `{at}.per_item_metrics`"),
                format!(
                    "expected an object keyed by item id, got {}",
                    type_name(other)
                ),
            ));
        }
    };
    let at = format!("{at}.per_item_metrics");
    let mut out = Vec::with_capacity(items.len());
    for (id, v) in items {
        let item_at = format!("{at}.{id}");
        let Value::Object(m) = v else {
            return Err(entry_err(
                path,
                format!("field `{item_at}`"),
                format!("expected an object, got {}", type_name(v)),
            ));
        };
        let need = |key| -> Result<f64, InputError> {
            Ok(get_seconds(path, m, key, &item_at, true)?.unwrap_or_default())
        };
        out.push(ItemMetrics {
            id: id.clone(),
            llm_latency_s: need("llm_latency")?,
            workflow_runtime_s: need("workflow_runtime")?,
        });
    }
    Ok(out)
}

struct Job {
    name: String,
    file: PathBuf,
    time_s: f64,
}

fn job_time_s(name: &str, file: &Path) -> f64 {
    if let Some(secs) = name
        .strip_prefix("job_")
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<f64>().ok())
    {
        return secs;
    }
    std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Read a directory of NAT jobs; for each concurrency the newest job wins.
pub fn load_dir(dir: &Path) -> Result<LoadedSweep, InputError> {
    let online = dir.join("online");
    let root = if online.is_dir() {
        online
    } else {
        dir.to_path_buf()
    };
    let io = |e: std::io::Error| cannot_read(&root, &e);
    let mut jobs = Vec::new();
    let mut notes = Vec::new();
    for entry in std::fs::read_dir(&root).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("job_") || !entry.path().is_dir() {
            continue;
        }
        let file = entry.path().join(NAT_OUTPUT_FILE);
        if !file.is_file() {
            notes.push(format!(
                "skipped {}: no {NAT_OUTPUT_FILE}",
                entry.path().display()
            ));
            continue;
        }
        jobs.push(Job {
            time_s: job_time_s(&name, &file),
            name,
            file,
        });
    }
    if jobs.is_empty() {
        let single = root.join(NAT_OUTPUT_FILE);
        if single.is_file() {
            return load(&single);
        }
        return Err(InputError::EmptyFile {
            path: dir.to_path_buf(),
            expected: format!(
                "job_* directories holding {NAT_OUTPUT_FILE} (a NAT --calc_output_dir, its \
                 online/ subdirectory) or {NAT_OUTPUT_FILE} itself"
            ),
        });
    }
    jobs.sort_by(|a, b| {
        b.time_s
            .total_cmp(&a.time_s)
            .then_with(|| b.name.cmp(&a.name))
    });
    let mut by_concurrency: BTreeMap<u32, SweepPoint> = BTreeMap::new();
    let mut sources = BTreeMap::new();
    for job in &jobs {
        let points = parse_nat_json(&job.file, &read(&job.file)?)?;
        for p in points {
            if let std::collections::btree_map::Entry::Vacant(slot) =
                by_concurrency.entry(p.concurrency)
            {
                sources.insert(p.concurrency, job.file.display().to_string());
                slot.insert(p);
            }
        }
    }
    Ok(LoadedSweep {
        points: by_concurrency.into_values().collect(),
        sources,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> PathBuf {
        PathBuf::from(path)
    }

    fn err_text(r: Result<Vec<SweepPoint>, InputError>) -> String {
        r.expect_err("should fail").to_string()
    }

    #[test]
    fn nat_json_minimal_and_defaults() {
        let text = r#"{"calc_data": {
            "2": {"sizing_metrics": {"llm_latency_p95": 1.5, "workflow_runtime_p95": 4.0,
                   "total_runtime": 9.0, "alerts": {"workflow_interrupted": true},
                   "per_item_metrics": {"7": {"llm_latency": 1.0, "workflow_runtime": 3.0}}}},
            "1": {"sizing_metrics": {"workflow_runtime_p95": 3.0}}
        }}"#;
        let pts = parse_nat_json(&p("x.json"), text).unwrap();
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[0].concurrency, 1);
        assert_eq!(pts[0].llm_latency_p95_s, None);
        assert!(!pts[0].workflow_interrupted);
        assert!(pts[1].workflow_interrupted);
        assert_eq!(pts[1].items.len(), 1);
        assert_eq!(pts[1].items[0].id, "7");
    }

    #[test]
    fn nat_json_errors_name_the_field() {
        let bad = err_text(parse_nat_json(&p("a.json"), "{nope"));
        assert!(bad.starts_with("a.json: invalid JSON"), "{bad}");
        let e = err_text(parse_nat_json(&p("a.json"), r#"{"gpu_estimates": {}}"#));
        assert!(
            e.contains("field `calc_data`") && e.contains("missing"),
            "{e}"
        );
        let e = err_text(parse_nat_json(&p("a.json"), r#"{"calc_data": {"x": {}}}"#));
        assert!(e.contains("`calc_data.x`"), "{e}");
        let e = err_text(parse_nat_json(&p("a.json"), r#"{"calc_data": {"4": {}}}"#));
        assert!(e.contains("`calc_data.4.sizing_metrics`"), "{e}");
        let e = err_text(parse_nat_json(
            &p("a.json"),
            r#"{"calc_data": {"4": {"sizing_metrics": {"llm_latency_p95": "fast"}}}}"#,
        ));
        assert!(
            e.contains("`calc_data.4.sizing_metrics.llm_latency_p95`") && e.contains("a string"),
            "{e}"
        );
        let e = err_text(parse_nat_json(
            &p("a.json"),
            r#"{"calc_data": {"4": {"sizing_metrics": {"workflow_runtime_p95": -1}}}}"#,
        ));
        assert!(e.contains(">= 0"), "{e}");
        let e = err_text(parse_nat_json(
            &p("a.json"),
            r#"{"calc_data": {"4": {"sizing_metrics": {"per_item_metrics": {"q1": {"llm_latency": 1}}}}}}"#,
        ));
        assert!(
            e.contains("per_item_metrics.q1.workflow_runtime") && e.contains("missing"),
            "{e}"
        );
    }

    #[test]
    fn job_time_from_name_or_mtime() {
        assert_eq!(
            job_time_s("job_1700000000", Path::new("/nonexistent")),
            1.7e9
        );
        assert_eq!(job_time_s("job_abc", Path::new("/nonexistent")), 0.0);
    }

    #[test]
    fn uuid_jobs_are_ordered_by_file_mtime() {
        let dir = std::env::temp_dir().join(format!("kvfleet-sizing-mtime-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let body = |wf: f64| {
            format!(
                r#"{{"calc_data": {{"1": {{"sizing_metrics": {{"llm_latency_p95": 1.0, "workflow_runtime_p95": {wf}}}}}}}}}"#
            )
        };
        for (name, wf, secs) in [("job_bbb", 1.0, 1_000u64), ("job_aaa", 2.0, 2_000u64)] {
            let job = dir.join(name);
            std::fs::create_dir_all(&job).unwrap();
            let file = job.join(NAT_OUTPUT_FILE);
            std::fs::write(&file, body(wf)).unwrap();
            let f = std::fs::File::options().write(true).open(&file).unwrap();
            f.set_modified(UNIX_EPOCH + std::time::Duration::from_secs(secs))
                .unwrap();
        }
        let loaded = load_dir(&dir).unwrap();
        // job_aaa has the later mtime, so it wins despite sorting first by name
        assert_eq!(loaded.points[0].workflow_runtime_p95_s, Some(2.0));
        assert!(loaded.sources[&1].contains("job_aaa"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
