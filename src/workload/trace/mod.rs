//! Streamed replay of request traces.
//!
//! Formats: fleet-sim JSONL and CSV, Azure LLM inference
//! traces 2023/2024, Mooncake JSONL, Vidur/Splitwise processed CSV and
//! BurstGPT CSV. Files are read through a `BufReader` one row at a time.
//!
//! Times are re-zeroed at the first replayed request; `time_scale` multiplies
//! every gap (load × 1/`time_scale`); `max_requests` truncates. Timestamps
//! must be non-decreasing. A malformed row is an [`InputError::TraceRow`]
//! naming file, one-based line and field, unless `skip_bad_rows` is set, in
//! which case it is skipped and counted in [`SkipCounts::bad_rows`].

mod csv_rows;
mod fields;
mod jsonl_rows;
#[cfg(test)]
mod tests;

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::workload::{Category, Request, RequestExtra, RequestSource, SkipCounts};

/// A trace file layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TraceFormat {
    /// fleet-sim JSONL: `timestamp` (s), `prompt_tokens`, `generated_tokens`,
    /// optional `model`, `selected_model`, `category`, `complexity`.
    #[value(name = "fleet-sim-jsonl")]
    FleetSimJsonl,
    /// fleet-sim CSV with the same columns.
    #[value(name = "fleet-sim-csv")]
    FleetSimCsv,
    /// Azure LLM inference trace 2023/2024: `TIMESTAMP,ContextTokens,GeneratedTokens`.
    #[value(name = "azure")]
    Azure,
    /// Mooncake JSONL: `timestamp` (ms), `input_length`, `output_length`, `hash_ids`.
    #[value(name = "mooncake")]
    Mooncake,
    /// Vidur/Splitwise processed CSV: `arrived_at` (s), `num_prefill_tokens`, `num_decode_tokens`.
    #[value(name = "vidur")]
    Vidur,
    /// BurstGPT CSV: `Timestamp` (s), `Model`, `Request tokens`, `Response tokens`, ...
    #[value(name = "burstgpt")]
    #[serde(rename = "burstgpt")]
    BurstGpt,
}

impl TraceFormat {
    /// The kebab-case name used by `--trace-format`.
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::FleetSimJsonl => "fleet-sim-jsonl",
            TraceFormat::FleetSimCsv => "fleet-sim-csv",
            TraceFormat::Azure => "azure",
            TraceFormat::Mooncake => "mooncake",
            TraceFormat::Vidur => "vidur",
            TraceFormat::BurstGpt => "burstgpt",
        }
    }

    fn is_jsonl(self) -> bool {
        matches!(self, TraceFormat::FleetSimJsonl | TraceFormat::Mooncake)
    }
}

impl std::fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How to replay a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceOptions {
    /// Force a format instead of detecting it.
    pub format: Option<TraceFormat>,
    /// Multiplies every inter-arrival gap (> 0; 2 halves the load).
    pub time_scale: f64,
    /// Replay at most this many requests.
    pub max_requests: Option<u64>,
    /// Skip (and count) malformed or out-of-order rows instead of failing.
    pub skip_bad_rows: bool,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            format: None,
            time_scale: 1.0,
            max_requests: None,
            skip_bad_rows: false,
        }
    }
}

/// One parsed trace row.
#[derive(Debug)]
pub(crate) struct ParsedRow {
    /// One-based line number.
    pub line: u64,
    /// Timestamp, ns (absolute, as in the file).
    pub ts_ns: i64,
    /// Name of the timestamp field (for out-of-order errors).
    pub ts_field: &'static str,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub category: Category,
    pub extra: Option<Box<RequestExtra>>,
}

/// What a row reader produced for one row.
#[derive(Debug)]
pub(crate) enum Row {
    /// A usable request.
    Good(ParsedRow),
    /// A failed request recorded by the trace (skipped, counted).
    Failed,
    /// A malformed row.
    Bad {
        line: u64,
        field: String,
        reason: String,
    },
}

/// A streaming reader of one format's rows. `Err` is reserved for I/O.
pub(crate) trait RowReader: Send {
    fn next_row(&mut self) -> Result<Option<Row>, InputError>;
}

/// Build the category and extra data from optional text fields.
pub(crate) fn category_and_extra(
    model: Option<String>,
    selected_model: Option<String>,
    category: Option<String>,
    complexity: Option<String>,
) -> (Category, Option<Box<RequestExtra>>) {
    let mut extra = RequestExtra::default();
    let cat = match category {
        Some(word) => {
            let c = Category::from_word(&word);
            if c == Category::Other {
                extra.category_text = Some(word);
            }
            c
        }
        None => Category::Prose,
    };
    if let Some(s) = &selected_model {
        extra.labels.push(("selected_model".into(), s.clone()));
    }
    if let Some(c) = complexity {
        extra.labels.push(("complexity".into(), c));
    }
    extra.model = model.or(selected_model);
    let extra = (extra != RequestExtra::default()).then(|| Box::new(extra));
    (cat, extra)
}

