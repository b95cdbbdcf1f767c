//! `metrics::latency::Hist3` against the reference it reimplements,
//! `hdrhistogram::Histogram::<u64>::new(3)`: the same bins, counts, merges,
//! `highest_equivalent` and `value_at_quantile` (every percentile kvfleet
//! prints goes through these), on random value sets of every magnitude.

use hdrhistogram::Histogram;
use kvfleet::metrics::LatencyHist;
use kvfleet::metrics::latency::Hist3;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// The histogram `LatencyHist` used before `Hist3`, filled the same way.
fn reference(values: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).expect("3 digits");
    for &v in values {
        if h.record(v).is_err() {
            h.saturating_record(v);
        }
    }
    h
}

fn ours(values: &[u64]) -> Hist3 {
    let mut h = Hist3::new();
    for &v in values {
        h.record(v);
    }
    h
}

/// Quantiles to compare: the edges, out-of-range and NaN inputs, a grid,
/// the given random ones, and the `(held - 0.5) / count` form of
/// `LatencyHist::percentile_with_misses_ns` for ranks spread over the count.
fn quantiles(count: u64, random: &[f64]) -> Vec<f64> {
    let mut q = vec![
        0.0,
        -0.0,
        1.0,
        -0.25,
        1.5,
        f64::NAN,
        0.5,
        0.9,
        0.99,
        0.999,
        0.9999,
        1.0 - f64::EPSILON,
        f64::MIN_POSITIVE,
    ];
    q.extend((1..100).map(|i| i as f64 / 100.0));
    q.extend_from_slice(random);
    if count > 0 {
        let step = (count / 64).max(1);
        let mut held = 1;
        while held <= count {
            q.push((held as f64 - 0.5) / count as f64);
            held += step;
        }
        q.push((count as f64 - 0.5) / count as f64);
    }
    q
}

/// Every observable of `h` equals the reference's.
fn check_same(h: &Hist3, r: &Histogram<u64>, random_q: &[f64]) -> Result<(), TestCaseError> {
    prop_assert_eq!(h.len(), r.len());
    prop_assert_eq!(h.is_empty(), r.is_empty());
    let bins: Vec<(u64, u64)> = h.recorded().collect();
    let ref_bins: Vec<(u64, u64)> = r
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    prop_assert_eq!(&bins, &ref_bins);
    for &(top, n) in &bins {
        prop_assert_eq!(h.count_at(top), n);
        prop_assert_eq!(h.count_at(Hist3::lowest_equivalent(top)), n);
    }
    for q in quantiles(h.len(), random_q) {
        prop_assert_eq!(
            h.value_at_quantile(q),
            r.value_at_quantile(q),
            "quantile {} of {} values",
            q,
            h.len()
        );
    }
    Ok(())
}

/// Values spread over every magnitude: a random u64 shifted right by 0–63.
fn any_magnitude() -> impl Strategy<Value = u64> {
    (any::<u64>(), 0u32..64).prop_map(|(v, s)| v >> s)
}

/// Values near a bin edge of every bucket: ±3 around a power of two or a
/// power of two times 1.5, and the extremes.
fn edge_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        (0u32..64, -3i64..=3).prop_map(|(k, d)| (1u64 << k).wrapping_add_signed(d)),
        (1u32..63, -3i64..=3).prop_map(|(k, d)| (3u64 << (k - 1)).wrapping_add_signed(d)),
        Just(0u64),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        (0u64..4096).prop_map(|d| u64::MAX - d),
    ]
}

