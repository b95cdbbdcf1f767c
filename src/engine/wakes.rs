//! The instance wake-up heap: a binary min-heap of `u128` keys
//! (`time << 64 | instance << 32 | epoch`) that clears its cancelled
//! entries lazily. Rescheduling an instance cancels its pending entry; a
//! cancelled entry is skipped when it reaches the top, and once cancelled
//! entries outnumber the pending ones the heap is rebuilt without them, so
//! it holds at most about two entries per busy instance (a 1,000-instance
//! fleet cut by arrivals used to carry five times as many, most of them
//! cancelled).

use super::lineheap::LineHeap;

/// `sched` flag: the instance has an entry pending in the heap.
const PENDING: u64 = 1 << 32;

/// Rebuild only from this many cancelled entries (small heaps are cheap).
const MIN_PURGE: usize = 64;

#[inline(always)]
fn instance_of(key: u128) -> usize {
    (key >> 32) as u32 as usize
}

/// Binary min-heap of wake-up keys with lazily cleared cancelled entries.
#[derive(Debug, Default)]
pub(super) struct WakeHeap {
    heap: LineHeap,
    /// Per instance: the epoch of its latest key, `| PENDING` while that
    /// key is in the heap.
    sched: Vec<u64>,
    /// Entries in the heap that a later key of the same instance cancelled.
    cancelled: usize,
}

impl WakeHeap {
    /// Whether the heap's pops prefetch their path (a fleet whose state
    /// leaves the cache between two pops); no effect on the order.
    pub(super) fn set_cold(&mut self, cold: bool) {
        self.heap.set_cold(cold);
    }

    /// The earliest key (possibly a cancelled one).
    #[inline]
    pub(super) fn peek(&self) -> Option<u128> {
        self.heap.peek()
    }

    /// Instances of the earliest key and of the one after it (either may
    /// be a cancelled entry), for cache prefetching.
    pub(super) fn next_instances(&self) -> impl Iterator<Item = u32> + '_ {
        [self.heap.peek(), self.heap.peek_second()]
            .into_iter()
            .flatten()
            .map(|k| instance_of(k) as u32)
    }

    /// Entries, cancelled ones included.
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Insert `key`, cancelling the instance's pending key if it has one.
    /// Returns true when cancelled entries outnumber the others: time to
    /// [`WakeHeap::purge`].
    #[inline(always)]
    pub(super) fn push(&mut self, key: u128) -> bool {
        let i = instance_of(key);
        if i >= self.sched.len() {
            self.sched.resize(i + 1, 0);
        }
        let s = &mut self.sched[i];
        self.cancelled += (*s & PENDING != 0) as usize;
        *s = key as u32 as u64 | PENDING;
        self.heap.push(key);
        self.cancelled > MIN_PURGE && 2 * self.cancelled > self.heap.len()
    }

    /// Remove and return the earliest key (possibly a cancelled one).
    #[inline]
    pub(super) fn pop(&mut self) -> Option<u128> {
        let key = self.heap.pop()?;
        let s = &mut self.sched[instance_of(key)];
        if *s == key as u32 as u64 | PENDING {
            *s &= !PENDING;
        } else {
            self.cancelled -= 1;
        }
        Some(key)
    }

    /// Rebuild the heap without its cancelled entries, each one removed
    /// (except those `keep` asks for) passed to `removed`.
    #[cold]
    #[inline(never)]
    pub(super) fn purge(&mut self, keep: impl Fn(u128) -> bool, mut removed: impl FnMut(u128)) {
        let sched = &self.sched;
        let mut cancelled = 0;
        self.heap.retain(|k| {
            if sched[instance_of(k)] == k as u32 as u64 | PENDING {
                return true;
            }
            if keep(k) {
                cancelled += 1;
                return true;
            }
            removed(k);
            false
        });
        self.cancelled = cancelled;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use std::collections::BTreeMap;

    /// Pops the latest key of every instance in key order (cancelled ones
    /// dropped or popped in order), and stays small.
    #[test]
    fn pending_keys_pop_in_order_and_cancelled_ones_are_cleared() {
        let mut rng = crate::rng::SimRng::seed_from_u64(5);
        let mut h = WakeHeap::default();
        let mut reference: BTreeMap<u32, u128> = BTreeMap::new();
        let mut epochs = [0u32; 300];
        let mut removed = 0;
        for _ in 0..50_000 {
            if rng.random_range(0..3) == 0 {
                // Pop until a pending key (cancelled ones are skipped).
                loop {
                    let got = h.pop();
                    match got {
                        Some(k) if epochs[instance_of(k)] != k as u32 => continue,
                        _ => {}
                    }
                    let want = reference.values().min().copied();
                    assert_eq!(got, want);
                    if let Some(k) = want {
                        reference.remove(&((k >> 32) as u32));
                    }
                    break;
                }
            } else {
                let inst = rng.random_range(0..300u32);
                let t = rng.random_range(0..1000u64);
                epochs[inst as usize] += 1;
                let key =
                    ((t as u128) << 64) | ((inst as u128) << 32) | epochs[inst as usize] as u128;
                reference.insert(inst, key);
                if h.push(key) {
                    h.purge(|_| false, |_| removed += 1);
                }
            }
            assert!(h.len() <= 2 * reference.len() + MIN_PURGE + 1);
        }
        assert!(removed > 1000);
    }
}
