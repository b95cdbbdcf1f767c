//! Scenario files with `[disagg]`, `[[events]]` and `[[windows]]` through `kvfleet run`.

mod common;

use std::path::PathBuf;

use common::{kvfleet, run_json};

const CDF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cdf/chat_small.json"
);

fn scenario(name: &str, body: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kvfleet-events-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write scenario");
    path
}

fn workload(n: u32, lam: f64) -> String {
    format!("[workload]\ncdf = \"{CDF}\"\nlam = {lam}\nn_requests = {n}\n")
}

#[test]
fn a_disaggregated_scenario_reports_transfers_and_conserves_requests() {
    let path = scenario(
        "disagg.toml",
        &format!(
            "{}
[[pools]]
id = \"p\"
gpu = \"a100\"
instances = 2
max_ctx = 8192

[[pools]]
id = \"d\"
gpu = \"h100\"
instances = 3
max_ctx = 8192
dispatch = \"free-kv\"

[disagg]
prefill = \"p\"
decode = \"d\"
link = \"ib\"

[sim]
slo_ttft_ms = 500
slo_tpot_ms = 100
",
            workload(8000, 40.0)
        ),
    );
    let v = run_json(&["run", path.to_str().unwrap(), "--json", "--quiet"]);
    let r = &v["requests"];
    let arrived = r["arrived"].as_u64().unwrap();
    assert_eq!(
        arrived,
        r["completed"].as_u64().unwrap()
            + r["rejected"].as_u64().unwrap()
            + r["in_flight"].as_u64().unwrap()
    );
    let kv = &v["kv_transfer"];
    assert_eq!(kv["link"], "ib");
    // Every request with more than one output token crosses the link once.
    let transfers = kv["transfers"].as_u64().unwrap();
    assert!(transfers > arrived * 9 / 10 && transfers <= arrived, "{kv}");
    assert!(kv["transfer_ms"]["mean"].as_f64().unwrap() > 0.0);
    // Routers see only the prefill pool.
    assert!(v["router"]["routed"].get("d").is_none(), "{}", v["router"]);
    assert_eq!(v["verdict"], "stable");
}

#[test]
fn failure_events_and_windows_are_reported() {
    let path = scenario(
        "failure.toml",
        &format!(
            "{}
[[pools]]
id = \"chat\"
gpu = \"h100\"
instances = 4
max_ctx = 8192

[sim]
warmup = 0.0

[[events]]
at_s = 100
pool = \"chat\"
instances = 2
mode = \"fail\"

[[events]]
at_s = 200
pool = \"chat\"
instances = 4

[[windows]]
name = \"before\"
start_s = 0
end_s = 100

[[windows]]
name = \"failure\"
start_s = 100
end_s = 200
",
            workload(12000, 40.0)
        ),
    );
    let v = run_json(&["run", path.to_str().unwrap(), "--json", "--quiet"]);
    assert!(v["requests"]["restarted_after_failure"].as_u64().unwrap() > 0);
    let w = v["windows"].as_array().expect("windows");
    assert_eq!(w.len(), 2);
    assert_eq!(w[0]["name"], "before");
    let p99 = |i: usize| w[i]["ttft_ms"]["p99"].as_f64().unwrap();
    assert!(
        p99(1) > p99(0),
        "losing half the fleet must raise P99: {w:?}"
    );
    for x in w {
        assert!(x["energy_j"].as_f64().unwrap() > 0.0);
        assert!(x["requests"]["arrived"].as_u64().unwrap() > 3000);
    }
}

#[test]
fn bad_events_and_disagg_fields_exit_2_naming_the_field() {
    let pools = "[[pools]]\nid = \"chat\"\ngpu = \"h100\"\ninstances = 2\nmax_ctx = 8192\n";
    for (body, needle) in [
        (
            "[[events]]\nat_s = 1\npool = \"nope\"\ninstances = 1\n",
            "events[0].pool",
        ),
        (
            "[[events]]\nat_s = 1\npool = \"chat\"\ninstances = 1\nmax_num_seqs = 4\n",
            "events[0].instances",
        ),
        (
            "[[events]]\nat_s = 1\npool = \"chat\"\nmax_num_seqs = 4\nmode = \"fail\"\n",
            "events[0].max_num_seqs",
        ),
        (
            "[[windows]]\nname = \"w\"\nstart_s = 5\nend_s = 2\n",
            "windows[0]",
        ),
        (
            "[disagg]\nprefill = \"chat\"\ndecode = \"missing\"\n",
            "disagg.decode",
        ),
        (
            "[disagg]\nprefill = \"chat\"\ndecode = \"chat\"\nlink = \"carrier-pigeon\"\n",
            "disagg.link",
        ),
    ] {
        let path = scenario(
            "bad.toml",
            &format!("{}{pools}{body}", workload(1000, 10.0)),
        );
        let out = kvfleet()
            .args(["run", path.to_str().unwrap(), "--quiet"])
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}: {err}");
        assert!(err.contains(needle), "{body}: expected `{needle}` in {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}
