//! Reader for a measurements CSV: a header row with `concurrency`,
//! `llm_latency_p95`, `workflow_runtime_p95`, `total_runtime` and optionally
//! `interrupted` (true/false/1/0/yes/no). Other columns are ignored (so the
//! `--csv` report reads back), `#` starts a comment line, surrounding spaces
//! are trimmed, and an empty time cell means "not measured".

use std::collections::BTreeMap;
use std::path::Path;

use super::SweepPoint;
use super::input::{entry_err, parse_concurrency};
use crate::error::InputError;

const CSV_LAYOUT: &str =
    "expected header concurrency,llm_latency_p95,workflow_runtime_p95,total_runtime[,interrupted]";

/// Parse the text of a measurements CSV.
pub fn parse_csv(path: &Path, text: &str) -> Result<Vec<SweepPoint>, InputError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let header = rdr
        .headers()
        .map_err(|e| entry_err(path, "header".into(), e.to_string()))?
        .clone();
    let col = |name: &str| header.iter().position(|h| h == name);
    let mut idx = [0usize; 4];
    for (slot, name) in idx.iter_mut().zip([
        "concurrency",
        "llm_latency_p95",
        "workflow_runtime_p95",
        "total_runtime",
    ]) {
        *slot = col(name).ok_or_else(|| {
            entry_err(
                path,
                "header".into(),
                format!("missing column `{name}`; {CSV_LAYOUT}"),
            )
        })?;
    }
    let interrupted_col = col("interrupted");
    let mut first_line: BTreeMap<u32, u64> = BTreeMap::new();
    let mut points = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            entry_err(path, format!("line {line}"), e.to_string())
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let cell = |i: usize| rec.get(i).unwrap_or("");
        let loc = |name: &str| format!("line {line}, column `{name}`");
        let concurrency = parse_concurrency(cell(idx[0])).ok_or_else(|| {
            entry_err(
                path,
                loc("concurrency"),
                format!(
                    "expected a positive integer, got {}",
                    crate::error::excerpt(cell(idx[0]))
                ),
            )
        })?;
        if let Some(first) = first_line.insert(concurrency, line) {
            return Err(entry_err(
                path,
                loc("concurrency"),
                format!("concurrency {concurrency} already given on line {first}"),
            ));
        }
        let seconds = |k: usize, name: &str| -> Result<Option<f64>, InputError> {
            let s = cell(idx[k]);
            if s.is_empty() {
                return Ok(None);
            }
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
                _ => Err(entry_err(
                    path,
                    loc(name),
                    format!(
                        "expected seconds >= 0 or an empty cell, got {}",
                        crate::error::excerpt(s)
                    ),
                )),
            }
        };
        let interrupted = match interrupted_col.map(cell).unwrap_or("") {
            "" => false,
            s => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(entry_err(
                        path,
                        loc("interrupted"),
                        format!(
                            "expected true/false/1/0/yes/no, got {}",
                            crate::error::excerpt(s)
                        ),
                    ));
                }
            },
        };
        points.push(SweepPoint {
            concurrency,
            llm_latency_p95_s: seconds(1, "llm_latency_p95")?,
            workflow_runtime_p95_s: seconds(2, "workflow_runtime_p95")?,
            total_runtime_s: seconds(3, "total_runtime")?,
            workflow_interrupted: interrupted,
            items: Vec::new(),
        });
    }
    points.sort_by_key(|p| p.concurrency);
    Ok(points)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn p(path: &str) -> PathBuf {
        PathBuf::from(path)
    }

    fn err_text(r: Result<Vec<SweepPoint>, InputError>) -> String {
        r.expect_err("should fail").to_string()
    }

    #[test]
    fn csv_with_and_without_interrupted_column() {
        let with = "concurrency,llm_latency_p95,workflow_runtime_p95,total_runtime,interrupted\n\
                    2,1.3,4.7,9.3,false\n1,1.1,4.0,8.0,\n4,1.5,5.6,11.1,yes\n";
        let pts = parse_csv(&p("m.csv"), with).unwrap();
        assert_eq!(
            pts.iter().map(|p| p.concurrency).collect::<Vec<_>>(),
            vec![1, 2, 4]
        );
        assert!(!pts[0].workflow_interrupted && !pts[1].workflow_interrupted);
        assert!(pts[2].workflow_interrupted);
        let without = "# measured on 8 GPUs\nconcurrency, llm_latency_p95, workflow_runtime_p95, total_runtime\n\
                       1, 1.1, 4.0, \n";
        let pts = parse_csv(&p("m.csv"), without).unwrap();
        assert_eq!(pts[0].total_runtime_s, None);
        assert_eq!(pts[0].workflow_runtime_p95_s, Some(4.0));
    }

    #[test]
    fn csv_errors_name_line_and_column() {
        let h = "concurrency,llm_latency_p95,workflow_runtime_p95,total_runtime\n";
        let e = err_text(parse_csv(&p("m.csv"), &format!("{h}1,1.0,abc,2\n")));
        assert_eq!(
            e,
            "m.csv: line 2, column `workflow_runtime_p95`: expected seconds >= 0 or an empty cell, got `abc`"
        );
        let e = err_text(parse_csv(&p("m.csv"), &format!("{h}1,1,2,3\n0,1,2,3\n")));
        assert!(e.contains("line 3, column `concurrency`"), "{e}");
        let e = err_text(parse_csv(&p("m.csv"), &format!("{h}1,1,2,3\n1,1,2,3\n")));
        assert!(e.contains("already given on line 2"), "{e}");
        let e = err_text(parse_csv(&p("m.csv"), "concurrency,llm_latency_p95\n1,2\n"));
        assert!(e.contains("missing column `workflow_runtime_p95`"), "{e}");
        let e = err_text(parse_csv(&p("m.csv"), &format!("{h}1,1,2\n")));
        assert!(e.starts_with("m.csv: line 2"), "{e}");
        let hi = "concurrency,llm_latency_p95,workflow_runtime_p95,total_runtime,interrupted\n";
        let e = err_text(parse_csv(&p("m.csv"), &format!("{hi}1,1,2,3,maybe\n")));
        assert!(e.contains("column `interrupted`"), "{e}");
    }
}
