//! The global event queue: a binary min-heap ordered by
//! `(time_ns, rank, key, kind)`. Same-time events pop in rank order
//! (instance wake-ups before arrivals before delayed dispatches), then by a
//! deterministic key (instance id or arrival sequence), so both engines see
//! identical orders. Cancelled wake-ups are skipped by an epoch check.
//!
//! Instance wake-ups, nearly all the events, have a heap of their own whose
//! entries are one `u128` (time, instance, epoch): 16 bytes and a single
//! integer comparison. Other events are packed into three `u64` words
//! (time; rank, key and variant; the variant's fields), compared as
//! integers with the derived order. A wake-up has the lowest rank, so it
//! precedes any other event at the same time: the next event is the earlier
//! of the two heap tops, the wake-up on a tie. The next open-workload
//! arrival (there is at most one pending) waits beside the heaps rather than
//! in them, so a request's arrival costs no heap push or pop.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What happens at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    /// A serving instance reaches the end of its current step or run.
    Wake {
        /// Global instance index.
        instance: u32,
        /// The instance's epoch when scheduled; stale if it changed since.
        epoch: u32,
    },
    /// A scheduled control change (a pool's cap) takes effect.
    Control {
        /// Index into the configuration's controls.
        index: u32,
    },
    /// Record every instance's integrated statistics (window boundaries).
    Snapshot {
        /// Index of the snapshot.
        index: u32,
    },
    /// The next request of the open workload arrives.
    Arrival,
    /// A closed-loop user issues its next request.
    UserArrival {
        /// User index.
        user: u32,
    },
    /// A routed (e.g. compressed) request reaches its pool after a delay.
    Delayed {
        /// Slab index of the request.
        req: u32,
    },
    /// A KV-transfer link finishes its earliest transfer (disaggregated fleets).
    LinkDone {
        /// Link index.
        link: u32,
        /// The link's epoch when scheduled; stale if it changed since.
        epoch: u32,
    },
    /// A transferred KV cache lands at its decode pool.
    Landed {
        /// Slab index of the request.
        req: u32,
    },
}

/// Bits of the packed order word below the key (the variant index).
const VARIANT_BITS: u32 = 3;
/// Keys must stay below this (rank takes the top 2 bits).
const KEY_LIMIT: u64 = 1 << (62 - VARIANT_BITS);

impl EventKind {
    fn rank(&self) -> u8 {
        match self {
            EventKind::Wake { .. } => 0,
            EventKind::Control { .. } | EventKind::Snapshot { .. } => 1,
            EventKind::Arrival | EventKind::UserArrival { .. } => 2,
            EventKind::LinkDone { .. } => 1,
            EventKind::Delayed { .. } | EventKind::Landed { .. } => 3,
        }
    }

    /// Variant index (the derived order's first criterion) and fields, as
    /// `(variant, fields)` where the fields compare like the derived order.
    #[inline]
    fn pack(self) -> (u64, u64) {
        let two = |a: u32, b: u32| ((a as u64) << 32) | b as u64;
        match self {
            EventKind::Wake { instance, epoch } => (0, two(instance, epoch)),
            EventKind::Control { index } => (1, index as u64),
            EventKind::Snapshot { index } => (2, index as u64),
            EventKind::Arrival => (3, 0),
            EventKind::UserArrival { user } => (4, user as u64),
            EventKind::Delayed { req } => (5, req as u64),
            EventKind::LinkDone { link, epoch } => (6, two(link, epoch)),
            EventKind::Landed { req } => (7, req as u64),
        }
    }

    #[inline]
    fn unpack(variant: u64, fields: u64) -> EventKind {
        let (hi, lo) = ((fields >> 32) as u32, fields as u32);
        match variant {
            0 => EventKind::Wake {
                instance: hi,
                epoch: lo,
            },
            1 => EventKind::Control { index: lo },
            2 => EventKind::Snapshot { index: lo },
            3 => EventKind::Arrival,
            4 => EventKind::UserArrival { user: lo },
            5 => EventKind::Delayed { req: lo },
            6 => EventKind::LinkDone {
                link: hi,
                epoch: lo,
            },
            _ => EventKind::Landed { req: lo },
        }
    }
}

/// A scheduled event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Event {
    /// Simulated time, ns.
    pub time_ns: u64,
    rank: u8,
    key: u64,
    /// What happens.
    pub kind: EventKind,
}

/// One heap entry: `(time, rank · key · variant, fields)`, ordered as
/// integers exactly as [`Event`] orders (time, rank, key, kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Packed(u64, u64, u64);

impl Packed {
    #[inline]
    fn of(time_ns: u64, key: u64, kind: EventKind) -> Packed {
        debug_assert!(key < KEY_LIMIT, "event key {key} out of range");
        let (variant, fields) = kind.pack();
        let ord = ((kind.rank() as u64) << 62) | (key << VARIANT_BITS) | variant;
        Packed(time_ns, ord, fields)
    }

