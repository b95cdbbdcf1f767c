//! CLI tests of computed profiles: `profile`, `profile step`, `calibrate`, and a
//! computed profile driving `simulate`.

use assert_cmd::Command;
use serde_json::Value;

fn kvfleet(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("kvfleet")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-profiles-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn profile_step_json_has_the_documented_keys() {
    let (code, out, err) = kvfleet(&[
        "profile",
        "step",
        "--gpu",
        "h100-sxm:llama-3.1-70b:tp8:fp8",
        "--batch",
        "64",
        "--ctx",
        "8192",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let step = v["step_ms"].as_f64().unwrap();
    assert!(step > 1.0 && step < 1000.0, "{step}");
    assert!(["compute", "memory", "comm"].contains(&v["bound"].as_str().unwrap()));
    for k in [
        "compute_ms",
        "memory_ms",
        "comm_ms",
        "overhead_ms",
        "linear_ms",
    ] {
        assert!(v[k].is_number(), "{k}");
    }
    // A bigger batch takes longer.
    let (_, out2, _) = kvfleet(&[
        "profile",
        "step",
        "--gpu",
        "h100-sxm:llama-3.1-70b:tp8:fp8",
        "--batch",
        "128",
        "--ctx",
        "8192",
        "--json",
    ]);
    let v2: Value = serde_json::from_str(&out2).unwrap();
    assert!(v2["step_ms"].as_f64().unwrap() > step);
}

#[test]
fn bad_specs_exit_2_naming_gpu() {
    for (spec, needle) in [
        ("tpu9:llama-3.1-70b:tp8:fp8", "h100-sxm"),
        ("h100:llama-99b:tp8:fp8", "qwen3-32b"),
        ("h100:llama-3.1-70b:tp8:fp5", "fp8"),
        ("a10g:llama-3.1-405b:tp1:bf16", "does not fit"),
    ] {
        let (code, _, err) = kvfleet(&[
            "simulate", "--gpu", spec, "--n-req", "10", "--quiet", "--json",
        ]);
        assert_eq!(code, 2, "{spec}: {err}");
        assert!(
            err.contains("--gpu") && err.contains(needle),
            "{spec}: {err}"
        );
    }
}

#[test]
fn computed_profile_runs_through_simulate() {
    let (code, out, err) = kvfleet(&[
        "simulate",
        "--gpu",
        "h100-sxm:llama-3.1-70b:tp8:fp8",
        "--n-req",
        "2000",
        "--quiet",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v.is_object());
    assert!(
        out.contains("h100-sxm:llama-3.1-70b:tp8:fp8"),
        "profile name in the report"
    );
}

#[test]
fn profile_report_shows_linearisation_error() {
    let (code, out, err) = kvfleet(&["profile", "--gpu", "h200:gpt-oss-120b:tp2:fp4", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let e = v["computed"]["linear_fit_median_rel_err"].as_f64().unwrap();
    // gpt-oss's sliding-window layers cost a fixed amount per sequence, which
    // the linear model (W + H·Σctx) can only spread over context: about 20%.
    assert!(e > 0.0 && e < 0.3, "{e}");
    assert_eq!(v["profile"]["gpus_per_instance"], 2);
    let (code, out, _) = kvfleet(&["profile", "--gpu", "a100"]);
    assert_eq!(code, 0);
    assert!(out.contains("KV capacity 1048576 tokens"), "{out}");
}

#[test]
fn calibrate_recovers_a_profile_and_its_toml_is_usable() {
    // Synthetic measurements from the computed profile's own linear model.
    let (_, out, _) = kvfleet(&[
        "profile",
        "--gpu",
        "h100-sxm:llama-3.1-8b:tp1:bf16",
        "--json",
    ]);
    let p: Value = serde_json::from_str(&out).unwrap();
    let (w, h, pf) = (
        p["profile"]["w_s"].as_f64().unwrap(),
        p["profile"]["h_s"].as_f64().unwrap(),
        p["profile"]["prefill_s_per_token"].as_f64().unwrap(),
    );
    assert!(pf > 0.0);
    let mut csv = String::from("batch,ctx,prefill_tokens,step_ms\n");
    for b in [1u32, 4, 16, 64] {
        for c in [512u32, 4096, 16384] {
            for pt in [0u32, 1024] {
                let s = w + h * (b as f64 * c as f64 + pt as f64) / 8192.0 + pf * pt as f64;
                csv += &format!("{b},{c},{pt},{:.12}\n", s * 1e3);
            }
        }
    }
    let path = tmp("synthetic.csv");
    std::fs::write(&path, csv).unwrap();
    let toml_path = tmp("fitted.toml");
    let (code, out, err) = kvfleet(&[
        "calibrate",
        path.to_str().unwrap(),
        "--gpu",
        "h100",
        "--out",
        toml_path.to_str().unwrap(),
        "--verbose",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("median relative error"), "{out}");
    let text = std::fs::read_to_string(&toml_path).unwrap();
    let fitted: toml::Value = toml::from_str(&text).unwrap();
    for (k, want) in [("w_s", w), ("h_s", h), ("prefill_s_per_token", pf)] {
        let got = fitted[k].as_float().unwrap();
        assert!((got - want).abs() / want < 1e-6, "{k}: {got} vs {want}");
    }
    // The fitted TOML is a profile: simulate accepts it.
    let (code, _, err) = kvfleet(&[
        "simulate",
        "--gpu",
        toml_path.to_str().unwrap(),
        "--n-req",
        "200",
        "--quiet",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn calibrate_reads_the_benchmark_layout_and_reports_error() {
    let f = format!(
        "{}/tests/fixtures/calibrate/bench_layout.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, out, err) = kvfleet(&["calibrate", &f, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["samples"].as_array().unwrap().len(), 10);
    assert!(v["fit"]["median_rel_err"].as_f64().unwrap() > 0.0);
    assert!(v["profile"]["w_s"].as_f64().unwrap() > 0.0);
    let bad = tmp("bad.csv");
    std::fs::write(&bad, "a,b\n1,2\n").unwrap();
    let (code, _, err) = kvfleet(&["calibrate", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("batch,ctx,prefill_tokens,step_ms"), "{err}");
}

#[test]
fn profile_validate_prints_medians_and_rejects_bad_files() {
    let (code, out, err) = kvfleet(&["profile", "validate"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("dense decode target") && out.contains("mi300x"),
        "{out}"
    );
    let (code, out, err) = kvfleet(&["profile", "validate", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let med = v["target"]["median_abs_rel_err"].as_f64().unwrap();
    assert!(
        med > 0.0 && med <= v["target_median_rel_err"].as_f64().unwrap(),
        "{med}"
    );
    assert!(v["points"].as_array().unwrap().len() >= 30);
    let bad = tmp("bad_points.toml");
    std::fs::write(&bad, "[[point]]\nid = \"x\"\n").unwrap();
    let (code, _, err) = kvfleet(&["profile", "validate", "--file", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("bad_points.toml"), "{err}");
}

#[test]
fn gpu_comparison_scenario_specs_all_resolve() {
    // scenarios/gpu_compare_llama70b: every compared spec must stay a valid
    // computed profile (the run itself needs ../shared/data and is not repeated here).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/gpu_compare_llama70b/whatif.toml"
    );
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let specs = t["plan"]["gpu_compare"].as_array().unwrap();
    assert!(specs.len() >= 8, "{specs:?}");
    for s in specs {
        let s = s.as_str().unwrap();
        assert!(s.contains(":llama-3.1-70b:"), "{s}");
        let (code, out, err) = kvfleet(&["profile", "--gpu", s, "--json"]);
        assert_eq!(code, 0, "{s}: {err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert!(v["profile"]["total_kv_blks"].as_u64().unwrap() > 0, "{s}");
    }
}