/// A trace replayed as a [`RequestSource`].
pub struct TraceSource {
    path: PathBuf,
    rows: Box<dyn RowReader>,
    opts: TraceOptions,
    format: TraceFormat,
    first_ns: Option<i64>,
    prev_ns: Option<i64>,
    emitted: u64,
    skips: SkipCounts,
    pending: Option<Request>,
}

impl TraceSource {
    /// Replay rows of `format` from any buffered reader; `path` is used in
    /// error messages. Fails with [`InputError::EmptyFile`] when no request
    /// can be replayed, or with the first row error.
    pub fn from_reader<R: BufRead + Send + 'static>(
        reader: R,
        path: &Path,
        format: TraceFormat,
        opts: &TraceOptions,
    ) -> Result<TraceSource, InputError> {
        check_options(opts)?;
        let rows: Box<dyn RowReader> = if format.is_jsonl() {
            Box::new(jsonl_rows::JsonlRows::new(reader, path, format))
        } else {
            Box::new(csv_rows::CsvRows::new(reader, path, format)?)
        };
        let mut src = TraceSource {
            path: path.to_path_buf(),
            rows,
            opts: opts.clone(),
            format,
            first_ns: None,
            prev_ns: None,
            emitted: 0,
            skips: SkipCounts::default(),
            pending: None,
        };
        src.pending = src.pull()?;
        if src.pending.is_none() {
            return Err(InputError::EmptyFile {
                path: path.to_path_buf(),
                expected: format!("at least one request row in {format} format"),
            });
        }
        Ok(src)
    }

    /// The format being replayed.
    pub fn format(&self) -> TraceFormat {
        self.format
    }

    fn bad(&mut self, line: u64, field: String, reason: String) -> Result<(), InputError> {
        if self.opts.skip_bad_rows {
            self.skips.bad_rows += 1;
            Ok(())
        } else {
            Err(InputError::TraceRow {
                path: self.path.clone(),
                line,
                field,
                reason,
            })
        }
    }

    fn pull(&mut self) -> Result<Option<Request>, InputError> {
        if self.opts.max_requests.is_some_and(|m| self.emitted >= m) {
            return Ok(None);
        }
        loop {
            let row = match self.rows.next_row()? {
                None => return Ok(None),
                Some(Row::Failed) => {
                    self.skips.failed_requests += 1;
                    continue;
                }
                Some(Row::Bad {
                    line,
                    field,
                    reason,
                }) => {
                    self.bad(line, field, reason)?;
                    continue;
                }
                Some(Row::Good(r)) => r,
            };
            if let Some(prev) = self.prev_ns
                && row.ts_ns < prev
            {
                let reason = format!(
                    "time {} s is before the previous row's {} s; expected non-decreasing timestamps",
                    row.ts_ns as f64 / 1e9,
                    prev as f64 / 1e9
                );
                self.bad(row.line, row.ts_field.to_string(), reason)?;
                continue;
            }
            self.prev_ns = Some(row.ts_ns);
            let t0 = *self.first_ns.get_or_insert(row.ts_ns);
            let offset_ns = (row.ts_ns as i128 - t0 as i128).clamp(0, u64::MAX as i128) as u64;
            let arrival_ns = if self.opts.time_scale == 1.0 {
                offset_ns
            } else {
                let v = (offset_ns as f64 * self.opts.time_scale).round();
                if v >= u64::MAX as f64 {
                    u64::MAX
                } else {
                    v as u64
                }
            };
            if arrival_ns > crate::workload::MAX_SIM_TIME_NS {
                let scaled = if self.opts.time_scale == 1.0 {
                    String::new()
                } else {
                    format!(" (after --time-scale {})", self.opts.time_scale)
                };
                return Err(InputError::TraceRow {
                    path: self.path.clone(),
                    line: row.line,
                    field: row.ts_field.to_string(),
                    reason: format!(
                        "arrives {} s after the first row{scaled}; expected at most {:e} s of simulated time",
                        arrival_ns as f64 / 1e9,
                        crate::workload::MAX_SIM_TIME_S
                    ),
                });
            }
            self.emitted += 1;
            return Ok(Some(Request {
                arrival_ns,
                input_tokens: row.input_tokens,
                output_tokens: row.output_tokens,
                category: row.category,
                extra: row.extra,
            }));
        }
    }
}

impl RequestSource for TraceSource {
    fn next_request(&mut self) -> Result<Option<Request>, InputError> {
        match self.pending.take() {
            Some(r) => Ok(Some(r)),
            None => self.pull(),
        }
    }

    fn skipped(&self) -> SkipCounts {
        self.skips.clone()
    }
}

/// Check a time scale against [`crate::workload::TIME_SCALE_RANGE`]; the
/// message has no field name.
pub fn check_time_scale(x: f64) -> Result<(), String> {
    let (lo, hi) = crate::workload::TIME_SCALE_RANGE;
    if x.is_finite() && (lo..=hi).contains(&x) {
        Ok(())
    } else {
        Err(format!(
            "{x}: expected a gap multiplier in [{lo:e}, {hi:e}]"
        ))
    }
}

