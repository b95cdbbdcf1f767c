//! Deterministic random streams.
//!
//! Every random draw comes from a `Xoshiro256PlusPlus` stream derived from one
//! user seed: one stream per [`Purpose`] and per replication. Streams are
//! derived by `jump()` (2^128 steps apart) before any parallel work, so the same
//! seed gives the same draws whatever the thread count.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The random generator used everywhere in kvfleet.
pub type SimRng = Xoshiro256PlusPlus;

/// What a random stream is used for. Each purpose has its own stream so that
/// changing one part of a model (e.g. the router) leaves the others' draws intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Inter-arrival times.
    Arrivals,
    /// Request lengths.
    Lengths,
    /// Request categories.
    Categories,
    /// Router decisions.
    Router,
    /// Dispatch tie-breaks inside a pool.
    Dispatch,
    /// Think times of closed-loop users.
    ThinkTime,
    /// A per-pool workload stream (multi-workload fleets), by pool index.
    PoolWorkload(u32),
}

impl Purpose {
    fn index(self) -> u64 {
        match self {
            Purpose::Arrivals => 0,
            Purpose::Lengths => 1,
            Purpose::Categories => 2,
            Purpose::Router => 3,
            Purpose::Dispatch => 4,
            Purpose::ThinkTime => 5,
            Purpose::PoolWorkload(i) => 16 + i as u64,
        }
    }
}

/// The root of all streams of one replication.
#[derive(Debug, Clone)]
pub struct Streams {
    root: SimRng,
}

impl Streams {
    /// Streams for replication `replication` of seed `seed`.
    pub fn new(seed: u64, replication: u32) -> Self {
        let mut root = SimRng::seed_from_u64(seed);
        for _ in 0..replication {
            root.long_jump();
        }
        Streams { root }
    }

    /// The stream for one purpose (a fresh generator each call, always the same).
    pub fn stream(&self, purpose: Purpose) -> SimRng {
        let mut rng = self.root.clone();
        for _ in 0..purpose.index() {
            rng.jump();
        }
        rng
    }

    /// A 64-bit seed derived from a purpose's stream (for components that seed
    /// their own generator, such as routers).
    pub fn seed_for(&self, purpose: Purpose) -> u64 {
        use rand::Rng;
        self.stream(purpose).next_u64()
    }
}

impl Streams {
    /// An independent family of streams for a sub-component (e.g. one pool's
    /// workload), seeded from this family's stream for `purpose`.
    pub fn derived(&self, purpose: Purpose) -> Streams {
        use rand::SeedableRng;
        Streams {
            root: SimRng::seed_from_u64(self.seed_for(purpose)),
        }
    }
}
