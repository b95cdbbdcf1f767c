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
