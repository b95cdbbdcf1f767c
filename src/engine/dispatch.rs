//! Choosing an instance inside a pool.

use rand::RngExt;

use super::server::Server;
use serde::{Deserialize, Serialize};

use crate::rng::SimRng;

/// How a pool picks the instance for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DispatchPolicy {
    /// Join the shortest queue (running + waiting), random tie-breaks. O(1).
    #[default]
    Jsq,
    /// Cycle through instances.
    RoundRobin,
    /// Two random instances, the less loaded one.
    PowerOfTwo,
    /// The instance with the fewest KV blocks in use (O(instances) per request).
    LeastKv,
    /// The instance with the most free KV blocks among those with a free
    /// running slot once their queues are counted (assigned requests <
    /// `max_num_seqs`); the fewest assigned requests when none has one. The
    /// decode-pool policy of disaggregated fleets (O(instances) per request).
    FreeKv,
    /// One pool-wide FCFS queue; a request goes to the first instance that can admit it.
    Central,
}

impl DispatchPolicy {
    /// Name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchPolicy::Jsq => "jsq",
            DispatchPolicy::RoundRobin => "round-robin",
            DispatchPolicy::PowerOfTwo => "power-of-two",
            DispatchPolicy::LeastKv => "least-kv",
            DispatchPolicy::FreeKv => "free-kv",
            DispatchPolicy::Central => "central",
        }
    }
}

/// A pool's dispatcher: its policy and the per-instance state it needs.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    policy: DispatchPolicy,
    /// Requests assigned and not completed, per instance.
    pub loads: LoadBuckets,
    rr_next: usize,
}

impl Dispatcher {
    /// A dispatcher over `n` idle instances.
    pub fn new(policy: DispatchPolicy, n: usize) -> Self {
        Dispatcher {
            policy,
            loads: LoadBuckets::new(n),
            rr_next: 0,
        }
    }

    /// The instance for the next request among `instances` (the pool's
    /// active ones; always 0 for the central queue, whose instances pull from
    /// the shared queue).
    pub fn choose<S: Server>(&mut self, instances: &[S], now_ns: u64, rng: &mut SimRng) -> usize {
        let n = instances.len();
        match self.policy {
            DispatchPolicy::Central => 0,
            DispatchPolicy::Jsq => self.loads.pick_min(rng),
            DispatchPolicy::RoundRobin => {
                let i = self.rr_next % n;
                self.rr_next = (i + 1) % n;
                i
            }
            DispatchPolicy::PowerOfTwo => {
                let a = rng.random_range(0..n);
                let b = rng.random_range(0..n);
                if self.loads.load(b) < self.loads.load(a) {
                    b
                } else {
                    a
                }
            }
            DispatchPolicy::FreeKv => {
                let loads = &self.loads;
                fewest_kv_blocks(instances, now_ns, rng, |i| {
                    loads.load(i) < instances[i].seq_cap()
                })
                .unwrap_or_else(|| loads.pick_min(rng))
            }
            DispatchPolicy::LeastKv => {
                fewest_kv_blocks(instances, now_ns, rng, |_| true).unwrap_or_default()
            }
        }
    }
}

