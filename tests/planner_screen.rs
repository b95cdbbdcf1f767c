//! The analytic screen in the planners' loops (issue 14): a search started
//! at the cross-check's answer finds the same DES-minimal fleet as one
//! started from a single instance; a pool the screen proves infeasible
//! really cannot meet the SLO in the DES; a threshold found around the
//! cross-check's rate is the DES's.

use kvfleet::planner::FleetPlan;
use kvfleet::planner::screen::Screen;
use kvfleet::planner::sizing::{SizingSettings, evaluate, size_fleet, size_fleet_screened};
use kvfleet::planner::threshold::{Sustained, max_sustained_lam};
use kvfleet::profile::{ProfileOverrides, resolve_profile};
use kvfleet::workload::spec::WorkloadSpec;

fn plan(gpu: &str, max_ctx: u32) -> FleetPlan {
    let p = resolve_profile("--gpu", gpu, &ProfileOverrides::default()).expect("preset");
    FleetPlan::homogeneous(p, max_ctx)
}

fn chat(lam: f64) -> WorkloadSpec {
    WorkloadSpec {
        lam: Some(lam),
        ..WorkloadSpec::default_chat()
    }
}

#[test]
fn a_search_started_at_the_cross_check_finds_the_same_minimal_fleet() {
    for (gpu, lam, slo) in [
        ("h100", 60.0, 400.0),
        ("a100", 25.0, 800.0),
        ("a10g", 8.0, 1500.0),
    ] {
        let plan = plan(gpu, 8192);
        let w = chat(lam);
        let s = SizingSettings::new(slo, 4000, 3);
        let screen = Screen::new(&w, s.seed).expect("screen");
        let guided = size_fleet_screened(&plan, &w, &s, &screen).expect("sized");
        let plain = size_fleet(&plan, &w, &s, None).expect("sized");
        assert_eq!(guided.counts, plain.counts, "{gpu} at {lam} req/s");
        assert!(guided.slo_met, "{gpu}: {guided:?}");
        // Minimal: one instance fewer misses in some replication.
        let fewer = [guided.counts[0] - 1];
        if fewer[0] > 0 {
            assert!(
                !evaluate(&plan, &fewer, &w, &s).expect("runs").meets(slo),
                "{gpu}"
            );
        }
        assert!(
            guided.evaluations <= plain.evaluations,
            "{gpu}: {} guided vs {} from one instance",
            guided.evaluations,
            plain.evaluations
        );
    }
}

#[test]
fn a_pool_proved_infeasible_misses_the_slo_in_the_des_however_large() {
    // Prompts of 6000 tokens on an A10G: their own chunked prefill alone
    // takes longer than 200 ms.
    let plan = plan("a10g", 8192);
    let w = WorkloadSpec {
        isl: Some("fixed:6000".parse().expect("dist")),
        osl: Some("fixed:50".parse().expect("dist")),
        cdf: None,
        ..chat(4.0)
    };
    let s = SizingSettings::new(200.0, 3000, 5);
    let screen = Screen::new(&w, s.seed).expect("screen");
    let floor = screen
        .floor_p99_ttft_ms(&plan, 0, s.n_requests)
        .expect("a floor");
    assert!(floor > 200.0, "floor {floor}");
    let why = screen
        .infeasible(&plan, 200.0, s.n_requests)
        .expect("proved infeasible");
    assert!(why.contains("lower bound"), "{why}");
    let sized = size_fleet_screened(&plan, &w, &s, &screen).expect("sized");
    assert!(!sized.slo_met && sized.evaluations == 0, "{sized:?}");
    // The DES agrees at a size that leaves every instance nearly idle.
    let e = evaluate(&plan, &[64], &w, &s).expect("runs");
    let p99 = e.worst_p99_ttft_ms[0].expect("a P99");
    assert!(
        !e.meets(200.0) && p99 >= floor,
        "DES P99 {p99} vs floor {floor}"
    );
    // A reachable SLO is not called infeasible.
    assert!(
        screen
            .infeasible(&plan, 2.0 * floor, s.n_requests)
            .is_none()
    );
}

