//! Latency distributions: a log-linear histogram (3 significant digits, ns)
//! for percentiles plus exact sums for means and exact counts of positive
//! values.
//!
//! [`Hist3`] buckets values exactly as `hdrhistogram::Histogram::<u64>::new(3)`
//! (lowest discernible value 1, auto-resizing) does, so every percentile is
//! the same number, but it allocates its counts lazily in small chunks: a
//! planner runs thousands of short simulations, each cloning, filling and
//! merging a few dozen histograms, and the general histogram's dense,
//! grow-by-realloc counts array (copied whole on clone, scanned whole for a
//! quantile) was about a fifth of a planner's CPU time.
//!
//! The bucketing (the arithmetic of hdrhistogram 7.6's `Histogram`, learnt
//! from its source and reimplemented here):
//! 3 significant digits need unit resolution up to 2·10³, so a bucket has
//! 2¹¹ = 2048 sub-buckets; values below 2048 each get their own bin, and a
//! value `v ≥ 2048` in bucket `b = ⌊log2 v⌋ − 10` falls in the bin
//! `[(v >> b) << b, ((v >> b) + 1) << b)` of width `2^b`. Bin `i` of the
//! flat index is `b·1024 + (v >> b)`, which is `v` itself in bucket 0; the
//! last bin (`u64::MAX`) is index 56 319, so every `u64` has a bin and no
//! value needs clamping.

use serde::{Deserialize, Serialize};

/// log2 of the half sub-bucket count (1024 = 2^10).
const HALF_MAG: u32 = 10;
/// Masks the values that fit bucket 0 (< 2048, one bin per value).
const BUCKET0_MASK: u64 = (1 << (HALF_MAG + 1)) - 1;
/// Leading zeros of a bucket-0 value (`BUCKET0_MASK`): 64 − 11.
const LZ_BASE: u32 = 64 - (HALF_MAG + 1);
/// Bins in the flat index: 54 buckets of 1024 upper-half bins plus the
/// lower half of bucket 0.
const N_BINS: usize = (LZ_BASE as usize + 2) << HALF_MAG;
const _: () = assert!(N_BINS.is_multiple_of(CHUNK), "chunks tile the bins");
/// log2 of the bins per lazily allocated chunk.
const CHUNK_MAG: u32 = 8;
/// Bins per lazily allocated chunk.
const CHUNK: usize = 1 << CHUNK_MAG;

/// Bucket (power-of-two range) of a value: 0 for values < 2048.
#[inline]
fn bucket_of(v: u64) -> u32 {
    LZ_BASE - (v | BUCKET0_MASK).leading_zeros()
}

/// Flat bin index of a value, in `0..N_BINS`.
#[inline]
fn bin_of(v: u64) -> usize {
    let b = bucket_of(v);
    ((b as usize) << HALF_MAG) + (v >> b) as usize
}

/// Lowest value of a bin (the inverse of [`bin_of`] on bin starts).
#[inline]
fn bin_start(i: usize) -> u64 {
    if i < 2 << HALF_MAG {
        i as u64
    } else {
        let b = (i >> HALF_MAG) as u32 - 1;
        let sub = (i & ((1 << HALF_MAG) - 1)) as u64 + (1 << HALF_MAG);
        sub << b
    }
}

/// Counts of `CHUNK` consecutive bins, allocated on the first value in them.
#[derive(Debug, Clone, Default)]
struct Chunk {
    /// Sum of `counts` (0 when unallocated).
    total: u64,
    /// Per-bin counts.
    counts: Option<Box<[u64; CHUNK]>>,
}

/// A histogram with hdrhistogram's bucketing for 3 significant digits and
/// lowest discernible value 1 (`Histogram::<u64>::new(3)`): the same bins,
/// [`Hist3::value_at_quantile`], [`Hist3::highest_equivalent`], counts and
/// merging, for any `u64` value. Counts saturate at `u64::MAX`; results
/// match hdrhistogram's while the total count stays below that.
///
/// Memory is a vector of chunk slots up to the highest chunk recorded, each
/// chunk of 256 bins allocated on first use, so an empty histogram clones
/// for free and a merge or a quantile touches only non-empty chunks.
#[derive(Debug, Clone, Default)]
pub struct Hist3 {
    /// Chunk `c` holds bins `c·CHUNK .. (c+1)·CHUNK`.
    chunks: Vec<Chunk>,
    /// Values recorded (saturating).
    total: u64,
}

impl Hist3 {
    /// An empty histogram (allocates nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// The chunk slot `c`, growing the slot vector to reach it.
    #[inline]
    fn chunk_mut(&mut self, c: usize) -> &mut Chunk {
        if c >= self.chunks.len() {
            self.grow(c + 1);
        }
        &mut self.chunks[c]
    }

    /// Extend the slot vector to `len` empty slots.
    #[cold]
    fn grow(&mut self, len: usize) {
        self.chunks.resize_with(len, Chunk::default);
    }

