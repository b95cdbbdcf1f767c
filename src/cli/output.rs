//! Where a report goes from the CLI: a human table on stdout by default, one
//! JSON document with `--json`; then the files the flags name (written by
//! [`Destinations`], as every front end writes them). The result is printed
//! first, so a failing write never loses it.

use anyhow::Context;

use crate::api::Report;
use crate::report_format::Destinations;

/// Print the report and write the files the flags name.
pub fn present(report: &Report, dest: &Destinations, quiet: bool) -> anyhow::Result<()> {
    let text = if dest.json {
        format!(
            "{}\n",
            report.to_json_pretty().context("serialising report")?
        )
    } else if let (Report::Calibration(c), Some(_)) = (report, &dest.out) {
        // The TOML profile goes to --out; stdout gets the fit's summary.
        c.summary.clone()
    } else {
        report.human()
    };
    write_stdout(&text)?;
    let plot_dir = dest.plot_dir.as_deref();
    for path in dest.write_files(report)? {
        if !quiet && plot_dir.is_some_and(|d| path.starts_with(d)) {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
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
