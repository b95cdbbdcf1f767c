//! Progress of long runs, reported to whatever front end installed a
//! [`Reporter`] — the library itself never touches a terminal.
//!
//! Library code asks for a [`bar`] or [`spinner`]; with no reporter installed
//! (tests, other front ends) or with progress disabled it gets `None` and
//! reports nothing. The CLI installs one backed by indicatif on stderr
//! (`cli::progress`), once, at start-up, like a logger.

use std::sync::OnceLock;

/// One task in progress (a bar or a spinner).
pub trait Task: Send + Sync {
    /// `n` more steps done.
    fn inc(&self, n: u64);
    /// Replace the task's message.
    fn set_message(&self, msg: &str);
    /// The task is over; remove it from view.
    fn finish(&self);
}

/// A front end's way of showing progress.
pub trait Reporter: Send + Sync {
    /// A task of `len` steps.
    fn bar(&self, len: u64, what: &str) -> Option<Box<dyn Task>>;
    /// A task of unknown length (a counter with a message).
    fn spinner(&self, what: &str) -> Option<Box<dyn Task>>;
}

static REPORTER: OnceLock<Box<dyn Reporter>> = OnceLock::new();

/// Install the process's reporter; `false` if one was installed already.
pub fn set_reporter(reporter: Box<dyn Reporter>) -> bool {
    REPORTER.set(reporter).is_ok()
}

/// A task of `len` steps, or `None` when `enabled` is false or no reporter
/// is installed.
pub fn bar(enabled: bool, len: u64, what: &str) -> Option<Box<dyn Task>> {
    REPORTER.get().filter(|_| enabled)?.bar(len, what)
}

/// A task of unknown length, or `None` when `enabled` is false or no
/// reporter is installed.
pub fn spinner(enabled: bool, what: &str) -> Option<Box<dyn Task>> {
    REPORTER.get().filter(|_| enabled)?.spinner(what)
}
