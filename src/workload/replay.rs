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
//!
//! A Poisson stream is kept at unit rate: its `Exp(1)` gaps, lengths and
//! categories do not depend on λ (each has its own random stream), so one
//! entry serves every rate a threshold search probes, the arrival times
//! computed at replay by the generator's own formula
//! ([`poisson_next_s`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::arrivals::{ArrivalProcess, exp1, poisson_next_s};
use super::spec::{Workload, WorkloadSpec};
use super::{Request, RequestSource, secs_to_ns};
use crate::error::InputError;
use crate::rng::{Purpose, Streams};

/// Streams kept at once.
const CAPACITY: usize = 16;
/// Longest stream kept, requests (16 × 100k × 40 B ≈ 64 MB at most).
const MAX_REQUESTS: u64 = 100_000;

/// What determines a synthetic stream.
#[derive(PartialEq)]
struct Key {
    /// The workload spec, in full (`Debug`), its rate left out when the
    /// stream is kept at unit rate.
    spec: String,
    /// Kept at unit rate (a Poisson stream).
    unit_rate: bool,
    seed: u64,
    replication: u32,
}

/// A kept stream.
enum Kept {
    /// The requests as drawn.
    Drawn(Arc<[Request]>),
    /// A Poisson stream at unit rate: each request's `Exp(1)` gap beside
    /// it (the request's own arrival time is not used).
    UnitRate {
        gaps: Arc<[f64]>,
        requests: Arc<[Request]>,
    },
}

impl Kept {
    fn replay(&self, rate_per_s: f64) -> Box<dyn RequestSource> {
        match self {
            Kept::Drawn(requests) => Box::new(Replay {
                requests: requests.clone(),
                next: 0,
            }),
            Kept::UnitRate { gaps, requests } => Box::new(RateReplay {
                gaps: gaps.clone(),
                requests: requests.clone(),
                rate_per_s,
                t_s: 0.0,
                next: 0,
            }),
        }
    }
}