    #[inline]
    fn event(self) -> Event {
        let Packed(time_ns, ord, fields) = self;
        Event {
            time_ns,
            rank: (ord >> 62) as u8,
            key: (ord & ((1 << 62) - 1)) >> VARIANT_BITS,
            kind: EventKind::unpack(ord & ((1 << VARIANT_BITS) - 1), fields),
        }
    }
}

/// Min-heap of events.
#[derive(Debug, Default)]
pub struct EventQueue {
    /// Instance wake-ups: `time << 64 | instance << 32 | epoch`.
    wakes: BinaryHeap<Reverse<u128>>,
    /// Every other event except the pending open arrival.
    heap: BinaryHeap<Reverse<Packed>>,
    /// The pending open-workload arrival, kept out of the heap.
    arrival: Option<Packed>,
    popped: u64,
}

impl EventQueue {
    /// Schedule `kind` at `time_ns`; `key` orders same-time, same-rank events.
    #[inline]
    pub fn push(&mut self, time_ns: u64, key: u64, kind: EventKind) {
        if let EventKind::Wake { instance, epoch } = kind {
            debug_assert_eq!(key, instance as u64, "a wake-up is keyed by its instance");
            let w = ((time_ns as u128) << 64) | ((instance as u128) << 32) | epoch as u128;
            self.wakes.push(Reverse(w));
            return;
        }
        let e = Packed::of(time_ns, key, kind);
        if kind == EventKind::Arrival && self.arrival.is_none() {
            self.arrival = Some(e);
        } else {
            self.heap.push(Reverse(e));
        }
    }

    /// The earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<Event> {
        if let Some(&Reverse(w)) = self.wakes.peek() {
            let t = (w >> 64) as u64;
            let other = match (self.arrival, self.heap.peek()) {
                (Some(a), Some(Reverse(h))) => Some(a.0.min(h.0)),
                (Some(a), None) => Some(a.0),
                (None, Some(Reverse(h))) => Some(h.0),
                (None, None) => None,
            };
            if other.is_none_or(|o| t <= o) {
                self.wakes.pop();
                self.popped += 1;
                let instance = (w >> 32) as u32;
                return Some(Event {
                    time_ns: t,
                    rank: 0,
                    key: instance as u64,
                    kind: EventKind::Wake {
                        instance,
                        epoch: w as u32,
                    },
                });
            }
        }
        let e = match (self.arrival, self.heap.peek()) {
            (Some(a), Some(Reverse(h))) if *h < a => self.heap.pop().map(|Reverse(e)| e),
            (Some(a), _) => {
                self.arrival = None;
                Some(a)
            }
            (None, _) => self.heap.pop().map(|Reverse(e)| e),
        };
        e.map(|e| {
            self.popped += 1;
            e.event()
        })
    }

    /// Instances of the next few pending wake-ups (the earliest first, then
    /// the candidates for the one after it), for cache prefetching.
    pub fn next_wakes(&self) -> impl Iterator<Item = u32> + '_ {
        self.wakes
            .as_slice()
            .iter()
            .take(3)
            .map(|&Reverse(w)| (w >> 32) as u32)
    }

    /// Events popped so far.
    pub fn popped(&self) -> u64 {
        self.popped
    }

    /// Events still queued.
    pub fn len(&self) -> usize {
        self.wakes.len() + self.heap.len() + self.arrival.is_some() as usize
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// The packed order is the derived order of `(time, rank, key, kind)`.
    #[test]
    fn packed_order_matches_the_event_order() {
        let mut rng = crate::rng::SimRng::seed_from_u64(3);
        let mut q = EventQueue::default();
        let mut reference = Vec::new();
        for _ in 0..5000 {
            let t = rng.random_range(0..20u64);
            let key = rng.random_range(0..6u64);
            let a = rng.random_range(0..3u32);
            let b = rng.random_range(0..3u32);
            let kind = match rng.random_range(0..8) {
                0 => EventKind::Wake {
                    instance: a,
                    epoch: b,
                },
                1 => EventKind::Control { index: a },
                2 => EventKind::Snapshot { index: a },
                3 => EventKind::Arrival,
                4 => EventKind::UserArrival { user: a },
                5 => EventKind::Delayed { req: a },
                6 => EventKind::LinkDone { link: a, epoch: b },
                _ => EventKind::Landed { req: a },
            };
            // A wake-up is keyed by its instance.
            let key = match kind {
                EventKind::Wake { instance, .. } => instance as u64,
                _ => key,
            };
            q.push(t, key, kind);
            reference.push(Event {
                time_ns: t,
                rank: kind.rank(),
                key,
                kind,
            });
            // Interleave pops with pushes.
            if rng.random_range(0..3) == 0 {
                reference.sort();
                let want = reference.remove(0);
                assert_eq!(q.pop(), Some(want));
            }
        }
        reference.sort();
        for want in reference {
            assert_eq!(q.pop(), Some(want));
        }
        assert!(q.pop().is_none());
        assert_eq!(q.len(), 0);
    }
}