fn check_options(opts: &TraceOptions) -> Result<(), InputError> {
    check_time_scale(opts.time_scale).map_err(|e| InputError::field("--time-scale", e))?;
    if opts.max_requests == Some(0) {
        return Err(InputError::field(
            "--max-requests",
            "0: expected at least 1 request",
        ));
    }
    Ok(())
}

fn io_err(path: &Path, source: std::io::Error) -> InputError {
    crate::input_file::read_error(path, source)
}

/// A trace that is not text (gzip is decompressed before this check).
fn binary(path: &Path) -> InputError {
    InputError::UnknownTraceFormat {
        path: path.to_path_buf(),
        reason: "binary data (not UTF-8 text); expected a CSV or JSON Lines trace \
                 (gzip-compressed traces are read as they are)"
            .into(),
    }
}

/// The first non-blank line of a file (UTF-8 text, else an error), `None` if there is none.
fn first_line(path: &Path) -> Result<Option<String>, InputError> {
    let mut reader = crate::input_file::open_stream(path)?;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_err(path, e))?;
        if n == 0 {
            return Ok(None);
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            return Err(binary(path));
        };
        if line.contains('\0') {
            return Err(binary(path));
        }
        let line = line.trim_start_matches('\u{feff}').trim();
        if !line.is_empty() {
            return Ok(Some(line.to_string()));
        }
    }
}

/// Detect a trace's format from its extension and first non-blank line.
pub fn detect_format(path: &Path) -> Result<TraceFormat, InputError> {
    let Some(line) = first_line(path)? else {
        return Err(InputError::EmptyFile {
            path: path.to_path_buf(),
            expected: "a trace with at least one request".into(),
        });
    };
    // `t.csv.gz` is read decompressed: its format extension is `csv`.
    let ext_of = |p: &Path| {
        p.extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default()
    };
    let ext = match ext_of(path).as_str() {
        "gz" => path
            .file_stem()
            .map_or_else(String::new, |s| ext_of(Path::new(s))),
        e => e.to_string(),
    };
    let unknown = |reason: String| InputError::UnknownTraceFormat {
        path: path.to_path_buf(),
        reason,
    };
    let accepted = "accepted: fleet-sim-jsonl, fleet-sim-csv, azure, mooncake, vidur, burstgpt \
                    (force one with --trace-format)";
    if line.starts_with('{') {
        if ext == "csv" {
            return Err(unknown(format!(
                "a .csv file whose first line is a JSON object; {accepted}"
            )));
        }
        if line.contains("\"prompt_tokens\"") || line.contains("\"generated_tokens\"") {
            return Ok(TraceFormat::FleetSimJsonl);
        }
        if line.contains("\"input_length\"") || line.contains("\"output_length\"") {
            return Ok(TraceFormat::Mooncake);
        }
        return Err(unknown(format!(
            "JSON rows without prompt_tokens or input_length; {accepted}"
        )));
    }
    if matches!(ext.as_str(), "jsonl" | "ndjson" | "json") {
        return Err(unknown(format!(
            "a .{ext} file whose first line is not a JSON object; {accepted}"
        )));
    }
    let cols: Vec<String> = line
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let has = |name: &str| cols.iter().any(|c| c == name);
    if has("contexttokens") || has("generatedtokens") {
        Ok(TraceFormat::Azure)
    } else if has("arrived_at") || has("num_prefill_tokens") {
        Ok(TraceFormat::Vidur)
    } else if has("request tokens") || has("response tokens") {
        Ok(TraceFormat::BurstGpt)
    } else if has("prompt_tokens") || has("generated_tokens") {
        Ok(TraceFormat::FleetSimCsv)
    } else {
        let shown: String = line.chars().take(80).collect();
        Err(unknown(format!(
            "header `{shown}` matches no known layout; {accepted}"
        )))
    }
}

/// Open a trace for streamed replay.
pub fn open(path: &Path, opts: &TraceOptions) -> Result<Box<dyn RequestSource>, InputError> {
    Ok(Box::new(open_trace(path, opts)?))
}

/// Like [`open`], returning the concrete source.
pub fn open_trace(path: &Path, opts: &TraceOptions) -> Result<TraceSource, InputError> {
    check_options(opts)?;
    let format = match opts.format {
        Some(f) => f,
        None => detect_format(path)?,
    };
    TraceSource::from_reader(crate::input_file::open_stream(path)?, path, format, opts)
}

/// Count the requests a replay with these options would yield (a streamed
/// pre-pass, used e.g. to turn warm-up fractions into request counts).
pub fn count_requests(path: &Path, opts: &TraceOptions) -> Result<u64, InputError> {
    let mut src = open_trace(path, opts)?;
    let mut n = 0;
    while src.next_request()?.is_some() {
        n += 1;
    }
    Ok(n)
}
