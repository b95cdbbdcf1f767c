//! `--shard I/N` and `kvfleet merge`: the merged report of every sweeping
//! command is the single run's JSON byte for byte; bad shard sets fail
//! with one line naming what is wrong (exit 2).

mod common;

use std::path::PathBuf;

use common::kvfleet;

fn dir(name: &str) -> PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-shards-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temporary directory");
    d
}

/// Run `args` once, and as `n` shards merged; return (single, merged) stdout.
fn single_and_merged(name: &str, args: &[&str], n: u32) -> (Vec<u8>, Vec<u8>, Vec<PathBuf>) {
    let d = dir(name);
    let single = kvfleet()
        .args(args)
        .args(["--json", "-q"])
        .output()
        .expect("runs");
    assert!(
        single.status.success(),
        "{}",
        String::from_utf8_lossy(&single.stderr)
    );
    let mut shards = Vec::new();
    for i in 0..n {
        let path = d.join(format!("shard{i}.json"));
        let out = kvfleet()
            .args(args)
            .args(["--shard", &format!("{i}/{n}"), "--out"])
            .arg(&path)
            .arg("-q")
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        shards.push(path);
    }
    // Shards in any order.
    shards.reverse();
    let merged = kvfleet()
        .arg("merge")
        .args(&shards)
        .args(["--json", "-q"])
        .output()
        .expect("runs");
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    (single.stdout, merged.stdout, shards)
}

fn assert_identical(name: &str, args: &[&str], n: u32) -> Vec<PathBuf> {
    let (single, merged, shards) = single_and_merged(name, args, n);
    assert!(
        single == merged,
        "{name}: merged report differs from the single run\n{}\n---\n{}",
        String::from_utf8_lossy(&single),
        String::from_utf8_lossy(&merged)
    );
    shards
}

#[test]
fn pareto_merges_to_the_single_run() {
    assert_identical(
        "pareto",
        &[
            "pareto",
            "--cdf",
            "azure",
            "--lam",
            "50",
            "--gpu-short",
            "a100",
            "--gpu-long",
            "a100",
            "--long-max-ctx",
            "8192",
            "--n-sim-req",
            "2000",
        ],
        3,
    );
}

#[test]
fn whatif_merges_to_the_single_run() {
    assert_identical(
        "whatif",
        &[
            "whatif",
            "--cdf",
            "azure",
            "--lam-range",
            "25",
            "50",
            "100",
            "--gpu-compare",
            "a100",
            "h100",
            "--long-max-ctx",
            "8192",
            "--n-sim-req",
            "2000",
        ],
        4,
    );
}

#[test]
fn grid_flex_merges_to_the_single_run() {
    assert_identical(
        "gridflex",
        &[
            "grid-flex",
            "--cdf",
            "azure",
            "--lam",
            "100",
            "--n-gpus",
            "12",
            "--gpu",
            "h100",
            "--verify-des",
            "6000",
        ],
        2,
    );
}

#[test]
fn tok_per_watt_merges_to_the_single_run_with_more_shards_than_items() {
    // Five shards for three fleets: two shards hold nothing, and still merge.
    assert_identical(
        "tpw",
        &[
            "tok-per-watt",
            "--cdf",
            "azure",
            "--lam",
            "50",
            "--gpus",
            "h100",
            "a100",
            "a10g",
            "--rho-sweep",
            "--n-sim-req",
            "2000",
        ],
        5,
    );
}

fn merge_fails(shards: &[PathBuf], expect: &str) {
    let out = kvfleet()
        .arg("merge")
        .args(shards)
        .arg("-q")
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(expect), "expected `{expect}` in: {err}");
}

#[test]
fn incomplete_duplicated_or_mixed_shards_are_refused() {
    let a = &[
        "pareto",
        "--cdf",
        "azure",
        "--lam",
        "40",
        "--gpu-short",
        "a100",
        "--gpu-long",
        "a100",
        "--long-max-ctx",
        "8192",
        "--n-sim-req",
        "2000",
    ];
    let (_, _, shards) = single_and_merged("bad-a", a, 3);
    // shards are [2/3, 1/3, 0/3]
    merge_fails(&shards[..2], "missing shard(s) 0/3");
    merge_fails(
        &[shards[0].clone(), shards[0].clone()],
        "shard 2/3 is also in",
    );
    let b = &[
        "pareto",
        "--cdf",
        "azure",
        "--lam",
        "45",
        "--gpu-short",
        "a100",
        "--gpu-long",
        "a100",
        "--long-max-ctx",
        "8192",
        "--n-sim-req",
        "2000",
    ];
    let (_, _, other) = single_and_merged("bad-b", b, 3);
    merge_fails(
        &[shards[0].clone(), other[1].clone(), shards[2].clone()],
        "comes from another run",
    );
    // A report is not a shard document.
    let report = dir("bad-c").join("report.json");
    let out = kvfleet()
        .args(a)
        .arg("--out")
        .arg(&report)
        .arg("-q")
        .output()
        .expect("runs");
    assert!(out.status.success());
    merge_fails(&[report], "not a kvfleet shard document");
    // A tampered item is named.
    let text = std::fs::read_to_string(&shards[2]).expect("shard");
    let tampered = dir("bad-d").join("t.json");
    std::fs::write(&tampered, text.replacen("\"counts\"", "\"cts\"", 1)).expect("write");
    merge_fails(&[tampered, shards[1].clone(), shards[0].clone()], "item 0");
}

#[test]
fn bad_shard_values_name_the_flag() {
    for bad in ["3/3", "0/0", "x/2", "1", "-1/2"] {
        let out = kvfleet()
            .args(["pareto", "--cdf", "azure", "--lam", "40", "--shard", bad])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "--shard {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--shard"), "{err}");
    }
}
