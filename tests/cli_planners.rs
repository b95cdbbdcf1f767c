//! Planners with the DES in the loop: optimize's contract and minimality,
//! whatif's monotone counts, pareto's frontier and recommendation.

mod common;

use kvfleet::planner::FleetPlan;
use kvfleet::planner::sizing::{SizingSettings, evaluate};
use kvfleet::profile::Profile;
use kvfleet::workload::spec::WorkloadSpec;
use serde_json::Value;

const CDF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cdf/chat_small.json"
);

use common::run_json as run;

const COMMON: &[&str] = &[
    "--cdf",
    CDF,
    "--slo",
    "300",
    "--gpu-short",
    "a100",
    "--gpu-long",
    "a100",
    "--long-max-ctx",
    "8192",
    "--n-sim-req",
    "6000",
    "--seed",
    "9",
    "--json",
    "--quiet",
];

fn p99s(c: &Value) -> Vec<f64> {
    c["des"]["p99_ttft_ms_by_pool"]
        .as_object()
        .expect("map")
        .values()
        .filter_map(Value::as_f64)
        .collect()
}

#[test]
fn optimize_contract_and_minimality() {
    let v = run(&[&["optimize", "--lam", "40", "--b-short", "1024"], COMMON].concat());
    for key in ["baseline", "candidates", "best"] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let c = &v["candidates"][0];
    for key in [
        "b_short", "gamma", "pools", "analytic", "des", "cost", "slo_met",
    ] {
        assert!(c.get(key).is_some(), "candidate misses {key}");
    }
    assert!(c["cost"]["per_hr_usd"].is_number() && c["cost"]["per_year_usd"].is_number());
    let best = &v["best"];
    assert_eq!(best["slo_met"], true);
    assert!(p99s(best).iter().all(|&p| p <= 300.0), "{best}");
    // Re-simulate the candidate through `simulate`: the sizing's own first stream and an unseen seed.
    let counts: Vec<u32> = c["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .map(|p| p["instances"].as_u64().expect("n") as u32)
        .collect();
    let sim = |ns: u32, nl: u32, seed: &str| {
        run(&[
            "simulate",
            "--cdf",
            CDF,
            "--lam",
            "40",
            "--n-req",
            "6000",
            "--seed",
            seed,
            "--gpu-short",
            "a100",
            "--gpu-long",
            "a100",
            "--n-s",
            &ns.to_string(),
            "--n-l",
            &nl.to_string(),
            "--b-short",
            "1024",
            "--long-max-ctx",
            "8192",
            "--slo",
            "300",
            "--json",
            "--quiet",
            "--no-timing",
        ])
    };
    let meets = |v: &Value| {
        v["verdict"] == "stable"
            && v["pools"]
                .as_array()
                .expect("pools")
                .iter()
                .all(|p| p["ttft_ms"]["p99"].as_f64().is_none_or(|x| x <= 300.0))
    };
    assert!(
        meets(&sim(counts[0], counts[1], "9")),
        "the sized candidate meets the SLO when re-simulated"
    );
    assert!(
        meets(&sim(counts[0], counts[1], "1234")),
        "the sized candidate meets the SLO on an unseen seed"
    );
    // Minimality: one instance fewer in either pool misses the SLO in at least one replication.
    let plan = FleetPlan {
        b_short: Some(1024),
        gamma: 1.0,
        short: Profile::preset("a100").expect("preset"),
        long: Profile::preset("a100").expect("preset"),
        long_max_ctx: 8192,
    };
    let workload = WorkloadSpec {
        cdf: Some(CDF.into()),
        lam: Some(40.0),
        ..WorkloadSpec::default()
    };
    let settings = SizingSettings::new(300.0, 6000, 9);
    assert!(
        evaluate(&plan, &counts, &workload, &settings)
            .expect("runs")
            .meets(300.0)
    );
    for i in 0..2 {
        if counts[i] > 1 {
            let mut fewer = counts.clone();
            fewer[i] -= 1;
            assert!(
                !evaluate(&plan, &fewer, &workload, &settings)
                    .expect("runs")
                    .meets(300.0),
                "pool {i} is minimal"
            );
        }
    }
}

#[test]
fn whatif_counts_never_decrease_with_lambda() {
    let v = run(&[
        &[
            "whatif",
            "--lam-range",
            "10",
            "20",
            "40",
            "80",
            "--b-short",
            "1024",
        ],
        COMMON,
    ]
    .concat());
    let pts = v.as_array().expect("array of points");
    assert_eq!(pts.len(), 4);
    let mut prev: Option<(f64, Vec<u64>)> = None;
    for p in pts {
        let lam = p["lam"].as_f64().expect("lam");
        let counts: Vec<u64> = p["pools"]
            .as_array()
            .expect("pools")
            .iter()
            .map(|x| x["instances"].as_u64().expect("n"))
            .collect();
        if let Some((l0, c0)) = &prev {
            assert!(lam > *l0);
            assert!(
                counts.iter().zip(c0).all(|(a, b)| a >= b),
                "{c0:?} at λ={l0} then {counts:?} at λ={lam}"
            );
        }
        if p["slo_met"] == true {
            assert!(
                p["max_lam_within_slo"]
                    .as_f64()
                    .is_some_and(|m| m >= lam * 0.99),
                "{p}"
            );
        }
        prev = Some((lam, counts));
    }
}

#[test]
fn pareto_marks_frontier_and_one_recommendation() {
    let v = run(&[&["pareto", "--lam", "40"], COMMON].concat());
    let pts = v.as_array().expect("array of points");
    assert!(pts[0]["b_short"].is_null(), "baseline first");
    assert!(pts.len() > 2);
    assert_eq!(pts.iter().filter(|p| p["recommended"] == true).count(), 1);
    let rec = pts.iter().find(|p| p["recommended"] == true).expect("one");
    // The recommendation is a split only if it is strictly cheaper than the baseline.
    if !rec["b_short"].is_null() {
        assert!(rec["cost"]["per_year_usd"].as_f64() < pts[0]["cost"]["per_year_usd"].as_f64());
    }
    // Frontier points are not dominated by any SLO-meeting point.
    let key = |p: &Value| {
        (
            p["cost"]["per_year_usd"].as_f64().unwrap_or(f64::MAX),
            p["worst_p99_ttft_ms"].as_f64().unwrap_or(f64::MAX),
        )
    };
    for p in pts.iter().filter(|p| p["pareto"] == true) {
        let (c, w) = key(p);
        assert!(!pts.iter().filter(|q| q["slo_met"] == true).any(|q| {
            let (qc, qw) = key(q);
            qc <= c && qw <= w && (qc < c || qw < w)
        }));
    }
}

#[test]
fn planner_flags_are_validated() {
    for (args, needle) in [
        (
            vec!["optimize", "--lam", "40", "--b-short", "9000"],
            "--b-short",
        ),
        (
            vec!["optimize", "--lam", "40", "--node-avail", "1.5"],
            "--node-avail",
        ),
        (vec!["whatif", "--lam-range", "-5"], "--lam-range"),
    ] {
        let out = common::kvfleet()
            .args([&args[..], COMMON].concat())
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{args:?}"
        );
    }
}

#[test]
fn sweeps_are_deterministic_whatever_the_thread_count() {
    let args = [&["pareto", "--lam", "40"], COMMON].concat();
    let out = |threads: &str| {
        let o = common::kvfleet()
            .env("RAYON_NUM_THREADS", threads)
            .args(&args)
            .output()
            .expect("runs");
        assert!(o.status.success());
        o.stdout
    };
    assert_eq!(out("1"), out("2"));
}
