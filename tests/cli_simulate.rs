//! CLI tests of `simulate` and `run`: determinism, replications across
//! thread counts, conservation, overload verdict, and bad input (exit 2).

use assert_cmd::Command;
use serde_json::Value;

fn kvfleet() -> Command {
    Command::cargo_bin("kvfleet").expect("binary builds")
}

fn json_of(args: &[&str], threads: &str) -> (Value, String) {
    let out = kvfleet()
        .env("RAYON_NUM_THREADS", threads)
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    (
        serde_json::from_str(&text).expect("one JSON document"),
        text,
    )
}

const SMALL: &[&str] = &[
    "simulate",
    "--json",
    "--quiet",
    "--no-timing",
    "--n-req",
    "20000",
    "--lam",
    "60",
    "--seed",
    "7",
];

#[test]
fn same_seed_same_bytes_and_contract_keys() {
    let (v, a) = json_of(SMALL, "2");
    let (_, b) = json_of(SMALL, "1");
    assert_eq!(a, b, "same seed must give identical JSON bytes");
    for key in [
        "requests",
        "ttft_ms",
        "tpot_ms",
        "e2e_ms",
        "queue_wait_ms",
        "slo",
        "throughput",
        "utilisation",
        "mean_batch",
        "preemptions",
        "verdict",
        "pools",
        "engine",
        "cost",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}");
    }
    for key in ["mean", "p50", "p90", "p99", "p999"] {
        assert!(v["ttft_ms"][key].is_number(), "ttft_ms.{key}");
    }
    let r = &v["requests"];
    let (arrived, completed, rejected, in_flight) = (
        r["arrived"].as_u64(),
        r["completed"].as_u64(),
        r["rejected"].as_u64(),
        r["in_flight"].as_u64(),
    );
    assert_eq!(arrived, Some(20000));
    assert_eq!(
        arrived.unwrap_or(0),
        completed.unwrap_or(0) + rejected.unwrap_or(0) + in_flight.unwrap_or(0)
    );
    assert_eq!(r["measured"].as_u64(), Some(18000));
    assert_eq!(v["verdict"], "stable");
    assert_eq!(v["engine"]["name"], "fast");
    assert!(v["engine"]["wall_s"].is_null());
    assert_eq!(v["pools"][0]["instances"], 4);
    assert_eq!(v["pools"][0]["gpus"], 4);
    let (other, _) = json_of(&[SMALL, &["--seed", "8"]].concat(), "2");
    assert_ne!(
        other["ttft_ms"], v["ttft_ms"],
        "a different seed must change the sample"
    );
}

#[test]
fn replications_are_identical_with_one_or_two_threads() {
    let args = [SMALL, &["--replications", "4"]].concat();
    let (v, a) = json_of(&args, "1");
    let (_, b) = json_of(&args, "2");
    assert_eq!(a, b);
    assert_eq!(v["replications"]["count"], 4);
    assert!(
        v["replications"]["ci95"]["ttft_ms.p99"]
            .as_f64()
            .is_some_and(|h| h > 0.0)
    );
    // One pool: the pool's averaged metrics are the fleet's averaged metrics.
    assert_eq!(v["pools"][0]["ttft_ms"], v["ttft_ms"]);
    assert_eq!(v["pools"][0]["utilisation"], v["utilisation"]);
    assert!(
        v["replications"]["ci95"]["pools.0.ttft_ms.p99"]
            .as_f64()
            .is_some()
    );
}

#[test]
fn step_engine_agrees_with_fast_engine_through_the_cli() {
    let (f, _) = json_of(&[SMALL, &["--n-req", "3000"]].concat(), "1");
    let (s, _) = json_of(
        &[SMALL, &["--n-req", "3000", "--engine", "step"]].concat(),
        "1",
    );
    assert_eq!(f["ttft_ms"], s["ttft_ms"]);
    assert_eq!(f["e2e_ms"], s["e2e_ms"]);
    assert!(f["engine"]["events"].as_u64() < s["engine"]["events"].as_u64());
}

