//! CSV trace layouts: fleet-sim CSV, Azure 2023/2024, Vidur/Splitwise and
//! BurstGPT. Columns are found by header name (case-insensitive, trimmed).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::fields::{parse_count, parse_datetime_ns, parse_seconds_ns, parse_tokens};
use super::{ParsedRow, Row, RowReader, TraceFormat, category_and_extra};
use crate::error::InputError;
use crate::workload::RequestExtra;

/// Column positions of one layout.
#[derive(Debug)]
struct Columns {
    ts: usize,
    input: usize,
    output: usize,
    model: Option<usize>,
    selected_model: Option<usize>,
    category: Option<usize>,
    complexity: Option<usize>,
    log_type: Option<usize>,
}

/// Required `(timestamp, input, output)` column names of a CSV layout (lowercase).
fn required(format: TraceFormat) -> [&'static str; 3] {
    match format {
        TraceFormat::Azure => ["timestamp", "contexttokens", "generatedtokens"],
        TraceFormat::Vidur => ["arrived_at", "num_prefill_tokens", "num_decode_tokens"],
        TraceFormat::BurstGpt => ["timestamp", "request tokens", "response tokens"],
        _ => ["timestamp", "prompt_tokens", "generated_tokens"],
    }
}

/// Streams the rows of a CSV trace.
pub(crate) struct CsvRows<R: BufRead> {
    reader: csv::Reader<R>,
    record: csv::ByteRecord,
    path: PathBuf,
    format: TraceFormat,
    headers: Vec<String>,
    cols: Columns,
    done: bool,
}

impl<R: BufRead + Send> CsvRows<R> {
    /// Read the header and locate the columns.
    pub(crate) fn new(reader: R, path: &Path, format: TraceFormat) -> Result<Self, InputError> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let raw = match reader.byte_headers() {
            Ok(h) => h.clone(),
            Err(e) => return Err(csv_fatal(path, e, 1)),
        };
        let headers: Vec<String> = raw
            .iter()
            .map(|h| {
                String::from_utf8_lossy(h)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_string()
            })
            .collect();
        if headers.iter().all(String::is_empty) {
            return Err(InputError::EmptyFile {
                path: path.to_path_buf(),
                expected: format!("a {format} header line and at least one row"),
            });
        }
        let find = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let req = required(format);
        let mut idx = [0usize; 3];
        for (k, name) in req.iter().enumerate() {
            idx[k] = find(name).ok_or_else(|| InputError::TraceRow {
                path: path.to_path_buf(),
                line: 1,
                field: name.to_string(),
                reason: format!(
                    "column missing from the header; expected {format} columns {}",
                    req.join(", ")
                ),
            })?;
        }
        let fleet = format == TraceFormat::FleetSimCsv;
        let cols = Columns {
            ts: idx[0],
            input: idx[1],
            output: idx[2],
            model: find("model"),
            selected_model: if fleet { find("selected_model") } else { None },
            category: if fleet { find("category") } else { None },
            complexity: if fleet { find("complexity") } else { None },
            log_type: if format == TraceFormat::BurstGpt {
                find("log type")
            } else {
                None
            },
        };
        Ok(CsvRows {
            reader,
            record: csv::ByteRecord::new(),
            path: path.to_path_buf(),
            format,
            headers,
            cols,
            done: false,
        })
    }

    fn parse_record(&self, line: u64) -> Row {
        let rec = &self.record;
        let bad = |col: usize, reason: String| Row::Bad {
            line,
            field: self.headers[col].clone(),
            reason,
        };
        let text = |col: usize| -> Result<&str, Row> {
            match rec.get(col) {
                None => Err(bad(
                    col,
                    format!(
                        "missing: the row has {} fields; expected {} ({})",
                        rec.len(),
                        self.headers.len(),
                        self.headers.join(",")
                    ),
                )),
                Some(b) => {
                    std::str::from_utf8(b).map_err(|_| bad(col, "not valid UTF-8 text".into()))
                }
            }
        };
        let opt_text = |col: Option<usize>| -> Result<Option<String>, Row> {
            match col {
                Some(c) if rec.get(c).is_some() => {
                    let t = text(c)?;
                    Ok((!t.is_empty()).then(|| t.to_string()))
                }
                _ => Ok(None),
            }
        };
        let result = (|| -> Result<Row, Row> {
            let ts_text = text(self.cols.ts)?;
            let ts_ns = if self.format == TraceFormat::Azure {
                parse_datetime_ns(ts_text)
            } else {
                parse_seconds_ns(ts_text)
            }
            .map_err(|r| bad(self.cols.ts, r))?;
            let output_tokens = if self.format == TraceFormat::BurstGpt {
                match parse_count(text(self.cols.output)?) {
                    Ok(0) => return Ok(Row::Failed),
                    Ok(v) => v,
                    Err(r) => return Err(bad(self.cols.output, r)),
                }
            } else {
                parse_tokens(text(self.cols.output)?).map_err(|r| bad(self.cols.output, r))?
            };
            let input_tokens =
                parse_tokens(text(self.cols.input)?).map_err(|r| bad(self.cols.input, r))?;
            let (category, mut extra) = category_and_extra(
                opt_text(self.cols.model)?,
                opt_text(self.cols.selected_model)?,
                opt_text(self.cols.category)?,
                opt_text(self.cols.complexity)?,
            );
            if let Some(lt) = opt_text(self.cols.log_type)? {
                extra
                    .get_or_insert_with(|| Box::new(RequestExtra::default()))
                    .labels
                    .push(("log_type".into(), lt));
            }
            Ok(Row::Good(ParsedRow {
                line,
                ts_ns,
                ts_field: required(self.format)[0],
                input_tokens,
                output_tokens,
                category,
                extra,
            }))
        })();
        result.unwrap_or_else(|row| row)
    }
}

/// A CSV error that ends the replay (I/O) or describes one bad row.
fn csv_fatal(path: &Path, e: csv::Error, line: u64) -> InputError {
    let line = e.position().map_or(line, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(source) => crate::input_file::read_error(path, source),
        other => InputError::TraceRow {
            path: path.to_path_buf(),
            line,
            field: "row".into(),
            reason: format!("{other:?}"),
        },
    }
}

impl<R: BufRead + Send> RowReader for CsvRows<R> {
    fn next_row(&mut self) -> Result<Option<Row>, InputError> {
        loop {
            if self.done {
                return Ok(None);
            }
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => {
                    self.done = true;
                    return Ok(None);
                }
                Ok(true) => {
                    let line = self.record.position().map_or(0, |p| p.line());
                    if self.record.iter().all(|f| f.is_empty()) {
                        continue; // blank line
                    }
                    return Ok(Some(self.parse_record(line)));
                }
                Err(e) => {
                    let is_io = matches!(e.kind(), csv::ErrorKind::Io(_));
                    let err = csv_fatal(&self.path, e, 0);
                    if is_io {
                        self.done = true;
                        return Err(err);
                    }
                    if let InputError::TraceRow {
                        line,
                        field,
                        reason,
                        ..
                    } = err
                    {
                        return Ok(Some(Row::Bad {
                            line,
                            field,
                            reason,
                        }));
                    }
                    return Err(err);
                }
            }
        }
    }
}
