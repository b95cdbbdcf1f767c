//! Multi-client deployments on a rack (`kvfleet run` on a `[[clients]]` /
//! `[[deployments]]` file): every request of every client accounted for,
//! KV hand-offs conserved, same seed ⇒ same bytes, shared pools, a light
//! load's TTFT against the analytic prefill cost, and bad input (exit 2, one
//! line naming the field).

mod common;

use common::{json_of, kvfleet, run_json, temp_input};

const TWO: &str = r#"
rack = "gb200-nvl72"
seed = 3
[sim]
duration_s = 60
warmup_frac = 0.1
[[clients]]
name = "closed"
isl = 2048
osl = 256
concurrency = 16
ttft_ms = 3000
min_interactivity = 10
[[clients]]
name = "open"
isl = 1024
osl = 512
rate_rps = 3.0
ttft_ms = 2000
tpot_ms = 100
[[deployments]]
name = "static"
pools = [
  { name = "a-p", role = "prefill", workers = "1xgb200:deepseek-r1:tep4:fp4", decode = "a-d", clients = ["closed"] },
  { name = "a-d", role = "decode", workers = "1xgb200:deepseek-r1:tep8:fp4:mtp3" },
  { name = "b-p", role = "prefill", workers = "1xgb200:deepseek-r1:tep4:fp4", decode = "b-d", clients = ["open"] },
  { name = "b-d", role = "decode", workers = "1xgb200:deepseek-r1:tep8:fp4" },
]
"#;

fn fails_with(file: &str, contents: &str, needle: &str) {
    let p = temp_input(file, contents);
    let out = kvfleet()
        .args(["run", p.to_str().unwrap()])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{file}: {err}");
    assert!(err.contains(needle), "{file}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{file}: one line: {err}");
}