#[test]
fn overload_ends_unstable_early() {
    // One A10G instance at ~3× its capacity, 2M requests: must stop early, not crawl.
    let (v, _) = json_of(
        &[
            "simulate",
            "--json",
            "--quiet",
            "--no-timing",
            "--gpu",
            "a10g",
            "--n-gpus",
            "1",
            "--lam",
            "30",
            "--n-req",
            "2000000",
        ],
        "1",
    );
    assert_eq!(v["verdict"], "unstable");
    let r = &v["requests"];
    assert!(
        r["arrived"].as_u64().unwrap_or(u64::MAX) < 2_000_000,
        "did not stop early: {r}"
    );
    assert!(r["in_flight"].as_u64().unwrap_or(0) > 0);
    assert!(v["unstable"]["detected_at_s"].as_f64().is_some());
    assert_eq!(
        r["arrived"].as_u64(),
        Some(
            r["completed"].as_u64().unwrap_or(0)
                + r["rejected"].as_u64().unwrap_or(0)
                + r["in_flight"].as_u64().unwrap_or(0)
        )
    );
}

#[test]
fn overload_runs_to_completion_when_asked() {
    // 8 H100 instances at 2× their capacity: every request is simulated, the
    // verdict is still unstable, and the backlog trajectory rises then drains.
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "simulate",
            "--json",
            "--quiet",
            "--no-timing",
            "--cdf",
            "azure",
            "--n-gpus",
            "8",
            "--lam",
            "380",
            "--n-req",
            "40000",
            "--seed",
            "3",
        ];
        a.extend_from_slice(extra);
        a
    };
    let (v, _) = json_of(&args(&["--run-to-completion"]), "1");
    assert_eq!(v["verdict"], "unstable");
    let r = &v["requests"];
    assert_eq!(r["arrived"].as_u64(), Some(40_000), "{r}");
    assert_eq!(r["in_flight"].as_u64(), Some(0), "{r}");
    let backlog = v["unstable"]["backlog"]
        .as_array()
        .expect("backlog trajectory");
    let waiting: Vec<u64> = backlog
        .iter()
        .map(|p| p["waiting"].as_u64().expect("waiting"))
        .collect();
    assert!(waiting.len() >= 2 && waiting.len() <= 25, "{waiting:?}");
    assert!(waiting.iter().max() > Some(&1000), "{waiting:?}");
    assert_eq!(waiting.last(), Some(&0));
    // Without the flag the same run stops at its verdict and has no trajectory.
    let (early, _) = json_of(&args(&[]), "1");
    assert_eq!(early["verdict"], "unstable");
    assert!(early["requests"]["arrived"].as_u64() < Some(40_000));
    assert!(early["unstable"].get("backlog").is_none());
}

#[test]
fn scenario_run_to_completion_key_is_honoured() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-rtc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("overload.toml");
    std::fs::write(
        &path,
        "[workload]\nisl = \"lognormal:1020:1.0:7000\"\nosl = \"lognormal:129:1.0:1000\"\n\
         lam = 200\nn_requests = 30000\n\n[[pools]]\nid = \"p\"\ngpu = \"h100\"\n\
         instances = 2\nmax_ctx = 8192\n\n[sim]\nseed = 7\nrun_to_completion = true\n",
    )
    .expect("write scenario");
    let file = path.to_str().expect("utf8 path");
    let (v, _) = json_of(&["run", file, "--json", "--quiet", "--no-timing"], "1");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(v["verdict"], "unstable");
    assert_eq!(v["requests"]["arrived"].as_u64(), Some(30_000));
    assert_eq!(v["requests"]["in_flight"].as_u64(), Some(0));
    assert!(v["unstable"]["backlog"].as_array().is_some());
}

