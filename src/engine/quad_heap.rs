//! A 4-ary min-heap of `u128` keys laid out so that the four children of
//! a node fill one 64-byte cache line. A pop walks `log4 n` lines instead
//! of a binary heap's `log2 n` levels (its upper levels share lines, its
//! lower ones do not), which matters when the heap has left the cache
//! between two of its uses (an instance's finish heap at large fleets),
//! and each level picks the least of four children without branching on
//! their order.
//!
//! It pops the same sequence of keys as any exact min-heap: the least key
//! each time (equal keys are indistinguishable), so replacing
//! `BinaryHeap<Reverse<u128>>` with it changes no result.

/// One cache line: four keys, the children of one node.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Line([u128; 4]);

/// Unused slots hold this key, so every sibling group is full.
const EMPTY: u128 = u128::MAX;

/// Slot offset: logical position `p` is stored at `p + 3`, so the root is
/// the last slot of line 0 and the children `4p+1 ..= 4p+4` of `p` are the
/// four slots of line `p + 1`.
const OFFSET: usize = 3;

/// A 4-ary min-heap of `u128` keys with cache-line sibling groups.
#[derive(Debug, Clone, Default)]
pub(crate) struct QuadHeap {
    lines: Vec<Line>,
    len: usize,
}

impl QuadHeap {
    #[inline(always)]
    fn get(&self, p: usize) -> u128 {
        let s = p + OFFSET;
        self.lines[s >> 2].0[s & 3]
    }

    #[inline(always)]
    fn set(&mut self, p: usize, k: u128) {
        let s = p + OFFSET;
        self.lines[s >> 2].0[s & 3] = k;
    }

    /// Keys held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// The least key.
    #[inline]
    pub fn peek(&self) -> Option<u128> {
        if self.len == 0 {
            None
        } else {
            Some(self.get(0))
        }
    }

    /// The least key after the root's (the least of its children): the
    /// key [`QuadHeap::peek`] gives after one pop.
    #[inline]
    pub fn second(&self) -> Option<u128> {
        if self.len < 2 {
            return None;
        }
        let g = &self.lines[1].0;
        // Vacant slots hold EMPTY and lose to any real key but an EMPTY one.
        Some(g[0].min(g[1]).min(g[2]).min(g[3]))
    }

    /// Insert `k`.
    #[inline]
    pub fn push(&mut self, k: u128) {
        let mut p = self.len;
        let need = (p + OFFSET) / 4 + 1;
        if self.lines.len() < need {
            self.lines.resize(need.max(2 * self.lines.len()), Line([EMPTY; 4]));
        }
        self.len += 1;
        while p > 0 {
            let parent = (p - 1) >> 2;
            let v = self.get(parent);
            if k < v {
                self.set(p, v);
                p = parent;
            } else {
                break;
            }
        }
        self.set(p, k);
    }

    /// Remove and return the least key.
    #[inline]
    pub fn pop(&mut self) -> Option<u128> {
        if self.len == 0 {
            return None;
        }
        let top = self.get(0);
        self.len -= 1;
        let n = self.len;
        let last = self.get(n);
        self.set(n, EMPTY);
        if n == 0 {
            return Some(top);
        }
        // Move the hole at the root down to a leaf along the least children
        // (vacant slots hold EMPTY, so each group compares as four keys),
        // then lift the former last key from there.
        let mut p = 0;
        loop {
            let c = 4 * p + 1;
            if c >= n {
                break;
            }
            let g = &self.lines[p + 1].0;
            let i01 = (g[1] < g[0]) as usize;
            let i23 = 2 + (g[3] < g[2]) as usize;
            let j = std::hint::select_unpredictable(g[i23] < g[i01], i23, i01);
            // A vacant slot wins only against keys equal to EMPTY; take the
            // first child then (same key).
            let best = if c + j < n { c + j } else { c };
            let v = self.get(best);
            self.set(p, v);
            p = best;
        }
        while p > 0 {
            let parent = (p - 1) >> 2;
            let v = self.get(parent);
            if last < v {
                self.set(p, v);
                p = parent;
            } else {
                break;
            }
        }
        self.set(p, last);
        Some(top)
    }

    /// Remove every key.
    pub fn clear(&mut self) {
        for l in &mut self.lines {
            *l = Line([EMPTY; 4]);
        }
        self.len = 0;
    }

    /// The keys, in storage order (the root first, then its children).
    pub fn iter(&self) -> impl Iterator<Item = u128> + '_ {
        (0..self.len).map(|p| self.get(p))
    }

    /// Keep only the keys `keep` accepts (the heap is rebuilt).
    pub fn retain(&mut self, mut keep: impl FnMut(u128) -> bool) {
        let keys: Vec<u128> = self.iter().filter(|&k| keep(k)).collect();
        self.clear();
        for k in keys {
            self.push(k);
        }
    }

    /// Start loading the first `max_lines` cache lines the heap uses (the
    /// levels a pop walks first) into the cache.
    #[inline(always)]
    pub fn prefetch(&self, max_lines: usize) {
        let used = (self.len + OFFSET).div_ceil(4);
        let p = self.lines.as_ptr();
        for l in 0..used.min(max_lines) {
            super::server::prefetch(p.wrapping_add(l));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    /// Pops exactly what a binary heap pops, duplicates and extremes included.
    #[test]
    fn pops_in_the_binary_heaps_order() {
        let mut rng = crate::rng::SimRng::seed_from_u64(11);
        let mut q = QuadHeap::default();
        let mut b: BinaryHeap<Reverse<u128>> = BinaryHeap::new();
        for round in 0..200_000u32 {
            if rng.random_range(0..5) < 2 {
                assert_eq!(q.pop(), b.pop().map(|Reverse(k)| k));
            } else {
                let k = match rng.random_range(0..20) {
                    0 => u128::MAX,
                    1 => 0,
                    2 => 7,
                    _ => ((rng.random_range(0..500u64) as u128) << 64) | rng.random::<u64>() as u128,
                };
                q.push(k);
                b.push(Reverse(k));
            }
            assert_eq!(q.peek(), b.peek().map(|&Reverse(k)| k));
            assert_eq!(q.len(), b.len());
            if round % 50_000 == 0 {
                q.retain(|k| k % 3 != 0);
                b.retain(|&Reverse(k)| k % 3 != 0);
            }
        }
        while let Some(k) = b.pop() {
            assert_eq!(q.pop(), Some(k.0));
        }
        assert!(q.len() == 0 && q.pop().is_none());
    }
}