#[test]
fn every_request_of_every_client_is_accounted_for() {
    let p = temp_input("two.toml", TWO);
    let v = run_json(&["run", p.to_str().unwrap(), "--json"]);
    let d = &v["designs"][0];
    assert_eq!(d["gpus"], 24);
    assert_eq!(d["trays"], 6);
    let c = &d["clients"];
    // Closed loop: num_prompts = 10 x concurrency, all measured, all completed.
    assert_eq!(c[0]["issued"], 160);
    assert_eq!(c[0]["requests"], 160);
    assert_eq!(c[0]["completed"], 160);
    // Open loop: about rate x duration issued; the measured ones all complete.
    let issued = c[1]["issued"].as_u64().unwrap();
    assert!((130..=230).contains(&issued), "{issued}");
    assert!(c[1]["requests"].as_u64().unwrap() < issued);
    assert_eq!(c[1]["completed"], c[1]["requests"]);
    // One KV hand-off per request issued, per group (client).
    let links = d["kv_links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0]["transfers"], c[0]["issued"]);
    assert_eq!(links[1]["transfers"], c[1]["issued"]);
    // Whole trays in order, each pool's GPUs attributed to its client.
    let pools = d["pools"].as_array().unwrap();
    let trays: Vec<(u64, u64)> = pools
        .iter()
        .map(|p| {
            (
                p["trays"][0].as_u64().unwrap(),
                p["trays"][1].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(trays, [(0, 0), (1, 2), (3, 3), (4, 5)]);
    assert_eq!(c[0]["gpus"].as_f64(), Some(12.0));
    assert_eq!(c[1]["gpus"].as_f64(), Some(12.0));
    for k in 0..2 {
        let x = &c[k];
        let att = x["slo_attainment"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&att));
        assert!(x["ttft_p50_s"].as_f64().unwrap() <= x["ttft_p99_s"].as_f64().unwrap());
        let tpg = x["tput_per_gpu"].as_f64().unwrap();
        assert!((tpg * 12.0 - x["total_tok_s"].as_f64().unwrap()).abs() < 1e-6 * tpg * 12.0);
    }
}

#[test]
fn same_seed_same_bytes() {
    let p = temp_input("two_det.toml", TWO);
    let run = |extra: &[&str]| {
        let mut a = vec!["run", p.to_str().unwrap(), "--json"];
        a.extend(extra);
        json_of(kvfleet().args(a)).1
    };
    assert_eq!(run(&[]), run(&[]));
    assert_ne!(run(&[]), run(&["--seed", "9"]));
}

/// A shared decode pool and a shared aggregated buffer: both open clients
/// are served, the buffer takes only overflow, and the shared pools' GPUs
/// are split between the clients by the requests they served.
#[test]
fn shared_pools_serve_both_clients() {
    let shared = r#"
rack = "gb200-nvl72"
[sim]
duration_s = 60
[[clients]]
name = "x"
isl = 1024
osl = 256
rate_rps = 4.0
ttft_ms = 2000
[[clients]]
name = "y"
isl = 4096
osl = 256
rate_rps = 2.0
ttft_ms = 2000
[[deployments]]
name = "shared"
pools = [
  { name = "xp", role = "prefill", workers = "1xgb200:deepseek-r1:tep4:fp4", decode = "d", clients = ["x"] },
  { name = "yp", role = "prefill", workers = "1xgb200:deepseek-r1:tep4:fp4", decode = "d", clients = ["y"] },
  { name = "d", role = "decode", workers = "1xgb200:deepseek-r1:tep8:fp4" },
  { name = "buf", role = "aggregated", workers = "1xgb200:deepseek-r1:tep8:fp4", clients = ["x", "y"] },
]
"#;
    let p = temp_input("shared.toml", shared);
    let v = run_json(&["run", p.to_str().unwrap(), "--json"]);
    let d = &v["designs"][0];
    let c = d["clients"].as_array().unwrap();
    // One engine run for both clients (they share pools).
    assert_eq!(d["kv_links"].as_array().unwrap().len(), 1);
    let gpus: f64 = c.iter().map(|x| x["gpus"].as_f64().unwrap()).sum();
    assert!((gpus - 24.0).abs() < 1e-9, "{gpus}");
    for x in c {
        assert_eq!(x["completed"], x["requests"], "{x}");
        assert!(x["gpus"].as_f64().unwrap() > 4.0);
    }
    // Hand-offs: every request that did not go to the buffer crossed NVLink.
    let issued: u64 = c.iter().map(|x| x["issued"].as_u64().unwrap()).sum();
    let t = d["kv_links"][0]["transfers"].as_u64().unwrap();
    assert!(t <= issued && t > issued / 2, "{t} of {issued}");
}

#[test]
fn light_load_ttft_is_the_prefill_cost() {
    use kvfleet::deployment::screen::prefill_costs;
    let light = r#"
rack = "gb200-nvl72"
[sim]
duration_s = 200
[[clients]]
name = "c"
isl = 8192
osl = 64
range_ratio = 1.0
rate_rps = 0.05
ttft_ms = 2000
[[deployments]]
name = "one"
pools = [
  { name = "p", role = "prefill", workers = "1xgb200:deepseek-r1:tep8:fp4", decode = "d", clients = ["c"] },
  { name = "d", role = "decode", workers = "1xgb200:deepseek-r1:tep8:fp4" },
]
"#;
    let p = temp_input("light.toml", light);
    let v = run_json(&["run", p.to_str().unwrap(), "--json"]);
    let got = v["designs"][0]["clients"][0]["ttft_p50_s"]
        .as_f64()
        .unwrap();
    let prof = kvfleet::profile::resolve_profile(
        "t",
        "gb200:deepseek-r1:tep8:fp4",
        &kvfleet::profile::ProfileOverrides {
            chunk: Some(8192),
            ..Default::default()
        },
    )
    .unwrap();
    let (t1, _) = prefill_costs(&prof, 8192.0);
    let front = prof
        .step_law
        .as_ref()
        .unwrap()
        .instance
        .params
        .frontend_latency_s;
    // No queueing at 1 request per 20 s: the prefill pass, a ~1 ms NVLink
    // transfer and the frontend latency.
    let want = t1 + front;
    assert!(
        (got - want).abs() < 0.05 * want + 2e-3,
        "DES {got} vs analytic {want}"
    );
}

#[test]
fn bad_input_names_the_field() {
    let base = |pools: &str| {
        format!(
            "[[clients]]\nname = \"c\"\nisl = 100\nosl = 100\nconcurrency = 2\nttft_ms = 1000\n[[deployments]]\nname = \"d\"\npools = [{pools}]\n"
        )
    };
    fails_with(
        "tp2.toml",
        &base(
            r#"{ name = "a", role = "aggregated", workers = "1xgb200:deepseek-r1:tp2:fp4", clients = ["c"] }"#,
        ),
        "deployments[0].pools[0].workers",
    );
    fails_with(
        "hw.toml",
        &base(
            r#"{ name = "a", role = "aggregated", workers = "1xh100-sxm:deepseek-r1:tp8:fp4", clients = ["c"] }"#,
        ),
        "expected a spec starting `gb200:`",
    );
    fails_with(
        "who.toml",
        &base(
            r#"{ name = "a", role = "aggregated", workers = "1xgb200:deepseek-r1:tep4:fp4", clients = ["z"] }"#,
        ),
        "no client named `z`",
    );
    fails_with(
        "nodec.toml",
        &base(
            r#"{ name = "a", role = "prefill", workers = "1xgb200:deepseek-r1:tep4:fp4", clients = ["c"] }"#,
        ),
        "deployments[0].pools[0].decode",
    );
    fails_with(
        "role.toml",
        &base(
            r#"{ name = "a", role = "both-ways", workers = "1xgb200:deepseek-r1:tep4:fp4", clients = ["c"] }"#,
        ),
        "deployments[0].pools[0].role",
    );
    fails_with(
        "count.toml",
        &base(
            r#"{ name = "a", role = "aggregated", workers = "0xgb200:deepseek-r1:tep4:fp4", clients = ["c"] }"#,
        ),
        "expected N x SPEC",
    );
    fails_with(
        "load.toml",
        "[[clients]]\nname = \"c\"\nisl = 100\nosl = 100\nttft_ms = 1000\n",
        "clients[0].rate_rps",
    );
    // A closed-loop client cannot share a pool.
    let shared = "[[clients]]\nname = \"c\"\nisl = 100\nosl = 100\nconcurrency = 2\nttft_ms = 1000\n[[clients]]\nname = \"e\"\nisl = 100\nosl = 100\nrate_rps = 1\nttft_ms = 1000\n[[deployments]]\nname = \"d\"\npools = [{ name = \"a\", role = \"aggregated\", workers = \"1xgb200:deepseek-r1:tep4:fp4\", clients = [\"c\", \"e\"] }]\n";
    fails_with("closed_shared.toml", shared, "clients[0].concurrency");
}

#[test]
fn request_count_is_bounded() {
    let huge = "[sim]\nduration_s = 1000000\n[[clients]]\nname = \"c\"\nisl = 100\nosl = 100\nrate_rps = 1000\nttft_ms = 1000\n[[deployments]]\nname = \"d\"\npools = [{ name = \"a\", role = \"aggregated\", workers = \"1xgb200:deepseek-r1:tep4:fp4\", clients = [\"c\"] }]\n";
    fails_with("huge.toml", huge, "sim.duration_s");
}

/// One prefill and one decode worker of the aggregated worker's spec, one
/// request at a time: the decode steps are the aggregated worker's (same
/// TPOT), and TTFT differs by exactly the NVLink transfer of the prompt's KV.
#[test]
fn disaggregated_pair_is_the_aggregated_worker_plus_the_transfer() {
    let f = r#"
[[clients]]
name = "c"
isl = 8192
osl = 512
range_ratio = 1.0
concurrency = 1
ttft_ms = 2000
[[deployments]]
name = "agg"
pools = [{ name = "a", role = "aggregated", workers = "1xgb200:deepseek-r1:tep8:fp4", clients = ["c"] }]
[[deployments]]
name = "disagg"
pools = [
  { name = "p", role = "prefill", workers = "1xgb200:deepseek-r1:tep8:fp4", decode = "d", clients = ["c"] },
  { name = "d", role = "decode", workers = "1xgb200:deepseek-r1:tep8:fp4" },
]
"#;
    let p = temp_input("agg_vs_disagg.toml", f);
    let v = run_json(&["run", p.to_str().unwrap(), "--json"]);
    let (a, d) = (&v["designs"][0], &v["designs"][1]);
    let (ca, cd) = (&a["clients"][0], &d["clients"][0]);
    let g = |c: &serde_json::Value, k: &str| c[k].as_f64().unwrap();
    assert_eq!(ca["completed"], 10);
    assert_eq!(cd["completed"], 10);
    for k in ["tpot_p50_s", "tpot_p99_s"] {
        assert!((g(ca, k) - g(cd, k)).abs() < 1e-9, "{k}: {ca} vs {cd}");
    }
    let xfer_s = d["kv_links"][0]["transfer_p50_ms"].as_f64().unwrap() / 1e3;
    assert!(xfer_s > 0.0);
    for k in ["ttft_p50_s", "ttft_p99_s"] {
        let diff = g(cd, k) - g(ca, k);
        // The transfer histogram keeps 3 significant digits.
        assert!(
            (diff - xfer_s).abs() < 1e-3 * xfer_s + 2e-9,
            "{k}: +{diff} s vs transfer {xfer_s} s"
        );
    }
    assert!(a["kv_links"].as_array().unwrap().is_empty());
}

/// A client's lengths from a total-token CDF (here the built-in `azure`),
/// split by `input_frac`: every request completes, and the reported mean
/// lengths are the CDF split's.
#[test]
fn cdf_clients_draw_from_the_cdf() {
    let f = r#"
[sim]
duration_s = 60
[[clients]]
name = "chat"
cdf = "azure"
input_frac = 0.75
rate_rps = 2.0
ttft_ms = 2000
[[deployments]]
name = "d"
pools = [
  { name = "p", role = "prefill", workers = "1xgb200:deepseek-r1:tep4:fp4", decode = "q", clients = ["chat"] },
  { name = "q", role = "decode", workers = "1xgb200:deepseek-r1:tep8:fp4" },
]
"#;
    let p = temp_input("cdf.toml", f);
    let v = run_json(&["run", p.to_str().unwrap(), "--json"]);
    let c = &v["designs"][0]["clients"][0];
    assert_eq!(c["completed"], c["requests"]);
    let cl = &v["clients"][0];
    assert_eq!(cl["cdf"], "azure");
    let (i, o) = (cl["isl"].as_f64().unwrap(), cl["osl"].as_f64().unwrap());
    assert!((i / (i + o) - 0.75).abs() < 0.02, "{cl}");
    let both = f.replace("cdf = \"azure\"", "cdf = \"azure\"\nisl = 100");
    fails_with("cdf_and_isl.toml", &both, "clients[0].isl");
    let frac = f.replace("input_frac = 0.75", "input_frac = 1.5");
    fails_with("cdf_frac.toml", &frac, "clients[0].input_frac");
}
