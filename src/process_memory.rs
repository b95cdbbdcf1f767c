//! Process-wide memory settings a simulating process makes at its start,
//! before any other thread exists: the `kvfleet` binary and the engine
//! benchmark call [`tune`]. A library user (the Python package runs inside
//! Python) keeps its process as it is.

/// Both settings: [`use_huge_pages`] (which may re-execute the process),
/// then [`keep_freed_memory`].
pub fn tune() {
    use_huge_pages();
    keep_freed_memory();
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
pub fn keep_freed_memory() {
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

/// The variable that records (and lets a user choose) whether this process
/// asked glibc for transparent huge pages: `off` keeps 4 KB pages.
pub const HUGE_PAGES_VAR: &str = "KVFLEET_HUGE_PAGES";

/// Whether the kernel gives transparent huge pages only to memory that asks
/// for them (`/sys/kernel/mm/transparent_hugepage/enabled` = `madvise`):
/// the one policy under which [`use_huge_pages`] changes anything.
pub fn huge_pages_on_request() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|p| p.contains("[madvise]"))
}

/// At fleet scale every event wakes an instance whose state (its running
/// batch, finish heap, requests) sits on pages other instances pushed out of
/// the TLB: a 1,000-instance run spreads ~30 MB over ~7,500 4 KB pages, and
/// on a virtual machine each TLB miss is a two-level page walk. Backing the
/// heap with 2 MB transparent huge pages cut the CPU time of `simulate
/// --n-gpus 1000` by 10–30% (README, Fleet scale, ninth pass) and left
/// small fleets and the planners unchanged.
///
/// Where the kernel gives huge pages only to memory that asks for them
/// (`transparent_hugepage/enabled` = `madvise`, the usual default), glibc
/// asks for them only when told by its `glibc.malloc.hugetlb=1` tunable,
/// which it reads at process start. So the process re-executes itself once
/// with that tunable added to `GLIBC_TUNABLES` (same arguments, same file
/// descriptors, same process id). It does not when `KVFLEET_HUGE_PAGES` is
/// set (the re-executed process has it set to `on`; `off` opts out), when
/// the tunable is already given, in a privileged (secure-execution)
/// process, where the kernel's policy is `always` or `never`, or on other
/// platforms; if the exec fails the process simply runs on. Results do not
/// depend on it: only where memory is mapped changes.
///
/// Call it first thing in `main` of a program of one's own: it replaces the
/// process image, so a host that embeds the library (Python) must not.
pub fn use_huge_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        const TUNABLE: &str = "glibc.malloc.hugetlb";
        if std::env::var_os(HUGE_PAGES_VAR).is_some() {
            return;
        }
        // SAFETY: `getauxval` reads the process's auxiliary vector.
        if unsafe { libc::getauxval(libc::AT_SECURE) } != 0 {
            return;
        }
        if !huge_pages_on_request() {
            return;
        }
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        if tunables.contains(TUNABLE) {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let tunables = if tunables.is_empty() {
            format!("{TUNABLE}=1")
        } else {
            format!("{tunables}:{TUNABLE}=1")
        };
        let mut args = std::env::args_os();
        let mut cmd = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            cmd.arg0(arg0);
        }
        // `exec` returns only if it failed: then run on as we are.
        let _failed = cmd
            .args(args)
            .env("GLIBC_TUNABLES", tunables)
            .env(HUGE_PAGES_VAR, "on")
            .exec();
    }
}
