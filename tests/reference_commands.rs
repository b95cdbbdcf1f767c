//! The 22 commands of the reference tool's "Reproducing all results" section
//! (seed document 003), run verbatim — `--cdf data/azure_cdf.json` and all —
//! from an empty folder, so the built-in CDFs stand in for the reference's
//! files. Puzzle 3's loop over `a10g a100 h100` runs all three GPUs.
//!
//! Each command must exit 0 with a table on stdout and no `NaN`, `∞` or `inf`
//! in it, and its JSON (`--out`) must hold an answer. A planner's answer is
//! then re-simulated on a seed it was not sized on (40,000 requests): the
//! fleet it recommends must meet the SLO over all arrivals (attainment ≥ 0.99,
//! rejected requests counted as misses).

mod common;

use std::path::Path;

use serde_json::Value;

/// What a command answers, and so how its answer is checked.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Optimize,
    Pareto,
    Whatif,
    CompareRouters,
    TokPerWatt,
    Disagg,
    GridFlex,
}

/// A seed the planners never size on.
const RESIM_SEED: &str = "4242";
const RESIM_REQUESTS: &str = "40000";

/// The value following `flag` in a command line.
fn flag<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| *a == flag)
        .and_then(|i| args.get(i + 1).copied())
}

/// True when `text` holds `NaN`, `∞`, or `inf` as a word of its own.
fn has_non_finite(text: &str) -> Option<String> {
    for line in text.lines() {
        if line.contains("NaN") || line.contains('∞') {
            return Some(line.to_string());
        }
        let words = line.split(|c: char| !c.is_ascii_alphanumeric());
        if words.into_iter().any(|w| w.eq_ignore_ascii_case("inf")) {
            return Some(line.to_string());
        }
    }
    None
}

/// Run a reference command line in an empty folder; check exit, table and
/// finiteness; return its JSON report.
fn run_reference(line: &str) -> Value {
    let dir = tempdir();
    let out = dir.join("out.json");
    let args: Vec<&str> = line.split_whitespace().collect();
    let output = common::kvfleet()
        .current_dir(&dir)
        .args(&args)
        .args(["--quiet", "--out"])
        .arg(&out)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`kvfleet {line}` exited {:?}: {stderr}",
        output.status.code()
    );
    assert!(
        stdout.lines().count() >= 3,
        "`kvfleet {line}`: expected a table, got: {stdout}"
    );
    if let Some(bad) = has_non_finite(&stdout) {
        panic!("`kvfleet {line}`: a non-finite number in the output: {bad}\n{stdout}");
    }
    let text = std::fs::read_to_string(&out).expect("--out wrote the report");
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::from_str(&text).expect("one JSON document")
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "kvfleet-refcmd-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The simulate flags of a homogeneous pool.
fn single_pool(gpu: &str, n: u64, max_ctx: &str) -> Vec<String> {
    [
        "--gpu",
        gpu,
        "--n-gpus",
        &n.to_string(),
        "--max-ctx",
        max_ctx,
    ]
    .map(String::from)
    .to_vec()
}

/// The simulate flags of a short/long pair split at `b_short`.
fn two_pool(gpus: (&str, &str), counts: (u64, u64), b_short: &str, long_ctx: &str) -> Vec<String> {
    [
        "--gpu-short",
        gpus.0,
        "--gpu-long",
        gpus.1,
        "--n-s",
        &counts.0.to_string(),
        "--n-l",
        &counts.1.to_string(),
        "--b-short",
        b_short,
        "--long-max-ctx",
        long_ctx,
    ]
    .map(String::from)
    .to_vec()
}

/// The simulate flags for one planner candidate (`pools`).
fn fleet_flags(candidate: &Value) -> Vec<String> {
    let pools = candidate["pools"].as_array().expect("pools");
    let gpu = |p: &Value| p["gpu"].as_str().unwrap().to_string();
    let n = |p: &Value| p["instances"].as_u64().unwrap();
    let ctx = |p: &Value| p["max_ctx"].to_string();
    match pools.as_slice() {
        [p] => single_pool(&gpu(p), n(p), &ctx(p)),
        [s, l] => two_pool((&gpu(s), &gpu(l)), (n(s), n(l)), &ctx(s), &ctx(l)),
        other => panic!("unexpected pools {other:?}"),
    }
}

