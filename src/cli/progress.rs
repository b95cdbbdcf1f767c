//! Progress bars on stderr (only on a terminal, never with `--quiet`).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A counter of steps of unknown total with a message (e.g. DES evaluations
/// of a search), or `None` when disabled or not on a TTY.
pub fn spinner(enabled: bool, what: &str) -> Option<ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new_spinner();
    let style = ProgressStyle::with_template("{spinner} {msg} [{pos} done, {elapsed_precise}]")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    pb.set_style(style);
    pb.set_message(what.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(pb)
}

/// A progress bar of `len` steps, or `None` when disabled or not on a TTY.
pub fn bar(enabled: bool, len: u64, what: &str) -> Option<ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new(len);
    let style =
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} [{elapsed_precise}, ETA {eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(what.to_string());
    Some(pb)
}