/// The `eligible` instance with the fewest KV blocks in use, ties broken
/// uniformly at random (reservoir choice: one draw per tie); `None` when
/// none is eligible.
fn fewest_kv_blocks<S: Server>(
    instances: &[S],
    now_ns: u64,
    rng: &mut SimRng,
    eligible: impl Fn(usize) -> bool,
) -> Option<usize> {
    let (mut best_kv, mut best, mut ties) = (u64::MAX, usize::MAX, 0u32);
    for (i, s) in instances.iter().enumerate() {
        if !eligible(i) {
            continue;
        }
        let kv = s.kv_used_blocks(now_ns);
        if kv < best_kv {
            (best_kv, best, ties) = (kv, i, 1);
        } else if kv == best_kv {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    (best != usize::MAX).then_some(best)
}

/// Instances bucketed by load (requests assigned and not completed), so the
/// least-loaded set is found in O(1) and a load change costs O(1).
#[derive(Debug, Clone)]
pub struct LoadBuckets {
    load: Vec<u32>,
    pos: Vec<u32>,
    buckets: Vec<Vec<u32>>,
    min: usize,
    /// Instances out of the choice (removed from their pool); their loads are still counted.
    disabled: Vec<bool>,
}

impl LoadBuckets {
    /// `n` instances, all at load 0.
    pub fn new(n: usize) -> Self {
        LoadBuckets {
            load: vec![0; n],
            pos: (0..n as u32).collect(),
            buckets: vec![(0..n as u32).collect()],
            min: 0,
            disabled: vec![false; n],
        }
    }

    /// Take instance `i` out of the choice (at least one instance must stay in).
    pub fn disable(&mut self, i: usize) {
        if self.disabled[i] {
            return;
        }
        self.take(i);
        self.disabled[i] = true;
        while self.min + 1 < self.buckets.len() && self.buckets[self.min].is_empty() {
            self.min += 1;
        }
    }

    /// Put instance `i` back into the choice.
    pub fn enable(&mut self, i: usize) {
        if !self.disabled[i] {
            return;
        }
        self.disabled[i] = false;
        let l = self.load[i] as usize;
        self.put(i, l);
        if l < self.min || self.buckets[self.min].is_empty() {
            self.min = l;
        }
    }

    /// Load of instance `i`.
    pub fn load(&self, i: usize) -> u32 {
        self.load[i]
    }

    fn take(&mut self, i: usize) {
        let l = self.load[i] as usize;
        let p = self.pos[i] as usize;
        let b = &mut self.buckets[l];
        let last = *b.last().expect("instance is in its bucket");
        b.swap_remove(p);
        if last as usize != i {
            self.pos[last as usize] = p as u32;
        }
    }

    fn put(&mut self, i: usize, l: usize) {
        if self.buckets.len() <= l {
            self.buckets.resize_with(l + 1, Vec::new);
        }
        self.load[i] = l as u32;
        self.pos[i] = self.buckets[l].len() as u32;
        self.buckets[l].push(i as u32);
    }

    /// Instance `i` got one more request.
    pub fn inc(&mut self, i: usize) {
        if self.disabled[i] {
            self.load[i] += 1;
            return;
        }
        let l = self.load[i] as usize;
        self.take(i);
        self.put(i, l + 1);
        if self.buckets[self.min].is_empty() {
            self.min += 1;
        }
    }

    /// Instance `i` finished a request.
    pub fn dec(&mut self, i: usize) {
        if self.disabled[i] {
            self.load[i] -= 1;
            return;
        }
        let l = self.load[i] as usize;
        self.take(i);
        self.put(i, l - 1);
        if l - 1 < self.min {
            self.min = l - 1;
        }
    }

    /// A uniformly random instance among the least loaded.
    pub fn pick_min(&self, rng: &mut SimRng) -> usize {
        let b = &self.buckets[self.min];
        let j = if b.len() == 1 {
            0
        } else {
            rng.random_range(0..b.len())
        };
        b[j] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn buckets_track_the_minimum() {
        let mut b = LoadBuckets::new(4);
        let mut rng = SimRng::seed_from_u64(1);
        let mut loads = [0u32; 4];
        let mut r2 = SimRng::seed_from_u64(2);
        for step in 0..10_000 {
            if step % 3 == 2 {
                let i = r2.random_range(0..4usize);
                if loads[i] > 0 {
                    loads[i] -= 1;
                    b.dec(i);
                }
            } else {
                let i = b.pick_min(&mut rng);
                let min = *loads.iter().min().expect("non-empty");
                assert_eq!(loads[i], min);
                loads[i] += 1;
                b.inc(i);
            }
            for (i, &l) in loads.iter().enumerate() {
                assert_eq!(b.load(i), l);
            }
        }
    }

    #[test]
    fn ties_are_broken_at_random() {
        let b = LoadBuckets::new(8);
        let mut rng = SimRng::seed_from_u64(7);
        let mut seen = [0u32; 8];
        for _ in 0..8000 {
            seen[b.pick_min(&mut rng)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800 && c < 1200), "{seen:?}");
    }
}
