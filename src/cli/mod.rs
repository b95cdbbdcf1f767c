//! The command-line front end: parse `argv` into an [`api::Command`]
//! (flags resolved and validated by the library before any work), run it
//! with progress bars on stderr, and put the report where the flags say —
//! a table or JSON on stdout, `--out`, `--csv`, `--plot`, `--plot-dir`.
//! `main` calls [`run`]; the library never calls back into this module.

pub mod output;
pub mod progress;

use crate::api::{self, Parsed};

/// Parse the process arguments and run the chosen subcommand.
pub fn run() -> anyhow::Result<()> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let command = match api::parse(&argv)? {
        Parsed::Run(c) => *c,
        Parsed::Text(text) => return output::write_stdout(&text),
    };
    for (flag, path, kind) in command.output_paths() {
        api::output::check_output_path(flag, path, kind)?;
    }
    init_logging();
    let quiet = !command.shows_progress();
    let dest = crate::report_format::Destinations::of(&command);
    let mut outcome = api::execute(command, &progress::StderrReporter)?;
    let argv: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    outcome.report.record_argv(&argv);
    if !quiet {
        for n in &outcome.notices {
            eprintln!("{n}");
        }
    }
    output::present(&outcome.report, &dest, quiet)?;
    match outcome.report.failure() {
        Some(reason) => Err(anyhow::anyhow!(reason)),
        None => Ok(()),
    }
}

/// Log lines go to stderr; `KVFLEET_LOG` sets the filter (default `warn`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KVFLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}
