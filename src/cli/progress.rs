//! The CLI's progress reporter: indicatif bars on stderr, only on a terminal
//! (never with `--quiet`, which the library honours by not asking).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::progress::{Reporter, Task};

/// Indicatif on stderr.
pub struct StderrReporter;

impl Task for ProgressBar {
    fn inc(&self, n: u64) {
        ProgressBar::inc(self, n);
    }
    fn set_message(&self, msg: &str) {
        ProgressBar::set_message(self, msg.to_string());
    }
    fn finish(&self) {
        self.finish_and_clear();
    }
}

impl Reporter for StderrReporter {
    fn bar(&self, len: u64, what: &str) -> Option<Box<dyn Task>> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let pb = ProgressBar::new(len);
        let style = ProgressStyle::with_template(
            "{msg} {bar:40} {pos}/{len} [{elapsed_precise}, ETA {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        pb.set_style(style);
        pb.set_message(what.to_string());
        Some(Box::new(pb))
    }

    fn spinner(&self, what: &str) -> Option<Box<dyn Task>> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let pb = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template("{spinner} {msg} [{pos} done, {elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        pb.set_style(style);
        pb.set_message(what.to_string());
        pb.enable_steady_tick(std::time::Duration::from_millis(200));
        Some(Box::new(pb))
    }
}