#[test]
fn the_threshold_found_around_the_cross_check_is_where_the_des_stops_meeting() {
    let plan = plan("h100", 8192);
    let w = chat(40.0);
    let s = SizingSettings::new(400.0, 4000, 9);
    let screen = Screen::new(&w, s.seed).expect("screen");
    let counts = [3];
    assert!(evaluate(&plan, &counts, &w, &s).expect("runs").meets(400.0));
    let at_40 = evaluate(&plan, &counts, &w, &s)
        .expect("runs")
        .worst_p99_ttft_ms;
    let known = Sustained {
        lam: 40.0,
        p99_ttft_ms: Some(&at_40),
        hardest_replication: 0,
    };
    let t = max_sustained_lam(&plan, &counts, &w, &s, &screen, known, 0.01).expect("found");
    let at = |lam: f64| {
        evaluate(&plan, &counts, &chat(lam), &s)
            .expect("runs")
            .meets(400.0)
    };
    assert!(t >= 40.0 && at(t), "meets at the threshold {t}");
    assert!(!at(t * 1.02), "misses 2% above the threshold {t}");
}

#[test]
fn a_run_stopped_at_a_certain_p99_miss_misses_in_full_too() {
    // Sizes around an H100 pool's boundary at 60 req/s of chat (SLO 400 ms):
    // wherever the watched run stops early, the full run's P99 misses; the
    // stop fires in a clearly overloaded pool long before the end; and a
    // pool that meets the SLO is never stopped.
    use kvfleet::planner::sizing::{job, summarise};
    use kvfleet::simulate::run_one_replication;
    let plan = plan("h100", 8192);
    let w = chat(60.0);
    let slo = 400.0;
    let s = SizingSettings::new(slo, 6000, 5);
    let (mut stopped, mut met) = (0, 0);
    for n in 1..=6u32 {
        for rep in 0..2 {
            let full = job(&plan, &[n], &w, &s, 1);
            let mut watched = full.clone();
            watched.cfg.stop_on_ttft_miss = vec![0];
            let a = run_one_replication(&full, rep).expect("runs");
            let b = run_one_replication(&watched, rep).expect("runs");
            let full_meets = summarise(std::slice::from_ref(&a), slo).pool_meets(0, slo);
            if b.verdict == "slo-missed" {
                stopped += 1;
                assert!(
                    !full_meets,
                    "n = {n}, rep {rep}: stopped early but the full run meets"
                );
                assert!(
                    b.verdict_reason
                        .as_deref()
                        .is_some_and(|r| r.contains("whatever follows"))
                );
                assert!(b.requests.arrived <= a.requests.arrived);
            } else {
                // Not stopped: the same run, to the byte.
                assert_eq!(
                    serde_json::to_string(&a).unwrap(),
                    serde_json::to_string(&b).unwrap(),
                    "n = {n}"
                );
            }
            if full_meets {
                met += 1;
            }
        }
    }
    assert!(stopped >= 2, "the overloaded sizes stop early ({stopped})");
    assert!(met >= 2, "some sizes meet the SLO ({met})");
    // One instance at 60 req/s is far over capacity: decided early.
    let mut one = job(&plan, &[1], &w, &s, 1);
    one.cfg.stop_on_ttft_miss = vec![0];
    let r = run_one_replication(&one, 0).expect("runs");
    assert_eq!(r.verdict, "slo-missed");
    assert!(r.requests.arrived < 6000 / 2, "{}", r.requests.arrived);
}

#[test]
fn a_pass_with_a_wide_margin_skips_the_last_replication_and_it_would_have_met() {
    // Chat on H100s at 20 req/s against a 5 s SLO: the P99s are far below
    // it and close to each other, so two replications predict the third.
    let plan = plan("h100", 8192);
    let w = chat(20.0);
    let s = SizingSettings::new(5000.0, 4000, 11);
    let screen = Screen::new(&w, s.seed).expect("screen");
    let sized = size_fleet_screened(&plan, &w, &s, &screen).expect("sized");
    assert!(sized.slo_met, "{sized:?}");
    assert_eq!(sized.replications, 2, "{sized:?}");
    // The skipped replication meets the SLO too.
    let full = evaluate(&plan, &sized.counts, &w, &s).expect("runs");
    assert_eq!(full.replications, 3);
    assert!(full.meets(s.slo_ttft_ms), "{full:?}");
    // A tight SLO (P99 ≈ 56 ms at one instance) leaves no such margin: all three run.
    let tight = SizingSettings::new(70.0, 4000, 11);
    let sized = size_fleet_screened(&plan, &w, &tight, &screen).expect("sized");
    assert!(sized.slo_met);
    assert_eq!(sized.replications, 3, "{sized:?}");
}