    /// Record one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        let i = bin_of(v);
        let ch = self.chunk_mut(i >> CHUNK_MAG);
        let counts = ch.counts.get_or_insert_with(|| Box::new([0; CHUNK]));
        let slot = &mut counts[i & (CHUNK - 1)];
        *slot = slot.saturating_add(1);
        ch.total = ch.total.saturating_add(1);
        self.total = self.total.saturating_add(1);
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Values recorded in `v`'s bin.
    pub fn count_at(&self, v: u64) -> u64 {
        let i = bin_of(v);
        self.chunks
            .get(i >> CHUNK_MAG)
            .and_then(|ch| ch.counts.as_ref())
            .map_or(0, |counts| counts[i & (CHUNK - 1)])
    }

    /// The lowest value of `v`'s bin.
    pub fn lowest_equivalent(v: u64) -> u64 {
        let b = bucket_of(v);
        (v >> b) << b
    }

    /// The highest value of `v`'s bin, computed as hdrhistogram does: bin
    /// start plus bin width (saturating) minus 1, except `u64::MAX` itself
    /// (so the last bin's other values report `u64::MAX - 1`).
    pub fn highest_equivalent(v: u64) -> u64 {
        if v == u64::MAX {
            return u64::MAX;
        }
        Self::lowest_equivalent(v).saturating_add(1 << bucket_of(v)) - 1
    }

    /// The value at quantile `q` (hdrhistogram's semantics): `q` above 1
    /// counts as 1; the target rank is `⌈q · len⌉`, at least 1; the result
    /// is the highest value of the first bin whose cumulative count reaches
    /// it (its lowest value when `q == 0`); 0 for an empty histogram.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        let q = if q > 1.0 { 1.0 } else { q };
        // `as` saturates: negative or NaN products give 0, raised to 1.
        let target = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (c, ch) in self.chunks.iter().enumerate() {
            let Some(counts) = &ch.counts else { continue };
            if seen.saturating_add(ch.total) < target {
                seen += ch.total;
                continue;
            }
            for (j, &n) in counts.iter().enumerate() {
                seen = seen.saturating_add(n);
                if seen >= target {
                    let start = bin_start((c << CHUNK_MAG) + j);
                    return if q == 0.0 {
                        start
                    } else {
                        Self::highest_equivalent(start)
                    };
                }
            }
        }
        0
    }

    /// Add every count of `other` into this histogram.
    pub fn add(&mut self, other: &Hist3) {
        if other.total == 0 {
            return;
        }
        if self.chunks.len() < other.chunks.len() {
            self.grow(other.chunks.len());
        }
        for (mine, theirs) in self.chunks.iter_mut().zip(&other.chunks) {
            let Some(src) = &theirs.counts else { continue };
            match &mut mine.counts {
                Some(dst) => {
                    for (d, s) in dst.iter_mut().zip(src.iter()) {
                        *d = d.saturating_add(*s);
                    }
                }
                None => mine.counts = Some(src.clone()),
            }
            mine.total = mine.total.saturating_add(theirs.total);
        }
        self.total = self.total.saturating_add(other.total);
    }

    /// Non-empty bins in value order: (highest value of the bin, count) —
    /// what hdrhistogram's `iter_recorded` reports as `value_iterated_to`
    /// and `count_at_value`.
    pub fn recorded(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.chunks
            .iter()
            .enumerate()
            .filter_map(|(c, ch)| ch.counts.as_ref().map(|counts| (c, counts)))
            .flat_map(|(c, counts)| {
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(move |(j, &n)| {
                        let start = bin_start((c << CHUNK_MAG) + j);
                        (Self::highest_equivalent(start), n)
                    })
            })
    }
}

/// One latency distribution in nanoseconds.
#[derive(Debug, Clone, Default)]
pub struct LatencyHist {
    hist: Hist3,
    sum_ns: u128,
    count: u64,
    positive: u64,
}

/// Mean and percentiles of a distribution, milliseconds (`null` when empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Mean, ms.
    pub mean: Option<f64>,
    /// Median, ms.
    pub p50: Option<f64>,
    /// 90th percentile, ms.
    pub p90: Option<f64>,
    /// 99th percentile, ms.
    pub p99: Option<f64>,
    /// 99.9th percentile, ms.
    pub p999: Option<f64>,
}

