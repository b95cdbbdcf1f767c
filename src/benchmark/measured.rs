//! Measured serving-benchmark rows: the CSV layout of `data/measured/`
//! (InferenceMAX rows flattened, one per line) and InferenceMAX's own
//! `agg_bmk.json` (an array of row objects with the benchmark's field
//! names), and the comparison of simulated rows with them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::BenchRow;
use crate::error::InputError;

/// Fields compared, in InferenceMAX's names (times in seconds).
pub const FIELDS: [&str; 15] = [
    "tput_per_gpu",
    "output_tput_per_gpu",
    "input_tput_per_gpu",
    "mean_ttft",
    "median_ttft",
    "p99_ttft",
    "mean_tpot",
    "median_tpot",
    "p99_tpot",
    "mean_itl",
    "mean_intvty",
    "median_intvty",
    "mean_e2el",
    "median_e2el",
    "p99_e2el",
];

/// Column names of the `data/measured/` CSV and the field each one is.
const CSV_COLUMNS: [(&str, &str); 7] = [
    ("throughput_tokens_per_sec_per_gpu", "tput_per_gpu"),
    ("output_throughput_per_gpu", "output_tput_per_gpu"),
    ("mean_time_to_first_token_sec", "mean_ttft"),
    ("p99_time_to_first_token_sec", "p99_ttft"),
    ("mean_time_per_output_token_sec", "mean_tpot"),
    ("mean_end_to_end_latency_sec", "mean_e2el"),
    ("median_end_to_end_latency_sec", "median_e2el"),
];

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct MeasuredRow {
    /// Line (CSV, 1-based) or index (JSON) in the file.
    pub line: usize,
    /// GPU as the file names it (`h100`), if given.
    pub gpu: Option<String>,
    /// Framework (`vllm`), if given.
    pub framework: Option<String>,
    /// Precision (`fp4`), if given.
    pub precision: Option<String>,
    /// Input length N, tokens.
    pub isl: u32,
    /// Output length N, tokens.
    pub osl: u32,
    /// Tensor-parallel degree, if given.
    pub tp: Option<u32>,
    /// Expert-parallel degree, if given.
    pub ep: Option<u32>,
    /// Concurrency.
    pub conc: u32,
    /// Measured fields by [`FIELDS`] name.
    pub fields: BTreeMap<String, f64>,
}

impl BenchRow {
    /// A field by its InferenceMAX name.
    pub fn field(&self, name: &str) -> Option<f64> {
        Some(match name {
            "tput_per_gpu" => self.tput_per_gpu,
            "output_tput_per_gpu" => self.output_tput_per_gpu,
            "input_tput_per_gpu" => self.input_tput_per_gpu,
            "mean_ttft" => self.mean_ttft,
            "median_ttft" => self.median_ttft,
            "p99_ttft" => self.p99_ttft,
            "mean_tpot" => self.mean_tpot,
            "median_tpot" => self.median_tpot,
            "p99_tpot" => self.p99_tpot,
            "mean_itl" => self.mean_itl,
            "mean_intvty" => self.mean_intvty,
            "median_intvty" => self.median_intvty,
            "mean_e2el" => self.mean_e2el,
            "median_e2el" => self.median_e2el,
            "p99_e2el" => self.p99_e2el,
            _ => return None,
        })
    }
}

fn bad(path: &Path, reason: String) -> InputError {
    InputError::File {
        path: path.to_path_buf(),
        reason,
    }
}

/// Read measured rows from a CSV (the `data/measured/` layout) or an
/// InferenceMAX `agg_bmk.json`.
pub fn read_measured(path: &Path) -> Result<Vec<MeasuredRow>, InputError> {
    let text = crate::input_file::read_text(path)?;
    parse_measured(path, &text)
}

/// Parse measured rows from `text` (CSV or JSON); `path` names it in errors.
pub fn parse_measured(path: &Path, text: &str) -> Result<Vec<MeasuredRow>, InputError> {
    let text = text.to_string();
    let rows = if text.trim_start().starts_with(['[', '{']) {
        parse_json(path, &text)?
    } else {
        parse_csv(path, &text)?
    };
    if rows.is_empty() {
        return Err(InputError::EmptyFile {
            path: path.to_path_buf(),
            expected: "measured benchmark rows".into(),
        });
    }
    Ok(rows)
}

fn whole(path: &Path, at: &str, col: &str, v: f64) -> Result<u32, InputError> {
    if v.is_finite() && v >= 1.0 && v.fract() == 0.0 && v <= 1e7 {
        Ok(v as u32)
    } else {
        Err(bad(
            path,
            format!("{at}: `{col}` must be a whole number ≥ 1, got {v}"),
        ))
    }
}

fn finish(mut fields: BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    // Interactivity is 1 / mean TPOT (the data's README and InferenceMAX).
    if let (None, Some(&t)) = (fields.get("mean_intvty"), fields.get("mean_tpot"))
        && t > 0.0
    {
        fields.insert("mean_intvty".into(), 1.0 / t);
    }
    fields
}

