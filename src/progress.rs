//! Progress of long runs, reported to the observer the caller passes — the
//! library itself never touches a terminal and holds no global reporter.
//!
//! Every long-running library call takes a `&dyn Reporter`: the CLI passes
//! one backed by indicatif on stderr (`cli::progress`), the Python package
//! one that calls back into Python (a callable or tqdm), tests and other
//! quiet callers pass [`SILENT`]. A reporter hands out [`Task`]s (a bar of
//! known length or a spinner); `None` means "nothing to show".

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

/// A reporter that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn bar(&self, _len: u64, _what: &str) -> Option<Box<dyn Task>> {
        None
    }
    fn spinner(&self, _what: &str) -> Option<Box<dyn Task>> {
        None
    }
}

/// The reporter that shows nothing, for callers that want no progress.
pub const SILENT: &Silent = &Silent;

/// A task of `len` steps from `reporter`, or `None` when `enabled` is false.
pub fn bar(reporter: &dyn Reporter, enabled: bool, len: u64, what: &str) -> Option<Box<dyn Task>> {
    if enabled {
        reporter.bar(len, what)
    } else {
        None
    }
}

/// A task of unknown length from `reporter`, or `None` when `enabled` is false.
pub fn spinner(reporter: &dyn Reporter, enabled: bool, what: &str) -> Option<Box<dyn Task>> {
    if enabled {
        reporter.spinner(what)
    } else {
        None
    }
}
