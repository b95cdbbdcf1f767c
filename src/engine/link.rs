//! A KV-transfer link shared by concurrent transfers (egalitarian processor
//! sharing): with `n` transfers in progress each receives `bandwidth / n`.
//!
//! The link keeps a virtual clock `served`: the bytes every continuously
//! active transfer has received so far. A transfer of `b` bytes that starts
//! when the clock reads `v` finishes when it reads `v + b`, whatever happens
//! to the number of transfers in between, so the next completion is always
//! the smallest finish mark: one heap, O(log n) per start or finish.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One processor-sharing link.
#[derive(Debug)]
pub struct PsLink {
    bytes_per_ns: f64,
    /// Bytes received by every transfer active since the link's creation.
    served: f64,
    last_ns: u64,
    /// (finish mark as ordered bits, start sequence, request slab index).
    active: BinaryHeap<Reverse<(u64, u64, u32)>>,
    started: u64,
    /// Bumped whenever the scheduled completion changes (stale events are skipped).
    pub epoch: u32,
    /// Bytes carried by completed transfers.
    pub bytes_done: f64,
    /// ∫ (link busy) dt, ns.
    pub busy_ns: f64,
}

/// Order-preserving bits of a non-negative finite `f64`.
fn key(x: f64) -> u64 {
    debug_assert!(x >= 0.0 && x.is_finite());
    x.to_bits()
}

impl PsLink {
    /// An idle link of `bytes_per_s` (finite and positive).
    pub fn new(bytes_per_s: f64) -> Self {
        PsLink {
            bytes_per_ns: bytes_per_s * 1e-9,
            served: 0.0,
            last_ns: 0,
            active: BinaryHeap::new(),
            started: 0,
            epoch: 0,
            bytes_done: 0.0,
            busy_ns: 0.0,
        }
    }

    /// Transfers in progress.
    pub fn active(&self) -> usize {
        self.active.len()
    }

    fn advance(&mut self, now_ns: u64) {
        let n = self.active.len();
        if n > 0 && now_ns > self.last_ns {
            let dt = (now_ns - self.last_ns) as f64;
            self.served += dt * self.bytes_per_ns / n as f64;
            self.busy_ns += dt;
        }
        self.last_ns = self.last_ns.max(now_ns);
    }

    /// Start a transfer of `bytes` for request `slab`; returns the new time of
    /// the link's next completion.
    pub fn start(&mut self, now_ns: u64, bytes: f64, slab: u32) -> u64 {
        self.advance(now_ns);
        self.started += 1;
        self.active.push(Reverse((
            key(self.served + bytes.max(0.0)),
            self.started,
            slab,
        )));
        self.epoch += 1;
        self.next_completion_ns().expect("a transfer is active")
    }

    /// When the earliest active transfer finishes (rounded up to whole ns).
    pub fn next_completion_ns(&self) -> Option<u64> {
        let &Reverse((mark, _, _)) = self.active.peek()?;
        let left = (f64::from_bits(mark) - self.served).max(0.0);
        let dt = (left * self.active.len() as f64 / self.bytes_per_ns).ceil();
        Some(self.last_ns + dt as u64)
    }

    /// The scheduled completion time has come: append the finished transfers'
    /// slab indices to `out` (at least one) and return the next completion time.
    pub fn complete(&mut self, now_ns: u64, out: &mut Vec<u32>) -> Option<u64> {
        self.advance(now_ns);
        if let Some(&Reverse((mark, _, _))) = self.active.peek() {
            // The event time was rounded up: the earliest transfer is done.
            self.served = self.served.max(f64::from_bits(mark));
        }
        let tolerance = self.served * 1e-12;
        while let Some(&Reverse((mark, _, slab))) = self.active.peek() {
            if f64::from_bits(mark) > self.served + tolerance {
                break;
            }
            self.active.pop();
            out.push(slab);
        }
        self.epoch += 1;
        self.next_completion_ns()
    }