/// Re-simulate a fleet on an unseen seed; it must meet the SLO over all
/// arrivals.
fn resimulate(what: &str, cdf: &str, lam: f64, slo_ms: &str, fleet: &[String]) {
    let mut cmd = common::kvfleet();
    cmd.args([
        "simulate",
        "--cdf",
        cdf,
        "--lam",
        &lam.to_string(),
        "--slo",
        slo_ms,
    ])
    .args(["--seed", RESIM_SEED, "--n-req", RESIM_REQUESTS])
    .args(["--quiet", "--json", "--no-timing"])
    .args(fleet);
    let (v, _) = common::json_of(&mut cmd);
    let attainment = v["slo"]["attainment"].as_f64().expect("attainment");
    assert!(
        attainment >= 0.99,
        "{what}: re-simulated on seed {RESIM_SEED}, {fleet:?} at λ = {lam} meets P99 TTFT ≤ {slo_ms} ms \
         for only {:.2}% of arrivals (verdict {}, rejected {})",
        attainment * 100.0,
        v["verdict"],
        v["requests"]["rejected"]
    );
}

/// The JSON value that says a candidate met the SLO.
fn slo_met(c: &Value) -> bool {
    c["slo_met"].as_bool().unwrap_or(false)
}

fn check(kind: Kind, line: &str) {
    let report = run_reference(line);
    let args: Vec<&str> = line.split_whitespace().collect();
    let cdf = flag(&args, "--cdf").expect("--cdf");
    let slo = flag(&args, "--slo").or(flag(&args, "--slo-ttft")).unwrap();
    let lam = || flag(&args, "--lam").unwrap().parse::<f64>().unwrap();
    match kind {
        Kind::Optimize => {
            let best = &report["best"];
            assert!(
                slo_met(best),
                "`{line}`: no SLO-meeting recommendation: {best}"
            );
            // gamma ≠ 1 (compression) has no simulate flag; every reference
            // command recommends γ = 1 or a homogeneous fleet.
            assert_eq!(best["gamma"].as_f64(), Some(1.0), "{best}");
            resimulate(line, cdf, lam(), slo, &fleet_flags(best));
        }
        Kind::Pareto => {
            let rows = report.as_array().expect("pareto rows");
            let chosen = rows
                .iter()
                .find(|r| r["recommended"].as_bool() == Some(true))
                .or_else(|| rows.iter().find(|r| r["b_short"].is_null()))
                .expect("a recommendation or a baseline");
            assert!(slo_met(chosen), "`{line}`: recommended {chosen}");
            resimulate(line, cdf, lam(), slo, &fleet_flags(chosen));
        }
        Kind::Whatif => {
            let rows = report.as_array().expect("whatif rows");
            assert!(!rows.is_empty());
            for r in rows {
                assert!(slo_met(r), "`{line}`: row {r}");
                let l = r["lam"].as_f64().unwrap();
                resimulate(line, cdf, l, slo, &fleet_flags(r));
            }
        }
        Kind::TokPerWatt => {
            let fleets = report["fleets"].as_array().expect("fleets");
            assert!(!fleets.is_empty(), "`{line}`: no SLO-sized fleet");
            for f in fleets {
                let name = f["fleet"].as_str().unwrap();
                let counts: Vec<u64> = f["counts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_u64().unwrap())
                    .collect();
                let max_ctx = flag(&args, "--max-ctx").unwrap_or("8192");
                let fleet = match counts.as_slice() {
                    [n] => single_pool(name, *n, max_ctx),
                    [ns, nl] => two_pool(
                        (
                            flag(&args, "--gpu-short").unwrap(),
                            flag(&args, "--gpu-long").unwrap(),
                        ),
                        (*ns, *nl),
                        flag(&args, "--b-short").unwrap(),
                        max_ctx,
                    ),
                    other => panic!("counts {other:?}"),
                };
                resimulate(line, cdf, lam(), slo, &fleet);
            }
        }
        Kind::Disagg => {
            let best = &report["best"];
            assert!(slo_met(best), "`{line}`: no SLO-meeting pair: {best}");
            let des = &best["des"];
            for key in ["p99_ttft_ms", "p99_tpot_ms"] {
                assert!(des[key].as_f64().is_some_and(f64::is_finite), "{des}");
            }
            let tpot = flag(&args, "--slo-tpot").unwrap();
            resimulate_disagg(line, &args, best, slo, tpot);
        }
        Kind::GridFlex => {
            let levels = report["levels"].as_array().expect("levels");
            assert!(!levels.is_empty());
            // Depth 0 is the fleet as sized: far from saturation, so a DES
            // check (when asked for) must measure it and find it within SLO.
            if line.contains("--verify-des") {
                let des = &levels[0]["des"];
                assert!(
                    des["event_p99_ttft_ms"]
                        .as_f64()
                        .is_some_and(f64::is_finite),
                    "`{line}`: depth 0 measured nothing during the event: {des}"
                );
                assert_eq!(des["slo_met"].as_bool(), Some(true), "`{line}`: {des}");
            }
            assert!(report["max_safe_flex_pct"].is_object(), "{report}");
        }
        Kind::CompareRouters => {
            let text = report.to_string();
            assert!(text.contains("length"), "`{line}`: {text}");
        }
    }
}

/// Re-simulate a disaggregated pair from a scenario file on an unseen seed:
/// both SLOs over all arrivals.
fn resimulate_disagg(line: &str, args: &[&str], best: &Value, slo_ttft: &str, slo_tpot: &str) {
    let dir = tempdir();
    let scenario = dir.join("pair.toml");
    let max_ctx = flag(args, "--max-ctx").unwrap_or("8192");
    let text = format!(
        "[workload]\ncdf = \"{cdf}\"\nlam = {lam}\nn_requests = {RESIM_REQUESTS}\n\n\
         [[pools]]\nid = \"prefill\"\ngpu = \"{gp}\"\ninstances = {np}\nmax_ctx = {max_ctx}\n\n\
         [[pools]]\nid = \"decode\"\ngpu = \"{gd}\"\ninstances = {nd}\nmax_ctx = {max_ctx}\ndispatch = \"free-kv\"\n\n\
         [disagg]\nprefill = \"prefill\"\ndecode = \"decode\"\nlink = \"{link}\"\n\n\
         [sim]\nseed = {RESIM_SEED}\nslo_ttft_ms = {slo_ttft}\nslo_tpot_ms = {slo_tpot}\n",
        cdf = Path::new(flag(args, "--cdf").unwrap())
            .file_name()
            .unwrap()
            .to_str()
            .unwrap(),
        lam = flag(args, "--lam").unwrap(),
        gp = flag(args, "--gpu-prefill").unwrap(),
        gd = flag(args, "--gpu-decode").unwrap(),
        np = best["n_prefill"],
        nd = best["n_decode"],
        link = flag(args, "--link").unwrap_or("ib"),
    );
    std::fs::write(&scenario, text).unwrap();
    let mut cmd = common::kvfleet();
    cmd.arg("run")
        .arg(&scenario)
        .args(["--quiet", "--json", "--no-timing"]);
    let (v, _) = common::json_of(&mut cmd);
    let _ = std::fs::remove_dir_all(&dir);
    let attainment = v["slo"]["attainment"].as_f64().expect("attainment");
    assert!(
        attainment >= 0.99,
        "{line}: the best pair {}P + {}D re-simulated on seed {RESIM_SEED} meets TTFT ≤ {slo_ttft} ms \
         and TPOT ≤ {slo_tpot} ms for only {:.2}% of arrivals",
        best["n_prefill"],
        best["n_decode"],
        attainment * 100.0
    );
}

macro_rules! reference {
    ($name:ident, $kind:ident, $line:expr) => {
        #[test]
        fn $name() {
            check(Kind::$kind, $line);
        }
    };
}

// Puzzle 6: mixed GPU type pools.
reference!(
    p6_azure_a10g_h100,
    Optimize,
    "optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short a10g --gpu-long h100 --long-max-ctx 8192"
);
reference!(
    p6_lmsys_a10g_h100,
    Optimize,
    "optimize --cdf data/lmsys_cdf.json --lam 100 --slo 500 --gpu-short a10g --gpu-long h100 --long-max-ctx 65536"
);
reference!(
    p6_lmsys_a10g_a100,
    Optimize,
    "optimize --cdf data/lmsys_cdf.json --lam 100 --slo 500 --gpu-short a10g --gpu-long a100 --long-max-ctx 65536"
);
// Puzzle 7: disaggregated prefill/decode.
reference!(
    p7_h100p_a100d,
    Disagg,
    "disagg --cdf data/azure_cdf.json --lam 100 --slo-ttft 500 --slo-tpot 100 --gpu-prefill h100 --gpu-decode a100 --max-ctx 8192"
);
reference!(
    p7_a100p_h100d,
    Disagg,
    "disagg --cdf data/azure_cdf.json --lam 100 --slo-ttft 500 --slo-tpot 100 --gpu-prefill a100 --gpu-decode h100 --max-ctx 8192"
);
// Puzzle 1: Pareto threshold selection.
reference!(
    p1_pareto_lmsys,
    Pareto,
    "pareto --cdf data/lmsys_cdf.json --lam 100 --slo 500 --long-max-ctx 65536"
);
reference!(
    p1_pareto_azure,
    Pareto,
    "pareto --cdf data/azure_cdf.json --lam 200 --slo 500 --long-max-ctx 8192"
);
reference!(
    p1_pareto_agent,
    Pareto,
    "pareto --cdf data/agent_heavy_cdf.json --lam 200 --slo 500 --long-max-ctx 65536"
);
// Puzzle 2: agent SLO failure (B_short = long max ctx asks for a homogeneous fleet).
reference!(
    p2_agent_homogeneous,
    Optimize,
    "optimize --cdf data/agent_heavy_cdf.json --lam 20 --slo 1000 --gpu-short h100 --gpu-long h100 --b-short 65536 --long-max-ctx 65536"
);
reference!(
    p2_agent_two_pool,
    Optimize,
    "optimize --cdf data/agent_heavy_cdf.json --lam 20 --slo 1000 --gpu-short h100 --gpu-long h100 --b-short 4096 --long-max-ctx 65536 --verify-top 3"
);
// Puzzle 3: GPU type selection (the seed's loop over a10g a100 h100).
reference!(
    p3_a10g_homogeneous,
    Optimize,
    "optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short a10g --gpu-long a10g --b-short 8192 --long-max-ctx 8192"
);
reference!(
    p3_a10g_two_pool,
    Optimize,
    "optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short a10g --gpu-long a10g --long-max-ctx 8192 --verify-top 3"
);
reference!(
    p3_a100_homogeneous,
    Optimize,
    "optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short a100 --gpu-long a100 --b-short 8192 --long-max-ctx 8192"
);
reference!(
    p3_a100_two_pool,
    Optimize,
    "optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short a100 --gpu-long a100 --long-max-ctx 8192 --verify-top 3"
);
reference!(
    p3_h100_homogeneous,
    Optimize,
    "optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short h100 --gpu-long h100 --b-short 8192 --long-max-ctx 8192"
);
reference!(
    p3_h100_two_pool,
    Optimize,
    "optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short h100 --gpu-long h100 --long-max-ctx 8192 --verify-top 3"
);
// Puzzle 4: traffic growth step thresholds.
reference!(
    p4_whatif,
    Whatif,
    "whatif --cdf data/azure_cdf.json --slo 500 --gpu-short h100 --gpu-long h100 --long-max-ctx 8192 --lam-range 25 50 100 150 200 300 400"
);
// Puzzle 5: router comparison.
reference!(
    p5_routers_azure,
    CompareRouters,
    "compare-routers --cdf data/azure_cdf.json --lam 200 --slo 500 --gpu-short h100 --gpu-long h100 --n-s 5 --n-l 7 --long-max-ctx 8192 --n-req 5000"
);
reference!(
    p5_routers_agent,
    CompareRouters,
    "compare-routers --cdf data/agent_heavy_cdf.json --lam 20 --slo 1000 --gpu-short h100 --gpu-long h100 --n-s 2 --n-l 23 --long-max-ctx 65536 --n-req 5000"
);
// Puzzle 9: GPU energy efficiency.
reference!(
    p9_tpw_azure,
    TokPerWatt,
    "tok-per-watt --cdf data/azure_cdf.json --lam 100 --slo 500 --gpus h100 a100 a10g --rho-sweep"
);
reference!(
    p9_tpw_lmsys,
    TokPerWatt,
    "tok-per-watt --cdf data/lmsys_cdf.json --lam 100 --slo 500 --gpus h100 a100"
);
// Puzzle 10: multi-pool routing tok/W.
reference!(
    p10_tpw_azure_two_pool,
    TokPerWatt,
    "tok-per-watt --cdf data/azure_cdf.json --lam 100 --slo 500 --b-short 4096 --gpu-short a10g --gpu-long h100"
);
reference!(
    p10_tpw_lmsys_two_pool,
    TokPerWatt,
    "tok-per-watt --cdf data/lmsys_cdf.json --lam 100 --slo 500 --b-short 2048 --gpu-short a10g --gpu-long h100"
);
// Puzzle 8: grid flexibility, analytic and DES-verified.
reference!(
    p8_gridflex_analytic,
    GridFlex,
    "grid-flex --cdf data/azure_cdf.json --lam 200 --n-gpus 40 --gpu h100 --slo 500"
);
reference!(
    p8_gridflex_des_h100,
    GridFlex,
    "grid-flex --cdf data/azure_cdf.json --lam 200 --n-gpus 40 --gpu h100 --slo 500 --verify-des 15000"
);
reference!(
    p8_gridflex_des_a100,
    GridFlex,
    "grid-flex --cdf data/azure_cdf.json --lam 100 --n-gpus 15 --gpu a100 --slo 500 --verify-des 15000"
);