/// A value set of one of the shapes the simulator (and worse) produces.
fn value_set() -> impl Strategy<Value = Vec<u64>> {
    prop_oneof![
        prop::collection::vec(0u64..5000, 0..400),
        prop::collection::vec(0u64..1_000_000_000_000, 0..400),
        prop::collection::vec(any::<u64>(), 0..200),
        prop::collection::vec(Just(0u64), 0..50),
        prop::collection::vec(any_magnitude(), 0..600),
        prop::collection::vec(edge_value(), 0..300),
        // Latency-like: a log-normal-ish spread around ~100 ms with repeats.
        prop::collection::vec((1_000_000u64..400_000_000, 1u32..4), 0..300).prop_map(|v| v
            .into_iter()
            .map(|(x, p)| x.pow(p) / 10u64.pow(8 * (p - 1)))
            .collect()),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 192,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn same_as_hdrhistogram(values in value_set(), random_q in prop::collection::vec(0.0f64..=1.0, 0..16)) {
        check_same(&ours(&values), &reference(&values), &random_q)?;
    }

    #[test]
    fn merge_same_as_hdrhistogram(
        a in value_set(),
        b in value_set(),
        random_q in prop::collection::vec(0.0f64..=1.0, 0..8),
    ) {
        let (mut h, mut r) = (ours(&a), reference(&a));
        h.add(&ours(&b));
        r.add(reference(&b)).expect("auto-resizing histograms merge");
        check_same(&h, &r, &random_q)?;
        // Merging into an empty histogram copies; merging twice doubles.
        let mut e = Hist3::new();
        e.add(&h);
        e.add(&Hist3::new());
        check_same(&e, &r, &random_q)?;
        e.add(&h);
        r.add(r.clone()).expect("merge");
        check_same(&e, &r, &random_q)?;
        // Recording the concatenation gives the merged histogram too.
        let both: Vec<u64> = a.iter().chain(&b).copied().collect();
        let whole = ours(&both);
        let mut merged = ours(&a);
        merged.add(&ours(&b));
        prop_assert_eq!(whole.len(), merged.len());
        prop_assert_eq!(whole.recorded().collect::<Vec<_>>(), merged.recorded().collect::<Vec<_>>());
    }

    #[test]
    fn bins_same_as_hdrhistogram(v in prop_oneof![any::<u64>(), any_magnitude(), edge_value()]) {
        let r = reference(&[v]);
        prop_assert_eq!(Hist3::highest_equivalent(v), r.highest_equivalent(v));
        prop_assert_eq!(Hist3::lowest_equivalent(v), r.lowest_equivalent(v));
        let mut h = Hist3::new();
        h.record(v);
        prop_assert_eq!(h.count_at(v), 1);
        prop_assert_eq!(h.count_at(r.lowest_equivalent(v)), 1);
        prop_assert_eq!(h.count_at(r.highest_equivalent(v)), 1);
        // The value just past the bin is in another bin (the last bin
        // reports u64::MAX - 1 as its top, but holds u64::MAX too).
        let top = r.highest_equivalent(v);
        if top < u64::MAX - 1 {
            prop_assert_eq!(h.count_at(top + 1), 0);
        } else {
            prop_assert_eq!(h.count_at(u64::MAX), 1);
        }
    }

    #[test]
    fn latency_hist_percentiles_same_as_before(
        values in value_set(),
        misses in 0u64..50,
        lower_bounds in 0u64..50,
        p in 0.0f64..=100.0,
    ) {
        let mut l = LatencyHist::default();
        for &v in &values {
            l.record(v);
        }
        let r = reference(&values);
        for p in [p, 0.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
            let want = (!values.is_empty()).then(|| r.value_at_quantile(p / 100.0) as f64);
            prop_assert_eq!(l.percentile_ns(p), want);
            // The misses form, spelled out over the reference histogram.
            let n_all = values.len() as u64 + misses;
            let want = (n_all > 0).then(|| {
                let count = values.len() as u64;
                let lb = lower_bounds.min(count);
                let rank = ((p / 100.0 * n_all as f64).ceil() as u64).clamp(1, n_all);
                if rank > count - lb {
                    f64::INFINITY
                } else {
                    r.value_at_quantile(((rank + lb) as f64 - 0.5) / count as f64) as f64
                }
            });
            prop_assert_eq!(l.percentile_with_misses_ns(p, misses, lower_bounds), want);
        }
        for &v in values.iter().take(20) {
            prop_assert_eq!(l.reported_ns(v), r.highest_equivalent(v));
        }
    }
}

/// Every bin start of the flat index maps back to its bin and reports the
/// reference's top value, across all 54 buckets.
#[test]
fn every_bin_edge_matches() {
    let r = Histogram::<u64>::new(3).expect("3 digits");
    let mut starts = vec![];
    for b in 0..54u32 {
        let (lo, hi) = if b == 0 {
            (0u64, 2048u64)
        } else {
            (1024, 2048)
        };
        for sub in lo..hi {
            starts.push(sub << b);
        }
    }
    let mut h = Hist3::new();
    for (i, &s) in starts.iter().enumerate() {
        assert_eq!(Hist3::lowest_equivalent(s), s, "bin {i}");
        assert_eq!(
            Hist3::highest_equivalent(s),
            r.highest_equivalent(s),
            "bin {i}"
        );
        if s > 0 {
            assert_eq!(
                Hist3::highest_equivalent(s - 1),
                r.highest_equivalent(s - 1)
            );
            assert_eq!(Hist3::lowest_equivalent(s - 1), r.lowest_equivalent(s - 1));
        }
        h.record(s);
    }
    assert_eq!(starts.len(), 56_320);
    let full = reference(&starts);
    check_same(&h, &full, &[]).expect("all bins");
    // Every bin holds exactly one value: the (i + 0.5)/n quantile is bin i.
    for (i, &s) in starts.iter().enumerate().step_by(97) {
        let q = (i as f64 + 0.5) / starts.len() as f64;
        assert_eq!(h.value_at_quantile(q), r.highest_equivalent(s), "bin {i}");
    }
}

/// The empty histogram reports 0 for every quantile, like the reference.
#[test]
fn empty_is_zero() {
    let h = Hist3::new();
    let r = Histogram::<u64>::new(3).expect("3 digits");
    check_same(&h, &r, &[0.3]).expect("empty");
    assert_eq!(h.value_at_quantile(0.5), 0);
}
