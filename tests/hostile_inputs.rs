//! The hostile-input suite: random flag values (0, negative, NaN, ±∞, 1e300,
//! huge counts, garbage) for the main commands' numeric flags, and random or
//! mutated contents for every input file kind. Each case runs the binary
//! (tiny workloads) and must
//!
//! * not panic, and exit with 0, 1 or 2 within a per-process kill timeout;
//! * on exit 2, print exactly one line on stderr (`error: ...`);
//! * on exit 0 with `--json`, print one JSON document whose request counts
//!   are conserved (arrived = completed + rejected + in flight, measured ≤
//!   arrived), whose SLO attainments are fractions and whose P99 TTFT is a
//!   number whenever a request completed.
//!
//! Few cases per property keep the suite short on two cores.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value;

mod common;

/// Kill a run after this long: a hang is a failure.
const KILL_AFTER: Duration = Duration::from_secs(20);

/// `cases` per property, or `KVFLEET_HOSTILE_CASES` when set. The cases
/// come from the fixed `PROPTEST_RNG_SEED` of `.cargo/config.toml` (so CI's
/// verdict does not depend on luck); a longer hunt sets both, e.g.
/// `KVFLEET_HOSTILE_CASES=4000 PROPTEST_RNG_SEED=$RANDOM`.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("KVFLEET_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 16,
        ..ProptestConfig::default()
    }
}

/// Folder for this process's fixtures.
fn dir() -> PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Write `bytes` to a fresh file named `*.{ext}` and return its path.
fn fixture(ext: &str, bytes: &[u8]) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = dir().join(format!("f{}.{ext}", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&p, bytes).expect("write fixture");
    p.to_string_lossy().into_owned()
}

/// A small valid CDF (also the lengths of the other fixtures).
const CDF: &str = "[[64, 0.4], [512, 0.9], [2048, 1.0]]";

fn cdf_path() -> String {
    fixture("json", CDF.as_bytes())
}

