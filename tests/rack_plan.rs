//! `kvfleet rack-plan` on the seed-002 scenario: a plan within the rack in
//! whole trays that meets both clients' SLOs, the Pareto set, the named
//! designs (the seed's Options A and B) judged beside it with a reason, the
//! best plan's combined simulation equal to its per-client verifications
//! (static pools share nothing but the non-blocking NVLink switch), CSV and
//! SVG outputs, same seed ⇒ same bytes, and bad input.

mod common;

use common::{json_of, kvfleet, run_json, temp_input};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/scenarios/nvl72_two_clients/two_clients.toml"
);

fn plan(scale: &str) -> serde_json::Value {
    run_json(&["rack-plan", FILE, "--load-scale", scale, "--json"])
}

#[test]
fn best_plan_fits_the_rack_and_meets_both_slos() {
    for scale in ["0.5", "1", "1.5"] {
        let v = plan(scale);
        let best = &v["best"];
        assert!(best.is_object(), "x{scale}: {}", v["notes"]);
        let (gpus, trays) = (
            best["gpus"].as_u64().unwrap(),
            best["trays"].as_u64().unwrap(),
        );
        assert!(
            gpus <= 72 && trays <= 18,
            "x{scale}: {gpus} GPUs, {trays} trays"
        );
        assert_eq!(gpus, 4 * trays, "whole 4-GPU trays");
        assert_eq!(best["meets_all"], true);
        let d = &v["best_design"];
        assert_eq!(d["gpus"].as_u64(), Some(gpus));
        assert_eq!(d["fits"], true);
        for c in d["clients"].as_array().unwrap() {
            assert!(
                c["slo_attainment"].as_f64().unwrap() >= 0.9,
                "x{scale}: {c}"
            );
            assert_eq!(c["completed"], c["requests"]);
        }
        // Trays are laid out contiguously from tray 0.
        let mut next = 0;
        for p in d["pools"].as_array().unwrap() {
            assert_eq!(p["trays"][0].as_u64(), Some(next));
            next = p["trays"][1].as_u64().unwrap() + 1;
        }
        assert_eq!(next, trays);
        // Every Pareto plan fits and none dominates the best on all three axes.
        for p in v["pareto"].as_array().unwrap() {
            assert!(p["trays"].as_u64().unwrap() <= 18);
        }
        // The combined run equals each client's own verification, bit for bit.
        for (k, part) in best["parts"].as_array().unwrap().iter().enumerate() {
            let part = part.as_str().unwrap();
            let cand = v["verified"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| {
                    format!(
                        "{}: {} + {}",
                        c["client"].as_str().unwrap(),
                        c["prefill"].as_str().unwrap(),
                        c["decode"].as_str().unwrap()
                    ) == part
                })
                .expect("best part is a verified candidate");
            assert_eq!(cand["verified"], d["clients"][k], "x{scale}: {part}");
        }
    }
}

#[test]
fn options_a_and_b_are_judged_beside_the_plan() {
    let v = plan("1");
    let named = v["named"].as_array().unwrap();
    let names: Vec<&str> = named
        .iter()
        .map(|n| n["result"]["design"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "option-a",
            "option-b",
            "option-b-as-written",
            "seed-launch-lines",
            "aggregated"
        ]
    );
    for n in named {
        let verdict = n["verdict"].as_str().unwrap();
        assert!(verdict == "wins" || verdict == "loses");
        assert!(n["reason"].as_str().unwrap().len() > 20, "{n}");
    }
    // Option A puts the 8k/1k decode on one TEP4 tray: it misses that client.
    assert_eq!(named[0]["verdict"], "loses");
    assert!(
        named[0]["reason"]
            .as_str()
            .unwrap()
            .contains("misses `ctx-8k1k`")
    );
    // Option B as the seed writes it and its launch lines read correctly do not fit.
    for k in [2, 3] {
        assert_eq!(named[k]["result"]["fits"], false);
        assert!(
            named[k]["reason"]
                .as_str()
                .unwrap()
                .starts_with("does not fit")
        );
    }
    assert_eq!(named[2]["result"]["gpus"], 104);
    assert_eq!(named[3]["result"]["gpus"], 88);
}

#[test]
fn same_seed_same_bytes_and_outputs() {
    let a = json_of(kvfleet().args(["rack-plan", FILE, "--json"])).1;
    let b = json_of(kvfleet().args(["rack-plan", FILE, "--json"])).1;
    assert_eq!(a, b);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-rackplan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (csv, svg) = (dir.join("plan.csv"), dir.join("plan.svg"));
    let out = kvfleet()
        .args([
            "rack-plan",
            FILE,
            "--csv",
            csv.to_str().unwrap(),
            "--plot",
            svg.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("best plan:") && text.contains("named design `option-a`"),
        "{text}"
    );
    let c = std::fs::read_to_string(&csv).unwrap();
    assert!(c.starts_with("kind,name,client,load,gpus,slo_attainment"));
    assert!(c.lines().any(|l| l.starts_with("named,\"option-b\"")));
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(s.contains("<svg") && s.contains("gen-1k8k") && s.contains("ctx-8k1k"));
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let no_plan = temp_input(
        "noplan.toml",
        "[[clients]]\nname = \"c\"\nisl = 100\nosl = 100\nconcurrency = 2\nttft_ms = 1000\n",
    );
    for (args, needle) in [
        (vec!["rack-plan", no_plan.to_str().unwrap()], "rack_plan"),
        (vec!["rack-plan", FILE, "--load-scale", "0"], "--load-scale"),
    ] {
        let out = kvfleet().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle) && err.trim().lines().count() == 1,
            "{err}"
        );
    }
}
