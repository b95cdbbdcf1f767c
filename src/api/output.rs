//! The output flags every subcommand shares, and the check that an output
//! path can be written before any work starts.

use std::path::{Path, PathBuf};

use crate::error::InputError;

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

/// What an output flag names: a file to write, or a folder to write files into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// A file (`--out`, `--csv`, `--plot`).
    File,
    /// A folder, created if missing (`--plot-dir`).
    Dir,
}

/// Check before any work that an output path can be written, so a bad path
/// fails at once (exit 2, naming the flag) instead of after the computation.
/// A file must be in an existing folder and not be a folder; an existing
/// file is opened for writing without truncating it, a new one is created
/// and removed again. A folder must exist or be creatable (its nearest
/// existing ancestor is a folder).
pub fn check_output_path(flag: &str, path: &Path, kind: OutputKind) -> Result<(), InputError> {
    let bad = |reason: String| InputError::field(flag, format!("{}: {reason}", path.display()));
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match kind {
        OutputKind::Dir => {
            if path.is_dir() {
                return Ok(());
            }
            if path.exists() {
                return Err(bad("exists and is not a folder".into()));
            }
            // Created with its missing parents: the nearest existing ancestor must be a folder.
            let existing = path
                .ancestors()
                .skip(1)
                .find(|a| a.exists())
                .unwrap_or(parent);
            if !existing.is_dir() {
                return Err(bad(format!(
                    "cannot create the folder: {} is not a folder",
                    existing.display()
                )));
            }
            Ok(())
        }
        OutputKind::File => {
            if path.is_dir() {
                return Err(bad("is a folder; expected a file name".into()));
            }
            if !parent.is_dir() {
                return Err(bad(format!("folder {} does not exist", parent.display())));
            }
            if path.exists() {
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(|e| bad(format!("cannot write: {e}")))?;
            } else {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .map_err(|e| bad(format!("cannot write: {e}")))?;
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
    }
}
