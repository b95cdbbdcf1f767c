//! Arrival streams generated once and replayed.
//!
//! A planner simulates many fleets on the same seed streams (common random
//! numbers), and drawing a synthetic stream — exponential gaps, CDF
//! lengths, categories — costs about a tenth of simulating it. A
//! [`StreamCache`] keeps the last few streams a planner generated, keyed by
//! everything that determines them (the workload spec, the seed, the
//! replication), and hands out replays of them: the same requests in the
//! same order, so every simulation is byte-identical to one that drew its
//! own stream.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::spec::{Workload, WorkloadSpec};
use super::{Request, RequestSource};
use crate::error::InputError;
use crate::rng::Streams;

/// Streams kept at once.
const CAPACITY: usize = 16;
/// Longest stream kept, requests (16 × 100k × 32 B ≈ 51 MB at most).
const MAX_REQUESTS: u64 = 100_000;

/// What determines a synthetic stream.
#[derive(PartialEq)]
struct Key {
    /// The workload spec, in full (`Debug`).
    spec: String,
    seed: u64,
    replication: u32,
}

/// The last few synthetic open-loop streams generated, for replay.
#[derive(Default)]
pub struct StreamCache {
    entries: Mutex<VecDeque<(Key, Arc<[Request]>)>>,
}

impl std::fmt::Debug for StreamCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.entries.lock().map(|e| e.len()).unwrap_or(0);
        write!(f, "StreamCache({n} streams)")
    }
}

/// One cached stream, replayed from the start.
struct Replay {
    requests: Arc<[Request]>,
    next: usize,
}

impl RequestSource for Replay {
    fn next_request(&mut self) -> Result<Option<Request>, InputError> {
        let r = self.requests.get(self.next).cloned();
        self.next += 1;
        Ok(r)
    }
    fn len_hint(&self) -> Option<u64> {
        Some(self.requests.len() as u64)
    }
}

impl StreamCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The open-loop arrivals of `spec` on the streams of `seed` and
    /// `replication`: a replay when this cache holds them, else drawn,
    /// kept (synthetic open-loop streams of at most 100k requests) and
    /// replayed. `None` for the workloads it does not keep (traces, closed
    /// loops, longer streams): the caller opens those itself.
    pub fn open(
        &self,
        spec: &WorkloadSpec,
        seed: u64,
        replication: u32,
    ) -> Result<Option<Box<dyn RequestSource>>, InputError> {
        if spec.trace.is_some() || spec.users.is_some() || spec.n_requests() > MAX_REQUESTS {
            return Ok(None);
        }
        let key = Key {
            spec: format!("{spec:?}"),
            seed,
            replication,
        };
        if let Some(requests) = self.find(&key) {
            return Ok(Some(Box::new(Replay { requests, next: 0 })));
        }
        let Workload::Open(mut src) = spec.open(&Streams::new(seed, replication))? else {
            return Ok(None);
        };
        // A stream must replay exactly: its length as announced, nothing skipped.
        let announced = src.len_hint();
        let mut drawn = Vec::with_capacity(spec.n_requests() as usize);
        while let Some(r) = src.next_request()? {
            drawn.push(r);
        }
        if announced != Some(drawn.len() as u64) || src.skipped() != Default::default() {
            return Ok(None);
        }
        let requests: Arc<[Request]> = drawn.into();
        if let Ok(mut entries) = self.entries.lock()
            && !entries.iter().any(|(k, _)| *k == key)
        {
            if entries.len() >= CAPACITY {
                entries.pop_front();
            }
            entries.push_back((key, requests.clone()));
        }
        Ok(Some(Box::new(Replay { requests, next: 0 })))
    }

    fn find(&self, key: &Key) -> Option<Arc<[Request]>> {
        let entries = self.entries.lock().ok()?;
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, r)| r.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut s: Box<dyn RequestSource>) -> Vec<Request> {
        let mut v = Vec::new();
        while let Some(r) = s.next_request().expect("synthetic") {
            v.push(r);
        }
        v
    }

    #[test]
    fn a_replay_is_the_stream_drawn_afresh() {
        let spec = WorkloadSpec {
            n_requests: Some(500),
            ..WorkloadSpec::default_chat()
        };
        let cache = StreamCache::new();
        let fresh = |rep| {
            let Workload::Open(s) = spec.open(&Streams::new(9, rep)).expect("opens") else {
                panic!("open loop")
            };
            drain(s)
        };
        for rep in [0, 1, 0] {
            let s = cache.open(&spec, 9, rep).expect("opens").expect("kept");
            assert_eq!(s.len_hint(), Some(500));
            assert_eq!(drain(s), fresh(rep), "replication {rep}");
        }
        assert_eq!(cache.entries.lock().expect("lock").len(), 2);
        // Another rate is another stream.
        let faster = WorkloadSpec {
            lam: Some(99.0),
            ..spec.clone()
        };
        let a = drain(cache.open(&faster, 9, 0).expect("opens").expect("kept"));
        assert_ne!(a, fresh(0));
        // Long streams are not kept.
        let long = WorkloadSpec {
            n_requests: Some(MAX_REQUESTS + 1),
            ..spec
        };
        assert!(cache.open(&long, 9, 0).expect("opens").is_none());
    }
}