#[test]
fn the_stream_floor_bounds_each_replications_p99_and_is_tight_when_idle() {
    // On the DES's own streams: every replication's P99 TTFT at a size that
    // leaves the instances nearly idle is at least that replication's floor,
    // and close to it; a SLO below the floor is proved unmeetable unsimulated.
    use kvfleet::planner::sizing::{job, stream_floor_p99_ttft_ms};
    use kvfleet::simulate::run_one_replication;
    let plan = plan("a10g", 8192);
    // Prompts whose P99 lies inside the distribution (not at a length cap).
    let w = WorkloadSpec {
        isl: Some("lognormal:800:0.6:8000".parse().expect("dist")),
        osl: Some("fixed:50".parse().expect("dist")),
        cdf: None,
        ..chat(3.0)
    };
    let s = SizingSettings::new(1000.0, 3000, 13);
    let mut floors = Vec::new();
    for r in 0..s.replications {
        let floor = stream_floor_p99_ttft_ms(&plan, &w, &s, 0, r)
            .expect("streams")
            .expect("a floor");
        let rep = run_one_replication(&job(&plan, &[48], &w, &s, s.replications), r).expect("runs");
        let p99 = rep.pools[0]
            .metrics
            .slo
            .p99_ttft_over_arrivals_ms()
            .expect("a P99");
        assert!(
            p99 >= floor,
            "replication {r}: DES {p99} below the floor {floor}"
        );
        assert!(
            p99 <= 1.25 * floor,
            "replication {r}: DES {p99} far above the floor {floor}"
        );
        floors.push(floor);
    }
    let max = floors.iter().copied().fold(0.0, f64::max);
    let screen = Screen::new(&w, s.seed).expect("screen");
    // Between the screen's sampling-safe bound and the streams' exact one:
    // only the latter proves it.
    let sampled = screen
        .floor_p99_ttft_ms(&plan, 0, s.n_requests)
        .expect("a floor");
    assert!(sampled < max, "screen {sampled} vs streams {max}");
    let below = SizingSettings::new(0.5 * (sampled + max), 3000, 13);
    let sized = size_fleet_screened(&plan, &w, &below, &screen).expect("sized");
    assert!(!sized.slo_met && sized.evaluations == 0, "{sized:?}");
    assert!(
        sized
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("arrival stream")),
        "{sized:?}"
    );
}

#[test]
fn a_pool_with_too_few_arrivals_never_skips_a_replication() {
    // The wide-margin case above, on 1,500-request runs: fewer measured
    // arrivals than `MIN_PREDICTING_ARRIVALS`, so every replication runs.
    let plan = plan("h100", 8192);
    let w = chat(20.0);
    let s = SizingSettings::new(5000.0, 1500, 11);
    let screen = Screen::new(&w, s.seed).expect("screen");
    let sized = size_fleet_screened(&plan, &w, &s, &screen).expect("sized");
    assert!(sized.slo_met, "{sized:?}");
    assert_eq!(sized.replications, 3, "{sized:?}");
}

#[test]
fn the_hardest_replication_is_one_of_the_evaluations_and_needs_several() {
    use kvfleet::planner::replication_order::hardest_replication;
    let plan = plan("a100", 8192);
    let w = chat(25.0);
    let s = SizingSettings::new(800.0, 3000, 3);
    let r = hardest_replication(&plan, &[2], &w, &s).expect("streams");
    assert!(r.is_some_and(|r| r < 3), "{r:?}");
    // The same streams give the same pick.
    assert_eq!(
        hardest_replication(&plan, &[2], &w, &s).expect("streams"),
        r
    );
    // One replication: nothing to order.
    let one = SizingSettings {
        replications: 1,
        ..SizingSettings::new(800.0, 3000, 3)
    };
    assert_eq!(
        hardest_replication(&plan, &[2], &w, &one).expect("streams"),
        None
    );
}

