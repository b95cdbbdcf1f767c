//! Regression tests of issue 11's input side: every input either gives a
//! truthful answer or is refused with one line naming the flag or file
//! (exit 2). Fixtures are written inline to a temporary folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;

use common::kvfleet;
use serde_json::Value;

/// A fresh temporary folder for one test.
fn tmp(name: &str) -> PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-inputs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fixture");
    p
}

/// Run kvfleet (killed after 60 s: a hang is a failure); exit code, stdout, stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = kvfleet()
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("runs");
    let code = out.status.code().unwrap_or(-1);
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Require exit 2 with one stderr line that contains every one of `needles`.
fn refused(args: &[&str], needles: &[&str]) {
    let (code, _, err) = run(args);
    assert_eq!(code, 2, "{args:?}: exit {code}, stderr {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: `{n}` not in {err}");
    }
}

/// Require exit 0 and return the JSON report.
fn ok_json(args: &[&str]) -> Value {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

const CDF: &str = "[[64, 0.5], [512, 1.0]]";

/// A fresh folder holding `c.json` (a valid CDF), and that file's path.
fn with_cdf(name: &str) -> (PathBuf, String) {
    let d = tmp(name);
    let cdf = write(&d, "c.json", CDF).to_string_lossy().into_owned();
    (d, cdf)
}

fn small_scenario(dir: &Path) -> PathBuf {
    write(
        dir,
        "s.toml",
        r#"
[workload]
isl = "fixed:100"
osl = "fixed:10"
lam = 5
n_requests = 300

[[pools]]
id = "p"
gpu = "h100"
instances = 1
max_ctx = 4096
"#,
    )
}

// ---- Defect 2: a workload flag overrides only its own field ----

#[test]
fn a_workload_flag_overrides_only_its_field_of_the_scenario() {
    let d = tmp("override");
    let s = small_scenario(&d);
    let s = s.to_str().unwrap();
    for args in [
        vec!["simulate", "--scenario", s, "--lam", "20"],
        vec!["simulate-fleet", s, "--lam", "20"],
    ] {
        let mut a = args.clone();
        a.extend(["--json", "-q", "--no-timing"]);
        let v = ok_json(&a);
        let w = v["workload"].as_str().unwrap();
        assert!(w.contains("Poisson 20 req/s"), "{args:?}: {w}");
        assert!(w.contains("ISL fixed:100 / OSL fixed:10"), "{args:?}: {w}");
        assert_eq!(v["requests"]["arrived"], 300, "{args:?}");
    }
    // compare-routers: the same fleet and workload for every router.
    let v = ok_json(&[
        "compare-routers",
        "--scenario",
        s,
        "--n-req",
        "200",
        "--routers",
        "length,random",
        "--json",
        "-q",
    ]);
    let text = v.to_string();
    assert!(text.contains("fixed:100"), "{text}");
    assert!(!text.contains("lognormal"), "{text}");
    // A length flag replaces the file's length model and keeps its rate.
    let cdf = write(&d, "c.json", CDF);
    let v = ok_json(&[
        "simulate",
        "--scenario",
        s,
        "--cdf",
        cdf.to_str().unwrap(),
        "--json",
        "-q",
    ]);
    let w = v["workload"].as_str().unwrap();
    assert!(
        w.contains("300 requests, Poisson 5 req/s, total-length CDF"),
        "{w}"
    );
}

#[test]
fn trace_options_apply_to_the_scenario_trace_and_synthetic_flags_are_refused() {
    let d = tmp("trace-override");
    write(
        &d,
        "t.csv",
        "timestamp,prompt_tokens,generated_tokens\n0,100,10\n1,100,10\n2,100,10\n",
    );
    let s = write(
        &d,
        "s.toml",
        "[workload]\ntrace = { path = \"t.csv\" }\n\n[[pools]]\nid = \"p\"\ngpu = \"h100\"\ninstances = 1\nmax_ctx = 4096\n",
    );
    let s = s.to_str().unwrap();
    let v = ok_json(&[
        "simulate",
        "--scenario",
        s,
        "--time-scale",
        "2",
        "--max-requests",
        "2",
        "--json",
        "-q",
    ]);
    let w = v["workload"].as_str().unwrap();
    assert!(w.contains("time scale ×2") && w.contains("first 2"), "{w}");
    assert_eq!(v["requests"]["arrived"], 2);
    refused(
        &["simulate", "--scenario", s, "--lam", "3"],
        &["--lam", "trace"],
    );
}

// ---- Defect 3: --max-queue bounds waiting requests whatever the bottleneck ----

#[test]
fn max_queue_rejects_when_prefill_is_the_bottleneck() {
    for cap in ["1", "0"] {
        let v = ok_json(&[
            "simulate",
            "--lam",
            "1000",
            "--max-queue",
            cap,
            "--n-req",
            "5000",
            "--json",
            "-q",
            "--no-timing",
        ]);
        let r = &v["requests"];
        let full = r["rejected_by_reason"]["queue_full"].as_u64().unwrap_or(0);
        assert!(full > 1000, "--max-queue {cap}: {r}");
        assert_eq!(r["in_flight"], 0, "--max-queue {cap}: {r}");
    }
    // At light load --max-queue 0 (no queueing) still serves nearly everything.
    let v = ok_json(&[
        "simulate",
        "--lam",
        "5",
        "--max-queue",
        "0",
        "--n-req",
        "300",
        "--json",
        "-q",
    ]);
    let done = v["requests"]["completed"].as_u64().unwrap();
    assert!(done >= 290, "{}", v["requests"]);
    let (_, help, _) = run(&["simulate", "--help"]);
    assert!(help.contains("0 = no queueing"), "{help}");
}

// ---- Defect 4: absurd values are refused with their range ----

#[test]
fn absurd_values_are_refused_with_their_range() {
    let (d, cdf) = with_cdf("absurd");
    let cdf = cdf.as_str();
    let trace = write(
        &d,
        "t.csv",
        "timestamp,prompt_tokens,generated_tokens\n0,100,10\n1,100,10\n",
    );
    let trace = trace.to_str().unwrap();
    let far = write(
        &d,
        "far.csv",
        "timestamp,prompt_tokens,generated_tokens\n0,100,10\n500000000,100,10\n",
    );
    refused(
        &["simulate", "--lam", "1e-9", "--n-req", "100"],
        &["--lam", "1e9 s"],
    );
    refused(
        &["simulate", "--trace", trace, "--time-scale", "1e10"],
        &["--time-scale", "[1e-6, 1e6]"],
    );
    refused(
        &[
            "simulate",
            "--trace",
            far.to_str().unwrap(),
            "--time-scale",
            "3",
        ],
        &["far.csv:3", "--time-scale 3", "1e9 s"],
    );
    refused(
        &["disagg", "--cdf", cdf, "--lam", "10", "--link", "1e-12"],
        &["--link", "at least 0.001 GB/s"],
    );
    refused(
        &[
            "disagg",
            "--cdf",
            cdf,
            "--lam",
            "10",
            "--kv-bytes-per-token",
            "1e20",
        ],
        &["--kv-bytes-per-token", "1e8"],
    );
    refused(
        &[
            "optimize",
            "--cdf",
            cdf,
            "--lam",
            "10",
            "--failure-rate-per-day",
            "1e9",
            "--mttr-hours",
            "1e9",
        ],
        &["--failure-rate-per-day", "[0, 24]"],
    );
    refused(
        &[
            "optimize",
            "--cdf",
            cdf,
            "--lam",
            "10",
            "--failure-rate-per-day",
            "20",
            "--mttr-hours",
            "8000",
        ],
        &["--failure-rate-per-day", "availability"],
    );
    refused(&["simulate", "--slo", "1e300"], &["--slo"]);
}

// ---- Defect 5: bounded reads and bounded replications ----

#[cfg(target_os = "linux")]
#[test]
fn unbounded_files_stop_at_the_cap() {
    refused(
        &["simulate", "--cdf", "/dev/zero", "-q"],
        &["/dev/zero", "64 MiB limit"],
    );
    refused(
        &["simulate", "--trace", "/dev/zero", "-q"],
        &["/dev/zero", "line is longer than the 1 MiB limit"],
    );
    refused(
        &["simulate", "--scenario", "/dev/zero", "-q"],
        &["/dev/zero", "64 MiB limit"],
    );
    refused(
        &["simulate-fleet", "/dev/zero", "-q"],
        &["/dev/zero", "64 MiB limit"],
    );
    refused(&["run", "/dev/zero", "-q"], &["/dev/zero", "64 MiB limit"]);
}

/// 1,000 replications of 200 requests fit in 600 MB of address space (the
/// old code kept every replication's raw outcome: about 1.2 MB each).
#[cfg(target_os = "linux")]
#[test]
fn replications_keep_only_their_reports() {
    let bin = env!("CARGO_BIN_EXE_kvfleet");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 600000 && exec '{}' simulate --n-req 200 --replications 1000 --json -q --no-timing > /dev/null",
            bin
        ))
        .status()
        .expect("sh runs");
    assert!(status.success(), "{status:?}");
    refused(
        &["simulate", "--replications", "5000"],
        &["--replications", "1 to 1000"],
    );
}

