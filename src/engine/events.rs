//! The global event queue: a binary min-heap ordered by
//! `(time_ns, rank, key, kind)`. Same-time events pop in rank order
//! (instance wake-ups before arrivals before delayed dispatches), then by a
//! deterministic key (instance id or arrival sequence), so both engines see
//! identical orders. Cancelled wake-ups are skipped by an epoch check.
//!
//! Instance wake-ups, nearly all the events, have a heap of their own whose
//! entries are one `u128` (time, instance, epoch): 16 bytes and a single
//! integer comparison. The driver schedules them with
//! [`EventQueue::set_wake`], which clears cancelled entries lazily: the heap
//! holds at most about two entries per busy instance (see
//! [`EventQueue::set_wake`] for how the removed entries' only visible
//! effect, the clock, is kept). Other events are packed into three `u64` words
//! (time; rank, key and variant; the variant's fields), compared as
//! integers with the derived order. A wake-up has the lowest rank, so it
//! precedes any other event at the same time: the next event is the earlier
//! of the two heap tops, the wake-up on a tie. The next open-workload
//! arrival (there is at most one pending) waits beside the heaps rather than
//! in them, so a request's arrival costs no heap push or pop.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::wakes::WakeHeap;

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
    /// Instance wake-ups scheduled by [`EventQueue::set_wake`]:
    /// `time << 64 | instance << 32 | epoch`.
    wakes: WakeHeap,
    /// Every other event (wake-ups pushed with [`EventQueue::push`]
    /// included) except the pending open arrival.
    heap: BinaryHeap<Reverse<Packed>>,
    /// The pending open-workload arrival, kept out of the heap.
    arrival: Option<Packed>,
    popped: u64,
    /// Time of the last popped event, ns.
    last_ns: u64,
    /// Cancelled wake-up keys removed from the heap whose time may be later
    /// than the last popped event (older ones are dropped now and then).
    replaced: Vec<u128>,
    /// Length of `replaced` that triggers dropping the passed ones.
    replaced_cap: usize,
}

/// Wake-up key of `(time, instance, epoch)`.
#[inline]
fn wake_key(time_ns: u64, instance: u32, epoch: u32) -> u128 {
    ((time_ns as u128) << 64) | ((instance as u128) << 32) | epoch as u128
}

/// The wake-up event of a key.
#[inline]
fn wake_event(w: u128) -> Event {
    let instance = (w >> 32) as u32;
    Event {
        time_ns: (w >> 64) as u64,
        rank: 0,
        key: instance as u64,
        kind: EventKind::Wake {
            instance,
            epoch: w as u32,
        },
    }
}

impl EventQueue {
    /// Whether the wake-up heap's pops prefetch their path: for fleets
    /// whose state leaves the cache between two pops. A hint, with no
    /// effect on the events or their order.
    pub fn set_fleet_scale(&mut self, on: bool) {
        self.wakes.set_cold(on);
    }

    /// Schedule `kind` at `time_ns`; `key` orders same-time, same-rank events.
    /// Every pushed event is popped, wake-ups included (cancelled ones are
    /// for the caller to skip); see [`EventQueue::set_wake`] for the
    /// driver's wake-ups.
    #[inline]
    pub fn push(&mut self, time_ns: u64, key: u64, kind: EventKind) {
        if let EventKind::Wake { instance, .. } = kind {
            debug_assert_eq!(key, instance as u64, "a wake-up is keyed by its instance");
        }
        let e = Packed::of(time_ns, key, kind);
        if kind == EventKind::Arrival && self.arrival.is_none() {
            self.arrival = Some(e);
        } else {
            self.heap.push(Reverse(e));
        }
    }

    /// Schedule `instance`'s wake-up at `time_ns` (epoch `epoch`), replacing
    /// its pending one, which the caller must have cancelled (bumped the
    /// instance's epoch past it). Cancelled entries are cleared lazily: one
    /// that reaches the top is popped for the caller to skip, as with
    /// [`EventQueue::push`], but when they outnumber the pending ones they
    /// are removed. A removed entry would have been popped and skipped, and
    /// the only trace of that is the clock of a caller that reads it after
    /// the last event: the queue therefore returns one such entry — the
    /// latest, as a stale wake-up — once everything else is popped, and
    /// [`EventQueue::stale_until`] gives the latest one between two times.
    #[inline(always)]
    pub fn set_wake(&mut self, time_ns: u64, instance: u32, epoch: u32) {
        if self.wakes.push(wake_key(time_ns, instance, epoch)) {
            self.purge_wakes();
        }
    }

    /// Remove the cancelled wake-ups, remembering those later than the
    /// last popped event (see [`EventQueue::set_wake`]).
    #[cold]
    #[inline(never)]
    fn purge_wakes(&mut self) {
        let last = self.last_ns;
        let replaced = &mut self.replaced;
        self.wakes.purge(
            // Past the simulated-time limit the caller fails at the first
            // event it pops there, skipped or not: keep those in order.
            |k| (k >> 64) as u64 > crate::workload::MAX_SIM_TIME_NS,
            |k| {
                if (k >> 64) as u64 > last {
                    replaced.push(k);
                }
            },
        );
        if self.replaced.len() > self.replaced_cap {
            self.replaced.retain(|&k| (k >> 64) as u64 > last);
            self.replaced_cap = (2 * self.replaced.len()).max(1024);
        }
    }

