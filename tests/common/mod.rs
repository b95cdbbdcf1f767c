//! Helpers shared by the CLI tests: run `kvfleet`, require success, parse its JSON.

#![allow(dead_code)]

use assert_cmd::Command;
use serde_json::Value;

/// The `kvfleet` binary.
pub fn kvfleet() -> Command {
    Command::cargo_bin("kvfleet").expect("binary builds")
}

/// Run `cmd`, require exit 0 (the failure shows stderr), and return its
/// stdout parsed as one JSON document together with the raw bytes.
pub fn json_of(cmd: &mut Command) -> (Value, Vec<u8>) {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_slice(&out.stdout).expect("one JSON document");
    (v, out.stdout)
}

/// `kvfleet ARGS`, required to succeed, as JSON.
pub fn run_json(args: &[&str]) -> Value {
    json_of(kvfleet().args(args)).0
}

/// Write `contents` to a fresh file `name` in a per-process temporary
/// directory and return its path (for inputs a test writes inline).
pub fn temp_input(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-inline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write the test input");
    path
}

/// Every dispatcher, in the order the random engine scenarios draw one
/// (`rng.random_range(0..6)`).
pub const DISPATCHERS: [kvfleet::engine::dispatch::DispatchPolicy; 6] = {
    use kvfleet::engine::dispatch::DispatchPolicy::*;
    [Jsq, RoundRobin, PowerOfTwo, LeastKv, Central, FreeKv]
};

/// `n` random requests for an engine scenario: exponential gaps of mean
/// `mean_gap_ns`, each skipped with probability `burst_p` (a burst of
/// arrivals at one nanosecond), ISL uniform in `1..max_len` and OSL in what
/// is left of `max_len`.
pub fn bursty_requests(
    rng: &mut impl rand::RngExt,
    n: usize,
    mean_gap_ns: f64,
    burst_p: f64,
    max_len: u32,
) -> Vec<kvfleet::workload::Request> {
    let mut t = 0u64;
    let mut reqs = Vec::with_capacity(n);
    for _ in 0..n {
        if !rng.random_bool(burst_p) {
            t += (-(1.0 - rng.random::<f64>()).ln() * mean_gap_ns) as u64;
        }
        let isl = rng.random_range(1..max_len);
        let osl = rng.random_range(1..=(max_len - isl).max(1));
        reqs.push(kvfleet::workload::Request::new(t, isl, osl));
    }
    reqs
}
