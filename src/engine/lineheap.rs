//! A binary min-heap of `u128` keys laid out for the cache: keys are stored
//! from index 1 in 64-byte-aligned lines, so the two children of node `i`
//! (`2i`, `2i + 1`) share half a line and its four grandchildren
//! (`4i ..= 4i + 3`) fill exactly one. A pop's walk down prefetches the
//! level two below the pair it compares (two lines, whichever child it
//! takes), so at fleet scale, where a heap's lower levels have left the
//! cache between two pops, its misses overlap rather than follow one
//! another. Both the wake-up heap and an instance's finish heap hold
//! distinct keys, so they pop in the same order as any other min-heap.

use super::server::prefetch;

/// Four keys in one aligned cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
// Read and written only through the buffer's pointer (see `LineHeap::get`).
#[allow(dead_code)]
struct Line([u128; 4]);

const _: () = assert!(std::mem::size_of::<Line>() == 64);

/// A cold heap's pop prefetches its path from this many keys (8 lines, 5
/// levels): a smaller heap stays in the cache between pops even at fleet
/// scale.
const PREFETCH_MIN_LEN: usize = 32;

/// Binary min-heap of `u128` keys (see the module documentation).
#[derive(Debug, Default, Clone)]
pub(super) struct LineHeap {
    lines: Vec<Line>,
    /// Keys, at indices `1..=len` (`len < 4 · lines.len()`).
    len: usize,
    /// The heap's lines may leave the cache between two pops (a fleet too
    /// large for the cache): a pop prefetches its path. Otherwise the
    /// prefetches would only cost instructions.
    cold: bool,
}

impl LineHeap {
    #[inline(always)]
    fn base(&self) -> *const u128 {
        self.lines.as_ptr() as *const u128
    }

    #[inline(always)]
    fn get(&self, i: usize) -> u128 {
        debug_assert!(i < 4 * self.lines.len());
        // SAFETY: `lines` is `lines.len()` contiguous `Line`s, each four
        // `u128` with no padding (size 64 = 4 · 16), so the buffer holds
        // `4 · lines.len()` initialised `u128`. Every index passed here is
        // at most `len` (or `len` just after `push` raised it and grew
        // `lines`), and `len < 4 · lines.len()` always holds.
        unsafe { *self.base().add(i) }
    }

    #[inline(always)]
    fn set(&mut self, i: usize, k: u128) {
        debug_assert!(i < 4 * self.lines.len());
        // SAFETY: as in `get`, through the unique borrow of `lines`.
        unsafe { *(self.lines.as_mut_ptr() as *mut u128).add(i) = k }
    }

    /// Keys held.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The least key.
    #[inline]
    pub(super) fn peek(&self) -> Option<u128> {
        (self.len > 0).then(|| self.get(1))
    }

    /// The key after [`LineHeap::peek`]'s (the lesser of the root's children).
    #[inline]
    pub(super) fn peek_second(&self) -> Option<u128> {
        match self.len {
            0 | 1 => None,
            2 => Some(self.get(2)),
            _ => Some(self.get(2).min(self.get(3))),
        }
    }