    /// The latest time in `(after_ns, until_ns]` of a wake-up replaced by
    /// [`EventQueue::set_wake`]: one that would have been popped (and
    /// skipped) after an event at `after_ns` and before one at `until_ns`
    /// of a later rank than wake-ups; `None` if there is none. `after_ns`
    /// must not be earlier than the event popped before the last one.
    pub fn stale_until(&self, after_ns: u64, until_ns: u64) -> Option<u64> {
        self.replaced
            .iter()
            .map(|&k| (k >> 64) as u64)
            .filter(|&t| t > after_ns && t <= until_ns)
            .max()
    }

    /// Whether wake-up key `w` orders before the other events at its time.
    #[cold]
    fn wake_first_on_tie(&self, w: u128) -> bool {
        let wake = Packed::of(
            (w >> 64) as u64,
            (w >> 32) as u32 as u64,
            wake_event(w).kind,
        );
        let other = match (self.arrival, self.heap.peek()) {
            (Some(a), Some(Reverse(h))) => a.min(*h),
            (Some(a), None) => a,
            (None, Some(Reverse(h))) => *h,
            (None, None) => return true,
        };
        wake < other
    }

    /// The earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<Event> {
        if let Some(w) = self.wakes.peek() {
            let t = (w >> 64) as u64;
            let other = match (self.arrival, self.heap.peek()) {
                (Some(a), Some(Reverse(h))) => Some(a.0.min(h.0)),
                (Some(a), None) => Some(a.0),
                (None, Some(Reverse(h))) => Some(h.0),
                (None, None) => None,
            };
            // A wake-up has the lowest rank: it goes first on a tie in time,
            // unless the other is a pushed wake-up that orders before it.
            let first = match other {
                None => true,
                Some(o) if t != o => t < o,
                Some(_) => self.wake_first_on_tie(w),
            };
            if first {
                self.wakes.pop();
                self.popped += 1;
                self.last_ns = t;
                return Some(wake_event(w));
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
        match e {
            Some(e) => {
                self.popped += 1;
                self.last_ns = e.0;
                Some(e.event())
            }
            None => {
                // Only replaced wake-ups are left: the latest one stands for them.
                let last = self.last_ns;
                let w = self
                    .replaced
                    .drain(..)
                    .filter(|&k| (k >> 64) as u64 > last)
                    .max()?;
                self.popped += 1;
                self.last_ns = (w >> 64) as u64;
                Some(wake_event(w))
            }
        }
    }

    /// Instances of the next two wake-ups in the heap (the earliest first),
    /// for cache prefetching.
    pub fn next_wakes(&self) -> impl Iterator<Item = u32> + '_ {
        self.wakes.next_instances()
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

    /// The driver's view of `set_wake` is that of `push` with cancelled
    /// wake-ups skipped: the same live events in the same order, and the
    /// same clock when the queue runs dry or a later-rank event stops it.
    #[test]
    fn set_wake_is_push_with_stale_entries_skipped() {
        for seed in 0..40 {
            let mut rng = crate::rng::SimRng::seed_from_u64(seed);
            let (mut old, mut new) = (EventQueue::default(), EventQueue::default());
            let mut epochs = [0u32; 6];
            let (mut now_old, mut now_new) = (0u64, 0u64);
            let mut live = Vec::new();
            let mut steps = 0;
            loop {
                steps += 1;
                // Schedule a few events at or after the clock.
                if steps < 300 {
                    for _ in 0..rng.random_range(1..3) {
                        let t = now_new + rng.random_range(0..50u64);
                        if rng.random_range(0..4) == 0 {
                            let k = EventKind::Control { index: 0 };
                            old.push(t, 1, k);
                            new.push(t, 1, k);
                        } else {
                            let i = rng.random_range(0..6u32);
                            epochs[i as usize] += 1;
                            let e = epochs[i as usize];
                            old.push(
                                t,
                                i as u64,
                                EventKind::Wake {
                                    instance: i,
                                    epoch: e,
                                },
                            );
                            new.set_wake(t, i, e);
                        }
                    }
                }
                // Pop the next live event from both, with the clock before it.
                let next_live = |q: &mut EventQueue, now: &mut u64| loop {
                    let before = *now;
                    let ev = q.pop()?;
                    *now = ev.time_ns;
                    match ev.kind {
                        EventKind::Wake { instance, epoch }
                            if epochs[instance as usize] != epoch => {}
                        _ => return Some((ev, before)),
                    }
                };
                let a = next_live(&mut old, &mut now_old);
                let b = next_live(&mut new, &mut now_new);
                assert_eq!(a.map(|x| x.0), b.map(|x| x.0), "seed {seed}");
                if let (Some((e, before_old)), Some((_, before_new))) = (a, b)
                    && e.kind == (EventKind::Control { index: 0 })
                {
                    // Stopping at a later-rank event: the clock before it.
                    let clock = before_new.max(new.stale_until(before_new, e.time_ns).unwrap_or(0));
                    assert_eq!(
                        before_old, clock,
                        "seed {seed}: clock before a control event"
                    );
                }
                let a = a.map(|x| x.0);
                if let Some(e) = a {
                    live.push(e);
                    // Sometimes cancel a wake-up without a replacement.
                    if rng.random_range(0..8) == 0 {
                        epochs[rng.random_range(0..6usize)] += 1;
                    }
                } else {
                    break;
                }
            }
            assert_eq!(now_old, now_new, "seed {seed}: clock after the last event");
            assert!(live.len() > 100);
        }
    }
}