impl LatencyHist {
    /// Record one value, ns.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        // Every u64 has a bin: nothing to clamp.
        self.hist.record(ns);
        self.sum_ns += ns as u128;
        self.count += 1;
        self.positive += (ns > 0) as u64;
    }

    /// The value percentiles report for a recorded `ns`: the largest value
    /// of its histogram bucket (what [`LatencyHist::percentile_ns`] returns
    /// when the percentile's rank falls on it).
    pub fn reported_ns(&self, ns: u64) -> u64 {
        Hist3::highest_equivalent(ns)
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Fraction of values that are > 0 (e.g. P(wait > 0)).
    pub fn fraction_positive(&self) -> Option<f64> {
        (self.count > 0).then(|| self.positive as f64 / self.count as f64)
    }

    /// Exact mean, ns.
    pub fn mean_ns(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ns as f64 / self.count as f64)
    }

    /// Percentile (0–100), ns, within the histogram's 3-digit precision.
    pub fn percentile_ns(&self, p: f64) -> Option<f64> {
        (self.count > 0).then(|| self.hist.value_at_quantile(p / 100.0) as f64)
    }

    /// The `p`-th percentile (0–100), ns, of a population of `count() + misses`
    /// values: the recorded ones plus `misses` of infinite latency (e.g.
    /// rejected requests). `lower_bounds` of the recorded values are only
    /// lower bounds (requests unfinished at the end of the run) and count as
    /// infinite too; the result then is an upper bound of the recorded rank
    /// (never optimistic). `f64::INFINITY` when the percentile's rank falls
    /// among the infinite values; `None` for an empty population.
    pub fn percentile_with_misses_ns(&self, p: f64, misses: u64, lower_bounds: u64) -> Option<f64> {
        let n_all = self.count + misses;
        if n_all == 0 {
            return None;
        }
        let lower_bounds = lower_bounds.min(self.count);
        // Nearest rank (1-based) over the whole population.
        let rank = ((p / 100.0 * n_all as f64).ceil() as u64).clamp(1, n_all);
        if rank > self.count - lower_bounds {
            return Some(f64::INFINITY);
        }
        // The rank-th finite value is at most the (rank + lower_bounds)-th
        // recorded value; the half-step keeps the quantile's ceil on that rank.
        let held = rank + lower_bounds;
        let q = (held as f64 - 0.5) / self.count as f64;
        Some(self.hist.value_at_quantile(q) as f64)
    }

    /// Add another distribution into this one.
    pub fn merge(&mut self, other: &LatencyHist) {
        self.hist.add(&other.hist);
        self.sum_ns += other.sum_ns;
        self.count += other.count;
        self.positive += other.positive;
    }

    /// Summary in milliseconds.
    pub fn summary_ms(&self) -> LatencySummary {
        let ms = |v: Option<f64>| v.map(|x| x / 1e6);
        LatencySummary {
            mean: ms(self.mean_ns()),
            p50: ms(self.percentile_ns(50.0)),
            p90: ms(self.percentile_ns(90.0)),
            p99: ms(self.percentile_ns(99.0)),
            p999: ms(self.percentile_ns(99.9)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_exact_mean() {
        let mut h = LatencyHist::default();
        for v in 1..=1000u64 {
            h.record(v * 1_000_000);
        }
        h.record(0);
        let s = h.summary_ms();
        assert!((s.mean.expect("mean") - 500_500.0 / 1001.0).abs() < 1e-9);
        assert!((s.p50.expect("p50") - 500.0).abs() <= 0.5);
        assert!((s.p99.expect("p99") - 990.0).abs() <= 1.0);
        assert!((h.fraction_positive().expect("n") - 1000.0 / 1001.0).abs() < 1e-12);
        let mut m = LatencyHist::default();
        m.merge(&h);
        assert_eq!(m.count(), 1001);
        assert_eq!(LatencyHist::default().summary_ms().p99, None);
    }

    #[test]
    fn percentile_over_all_arrivals_counts_misses_as_infinite() {
        let mut h = LatencyHist::default();
        for v in 1..=1000u64 {
            h.record(v * 1_000_000);
        }
        // No misses: the ordinary nearest-rank P99 (990 ms).
        let p = h.percentile_with_misses_ns(99.0, 0, 0).expect("values");
        assert!((p / 1e6 - 990.0).abs() <= 1.0, "{p}");
        // 5 misses in 1005: rank 995 is the 995th value.
        let p = h.percentile_with_misses_ns(99.0, 5, 0).expect("values");
        assert!((p / 1e6 - 995.0).abs() <= 1.0, "{p}");
        // 30% missed: P99 is infinite, P50 is not.
        assert_eq!(
            h.percentile_with_misses_ns(99.0, 429, 0),
            Some(f64::INFINITY)
        );
        assert!(
            h.percentile_with_misses_ns(50.0, 429, 0)
                .expect("v")
                .is_finite()
        );
        // Lower bounds count as misses: 20 unfinished of 1000 ⇒ P99 infinite.
        assert_eq!(
            h.percentile_with_misses_ns(99.0, 0, 20),
            Some(f64::INFINITY)
        );
        // Everything rejected, nothing recorded.
        let e = LatencyHist::default();
        assert_eq!(e.percentile_with_misses_ns(99.0, 3, 0), Some(f64::INFINITY));
        assert_eq!(e.percentile_with_misses_ns(99.0, 0, 0), None);
    }
}