    /// Record the size of a finished transfer (for reports).
    pub fn count_bytes(&mut self, bytes: f64) {
        self.bytes_done += bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_transfer_takes_bytes_over_bandwidth() {
        let mut l = PsLink::new(1e9); // 1 byte/ns
        assert_eq!(l.start(100, 5000.0, 7), 5100);
        let mut out = Vec::new();
        assert_eq!(l.complete(5100, &mut out), None);
        assert_eq!(out, vec![7]);
    }

    #[test]
    fn two_transfers_share_the_bandwidth() {
        // 1 byte/ns. A: 1000 B at t=0; B: 1000 B at t=500. A has 500 B left when
        // B starts; both then get 0.5 B/ns: A ends at 1500, B has 500 B left
        // and finishes alone at 2000.
        let mut l = PsLink::new(1e9);
        assert_eq!(l.start(0, 1000.0, 1), 1000);
        assert_eq!(l.start(500, 1000.0, 2), 1500);
        let mut out = Vec::new();
        assert_eq!(l.complete(1500, &mut out), Some(2000));
        assert_eq!(out, vec![1]);
        out.clear();
        assert_eq!(l.complete(2000, &mut out), None);
        assert_eq!(out, vec![2]);
        assert!((l.busy_ns - 2000.0).abs() < 1e-9);
    }

    /// Drive a link through `starts` (time ns, bytes), sorted by time, and
    /// return each transfer's completion time.
    fn drive(bytes_per_s: f64, starts: &[(u64, f64)]) -> Vec<u64> {
        let mut l = PsLink::new(bytes_per_s);
        let mut done = vec![0u64; starts.len()];
        let mut next: Option<u64> = None;
        let mut k = 0;
        let mut out = Vec::new();
        while k < starts.len() || next.is_some() {
            let start_first = k < starts.len() && next.is_none_or(|t| starts[k].0 < t);
            if start_first {
                let (t, b) = starts[k];
                next = Some(l.start(t, b, k as u32));
                k += 1;
            } else {
                let t = next.expect("a completion is due");
                out.clear();
                next = l.complete(t, &mut out);
                for &i in &out {
                    done[i as usize] = t;
                }
            }
        }
        done
    }

    proptest::proptest! {
        /// Processor sharing is work-conserving: every busy period lasts its
        /// bytes over the bandwidth (to within 1 ns per completion of rounding),
        /// and no transfer beats its solo time.
        #[test]
        fn sharing_conserves_work(
            gaps in proptest::collection::vec(0u64..20_000, 1..40),
            sizes in proptest::collection::vec(1.0f64..50_000.0, 40),
        ) {
            let mut t = 0;
            let starts: Vec<(u64, f64)> = gaps
                .iter()
                .zip(&sizes)
                .map(|(g, b)| {
                    t += g;
                    (t, *b)
                })
                .collect();
            let done = drive(1e9, &starts); // 1 byte/ns
            for (i, &(s, b)) in starts.iter().enumerate() {
                proptest::prop_assert!(done[i] as f64 >= s as f64 + b - 1.0, "transfer {} beat its solo time", i);
            }
            // Busy periods: a period ends when no transfer is active.
            let mut order: Vec<usize> = (0..starts.len()).collect();
            order.sort_by_key(|&i| starts[i].0);
            let (mut p_start, mut p_end, mut p_bytes, mut p_n) = (starts[order[0]].0, 0u64, 0.0f64, 0u64);
            for &i in &order {
                let (s, b) = starts[i];
                if p_n > 0 && s >= p_end {
                    let want = p_start as f64 + p_bytes;
                    proptest::prop_assert!((p_end as f64 - want).abs() <= p_n as f64 + 1.0, "period end {} vs {}", p_end, want);
                    (p_start, p_bytes, p_n) = (s, 0.0, 0);
                }
                p_bytes += b;
                p_n += 1;
                p_end = p_end.max(done[i]);
            }
            let want = p_start as f64 + p_bytes;
            proptest::prop_assert!((p_end as f64 - want).abs() <= p_n as f64 + 1.0, "last period end {} vs {}", p_end, want);
        }
    }

    #[test]
    fn equal_transfers_started_together_finish_together() {
        let mut l = PsLink::new(2e9);
        l.start(0, 3000.0, 1);
        l.start(0, 3000.0, 2);
        let t = l.start(0, 3000.0, 3);
        assert_eq!(t, 4500);
        let mut out = Vec::new();
        assert_eq!(l.complete(t, &mut out), None);
        assert_eq!(out, vec![1, 2, 3]);
    }
}
