//! `kvfleet cluster`: KV bytes per token, memory fit, minimality of the rack
//! count, the HBM ceiling of the decode rate, session concurrency against
//! Little's law, and the DES check's tier traffic against the reload volume.

mod common;

use common::{kvfleet, run_json};
use serde_json::Value;

const SEED_128K: [&str; 12] = [
    "--active-users",
    "1000",
    "--model",
    "1",
    "--tokens-cached",
    "128000",
    "--max-racks",
    "12",
    "--batch-sizes",
    "1,2,4,8",
    "--rack-preset",
    "NVIDIA GB200 NVL72",
];

fn cluster(extra: &[&str]) -> Value {
    let mut args = vec!["cluster", "--json", "--quiet"];
    args.extend_from_slice(extra);
    run_json(&args)
}

fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

#[test]
fn kv_bytes_per_token_follow_the_architecture() {
    // GQA: 2 · layers · kv_heads · head_dim · bytes (Qwen3-235B-A22B config.json:
    // 94 layers, 4 KV heads of 128); MLA: layers · (kv_lora_rank + rope dims) · bytes
    // (DeepSeek-V3: 61 × (512 + 64)); Llama-3.1-70B: 80 layers, 8 KV heads of 128.
    let cases = [
        ("1", "bf16", 2.0 * 94.0 * 4.0 * 128.0 * 2.0),
        ("1", "fp8", 2.0 * 94.0 * 4.0 * 128.0 * 1.0),
        ("2", "bf16", 61.0 * (512.0 + 64.0) * 2.0),
        ("deepseek-r1", "fp8", 61.0 * (512.0 + 64.0)),
        ("llama-3.1-70b", "bf16", 2.0 * 80.0 * 8.0 * 128.0 * 2.0),
        ("3", "bf16", 2.0 * 96.0 * 8.0 * 128.0 * 2.0),
    ];
    for (model, dtype, want) in cases {
        let v = cluster(&[
            "--model",
            model,
            "--kv-dtype",
            dtype,
            "--active-users",
            "64",
            "--no-des",
            "--no-sensitivity",
        ]);
        assert_eq!(f(&v, "/kv/bytes_per_token"), want, "{model} {dtype}");
        let per_el = if dtype == "bf16" { 2.0 } else { 1.0 };
        assert_eq!(f(&v, "/kv/bytes_per_element"), per_el);
        // Every user's cached KV, one copy.
        let users = f(&v, "/users/required");
        assert_eq!(f(&v, "/kv/needed_bytes"), users * 4096.0 * want);
    }
}

#[test]
fn the_chosen_plan_fits_memory_and_one_rack_fewer_falls_short() {
    for tokens in ["128000", "4096"] {
        let mut args = SEED_128K.to_vec();
        args[5] = tokens;
        args.extend([
            "--no-des",
            "--no-sensitivity",
            "--turn-input-tok",
            "256",
            "--turn-output-tok",
            "256",
        ]);
        let v = cluster(&args);
        assert!(
            v["shortfall"].as_array().unwrap().is_empty(),
            "{}",
            v["shortfall"]
        );
        // Memory: weights + KV + overhead within the limit, and the KV share recomputed
        // by hand: ceil(batch/dp) sequences × context × this GPU's KV bytes per token
        // (Qwen3: 94 layers split over pp stages, 4 KV heads over tp, 128 dims, 2 B).
        let m = &v["memory_per_gpu"];
        let used = f(m, "/weights_bytes") + f(m, "/kv_bytes") + f(m, "/overhead_bytes");
        assert!(used <= f(m, "/limit_bytes"), "{m}");
        let (tp, pp, dp, b) = (
            f(&v, "/plan/tp"),
            f(&v, "/plan/pp"),
            f(&v, "/plan/dp"),
            f(&v, "/plan/batch"),
        );
        let ctx = tokens.parse::<f64>().unwrap() + 512.0;
        let kv_tok_gpu = 2.0 * 94.0 / pp * (4.0 / tp).ceil() * 128.0 * 2.0;
        let kv = (b / dp).ceil() * ctx * kv_tok_gpu;
        assert!(
            (f(m, "/kv_bytes") - kv).abs() < 1e-6 * kv,
            "{} vs {kv}",
            m["kv_bytes"]
        );
        // Users held: instances × batch slots ≥ users, and GPUs consistent.
        assert!(f(&v, "/users/supported") >= 1000.0);
        assert_eq!(
            f(&v, "/gpus/active"),
            f(&v, "/instances/running") * tp * pp * dp
        );
        assert_eq!(f(&v, "/gpus/provisioned"), 72.0 * f(&v, "/racks"));
        // Minimality: no feasible candidate needs fewer racks, and one rack fewer falls short.
        let racks = f(&v, "/racks");
        for c in v["candidates"].as_array().unwrap() {
            if c["feasible"].as_bool().unwrap() {
                assert!(f(c, "/racks_needed") >= racks, "{c}");
            }
        }
        if racks > 1.0 {
            let fewer = (racks as u32 - 1).to_string();
            let mut a = args.clone();
            a.extend(["--fixed-racks", fewer.as_str()]);
            let w = cluster(&a);
            assert!(f(&w, "/users/supported") < 1000.0, "{}", w["users"]);
            let sf = w["shortfall"].as_array().unwrap();
            assert!(
                sf.iter().any(|s| s.as_str().unwrap().starts_with("users:")),
                "{sf:?}"
            );
        }
    }
}

