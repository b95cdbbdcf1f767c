//! The `kvfleet` binary: parse, call the library, print.

use std::process::ExitCode;

fn main() -> ExitCode {
    keep_freed_memory();
    match kvfleet::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", kvfleet::error::one_line_message(&err));
            if kvfleet::error::is_input_error(&err) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// A planner search runs thousands of short simulations, each allocating
/// and freeing request tables (about a MB for 20k requests) and latency
/// histograms.
/// glibc's defaults give blocks that size their own `mmap` and return
/// freed heap tops to the kernel, so every run paid fresh page faults and
/// `madvise` calls (pareto: ~15% of its CPU). Raising both thresholds to
/// 256 MB keeps that memory in the process for the next run; RSS then
/// stays near the peak a run reached (a 500k-request overload run to
/// completion: 32 → 41 MB).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const BYTES: libc::c_int = 256 << 20;
        // SAFETY: `mallopt` only sets allocator parameters; it is called
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, BYTES);
            libc::mallopt(libc::M_TRIM_THRESHOLD, BYTES);
        }
    }
}
