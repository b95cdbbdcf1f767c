//! How reports reach the user: a human table on stdout by default, one JSON
//! document with `--json`, a JSON file with `--out`, CSV with `--csv`.

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

/// Output flags shared by every subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
    /// Print one JSON document on stdout instead of the human table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, global = true, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
    /// No progress bar or log lines on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// A report that can be shown to a person as text (usually a table).
pub trait HumanReport {
    /// Render the report for a terminal.
    fn human(&self) -> String;
}

/// A report that has a CSV form (sweeps).
pub trait CsvReport {
    /// Render the report as CSV text with a header row.
    fn csv(&self) -> String;
}

/// Emit a report according to the output flags.
pub fn emit<R: Serialize + HumanReport>(report: &R, args: &OutputArgs) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report).context("serialising report")?;
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let text = if args.json {
        format!("{json}\n")
    } else {
        report.human()
    };
    write_stdout(&text)
}

/// Write to stdout; a closed pipe (`kvfleet ... | head`) is not an error.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Write a CSV rendering of a report to a file.
pub fn write_csv<R: CsvReport>(report: &R, path: &std::path::Path) -> anyhow::Result<()> {
    std::fs::write(path, report.csv()).with_context(|| format!("writing {}", path.display()))
}