fn parse_csv(path: &Path, text: &str) -> Result<Vec<MeasuredRow>, InputError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Ok(vec![]);
    };
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let idx = |name: &str| cols.iter().position(|c| *c == name);
    let need = |name: &str| {
        idx(name).ok_or_else(|| {
            bad(
                path,
                format!("header lacks column `{name}` (expected the data/measured/ CSV layout: input_seq_len, output_seq_len, tensor_parallel, concurrency, throughput_tokens_per_sec_per_gpu, ...)"),
            )
        })
    };
    let (ci, co, cc) = (
        need("input_seq_len")?,
        need("output_seq_len")?,
        need("concurrency")?,
    );
    let mut rows = vec![];
    for (n, line) in lines {
        let at = format!("line {}", n + 1);
        let vals: Vec<&str> = line.split(',').map(str::trim).collect();
        if vals.len() != cols.len() {
            return Err(bad(
                path,
                format!("{at}: {} fields, the header has {}", vals.len(), cols.len()),
            ));
        }
        let num = |i: usize| -> Result<f64, InputError> {
            vals[i].parse::<f64>().map_err(|_| {
                bad(
                    path,
                    format!("{at}: `{}` is not a number: `{}`", cols[i], vals[i]),
                )
            })
        };
        let opt_whole = |name: &str| -> Result<Option<u32>, InputError> {
            match idx(name) {
                Some(i) if !vals[i].is_empty() => Ok(Some(whole(path, &at, name, num(i)?)?)),
                _ => Ok(None),
            }
        };
        let text_col = |name: &str| idx(name).map(|i| vals[i].to_string());
        let mut fields = BTreeMap::new();
        for (c, f) in CSV_COLUMNS {
            if let Some(i) = idx(c) {
                fields.insert(f.to_string(), num(i)?);
            }
        }
        for f in FIELDS {
            if let Some(i) = idx(f) {
                fields.insert(f.to_string(), num(i)?);
            }
        }
        rows.push(MeasuredRow {
            line: n + 1,
            gpu: text_col("gpu_model"),
            framework: text_col("framework"),
            precision: text_col("precision"),
            isl: whole(path, &at, "input_seq_len", num(ci)?)?,
            osl: whole(path, &at, "output_seq_len", num(co)?)?,
            tp: opt_whole("tensor_parallel")?,
            ep: opt_whole("expert_parallel")?,
            conc: whole(path, &at, "concurrency", num(cc)?)?,
            fields: finish(fields),
        });
    }
    Ok(rows)
}

fn parse_json(path: &Path, text: &str) -> Result<Vec<MeasuredRow>, InputError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(path, format!("not valid JSON: {e}")))?;
    let arr = match &v {
        serde_json::Value::Array(a) => a.clone(),
        serde_json::Value::Object(o) => match o.get("rows") {
            Some(serde_json::Value::Array(a)) => a.clone(),
            _ => vec![v.clone()],
        },
        _ => return Err(bad(path, "expected an array of benchmark rows".into())),
    };
    let mut rows = vec![];
    for (i, r) in arr.iter().enumerate() {
        let at = format!("row {i}");
        let num = |keys: &[&str]| -> Option<f64> {
            keys.iter().find_map(|k| match r.get(*k)? {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            })
        };
        let text_of = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| r.get(*k).and_then(|x| x.as_str()).map(str::to_string))
        };
        let req = |keys: &[&str]| -> Result<u32, InputError> {
            let v = num(keys).ok_or_else(|| {
                bad(
                    path,
                    format!(
                        "{at}: missing `{}` (expected InferenceMAX agg_bmk.json rows)",
                        keys[0]
                    ),
                )
            })?;
            whole(path, &at, keys[0], v)
        };
        let mut fields = BTreeMap::new();
        for f in FIELDS {
            if let Some(x) = num(&[f]) {
                fields.insert(f.to_string(), x);
            }
        }
        let opt = |keys: &[&str]| -> Result<Option<u32>, InputError> {
            num(keys).map(|v| whole(path, &at, keys[0], v)).transpose()
        };
        rows.push(MeasuredRow {
            line: i,
            gpu: text_of(&["hw", "gpu", "gpu_model"]),
            framework: text_of(&["framework", "infmax_framework"]),
            precision: text_of(&["precision"]),
            isl: req(&["isl", "input_seq_len"])?,
            osl: req(&["osl", "output_seq_len"])?,
            tp: opt(&["tp", "tensor_parallel"])?,
            ep: opt(&["ep", "expert_parallel"])?,
            conc: req(&["conc", "concurrency", "max_concurrency"])?,
            fields: finish(fields),
        });
    }
    Ok(rows)
}

/// One field, simulated beside measured.
#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    /// Field name.
    pub field: String,
    /// Simulated value.
    pub simulated: f64,
    /// Measured value.
    pub measured: f64,
    /// `simulated / measured − 1`.
    pub rel_err: f64,
}

/// A simulated row beside its measured row.
#[derive(Debug, Clone, Serialize)]
pub struct RowComparison {
    /// Concurrency.
    pub conc: u32,
    /// Line of the measured row in its file.
    pub measured_line: usize,
    /// Every field both rows have.
    pub fields: Vec<FieldError>,
}

/// Compare a simulated row with a measured one on every field both have.
pub fn compare_row(sim: &BenchRow, meas: &MeasuredRow) -> RowComparison {
    let fields = FIELDS
        .iter()
        .filter_map(|f| {
            let m = *meas.fields.get(*f)?;
            let s = sim.field(f)?;
            (m.is_finite() && m != 0.0).then(|| FieldError {
                field: f.to_string(),
                simulated: s,
                measured: m,
                rel_err: s / m - 1.0,
            })
        })
        .collect();
    RowComparison {
        conc: sim.conc,
        measured_line: meas.line,
        fields,
    }
}
