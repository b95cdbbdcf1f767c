//! Merging several request streams into one, in arrival order.

use super::{Request, RequestSource, SkipCounts};
use crate::error::InputError;

/// Interleaves sources by arrival time (ties: the lower source index first),
/// stopping after `limit` requests if given.
pub struct MergedSource {
    sources: Vec<Box<dyn RequestSource>>,
    heads: Vec<Option<Request>>,
    primed: bool,
    limit: Option<u64>,
    yielded: u64,
}

impl MergedSource {
    /// Merge `sources`; `limit` caps the total number of requests.
    pub fn new(sources: Vec<Box<dyn RequestSource>>, limit: Option<u64>) -> Self {
        let n = sources.len();
        MergedSource {
            sources,
            heads: vec![None; n],
            primed: false,
            limit,
            yielded: 0,
        }
    }
}

impl RequestSource for MergedSource {
    fn next_request(&mut self) -> Result<Option<Request>, InputError> {
        if !self.primed {
            for (h, s) in self.heads.iter_mut().zip(&mut self.sources) {
                *h = s.next_request()?;
            }
            self.primed = true;
        }
        if self.limit.is_some_and(|l| self.yielded >= l) {
            return Ok(None);
        }
        let best = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|r| (r.arrival_ns, i)))
            .min();
        let Some((_, i)) = best else { return Ok(None) };
        let next = self.sources[i].next_request()?;
        let out = std::mem::replace(&mut self.heads[i], next);
        self.yielded += 1;
        Ok(out)
    }

    fn len_hint(&self) -> Option<u64> {
        let sum = self
            .sources
            .iter()
            .map(|s| s.len_hint())
            .sum::<Option<u64>>();
        match (sum, self.limit) {
            (Some(s), Some(l)) => Some(s.min(l)),
            (s, l) => s.or(l),
        }
    }

    fn skipped(&self) -> SkipCounts {
        let mut total = SkipCounts::default();
        for s in &self.sources {
            let k = s.skipped();
            total.bad_rows += k.bad_rows;
            total.failed_requests += k.failed_requests;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::memory::VecSource;

    #[test]
    fn merges_in_time_order_and_respects_the_limit() {
        let a = VecSource::new(vec![
            Request::new(1, 1, 1),
            Request::new(5, 1, 1),
            Request::new(9, 1, 1),
        ]);
        let b = VecSource::new(vec![Request::new(2, 2, 2), Request::new(5, 2, 2)]);
        let mut m = MergedSource::new(vec![Box::new(a), Box::new(b)], None);
        let mut got = Vec::new();
        while let Some(r) = m.next_request().expect("in memory") {
            got.push((r.arrival_ns, r.input_tokens));
        }
        assert_eq!(got, vec![(1, 1), (2, 2), (5, 1), (5, 2), (9, 1)]);
        let a = VecSource::new(vec![Request::new(1, 1, 1), Request::new(5, 1, 1)]);
        let mut m = MergedSource::new(vec![Box::new(a)], Some(1));
        assert_eq!(m.len_hint(), Some(1));
        assert!(m.next_request().expect("ok").is_some());
        assert!(m.next_request().expect("ok").is_none());
    }
}
