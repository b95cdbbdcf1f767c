//! The traffic of a design's engine run: the clients' merged Poisson
//! streams (each request tagged with its client) and the router that sends
//! each request to its client's entry pools.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kvfleet_routers::{Decision, FleetView, RejectReason, RequestView, Router, RouterStats};
use rand::RngExt;

use crate::error::InputError;
use crate::rng::SimRng;
use crate::workload::{Request, RequestExtra, RequestSource};

/// Routes each request to its client's entry pools: the first (primary) one
/// unless requests already wait there, then the entry with the fewest
/// waiting requests per worker (Option B's shared buffer takes overflow).
pub(super) struct ClientRouter {
    /// Per client: entry pools as router view indices, primary first.
    pub(super) entries: Vec<Vec<usize>>,
    pub(super) names: BTreeMap<String, usize>,
    /// (client, view index) → routed count.
    pub(super) routed: Arc<Mutex<Vec<Vec<u64>>>>,
    pub(super) stats: RouterStats,
}

impl Router for ClientRouter {
    fn name(&self) -> &str {
        "clients"
    }

    fn route(&mut self, req: &RequestView<'_>, fleet: &FleetView<'_>) -> Decision {
        let c = match req.model {
            Some(m) => self.names.get(m).copied(),
            None if self.entries.len() == 1 => Some(0),
            None => None,
        };
        let Some(c) = c else {
            return self.stats.record(Decision::Reject {
                reason: RejectReason::NoMatchingPool,
            });
        };
        let e = &self.entries[c];
        let primary = e[0];
        let pool = if fleet.pools[primary].waiting == 0 {
            primary
        } else {
            let per = |v: usize| {
                let p = &fleet.pools[v];
                p.waiting as f64 / p.instances.max(1) as f64
            };
            let mut best = primary;
            for &v in &e[1..] {
                if per(v) < per(best) {
                    best = v;
                }
            }
            best
        };
        if pool != primary {
            self.stats.spilled += 1;
        }
        if let Ok(mut r) = self.routed.lock() {
            r[c][pool] += 1;
        }
        self.stats.record(Decision::Route { pool })
    }

    fn stats(&self) -> RouterStats {
        self.stats.clone()
    }
}

/// (client index, isl, osl) of every request issued, in arrival order.
pub(super) type Log = Arc<Mutex<Vec<(usize, u32, u32)>>>;

/// One open-loop client's stream.
pub(super) struct OpenStream {
    pub(super) client: usize,
    pub(super) name: String,
    pub(super) rate_rps: f64,
    pub(super) spec: super::model::Client,
    pub(super) next_s: f64,
    pub(super) arrivals: SimRng,
    pub(super) lengths: SimRng,
}

/// Merged Poisson streams of several open-loop clients.
pub(super) struct OpenClients {
    pub(super) streams: Vec<OpenStream>,
    pub(super) end_s: f64,
    pub(super) log: Log,
}

pub(super) fn exp_gap(rng: &mut SimRng, rate: f64) -> f64 {
    let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    -u.ln() / rate
}

impl RequestSource for OpenClients {
    fn next_request(&mut self) -> Result<Option<Request>, InputError> {
        let Some(k) = (0..self.streams.len())
            .filter(|&k| self.streams[k].next_s < self.end_s)
            .min_by(|&a, &b| self.streams[a].next_s.total_cmp(&self.streams[b].next_s))
        else {
            return Ok(None);
        };
        let s = &mut self.streams[k];
        let t = s.next_s;
        let (i, o) = s.spec.draw(&mut s.lengths);
        s.next_s += exp_gap(&mut s.arrivals, s.rate_rps);
        if let Ok(mut l) = self.log.lock() {
            l.push((s.client, i, o));
        }
        let mut r = Request::new(crate::workload::secs_to_ns(t), i, o);
        r.extra = Some(Box::new(RequestExtra {
            model: Some(s.name.clone()),
            ..RequestExtra::default()
        }));
        Ok(Some(r))
    }
}
