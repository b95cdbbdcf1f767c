//! Where tests find the project's `../shared/data` (workload CDFs, trace
//! samples, measured benchmark rows). It sits beside the repository in
//! development and CI and is absent from a user's clone, so a test that needs
//! it calls [`shared_data`] and skips when it is missing — loudly: the skip is
//! written straight to stderr (past the test harness's capture), and
//! `.ci/run` counts the `SKIPPED` lines into its summary.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The path of `rel` under `../shared/data`, or `None` after one
/// `SKIPPED <test>: ...` line on stderr when it does not exist.
#[doc(hidden)]
pub fn shared_data(rel: &str, test: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    if p.exists() {
        return Some(p);
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs ../shared/data/{rel}, which is absent"
    );
    None
}
