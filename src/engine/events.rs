//! The global event queue: a binary min-heap ordered by
//! `(time_ns, rank, key, epoch)`. Same-time events pop in rank order
//! (instance wake-ups before arrivals before delayed dispatches), then by a
//! deterministic key (instance id or arrival sequence), so both engines see
//! identical orders. Cancelled wake-ups are skipped by an epoch check.

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

/// Min-heap of events.
#[derive(Debug, Default)]
pub struct EventQueue {
    heap: BinaryHeap<Reverse<Event>>,
    popped: u64,
}

impl EventQueue {
    /// Schedule `kind` at `time_ns`; `key` orders same-time, same-rank events.
    pub fn push(&mut self, time_ns: u64, key: u64, kind: EventKind) {
        let rank = kind.rank();
        self.heap.push(Reverse(Event {
            time_ns,
            rank,
            key,
            kind,
        }));
    }

    /// The earliest event.
    pub fn pop(&mut self) -> Option<Event> {
        let e = self.heap.pop().map(|Reverse(e)| e);
        if e.is_some() {
            self.popped += 1;
        }
        e
    }

    /// Events popped so far.
    pub fn popped(&self) -> u64 {
        self.popped
    }

    /// Events still queued.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}