// ---- Defect 9: fleet files ----

#[test]
fn fleet_files_refuse_duplicate_ids_and_shares_not_summing_to_one() {
    let d = tmp("fleet");
    write(&d, "c.json", CDF);
    let pool = |id: &str| format!(r#"{{"id":"{id}","gpu":"a100","n_gpus":1,"max_ctx":4096}}"#);
    let dup = write(
        &d,
        "dup.json",
        &format!(r#"{{"pools":[{},{}]}}"#, pool("a"), pool("a")),
    );
    refused(
        &["simulate-fleet", dup.to_str().unwrap(), "--n-req", "100"],
        &["dup.json", "pools[1].id", "duplicate"],
    );
    let frac = write(
        &d,
        "frac.json",
        &format!(
            r#"{{"pools":[{},{}],"router":"model","workloads":{{"a":{{"cdf":"c.json","lam_frac":0.8}},"b":{{"cdf":"c.json","lam_frac":0.5}}}}}}"#,
            pool("a"),
            pool("b")
        ),
    );
    refused(
        &[
            "simulate-fleet",
            frac.to_str().unwrap(),
            "--lam",
            "10",
            "--n-req",
            "100",
        ],
        &["frac.json", "lam_frac", "sum to 1.3"],
    );
    let zero = write(
        &d,
        "zero.json",
        r#"{"pools":[{"id":"a","gpu":"a100","n_gpus":0,"max_ctx":4096}]}"#,
    );
    refused(
        &["simulate-fleet", zero.to_str().unwrap(), "--n-req", "100"],
        &["zero.json", "pools[0].n_gpus"],
    );
    let toml_pool = |id: &str| {
        format!("[[pools]]\nid = \"{id}\"\ngpu = \"h100\"\ninstances = 1\nmax_ctx = 4096\n")
    };
    let dup = write(
        &d,
        "dup.toml",
        &format!("{}{}", toml_pool("x"), toml_pool("x")),
    );
    refused(
        &["simulate-fleet", dup.to_str().unwrap(), "--n-req", "100"],
        &["dup.toml", "pools[1].id"],
    );
}

// ---- Defect 11: output paths are checked first; results print first ----

#[test]
fn bad_output_paths_fail_before_any_work_in_every_command() {
    let bad = "/nonexistent-kvfleet-dir/x.out";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["simulate", "--out", bad], "--out"),
        (vec!["run", "s.toml", "--out", bad], "--out"),
        (vec!["simulate-fleet", "f.json", "--out", bad], "--out"),
        (vec!["compare-routers", "--csv", bad], "--csv"),
        (
            vec!["optimize", "--cdf", "c.json", "--lam", "5", "--out", bad],
            "--out",
        ),
        (
            vec![
                "whatif",
                "--cdf",
                "c.json",
                "--lam-range",
                "5",
                "--plot",
                bad,
            ],
            "--plot",
        ),
        (
            vec![
                "whatif",
                "--cdf",
                "c.json",
                "--lam-range",
                "5",
                "--csv",
                bad,
            ],
            "--csv",
        ),
        (
            vec!["pareto", "--cdf", "c.json", "--lam", "5", "--csv", bad],
            "--csv",
        ),
        (
            vec!["pareto", "--cdf", "c.json", "--lam", "5", "--plot", bad],
            "--plot",
        ),
        (vec!["grid-flex", "--plot", bad], "--plot"),
        (vec!["grid-flex", "--csv", bad], "--csv"),
        (
            vec!["disagg", "--cdf", "c.json", "--lam", "5", "--csv", bad],
            "--csv",
        ),
        (
            vec![
                "tok-per-watt",
                "--cdf",
                "c.json",
                "--lam",
                "5",
                "--out",
                bad,
            ],
            "--out",
        ),
        (
            vec![
                "sizing-calc",
                "--simulate",
                "--test-gpu-count",
                "1",
                "--target-users",
                "5",
                "--csv",
                bad,
            ],
            "--csv",
        ),
        (
            vec![
                "sizing-calc",
                "--simulate",
                "--test-gpu-count",
                "1",
                "--target-users",
                "5",
                "--plot-dir",
                "/dev/null/plots",
            ],
            "--plot-dir",
        ),
        (vec!["analytic", "--out", bad], "--out"),
        (vec!["profile", "--out", bad], "--out"),
        (vec!["calibrate", "m.csv", "--out", bad], "--out"),
    ];
    for (args, flag) in cases {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: printed {out}");
        assert!(
            err.contains(flag) && (err.contains("does not exist") || err.contains("not a folder")),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
    refused(&["simulate", "--out", "/tmp"], &["--out", "is a folder"]);
}

#[cfg(target_os = "linux")]
#[test]
fn the_result_is_printed_before_a_failing_file_write() {
    // /dev/full accepts the open and fails the write: the table must be out by then.
    let (code, out, err) = run(&["simulate", "--n-req", "200", "-q", "--out", "/dev/full"]);
    assert_ne!(code, 0, "{err}");
    assert!(out.contains("Verdict"), "{out} / {err}");
    let (code, out, err) = run(&[
        "compare-routers",
        "--n-req",
        "200",
        "-q",
        "--routers",
        "length",
        "--csv",
        "/dev/full",
    ]);
    assert_ne!(code, 0, "{err}");
    assert!(out.contains("length"), "{out} / {err}");
}

// ---- Defect 12: smaller input problems ----

#[test]
fn errors_name_the_flag_the_user_typed() {
    let (_d, cdf) = with_cdf("flag-names");
    let cdf = cdf.as_str();
    refused(&["simulate", "--n-gpus", "0"], &["--n-gpus"]);
    refused(&["simulate", "--max-ctx", "1"], &["--max-ctx"]);
    refused(&["simulate", "--n-s", "1", "--n-l", "0"], &["--n-l"]);
    refused(&["simulate", "--replications", "0"], &["--replications"]);
    refused(&["simulate", "--warmup", "1"], &["--warmup"]);
    refused(
        &["optimize", "--cdf", cdf, "--lam", "5", "--n-sim-req", "0"],
        &["--n-sim-req"],
    );
    refused(
        &[
            "whatif",
            "--cdf",
            cdf,
            "--lam-range",
            "5",
            "--n-sim-req",
            "0",
        ],
        &["--n-sim-req"],
    );
}

#[test]
fn negative_numbers_reach_the_range_check() {
    refused(&["simulate", "--slo", "-1"], &["--slo", "got -1"]);
    refused(&["simulate", "--lam", "-5"], &["--lam"]);
    refused(&["simulate", "--n-req", "-3"], &["--n-req", "whole number"]);
}

#[test]
fn counts_accept_whole_numbers_in_scientific_notation() {
    let v = ok_json(&[
        "simulate", "--n-req", "2e2", "--n-gpus", "1e0", "--json", "-q",
    ]);
    assert_eq!(v["requests"]["arrived"], 200);
    assert_eq!(v["instances"], 1);
    refused(
        &["simulate", "--n-req", "1.5"],
        &["--n-req", "whole number"],
    );
    refused(&["simulate", "--n-req", "1e30"], &["--n-req"]);
}

#[test]
fn gzip_traces_are_read_and_a_bom_in_a_cdf_is_accepted() {
    use std::io::Write;
    let d = tmp("gzip-bom");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(b"timestamp,prompt_tokens,generated_tokens\n0,100,10\n1,100,10\n")
        .unwrap();
    let gz = d.join("t.csv.gz");
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let v = ok_json(&["simulate", "--trace", gz.to_str().unwrap(), "--json", "-q"]);
    assert_eq!(v["requests"]["arrived"], 2);
    let bom = write(&d, "bom.json", &format!("\u{feff}{CDF}"));
    let v = ok_json(&[
        "simulate",
        "--cdf",
        bom.to_str().unwrap(),
        "--n-req",
        "100",
        "--json",
        "-q",
    ]);
    assert_eq!(v["requests"]["arrived"], 100);
    // Binary that is not gzip is named, not dumped.
    let bin = d.join("b.csv");
    std::fs::write(&bin, [0x00u8, 0xff, 0xfe, 0x01, 0x80, 0x0a]).unwrap();
    let (code, _, err) = run(&["simulate", "--trace", bin.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains('\u{fffd}'), "{err}");
}

#[test]
fn skipped_trace_rows_are_reported() {
    let d = tmp("skip");
    let t = write(
        &d,
        "t.csv",
        "timestamp,prompt_tokens,generated_tokens\n0,100,10\n1,abc,10\n2,100,10\n",
    );
    let t = t.to_str().unwrap();
    let (code, out, err) = run(&["simulate", "--trace", t, "--skip-bad-rows", "-q"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Trace rows skipped: 1 malformed"), "{out}");
    let v = ok_json(&["simulate", "--trace", t, "--skip-bad-rows", "-q", "--json"]);
    assert_eq!(v["skipped_rows"]["bad_rows"], 1);
}

// ---- Found by the hostile suite: averaged counts must stay conserved ----

#[test]
fn replicated_window_counts_are_conserved() {
    // Two replications whose window counts average to x.5: rounding each
    // mean separately gave 50 arrived = 50 completed + 1 rejected.
    let d = tmp("window-counts");
    write(&d, "c.json", "[[64, 0.4], [512, 0.9], [2048, 1.0]]");
    let s = write(
        &d,
        "s.toml",
        r#"
[workload]
cdf = "c.json"
lam = 144
n_requests = 50
input_frac = 0.8

[[pools]]
id = "short"
gpu = "a100"
instances = 1
max_ctx = 1024
max_queue = 4

[[pools]]
id = "long"
gpu = "h100"
instances = 2
max_ctx = 8192

[[windows]]
name = "w"
start_s = 0
end_s = 3

[sim]
seed = 3
replications = 2
"#,
    );
    let v = ok_json(&["run", s.to_str().unwrap(), "--json", "-q"]);
    for r in [&v["requests"], &v["windows"][0]["requests"]] {
        let n = |k: &str| r[k].as_u64().unwrap();
        assert_eq!(
            n("arrived"),
            n("completed") + n("rejected") + n("in_flight"),
            "{r}"
        );
    }
}
