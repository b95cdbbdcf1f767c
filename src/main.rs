//! The `kvfleet` binary: parse, call the library, print.

use std::process::ExitCode;

/// The simulator allocates and frees per-run state (histograms, request
/// tables) thousands of times in a planner search; mimalloc reuses that
/// memory where the system allocator hands it back to the kernel.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match kvfleet::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            if kvfleet::error::is_input_error(&err) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
