//! Synthetic open-loop workloads: an arrival process × a length model × a
//! category mix, `n` requests.
//!
//! Arrivals, lengths and categories each draw from their own stream
//! ([`Purpose::Arrivals`], [`Purpose::Lengths`], [`Purpose::Categories`]), so
//! changing the length model leaves arrival times unchanged (common random
//! numbers across compared configurations).

use crate::error::InputError;
use crate::rng::{Purpose, SimRng, Streams};
use crate::workload::arrivals::{ArrivalGen, ArrivalProcess};
use crate::workload::lengths::{CategoryMix, LengthModel};
use crate::workload::{Request, RequestSource};

/// `n` synthetic requests.
#[derive(Debug, Clone)]
pub struct SyntheticSource {
    arrivals: ArrivalGen,
    lengths: LengthModel,
    categories: CategoryMix,
    length_rng: SimRng,
    category_rng: SimRng,
    n_requests: u64,
    emitted: u64,
}

impl SyntheticSource {
    /// A source of `n_requests` requests drawing from `streams`.
    pub fn new(
        process: ArrivalProcess,
        lengths: LengthModel,
        categories: CategoryMix,
        n_requests: u64,
        streams: &Streams,
    ) -> Self {
        SyntheticSource {
            arrivals: ArrivalGen::new(process, streams.stream(Purpose::Arrivals)),
            lengths,
            categories,
            length_rng: streams.stream(Purpose::Lengths),
            category_rng: streams.stream(Purpose::Categories),
            n_requests,
            emitted: 0,
        }
    }

    /// The length model.
    pub fn lengths(&self) -> &LengthModel {
        &self.lengths
    }

    /// The arrival process.
    pub fn process(&self) -> &ArrivalProcess {
        self.arrivals.process()
    }
}

impl RequestSource for SyntheticSource {
    fn next_request(&mut self) -> Result<Option<Request>, InputError> {
        let Some(arrival_ns) = self.next_arrival_only_ns()? else {
            return Ok(None);
        };
        let (isl, osl) = self.lengths.sample(&mut self.length_rng);
        let mut req = Request::new(arrival_ns, isl, osl);
        req.category = self.categories.sample(&mut self.category_rng);
        Ok(Some(req))
    }

    /// Arrival times draw from their own stream: the lengths and the
    /// category need not be drawn to count arrivals.
    fn next_arrival_only_ns(&mut self) -> Result<Option<u64>, InputError> {
        if self.emitted >= self.n_requests {
            return Ok(None);
        }
        let Some(arrival_ns) = self.arrivals.next_arrival_ns() else {
            // The rate is zero forever: the workload ends early.
            self.n_requests = self.emitted;
            return Ok(None);
        };
        self.emitted += 1;
        Ok(Some(arrival_ns))
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.n_requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::lengths::LengthDist;

    fn drain(src: &mut dyn RequestSource) -> Vec<Request> {
        let mut v = Vec::new();
        while let Some(r) = src.next_request().unwrap() {
            v.push(r);
        }
        v
    }

    fn model(isl: &str, osl: &str) -> LengthModel {
        LengthModel::Separate {
            isl: LengthDist::parse("--isl", isl).unwrap(),
            osl: LengthDist::parse("--osl", osl).unwrap(),
        }
    }

    #[test]
    fn n_requests_and_common_random_numbers() {
        let streams = Streams::new(42, 0);
        let p = ArrivalProcess::Poisson { rate_per_s: 10.0 };
        let mut a = SyntheticSource::new(
            p.clone(),
            model("fixed:100", "fixed:10"),
            CategoryMix::default(),
            500,
            &streams,
        );
        assert_eq!(a.len_hint(), Some(500));
        let ra = drain(&mut a);
        assert_eq!(ra.len(), 500);
        assert!(
            ra.iter()
                .all(|r| r.input_tokens == 100 && r.output_tokens == 10)
        );
        let mut b = SyntheticSource::new(
            p.clone(),
            model("exp:300", "uniform:1:50"),
            CategoryMix::default(),
            500,
            &streams,
        );
        let rb = drain(&mut b);
        // Same arrivals and categories, different lengths.
        assert!(
            ra.iter()
                .zip(&rb)
                .all(|(x, y)| x.arrival_ns == y.arrival_ns)
        );
        assert!(ra.iter().zip(&rb).all(|(x, y)| x.category == y.category));
        assert!(rb.iter().any(|r| r.input_tokens != 100));
        // Same seed → identical; different replication → different arrivals.
        let mut c = SyntheticSource::new(
            p.clone(),
            model("exp:300", "uniform:1:50"),
            CategoryMix::default(),
            500,
            &streams,
        );
        assert_eq!(drain(&mut c), rb);
        let mut d = SyntheticSource::new(
            p,
            model("fixed:100", "fixed:10"),
            CategoryMix::default(),
            500,
            &Streams::new(42, 1),
        );
        assert_ne!(drain(&mut d)[0].arrival_ns, ra[0].arrival_ns);
    }

    #[test]
    fn arrival_times_alone_are_those_of_the_requests() {
        let streams = Streams::new(7, 2);
        let mmpp = ArrivalProcess::parse_mmpp("--mmpp", "40:5:2:3").unwrap();
        let ended = ArrivalProcess::parse_profile("f", "0:50,3:0", None).unwrap();
        for p in [ArrivalProcess::Poisson { rate_per_s: 25.0 }, mmpp, ended] {
            let open = || {
                SyntheticSource::new(
                    p.clone(),
                    model("exp:300", "uniform:1:50"),
                    CategoryMix::default(),
                    400,
                    &streams,
                )
            };
            let want: Vec<u64> = drain(&mut open()).iter().map(|r| r.arrival_ns).collect();
            let mut src = open();
            let mut got = Vec::new();
            while let Some(t) = src.next_arrival_only_ns().unwrap() {
                got.push(t);
            }
            assert_eq!(got, want, "{p:?}");
            assert!(!want.is_empty());
        }
    }

    #[test]
    fn ends_early_when_rate_is_zero_forever() {
        let p = ArrivalProcess::parse_profile("f", "0:10,1:0", None).unwrap();
        let mut s = SyntheticSource::new(
            p,
            model("fixed:1", "fixed:1"),
            CategoryMix::default(),
            1_000_000,
            &Streams::new(1, 0),
        );
        let n = drain(&mut s).len() as u64;
        assert!(n < 100);
        assert_eq!(s.len_hint(), Some(n));
    }
}