#[test]
fn over_context_requests_are_counted_rejections() {
    let (v, _) = json_of(
        &[
            "simulate",
            "--json",
            "--quiet",
            "--no-timing",
            "--isl",
            "uniform:100:9000",
            "--osl",
            "fixed:10",
            "--lam",
            "5",
            "--n-req",
            "2000",
        ],
        "1",
    );
    let rejected = v["requests"]["rejected"].as_u64().unwrap_or(0);
    assert!(rejected > 0);
    assert_eq!(
        v["requests"]["rejected_by_reason"]["exceeds_max_ctx"].as_u64(),
        Some(rejected)
    );
    assert!(
        v["slo"]["attainment"].as_f64().unwrap_or(1.0) < 1.0,
        "rejections are SLO misses"
    );
}

#[test]
fn two_pool_fleet_uses_both_profiles() {
    let (v, _) = json_of(
        &[
            "simulate",
            "--json",
            "--quiet",
            "--no-timing",
            "--gpu-short",
            "a10g",
            "--gpu-long",
            "h100",
            "--n-s",
            "2",
            "--n-l",
            "1",
            "--b-short",
            "2048",
            "--long-max-ctx",
            "16384",
            "--lam",
            "10",
            "--n-req",
            "3000",
            "--isl",
            "uniform:10:8000",
            "--osl",
            "fixed:50",
        ],
        "1",
    );
    assert_eq!(v["pools"][0]["gpu"], "a10g");
    assert_eq!(v["pools"][1]["gpu"], "h100");
    assert!(v["router"]["routed"]["short"].as_u64().unwrap_or(0) > 0);
    assert!(v["router"]["routed"]["long"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn bad_input_exits_2_with_one_clear_line() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let cdf = dir.join("bad_cdf.json");
    std::fs::write(&cdf, "[[100, 0.5], [50, 1.0]]").expect("write");
    let cdf_big = dir.join("big_cdf.json");
    std::fs::write(&cdf_big, "[[100, 0.5], [200, 1.5]]").expect("write");
    let empty = dir.join("empty.csv");
    std::fs::write(&empty, "").expect("write");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--cdf".into(), cdf.display().to_string()],
            "CDF entry 1",
        ),
        (
            vec!["--cdf".into(), cdf_big.display().to_string()],
            "CDF entry 1",
        ),
        (vec!["--trace".into(), empty.display().to_string()], "empty"),
        (vec!["--gpu".into(), "tpu9".into()], "unknown GPU profile"),
        (vec!["--lam=-3".into()], "--lam"),
        (vec!["--router".into(), "nope".into()], "--router"),
        (vec!["--gpu".into(), "custom".into()], "--w-ms"),
        (
            vec![
                "--cdf".into(),
                dir.join("absent.json").display().to_string(),
            ],
            "absent.json: cannot read",
        ),
    ];
    for (args, needle) in cases {
        let out = kvfleet()
            .arg("simulate")
            .arg("--quiet")
            .args(&args)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: expected `{needle}` in {err}"
        );
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: one line, got {err}"
        );
        // The cause is said once (an I/O error is not repeated as its own source).
        assert!(err.matches("os error").count() <= 1, "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn scenario_file_runs() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-scn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let scn = dir.join("s.toml");
    std::fs::write(
        &scn,
        "[workload]\nisl = \"fixed:500\"\nosl = \"fixed:50\"\nlam = 20\nn_requests = 2000\n\n[[pools]]\nid = \"a\"\ngpu = \"a100\"\ninstances = 2\nmax_ctx = 4096\n\n[sim]\nseed = 3\nslo_ttft_ms = 300\n",
    )
    .expect("write");
    let (v, _) = json_of(
        &[
            "run",
            scn.to_str().expect("utf8"),
            "--json",
            "--quiet",
            "--no-timing",
        ],
        "1",
    );
    assert_eq!(v["pools"][0]["id"], "a");
    assert_eq!(v["slo"]["ttft_ms"], 300.0);
    std::fs::write(
        &scn,
        "[[pools]]\nid = \"a\"\ngpu = \"a100\"\ninstanses = 2\nmax_ctx = 4096\n",
    )
    .expect("write");
    let out = kvfleet()
        .args(["run", scn.to_str().expect("utf8"), "--quiet"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}