/// Run kvfleet and check the generic truths; returns the exit code.
fn check(args: &[String]) -> Result<i32, TestCaseError> {
    let out = common::kvfleet()
        .args(args)
        .current_dir(dir())
        .timeout(KILL_AFTER)
        .output()
        .map_err(|e| TestCaseError::fail(format!("{args:?}: did not finish: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    prop_assert!(!stderr.contains("panicked"), "{args:?}: panicked: {stderr}");
    prop_assert!(
        matches!(code, Some(0..=2)),
        "{args:?}: exit {code:?} (killed after {KILL_AFTER:?}?): {stderr}"
    );
    let code = code.unwrap_or(-1);
    if code == 2 {
        let lines: Vec<&str> = stderr.trim_end().lines().collect();
        prop_assert!(
            lines.len() == 1 && lines[0].starts_with("error: "),
            "{args:?}: exit 2 must give one `error:` line, got {stderr:?}"
        );
    }
    if code == 0 && args.iter().any(|a| a == "--json") {
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            TestCaseError::fail(format!(
                "{args:?}: exit 0 without one JSON document ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            ))
        })?;
        truthful(args, &v)?;
    }
    Ok(code)
}

/// The report's own consistency, wherever request counts appear in it.
fn truthful(args: &[String], v: &Value) -> Result<(), TestCaseError> {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("requests")
                && let (Some(a), Some(c), Some(j), Some(f)) = (
                    r.get("arrived").and_then(Value::as_u64),
                    r.get("completed").and_then(Value::as_u64),
                    r.get("rejected").and_then(Value::as_u64),
                    r.get("in_flight").and_then(Value::as_u64),
                )
            {
                prop_assert_eq!(a, c + j + f, "{:?}: conservation in {}", args, r);
                let meas = r.get("measured").and_then(Value::as_u64).unwrap_or(0);
                prop_assert!(meas <= a, "{:?}: measured > arrived in {}", args, r);
                // A whole run's report (it has a verdict) that exited 0 measured
                // something and did not reject everything: those runs exit 1.
                if let Some(verdict) = m.get("verdict").and_then(Value::as_str)
                    && m.contains_key("workload")
                {
                    prop_assert!(
                        meas > 0 && j < a && verdict != "no-data" && verdict != "all-rejected",
                        "{:?}: exit 0 with verdict {} and {}",
                        args,
                        verdict,
                        r
                    );
                }
                if let Some(t) = m.get("ttft_ms") {
                    let p99 = t.get("p99");
                    // Every request completed and some were measured: there is a P99.
                    if meas > 0 && c == a {
                        prop_assert!(
                            p99.and_then(Value::as_f64).is_some_and(|x| x >= 0.0),
                            "{:?}: {} measured, all completed, but P99 TTFT {:?}",
                            args,
                            meas,
                            t
                        );
                    }
                    if let Some(x) = p99.and_then(Value::as_f64) {
                        prop_assert!(x >= 0.0, "{:?}: P99 TTFT {}", args, x);
                    }
                }
            }
            if let Some(att) = m
                .get("slo")
                .and_then(|s| s.get("attainment"))
                .and_then(Value::as_f64)
            {
                prop_assert!(
                    (0.0..=1.0).contains(&att),
                    "{:?}: SLO attainment {}",
                    args,
                    att
                );
            }
            for x in m.values() {
                truthful(args, x)?;
            }
        }
        Value::Array(a) => {
            for x in a {
                truthful(args, x)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Hostile values for a numeric flag (and some garbage).
fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "0", "-0", "-1", "nan", "NaN", "inf", "-inf", "1e300", "-1e300", "1e-300",
            "18446744073709551616", "4294967296", "4294967295", "1e30", "0.5", "1e6",
            "65536", "3", "", "abc", "1,5", "0x10", "1e", "--", "💥",
        ])
        .prop_map(String::from),
        1 => any::<f64>().prop_map(|x| x.to_string()),
        1 => any::<i64>().prop_map(|x| x.to_string()),
        1 => (0u32..200).prop_map(|x| x.to_string()),
    ]
}

/// `simulate` flags with the context each needs; every run is ≤ 50 requests.
fn simulate_flags() -> Vec<(&'static str, Vec<String>)> {
    let cdf = cdf_path();
    let trace = fixture(
        "csv",
        b"timestamp,prompt_tokens,generated_tokens\n0,100,10\n0.5,200,20\n1,100,10\n",
    );
    let none = Vec::new;
    vec![
        ("--lam", none()),
        ("--n-req", none()),
        ("--n-gpus", none()),
        ("--max-ctx", none()),
        ("--slo", none()),
        ("--slo-tpot", none()),
        ("--warmup", none()),
        ("--max-queue", none()),
        ("--max-num-seqs", none()),
        ("--replications", none()),
        ("--seed", none()),
        ("--n-s", none()),
        ("--n-l", none()),
        ("--b-short", vec!["--n-s".into(), "1".into()]),
        ("--long-max-ctx", vec!["--n-s".into(), "1".into()]),
        ("--input-frac", vec!["--cdf".into(), cdf.clone()]),
        ("--users", vec!["--think-time-s".into(), "0.1".into()]),
        ("--think-time-s", vec!["--users".into(), "2".into()]),
        (
            "--rate-period-s",
            vec!["--rate-profile".into(), "0:10,1:20".into()],
        ),
        ("--time-scale", vec!["--trace".into(), trace.clone()]),
        ("--max-requests", vec!["--trace".into(), trace]),
        ("--kv-blocks", none()),
        ("--max-slots", none()),
        ("--chunk", none()),
        ("--w-ms", none()),
        ("--h-ms", none()),
        ("--blk-size", none()),
        ("--prefill-us-per-token", none()),
        ("--cost-per-hr", none()),
        ("--gpus-per-instance", none()),
        ("--calibration-ctx", none()),
    ]
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn simulate_survives_hostile_flag_values(k in any::<prop::sample::Index>(), v in hostile_value()) {
        let flags = simulate_flags();
        let (flag, ctx) = &flags[k.index(flags.len())];
        let mut args: Vec<String> = ["simulate", "--json", "-q", "--no-timing"].map(String::from).to_vec();
        if !ctx.iter().any(|c| c == "--trace") {
            args.extend(["--n-req".into(), "50".into()]);
        }
        args.extend(ctx.iter().cloned());
        args.push(format!("{flag}={v}"));
        check(&args)?;
    }
}

/// `sizing-calc` on a metrics file (or `{}`), with targets, as JSON.
fn sizing_calc(metrics: &str) -> Vec<String> {
    [
        "sizing-calc",
        "--metrics",
        metrics,
        "--test-gpu-count",
        "8",
        "--target-users",
        "100",
        "--target-workflow-runtime",
        "10",
        "--json",
        "-q",
    ]
    .map(String::from)
    .to_vec()
}

/// Other commands: tiny base arguments and the numeric flags fuzzed. (The
/// planners' `--n-sim-req` is left out: a large valid count is legitimately
/// slow, as each planner simulates many fleets; its range check is tested
/// in tests/cli_inputs.rs.)
fn other_commands() -> Vec<(Vec<String>, Vec<&'static str>)> {
    let cdf = cdf_path();
    let fleet = fixture(
        "json",
        br#"{"pools":[{"id":"a","gpu":"a100","n_gpus":1,"max_ctx":4096},{"id":"b","gpu":"h100","n_gpus":1,"max_ctx":65536}]}"#,
    );
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let plan = |cmd: &str, lam_flag: &str| {
        s(&[
            cmd,
            "--cdf",
            &cdf,
            lam_flag,
            "5",
            "--n-sim-req",
            "1000",
            "--json",
            "-q",
        ])
    };
    vec![
        (
            s(&[
                "compare-routers",
                "--n-req",
                "50",
                "--json",
                "-q",
                "--no-timing",
            ]),
            vec![
                "--gamma",
                "--lam",
                "--n-gpus",
                "--b-short",
                "--max-queue",
                "--replications",
            ],
        ),
        (
            s(&["simulate-fleet", &fleet, "--n-req", "50", "--json", "-q"]),
            vec!["--lam", "--slo", "--warmup", "--replications", "--seed"],
        ),
        (
            plan("optimize", "--lam"),
            vec![
                "--lam",
                "--slo",
                "--node-avail",
                "--long-max-ctx",
                "--b-short",
                "--gamma-max",
            ],
        ),
        (
            plan("whatif", "--lam-range"),
            vec!["--slo", "--long-max-ctx"],
        ),
        (
            plan("tok-per-watt", "--lam"),
            vec!["--lam", "--slo", "--b-short"],
        ),
        (
            s(&[
                "disagg",
                "--cdf",
                &cdf,
                "--lam",
                "5",
                "--n-sim-req",
                "100",
                "--json",
                "-q",
            ]),
            vec![
                "--lam",
                "--slo-ttft",
                "--slo-tpot",
                "--max-prefill",
                "--max-decode",
                "--kv-bytes-per-token",
                "--link",
                "--replications",
            ],
        ),
        (
            s(&["analytic", "--json", "-q"]),
            vec!["--lam", "--n-gpus", "--max-ctx", "--slo"],
        ),
        (
            s(&["profile", "--json", "-q"]),
            vec![
                "--ctx",
                "--batches",
                "--contexts",
                "--prompts",
                "--kv-blocks",
                "--w-ms",
            ],
        ),
        (
            sizing_calc(&format!("{fixtures}/sizing/golden.csv")),
            vec![
                "--test-gpu-count",
                "--target-users",
                "--target-workflow-runtime",
                "--target-llm-latency",
            ],
        ),
        (
            s(&[
                "calibrate",
                &format!("{fixtures}/calibrate/bench_layout.csv"),
                "--json",
            ]),
            vec!["--kv-blocks", "--calibration-ctx", "--max-slots"],
        ),
    ]
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn other_commands_survive_hostile_flag_values(
        c in any::<prop::sample::Index>(),
        k in any::<prop::sample::Index>(),
        v in hostile_value(),
    ) {
        let cmds = other_commands();
        let (base, flags) = &cmds[c.index(cmds.len())];
        let flag = flags[k.index(flags.len())];
        let mut args = base.clone();
        args.push(format!("{flag}={v}"));
        check(&args)?;
    }
}

/// How a valid file is made hostile.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace one number (the k-th, cyclically) with a hostile value.
    Number(usize, String),
    /// Cut the file at a position.
    Truncate(usize),
    /// Insert text at a position.
    Insert(usize, String),
    /// Repeat one line.
    DuplicateLine(usize),
    /// Replace the whole file with random bytes.
    Bytes(Vec<u8>),
    /// Gzip-compress the file after another mutation.
    Gzip(Box<Mutation>),
    /// Leave it valid.
    Keep,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (any::<usize>(), hostile_value()).prop_map(|(k, v)| Mutation::Number(k, v)),
        2 => any::<usize>().prop_map(Mutation::Truncate),
        2 => (any::<usize>(), prop_oneof![
            hostile_value(),
            Just("\u{feff}".to_string()),
            Just("\0".to_string()),
            Just("\n\n".to_string()),
            Just("\"".to_string()),
            Just("]}]".to_string()),
        ]).prop_map(|(k, v)| Mutation::Insert(k, v)),
        1 => any::<usize>().prop_map(Mutation::DuplicateLine),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Mutation::Bytes),
        1 => Just(Mutation::Keep),
    ]
    .prop_flat_map(|m| {
        prop_oneof![
            5 => Just(m.clone()),
            1 => Just(Mutation::Gzip(Box::new(m))),
        ]
    })
}