/// The last few synthetic open-loop streams generated, for replay.
#[derive(Default)]
pub struct StreamCache {
    entries: Mutex<VecDeque<(Key, Arc<Kept>)>>,
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

/// One unit-rate Poisson stream, replayed from the start at a rate.
struct RateReplay {
    gaps: Arc<[f64]>,
    requests: Arc<[Request]>,
    rate_per_s: f64,
    t_s: f64,
    next: usize,
}

impl RequestSource for RateReplay {
    fn next_request(&mut self) -> Result<Option<Request>, InputError> {
        let (Some(r), Some(&gap)) = (self.requests.get(self.next), self.gaps.get(self.next)) else {
            return Ok(None);
        };
        self.next += 1;
        let mut r = r.clone();
        r.arrival_ns = secs_to_ns(poisson_next_s(&mut self.t_s, gap, self.rate_per_s));
        Ok(Some(r))
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
    /// `replication`: a replay when this cache holds them (a Poisson
    /// stream at any rate), else drawn, kept (synthetic open-loop streams
    /// of at most 100k requests) and replayed. `None` for the workloads it
    /// does not keep (traces, closed loops, longer streams): the caller
    /// opens those itself.
    pub fn open(
        &self,
        spec: &WorkloadSpec,
        seed: u64,
        replication: u32,
    ) -> Result<Option<Box<dyn RequestSource>>, InputError> {
        if spec.trace.is_some() || spec.users.is_some() || spec.n_requests() > MAX_REQUESTS {
            return Ok(None);
        }
        // (An invalid spec is left for `open` below to report.)
        let poisson_rate = match spec.arrival_process() {
            Ok(Some(ArrivalProcess::Poisson { rate_per_s })) => Some(rate_per_s),
            _ => None,
        };
        let unit_key = poisson_rate.map(|_| Key {
            spec: format!(
                "{:?}",
                WorkloadSpec {
                    lam: None,
                    ..spec.clone()
                }
            ),
            unit_rate: true,
            seed,
            replication,
        });
        let drawn_key = Key {
            spec: format!("{spec:?}"),
            unit_rate: false,
            seed,
            replication,
        };
        let rate = poisson_rate.unwrap_or(0.0);
        for key in unit_key.iter().chain([&drawn_key]) {
            if let Some(kept) = self.find(key) {
                return Ok(Some(kept.replay(rate)));
            }
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
        let unit = poisson_rate
            .and_then(|rate| unit_rate_gaps(&drawn, rate, seed, replication))
            .zip(unit_key);
        let (key, kept) = match unit {
            Some((gaps, key)) => (
                key,
                Kept::UnitRate {
                    gaps: gaps.into(),
                    requests: drawn.into(),
                },
            ),
            None => (drawn_key, Kept::Drawn(drawn.into())),
        };
        let kept = Arc::new(kept);
        if let Ok(mut entries) = self.entries.lock()
            && !entries.iter().any(|(k, _)| *k == key)
        {
            if entries.len() >= CAPACITY {
                entries.pop_front();
            }
            entries.push_back((key, kept.clone()));
        }
        Ok(Some(kept.replay(rate)))
    }

    fn find(&self, key: &Key) -> Option<Arc<Kept>> {
        let entries = self.entries.lock().ok()?;
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, r)| r.clone())
    }
}

/// The `Exp(1)` gaps of a Poisson stream drawn at `rate_per_s`, redrawn
/// from its arrival stream, when they give back every drawn arrival time
/// exactly (`None` otherwise: the stream is then kept as drawn).
fn unit_rate_gaps(
    drawn: &[Request],
    rate_per_s: f64,
    seed: u64,
    replication: u32,
) -> Option<Vec<f64>> {
    let mut rng = Streams::new(seed, replication).stream(Purpose::Arrivals);
    let gaps: Vec<f64> = drawn.iter().map(|_| exp1(&mut rng)).collect();
    let mut t_s = 0.0;
    let exact = drawn
        .iter()
        .zip(&gaps)
        .all(|(r, &g)| secs_to_ns(poisson_next_s(&mut t_s, g, rate_per_s)) == r.arrival_ns);
    exact.then_some(gaps)
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
        // Another rate is another stream, replayed from the same unit-rate
        // entry, and exactly the one drawn afresh at that rate.
        for lam in [99.0, 0.37, 12_345.6] {
            let other = WorkloadSpec {
                lam: Some(lam),
                ..spec.clone()
            };
            let Workload::Open(s) = other.open(&Streams::new(9, 1)).expect("opens") else {
                panic!("open loop")
            };
            let want = drain(s);
            let got = drain(cache.open(&other, 9, 1).expect("opens").expect("kept"));
            assert_eq!(got, want, "λ = {lam}");
            assert_ne!(got, fresh(1), "λ = {lam}");
        }
        assert_eq!(cache.entries.lock().expect("lock").len(), 2);
        // A rate profile is kept as drawn, one entry per spec.
        let profiled = WorkloadSpec {
            rate_profile: Some("0:5,10:20".into()),
            lam: None,
            ..spec.clone()
        };
        let Workload::Open(s) = profiled.open(&Streams::new(9, 0)).expect("opens") else {
            panic!("open loop")
        };
        let want = drain(s);
        assert_eq!(
            drain(cache.open(&profiled, 9, 0).expect("opens").expect("kept")),
            want
        );
        assert_eq!(
            drain(cache.open(&profiled, 9, 0).expect("opens").expect("kept")),
            want
        );
        assert_eq!(cache.entries.lock().expect("lock").len(), 3);
        // Long streams are not kept.
        let long = WorkloadSpec {
            n_requests: Some(MAX_REQUESTS + 1),
            ..spec
        };
        assert!(cache.open(&long, 9, 0).expect("opens").is_none());
    }
}
