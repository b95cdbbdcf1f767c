//! An in-memory request source (tests, benchmarks, programmatic use).

use std::collections::VecDeque;

use super::{Request, RequestSource};
use crate::error::InputError;

/// Replays a vector of requests, which must be in non-decreasing arrival order.
#[derive(Debug, Clone, Default)]
pub struct VecSource {
    reqs: VecDeque<Request>,
    len: u64,
}

impl VecSource {
    /// A source over `reqs` (sorted by arrival time here, stably).
    pub fn new(mut reqs: Vec<Request>) -> Self {
        reqs.sort_by_key(|r| r.arrival_ns);
        let len = reqs.len() as u64;
        VecSource {
            reqs: reqs.into(),
            len,
        }
    }
}

impl RequestSource for VecSource {
    fn next_request(&mut self) -> Result<Option<Request>, InputError> {
        Ok(self.reqs.pop_front())
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.len)
    }
}