/// Byte ranges of the numbers in `text` (digits with sign, dot, exponent).
fn numbers(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit()
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'_')
        {
            let mut j = i;
            while j < b.len()
                && (b[j].is_ascii_digit() || matches!(b[j], b'.' | b'e' | b'E' | b'-' | b'+'))
            {
                j += 1;
            }
            if j == b.len() || !b[j].is_ascii_alphabetic() {
                out.push((i, j));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn floor_char(text: &str, mut k: usize) -> usize {
    k = k.min(text.len());
    while !text.is_char_boundary(k) {
        k -= 1;
    }
    k
}

fn apply(template: &str, m: &Mutation) -> Vec<u8> {
    match m {
        Mutation::Number(k, v) => {
            let nums = numbers(template);
            if nums.is_empty() {
                return template.as_bytes().to_vec();
            }
            let (a, b) = nums[k % nums.len()];
            format!("{}{v}{}", &template[..a], &template[b..]).into_bytes()
        }
        Mutation::Truncate(k) => {
            template.as_bytes()[..floor_char(template, k % (template.len() + 1))].to_vec()
        }
        Mutation::Insert(k, v) => {
            let at = floor_char(template, k % (template.len() + 1));
            format!("{}{v}{}", &template[..at], &template[at..]).into_bytes()
        }
        Mutation::DuplicateLine(k) => {
            let lines: Vec<&str> = template.lines().collect();
            let i = k % lines.len().max(1);
            let mut out: Vec<&str> = lines.clone();
            if let Some(l) = lines.get(i) {
                out.insert(i, l);
            }
            (out.join("\n") + "\n").into_bytes()
        }
        Mutation::Bytes(b) => b.clone(),
        Mutation::Gzip(inner) => {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&apply(template, inner)).expect("in memory");
            enc.finish().expect("in memory")
        }
        Mutation::Keep => template.as_bytes().to_vec(),
    }
}

/// One input kind: a valid template, its file extension and the command
/// that reads it (`{}` = the file).
struct Kind {
    template: String,
    ext: &'static str,
    command: Vec<String>,
}

fn kinds() -> Vec<Kind> {
    let cdf = cdf_path();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let q = ["--json", "-q"];
    let mut out = vec![
        Kind {
            template: CDF.into(),
            ext: "json",
            command: s(&["simulate", "--cdf", "{}", "--n-req", "50", q[0], q[1]]),
        },
        Kind {
            template: format!(
                "[workload]\ncdf = \"{cdf}\"\nlam = 20\nn_requests = 50\ninput_frac = 0.8\n\n\
                 [[pools]]\nid = \"short\"\ngpu = \"a100\"\ninstances = 1\nmax_ctx = 1024\nmax_queue = 4\n\n\
                 [[pools]]\nid = \"long\"\ngpu = \"h100\"\ninstances = 2\nmax_ctx = 8192\n\n\
                 [[events]]\nat_s = 1\npool = \"long\"\nmax_num_seqs = 8\nramp_s = 2\n\n\
                 [[windows]]\nname = \"w\"\nstart_s = 0\nend_s = 3\n\n\
                 [sim]\nseed = 7\nwarmup = 0.1\nslo_ttft_ms = 500\nreplications = 2\n"
            ),
            ext: "toml",
            command: s(&["run", "{}", q[0], q[1]]),
        },
        Kind {
            template: format!(
                "{{\"_c\": \"x\", \"pools\": [{{\"id\": \"a\", \"gpu\": \"a100\", \"n_gpus\": 2, \"max_ctx\": 4096}}, \
                 {{\"id\": \"b\", \"gpu\": \"h100\", \"n_gpus\": 1, \"max_ctx\": 65536, \"max_queue\": 3}}], \
                 \"router\": \"model\", \"workloads\": {{\"a\": {{\"cdf\": \"{cdf}\", \"lam_frac\": 0.6}}, \
                 \"b\": {{\"cdf\": \"{cdf}\", \"lam_frac\": 0.4}}}}}}"
            ),
            ext: "json",
            command: s(&["simulate-fleet", "{}", "--lam", "20", "--n-req", "50", q[0], q[1]]),
        },
        Kind {
            template: "[workload]\nisl = \"uniform:10:500\"\nosl = \"exp:20\"\nlam = 30\nn_requests = 40\n\n\
                       [[pools]]\nid = \"p\"\ngpu = \"h100\"\ninstances = 2\nmax_ctx = 4096\n\n\
                       [[pools]]\nid = \"q\"\ngpu = \"a10g\"\ninstances = 1\nmax_ctx = 2048\n"
                .into(),
            ext: "toml",
            command: s(&["simulate-fleet", "{}", q[0], q[1]]),
        },
        Kind {
            template: "{\"timestamp\": 0.0, \"prompt_tokens\": 100, \"generated_tokens\": 20}\n\
                       {\"timestamp\": 0.25, \"prompt_tokens\": 3000, \"generated_tokens\": 5}\n\
                       {\"timestamp\": 1.5, \"prompt_tokens\": 10, \"generated_tokens\": 400}\n"
                .into(),
            ext: "jsonl",
            command: s(&["simulate", "--trace", "{}", q[0], q[1]]),
        },
        Kind {
            template: "timestamp,prompt_tokens,generated_tokens\n0.0,100,20\n0.25,3000,5\n1.5,10,400\n"
                .into(),
            ext: "csv",
            command: s(&["simulate", "--trace", "{}", "--skip-bad-rows", q[0], q[1]]),
        },
        Kind {
            template: "name = \"p\"\nw_s = 0.0085\nh_s = 0.0013\ncalibration_ctx = 8192\nchunk = 1024\n\
                       blk_size = 16\ntotal_kv_blks = 65536\nmax_slots = 256\ncost_per_hr = 4.02\n\
                       gpus_per_instance = 1\nprefill_s_per_token = 0.00004\n\n[power]\n\
                       p_idle_w = 300.0\np_nominal_w = 600.0\nk = 1.0\nx0 = 4.2\n"
                .into(),
            ext: "toml",
            command: s(&["simulate", "--gpu", "{}", "--n-req", "50", q[0], q[1]]),
        },
        Kind {
            template: "concurrency,llm_latency_p95,workflow_runtime_p95,total_runtime\n\
                       1,1.14981,4.03488,8.06977\n2,1.3591,4.71197,9.32298\n\
                       4,1.50682,5.67581,11.1683\n8,2.10668,7.90895,15.6193\n"
                .into(),
            ext: "csv",
            command: sizing_calc("{}"),
        },
        Kind {
            template: "batch_size,prompt_size,token_size,prompt_time,token_time\n\
                       1,512,128,30.1,8.2\n4,512,128,95.0,8.9\n16,1024,256,610.0,11.8\n\
                       32,2048,256,2400.0,14.5\n"
                .into(),
            ext: "csv",
            command: s(&["calibrate", "{}", "--json"]),
        },
    ];
    // The NAT `sizing calc` JSON output as metrics.
    let nat = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sizing/calc_runner_output.json"
    );
    out.push(Kind {
        template: std::fs::read_to_string(nat).expect("fixture"),
        ext: "json",
        command: sizing_calc("{}"),
    });
    // The same scenario through `simulate --scenario`.
    let sc = out[1].template.clone();
    out.push(Kind {
        template: sc,
        ext: "toml",
        command: s(&["simulate", "--scenario", "{}", "--json", "-q"]),
    });
    out
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn every_input_file_kind_survives_hostile_contents(
        k in any::<prop::sample::Index>(),
        m in mutation(),
    ) {
        let kinds = kinds();
        let kind = &kinds[k.index(kinds.len())];
        let path = fixture(kind.ext, &apply(&kind.template, &m));
        let args: Vec<String> = kind
            .command
            .iter()
            .map(|a| if a == "{}" { path.clone() } else { a.clone() })
            .collect();
        check(&args)?;
    }
}

#[test]
fn the_valid_templates_are_accepted() {
    // The mutations start from files that work: each template exits 0.
    for kind in kinds() {
        let path = fixture(kind.ext, kind.template.as_bytes());
        let args: Vec<String> = kind
            .command
            .iter()
            .map(|a| if a == "{}" { path.clone() } else { a.clone() })
            .collect();
        assert_eq!(check(&args).expect("generic truths"), 0, "{args:?}");
    }
}