#[test]
fn decode_rate_never_exceeds_the_hbm_ceiling() {
    // Per GPU: rate ≤ batch × HBM_bw / (active weight bytes + batch × context × KV bytes),
    // for every candidate plan, on NVL72 and 8-GPU servers, MoE and MLA models.
    for (model, preset) in [
        ("1", "gb200-nvl72"),
        ("2", "hgx-h200"),
        ("3", "gb300-nvl72"),
        ("llama-3.1-70b", "mi355x-8"),
    ] {
        let v = cluster(&[
            "--model",
            model,
            "--rack-preset",
            preset,
            "--tokens-cached",
            "32000",
            "--turn-input-tok",
            "256",
            "--turn-output-tok",
            "256",
            "--active-users",
            "500",
            "--no-des",
            "--no-sensitivity",
        ]);
        let ctx = 32000.0 + 512.0;
        let bw = f(&v, "/hardware/hbm_bw_bytes_s");
        let w = f(&v, "/model/active_weight_bytes");
        let kv = f(&v, "/kv/bytes_per_token");
        let cands = v["candidates"].as_array().unwrap();
        assert!(!cands.is_empty(), "{model} on {preset}");
        for c in cands {
            let b = f(c, "/plan/batch");
            let g = f(c, "/gpus_per_instance");
            let ceiling = b * bw / (w + b * ctx * kv);
            let rate = f(c, "/instance_tok_s") / g;
            assert!(rate <= ceiling, "{model} {preset} {c}: {rate} > {ceiling}");
        }
        // The chosen plan's HBM bound is of the same order (not the seed's 25M tok/s).
        let hbm = f(&v, "/bounds/hbm_tok_s");
        let g = f(&v, "/plan/tp") * f(&v, "/plan/pp") * f(&v, "/plan/dp");
        let b = f(&v, "/plan/batch");
        assert!(
            hbm / g <= b * bw / (w + b * ctx * kv),
            "{model}: hbm bound {hbm}"
        );
    }
}

#[test]
fn session_concurrency_matches_littles_law() {
    let (rate, len) = (60.0, 5.0);
    let s = kvfleet::cluster::sessions::simulate_concurrency(rate, len, 600.0, 10.0, 7);
    assert!(
        (s.mean - rate * len).abs() / (rate * len) < 0.03,
        "mean {} vs λ·S {}",
        s.mean,
        rate * len
    );
    // M/M/∞: Poisson(λS) concurrency; its p95 is about λS + 1.645·√(λS).
    let want_p95 = rate * len + 1.645 * (rate * len).sqrt();
    assert!(
        (s.p95 as f64 - want_p95).abs() < 0.05 * want_p95,
        "p95 {}",
        s.p95
    );
    // Through the CLI: the sizing holds the p95 when it exceeds --active-users.
    let v = cluster(&[
        "--active-users",
        "100",
        "--arrival-rate",
        "60",
        "--avg-session-min",
        "5",
        "--simulation-minutes",
        "600",
        "--no-des",
        "--no-sensitivity",
    ]);
    let a = &v["users"]["arrival"];
    assert!((f(a, "/mean") - 300.0).abs() < 9.0, "{a}");
    assert_eq!(f(&v, "/users/required"), f(a, "/p95"));
}

fn des_run(residency: &str) -> Value {
    cluster(&[
        "--active-users",
        "256",
        "--tokens-cached",
        "32000",
        "--hbm-residency",
        residency,
        "--think-time-s",
        "10",
        "--batch-sizes",
        "8",
        "--des-seconds",
        "120",
        "--des-warmup-s",
        "0",
        "--des-instances",
        "4",
        "--no-sensitivity",
    ])
}

