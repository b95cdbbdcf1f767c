//! JSONL trace layouts: fleet-sim JSONL and Mooncake. One JSON object per
//! line; blank lines are ignored.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::fields::{json_time_ns, json_tokens};
use super::{ParsedRow, Row, RowReader, TraceFormat, category_and_extra};
use crate::error::InputError;
use crate::workload::{Category, RequestExtra};

/// Streams the rows of a JSONL trace.
pub(crate) struct JsonlRows<R: BufRead> {
    reader: R,
    buf: Vec<u8>,
    path: PathBuf,
    format: TraceFormat,
    line: u64,
}

impl<R: BufRead + Send> JsonlRows<R> {
    pub(crate) fn new(reader: R, path: &Path, format: TraceFormat) -> Self {
        JsonlRows {
            reader,
            buf: Vec::new(),
            path: path.to_path_buf(),
            format,
            line: 0,
        }
    }
}

fn bad(line: u64, field: &str, reason: impl Into<String>) -> Row {
    Row::Bad {
        line,
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn required<'a>(obj: &'a Map<String, Value>, line: u64, key: &str) -> Result<&'a Value, Row> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(bad(line, key, "missing from the row")),
        Some(v) => Ok(v),
    }
}

/// An optional text field; numbers and booleans are kept as their JSON text.
fn opt_text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn parse_fleet_sim(obj: &Map<String, Value>, line: u64) -> Result<Row, Row> {
    let ts_ns = json_time_ns(required(obj, line, "timestamp")?, false)
        .map_err(|r| bad(line, "timestamp", r))?;
    let input_tokens = json_tokens(required(obj, line, "prompt_tokens")?)
        .map_err(|r| bad(line, "prompt_tokens", r))?;
    let output_tokens = json_tokens(required(obj, line, "generated_tokens")?)
        .map_err(|r| bad(line, "generated_tokens", r))?;
    let (category, extra) = category_and_extra(
        opt_text(obj, "model"),
        opt_text(obj, "selected_model"),
        opt_text(obj, "category"),
        opt_text(obj, "complexity"),
    );
    Ok(Row::Good(ParsedRow {
        line,
        ts_ns,
        ts_field: "timestamp",
        input_tokens,
        output_tokens,
        category,
        extra,
    }))
}

fn parse_mooncake(obj: &Map<String, Value>, line: u64) -> Result<Row, Row> {
    let ts_ns = json_time_ns(required(obj, line, "timestamp")?, true)
        .map_err(|r| bad(line, "timestamp", r))?;
    let input_tokens = json_tokens(required(obj, line, "input_length")?)
        .map_err(|r| bad(line, "input_length", r))?;
    let output_tokens = json_tokens(required(obj, line, "output_length")?)
        .map_err(|r| bad(line, "output_length", r))?;
    let prefix_hashes = match obj.get("hash_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|h| {
                h.as_u64().ok_or_else(|| {
                    bad(
                        line,
                        "hash_ids",
                        format!("element {h}; expected non-negative integers"),
                    )
                })
            })
            .collect::<Result<Vec<u64>, Row>>()?,
        Some(other) => {
            return Err(bad(
                line,
                "hash_ids",
                format!("found {other}; expected an array of integers"),
            ));
        }
    };
    let extra = (!prefix_hashes.is_empty()).then(|| {
        Box::new(RequestExtra {
            prefix_hashes,
            ..RequestExtra::default()
        })
    });
    Ok(Row::Good(ParsedRow {
        line,
        ts_ns,
        ts_field: "timestamp",
        input_tokens,
        output_tokens,
        category: Category::Prose,
        extra,
    }))
}

impl<R: BufRead + Send> RowReader for JsonlRows<R> {
    fn next_row(&mut self) -> Result<Option<Row>, InputError> {
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| crate::input_file::read_error(&self.path, source))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            let line = self.line;
            let Ok(text) = std::str::from_utf8(&self.buf) else {
                return Ok(Some(bad(line, "row", "not valid UTF-8 text")));
            };
            let text = text.trim_start_matches('\u{feff}').trim();
            if text.is_empty() {
                continue;
            }
            let obj = match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(o)) => o,
                Ok(_) => return Ok(Some(bad(line, "row", "expected a JSON object"))),
                Err(e) => {
                    return Ok(Some(bad(
                        line,
                        "row",
                        format!("invalid JSON ({e}); expected one JSON object per line"),
                    )));
                }
            };
            let row = match self.format {
                TraceFormat::Mooncake => parse_mooncake(&obj, line),
                _ => parse_fleet_sim(&obj, line),
            };
            return Ok(Some(row.unwrap_or_else(|r| r)));
        }
    }
}