    /// Keys in storage order (not sorted).
    pub(super) fn keys(&self) -> impl Iterator<Item = u128> + '_ {
        (1..=self.len).map(|i| self.get(i))
    }

    /// Start loading the first `n_lines` lines (the top `2 + log2(n_lines)`
    /// levels) into the cache: a hint, with no effect on the heap.
    #[inline(always)]
    pub(super) fn prefetch_top(&self, n_lines: usize) {
        let base = self.base();
        for k in 0..n_lines {
            prefetch(base.wrapping_add(4 * k));
        }
    }

    /// Whether a pop prefetches its path (see the `cold` field): a hint,
    /// with no effect on the heap's order.
    pub(super) fn set_cold(&mut self, cold: bool) {
        self.cold = cold;
    }

    /// Remove every key.
    pub(super) fn clear(&mut self) {
        self.len = 0;
    }

    /// Insert `key`.
    #[inline(always)]
    pub(super) fn push(&mut self, key: u128) {
        self.len += 1;
        if self.len >= 4 * self.lines.len() {
            self.lines.push(Line::default());
        }
        self.sift_up(self.len, key);
    }

    /// Put `key` at `hole` or above it: parents greater than `key` move
    /// down into the hole until one is not.
    #[inline]
    fn sift_up(&mut self, mut hole: usize, key: u128) {
        while hole > 1 {
            let parent = hole >> 1;
            let pk = self.get(parent);
            if key >= pk {
                break;
            }
            self.set(hole, pk);
            hole = parent;
        }
        self.set(hole, key);
    }

    /// Remove and return the least key.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<u128> {
        if self.len == 0 {
            return None;
        }
        let top = self.get(1);
        let last = self.get(self.len);
        self.len -= 1;
        let n = self.len;
        if n == 0 {
            return Some(top);
        }
        // Move the lesser child up until the hole is a leaf, then sift
        // `last` up from there (it came from the bottom: it rarely rises).
        let hole = if self.cold && n >= PREFETCH_MIN_LEN {
            self.hole_to_bottom::<true>(n)
        } else {
            self.hole_to_bottom::<false>(n)
        };
        self.sift_up(hole, last);
        Some(top)
    }

    /// Move the hole at the root down to a leaf of a heap of `n` keys,
    /// each step taking the lesser child up; returns the leaf. `PREFETCH`:
    /// also start loading the level two below each pair compared.
    #[inline(always)]
    fn hole_to_bottom<const PREFETCH: bool>(&mut self, n: usize) -> usize {
        let base = self.base();
        let mut hole = 1;
        let mut child = 2;
        while child < n {
            if PREFETCH {
                // The grandchildren of either child: lines `8·hole` and
                // `8·hole + 4`.
                prefetch(base.wrapping_add(8 * hole));
                prefetch(base.wrapping_add(8 * hole + 4));
            }
            child += (self.get(child + 1) < self.get(child)) as usize;
            let ck = self.get(child);
            self.set(hole, ck);
            hole = child;
            child = 2 * hole;
        }
        if child == n {
            let ck = self.get(child);
            self.set(hole, ck);
            hole = child;
        }
        hole
    }

    /// Keep only the keys `keep` accepts (called in storage order).
    pub(super) fn retain(&mut self, mut keep: impl FnMut(u128) -> bool) {
        let keys: Vec<u128> = self.keys().filter(|&k| keep(k)).collect();
        self.clear();
        for k in keys {
            self.push(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Pops any pushed keys in sorted order, through growing, shrinking to
    /// empty and growing again, with `retain` in between; a cold heap (one
    /// whose pops prefetch) halfway through.
    #[test]
    fn pops_in_sorted_order() {
        let mut rng = crate::rng::SimRng::seed_from_u64(9);
        let mut h = LineHeap::default();
        let mut reference = std::collections::BTreeSet::new();
        for round in 0..6 {
            for _ in 0..3000 {
                if rng.random_range(0..5) < 3 - round % 2 {
                    // Small ranges too, so that keys share their high words.
                    let k = match rng.random_range(0..2) {
                        0 => rng.random_range(0..u128::MAX),
                        _ => rng.random_range(0..64u128) << 64 | rng.random_range(0..8u128),
                    };
                    if reference.insert(k) {
                        h.push(k);
                    }
                } else {
                    assert_eq!(h.pop(), reference.pop_first());
                }
                assert_eq!(h.len(), reference.len());
                assert_eq!(h.peek(), reference.first().copied());
                assert_eq!(h.peek_second(), reference.iter().nth(1).copied());
            }
            h.set_cold(round >= 3);
            if round == 2 {
                h.retain(|k| k % 3 != 0);
                reference.retain(|k| k % 3 != 0);
            }
            if round % 2 == 1 {
                while let Some(k) = h.pop() {
                    assert_eq!(Some(k), reference.pop_first());
                }
                assert!(reference.is_empty() && h.len() == 0);
            }
        }
    }
}