#[test]
fn des_tier_traffic_matches_the_reload_volume_and_reloads_delay_ttft() {
    let v = des_run("0.25");
    let d = &v["des"];
    let reloads = f(d, "/reloads");
    assert!(reloads > 50.0, "{d}");
    // Each reload moves one user's cached KV: tokens × KV bytes per token.
    let per = 32000.0 * f(&v, "/kv/bytes_per_token");
    assert_eq!(f(d, "/reload_volume_bytes"), reloads * per);
    // What the tier delivered over time (integrated bins) equals it, but for the
    // reloads still in flight when the run ends.
    let tier = f(d, "/tier_bytes");
    assert!(tier <= reloads * per * (1.0 + 1e-9), "{tier}");
    assert!(tier >= (reloads - 4.0) * per, "{tier} vs {}", reloads * per);
    assert!(f(&v, "/utilisation/kv_link/avg") > 0.0);
    assert!(f(&v, "/kv/host_bytes") > 0.0);
    // All resident: no reloads, and a lower P99 TTFT.
    let r = des_run("1");
    assert_eq!(f(&r, "/des/reloads"), 0.0);
    assert_eq!(f(&r, "/des/tier_bytes"), 0.0);
    assert!(f(&r, "/des/p99_ttft_ms") < f(d, "/p99_ttft_ms"));
}

#[test]
fn same_seed_same_bytes_and_bad_input_names_the_flag() {
    let run = || {
        kvfleet()
            .args([
                "cluster",
                "--json",
                "--quiet",
                "--active-users",
                "300",
                "--hbm-residency",
                "0.5",
                "--think-time-s",
                "5",
                "--des-seconds",
                "20",
            ])
            .output()
            .unwrap()
            .stdout
    };
    assert_eq!(run(), run());
    for (args, flag) in [
        (vec!["--rack-preset", "tpu-pod"], "--rack-preset"),
        (vec!["--model", "gpt-9"], "--model"),
        (vec!["--quant-bits", "3"], "--quant-bits"),
        (vec!["--hbm-residency", "0"], "--hbm-residency"),
        (vec!["--kv-system", "tape"], "--kv-system"),
        (vec!["--batch-sizes", "0"], "--batch-sizes"),
        (vec!["--diagram", "x.png"], "--diagram"),
    ] {
        let out = kvfleet().arg("cluster").args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(flag) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}

#[test]
fn seed_commands_run_with_their_files() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (csv, svg, plot) = (dir.join("c.csv"), dir.join("d.svg"), dir.join("p.svg"));
    let mut args: Vec<String> = SEED_128K.iter().map(|s| s.to_string()).collect();
    args[3] = "3".into();
    args[7] = "64".into();
    for (flag, p) in [("--csv", &csv), ("--diagram", &svg), ("--plot", &plot)] {
        args.push(flag.into());
        args.push(p.display().to_string());
    }
    let out = kvfleet()
        .arg("cluster")
        .args(&args)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for row in [
        "Summary Table",
        "Users supported (capacity)",
        "TP x PP x EP",
        "Servers needed",
        "Racks needed",
        "Storage needed (TB)",
        "KV placement (HBM / cache / NVMe)",
        "KV DMA util (avg / p95)",
        "Plan details",
        "Provisioned GPUs:",
        "Compute bound:",
    ] {
        assert!(text.contains(row), "missing row {row}:\n{text}");
    }
    let c = std::fs::read_to_string(&csv).unwrap();
    assert!(c.starts_with("tp,pp,ep,dp,batch") && c.lines().count() > 2);
    for p in [&svg, &plot] {
        assert!(std::fs::read_to_string(p).unwrap().contains("<svg"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn des_decode_rate_agrees_with_the_step_model() {
    // All users resident and decoding back to back: the DES's per-user rate is the
    // step model's at the plan's batch and context, less the turns' prefill steps.
    let mut args = SEED_128K.to_vec();
    args.extend(["--no-sensitivity", "--des-seconds", "60"]);
    let v = cluster(&args);
    let model = f(&v, "/throughput/per_user_tok_s");
    let des = f(&v, "/des/tok_s_per_user");
    assert!(
        des <= model * 1.01 && des >= 0.8 * model,
        "DES {des} vs step model {model}"
    );
    assert!(f(&v, "/des/p99_tpot_ms") >= 0.99 * 1000.0 / model);
    assert_eq!(f(&v, "/des/reloads"), 0.0);
    // The simulated users are the plan's: an even share of the required users.
    let per_inst = f(&v, "/users/required") / f(&v, "/instances/running");
    assert!(f(&v, "/des/users_simulated") <= 4.0 * per_inst.ceil());
}
