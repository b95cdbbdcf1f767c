//! The binary re-executes itself once to ask glibc for transparent huge
//! pages (`src/process_memory.rs`, `use_huge_pages`): the re-executed process must be
//! the same run — same arguments, output bytes, exit code and error line —
//! and, where the kernel's policy is `madvise`, it must really happen.

mod common;

use common::kvfleet;
use kvfleet::process_memory::HUGE_PAGES_VAR;

/// A run with huge pages and one with `KVFLEET_HUGE_PAGES=off` print the
/// same bytes.
#[test]
fn huge_pages_change_no_result() {
    let args = [
        "simulate",
        "--cdf",
        "azure",
        "--n-gpus",
        "16",
        "--lam",
        "300",
        "--n-req",
        "20000",
        "--no-timing",
        "--json",
        "--quiet",
    ];
    let on = kvfleet().args(args).output().expect("runs");
    let off = kvfleet()
        .env(HUGE_PAGES_VAR, "off")
        .args(args)
        .output()
        .expect("runs");
    assert!(on.status.success() && off.status.success());
    assert!(!on.stdout.is_empty());
    assert_eq!(on.stdout, off.stdout, "huge pages changed the report");
}

/// Arguments with spaces and non-ASCII characters reach the re-executed
/// process unchanged, and a bad input still gives its one error line and
/// exit code 2.
#[test]
fn the_reexecuted_process_sees_the_same_arguments() {
    let missing = "/nonexistent dir/trace ü.jsonl";
    let run = |off: bool| {
        let mut cmd = kvfleet();
        if off {
            cmd.env(HUGE_PAGES_VAR, "off");
        }
        cmd.args(["simulate", "--trace", missing, "--n-gpus", "2", "--quiet"])
            .output()
            .expect("runs")
    };
    let (on, off) = (run(false), run(true));
    assert_eq!(on.status.code(), Some(2));
    assert_eq!(off.status.code(), Some(2));
    let err = String::from_utf8_lossy(&on.stderr);
    assert!(err.contains(missing), "the error names the path: {err}");
    assert_eq!(on.stderr, off.stderr);
}

/// Where transparent huge pages are given on request (`madvise`), the
/// process runs with glibc's `hugetlb` tunable set: read from its
/// environment while it runs (the re-execution keeps its process id).
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn where_the_kernel_gives_huge_pages_on_request_the_process_asks_for_them() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    if !kvfleet::process_memory::huge_pages_on_request() {
        // Straight to stderr, past the harness's capture: `.ci/run` counts it.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED where_the_kernel_gives_huge_pages_on_request_the_process_asks_for_them: \
             transparent huge pages are not in `madvise` mode here"
        );
        return;
    }
    let bin = assert_cmd::cargo::cargo_bin("kvfleet");
    let mut child = std::process::Command::new(bin)
        .env_remove(HUGE_PAGES_VAR)
        .env_remove("GLIBC_TUNABLES")
        .args([
            "simulate",
            "--cdf",
            "azure",
            "--n-gpus",
            "8",
            "--lam",
            "150",
            "--n-req",
            "50000000",
            "--no-timing",
            "--quiet",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let environ = format!("/proc/{}/environ", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let marker = format!("{HUGE_PAGES_VAR}=on");
    let has = |seen: &[u8], var: &[u8]| seen.split(|&b| b == 0).any(|v| v == var);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        seen = std::fs::read(&environ).unwrap_or_default();
        if has(&seen, marker.as_bytes()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        has(&seen, marker.as_bytes()) && has(&seen, b"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"),
        "the running process never asked for huge pages; its KVFLEET_/GLIBC_ variables: {:?}",
        seen.split(|&b| b == 0)
            .map(String::from_utf8_lossy)
            .filter(|v| v.starts_with("KVFLEET_") || v.starts_with("GLIBC_"))
            .collect::<Vec<_>>()
    );
}