#[test]
fn a_sized_fleet_names_the_replication_where_its_p99_was_highest() {
    use kvfleet::planner::sizing::job;
    use kvfleet::simulate::run_one_replication;
    for (gpu, lam, slo) in [("h100", 60.0, 400.0), ("a100", 25.0, 800.0)] {
        let plan = plan(gpu, 8192);
        let w = chat(lam);
        let s = SizingSettings::new(slo, 4000, 3);
        let screen = Screen::new(&w, s.seed).expect("screen");
        let sized = size_fleet_screened(&plan, &w, &s, &screen).expect("sized");
        assert!(sized.slo_met, "{gpu}: {sized:?}");
        // Each replication alone at the sized counts: the named one has the
        // highest P99 (the one a probe at a higher rate should run first).
        let j = job(&plan, &sized.counts, &w, &s, s.replications);
        let p99: Vec<f64> = (0..s.replications)
            .map(|r| {
                let rep = run_one_replication(&j, r).expect("runs");
                rep.pools
                    .iter()
                    .filter_map(|p| p.metrics.slo.p99_ttft_over_arrivals_ms())
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        let highest = (0..p99.len())
            .max_by(|&a, &b| p99[a].total_cmp(&p99[b]))
            .expect("replications") as u32;
        assert_eq!(sized.hardest_replication, highest, "{gpu}: P99s {p99:?}");
    }
}

#[test]
fn a_pools_arrivals_counted_on_its_stream_decide_its_miss_sooner_and_never_wrongly() {
    // A two-pool split whose long pool gets a small share of chat: the
    // streams read ahead count each pool's measured arrivals exactly (the
    // DES's own counts), and with that count as the bound a watched pool
    // that misses stops sooner than against every arrival still to come,
    // only when its full run misses, and a run that is not stopped is the
    // full run to the byte.
    use kvfleet::planner::replication_order::read_streams;
    use kvfleet::planner::sizing::{job, summarise};
    use kvfleet::simulate::run_one_replication;
    let h100 = || resolve_profile("--gpu", "h100", &ProfileOverrides::default()).expect("preset");
    let plan = FleetPlan {
        b_short: Some(3072),
        gamma: 1.0,
        short: h100(),
        long: h100(),
        long_max_ctx: 8192,
    };
    let w = chat(60.0);
    let slo = 70.0;
    let s = SizingSettings::new(slo, 6000, 7);
    let readings = read_streams(&plan, &[4, 1], &w, &s)
        .expect("streams")
        .expect("length routing is read ahead");
    assert_eq!(readings.len(), s.replications as usize);
    let (mut sooner, mut stopped, mut full_runs) = (0, 0, 0);
    for long in 1..=3u32 {
        for r in 0..s.replications {
            let counts = [6, long];
            let full = job(&plan, &counts, &w, &s, 1);
            let a = run_one_replication(&full, r).expect("runs");
            let measured: Vec<u64> = a.pools.iter().map(|p| p.requests.measured).collect();
            assert_eq!(
                readings[r as usize].measured_arrivals, measured,
                "replication {r}: counted ahead vs the DES's"
            );
            let share = measured[1] as f64 / measured.iter().sum::<u64>() as f64;
            assert!(share > 0.02 && share < 0.2, "the long pool's share {share}");
            let mut watched = full.clone();
            watched.cfg.stop_on_ttft_miss = vec![1];
            let mut bounded = watched.clone();
            bounded.cfg.measured_arrivals_bound = measured.iter().copied().map(Some).collect();
            let b = run_one_replication(&watched, r).expect("runs");
            let c = run_one_replication(&bounded, r).expect("runs");
            let full_meets = summarise(std::slice::from_ref(&a), slo).pool_meets(1, slo);
            // An SLO at the full run's own P99: the pool meets it with
            // just under 1% of its measured requests above, so a bound any
            // smaller than its true count would stop this run wrongly.
            let just = a.pools[1].metrics.slo.p99_ttft_all_ms.expect("arrivals");
            assert!(just.is_finite(), "long = {long}, rep {r}: over 1% rejected");
            let mut at_p99 = bounded.clone();
            at_p99.cfg.slo.ttft_ms = just;
            let d = run_one_replication(&at_p99, r).expect("runs");
            assert_ne!(
                d.verdict, "slo-missed",
                "long = {long}, rep {r}: a run meeting an SLO of {just} ms stopped: {:?}",
                d.verdict_reason
            );
            assert_eq!(
                d.requests.arrived, a.requests.arrived,
                "long = {long}, rep {r}"
            );
            if c.verdict == "slo-missed" {
                stopped += 1;
                assert!(
                    !full_meets,
                    "long = {long}, rep {r}: stopped but the full run meets"
                );
                assert_eq!(c.slo_missed_pool, Some(1));
                assert!(c.requests.arrived <= b.requests.arrived);
                sooner += (c.requests.arrived < b.requests.arrived) as u32;
            } else {
                full_runs += 1;
                assert_eq!(
                    serde_json::to_string(&a).unwrap(),
                    serde_json::to_string(&c).unwrap(),
                    "long = {long}, rep {r}"
                );
            }
        }
    }
    assert!(
        stopped >= 2 && sooner >= 2,
        "stopped {stopped}, sooner {sooner}"
    );
    assert!(full_runs >= 1, "some size meets to the end ({full_runs})");
}
