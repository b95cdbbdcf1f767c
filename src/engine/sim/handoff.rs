//! The disaggregated hand-off: a prefill-only instance finishes a prompt,
//! its KV cache crosses a processor-sharing link (then the link latency), and
//! the request lands at its decode pool with its first token delivered.

use super::controls::allocated_instances;
use super::{Server, Sim};
use crate::engine::config::{Disagg, SimConfig};
use crate::engine::events::{EventKind, EventQueue};
use crate::engine::link::PsLink;
use crate::engine::outcome::TransferOutcome;

/// The prefill → KV transfer → decode hand-off of a disaggregated fleet.
pub(super) struct Handoff {
    /// Per pool: the decode pool a prefill pool hands off to.
    pub(super) decode_of: Vec<Option<usize>>,
    /// Per pool: index of instance 0's link (prefill pools), when links are per instance.
    pub(super) link_base: Vec<u32>,
    /// Processor-sharing links (empty for an ideal link).
    pub(super) links: Vec<PsLink>,
    pub(super) shared: bool,
    pub(super) latency_ns: u64,
    pub(super) kv_bytes_per_token: f64,
    pub(super) finished: Vec<u32>,
    pub(super) out: TransferOutcome,
}

impl Handoff {
    /// Links and pairings of a fleet: one link per prefill instance (or one
    /// shared link), none for an ideal link.
    pub(super) fn new(cfg: &SimConfig, d: &Disagg) -> Self {
        let decode_of: Vec<Option<usize>> = (0..cfg.pools.len()).map(|p| d.decode_of(p)).collect();
        let mut link_base = vec![u32::MAX; cfg.pools.len()];
        let mut links = Vec::new();
        let ideal = d.link.bandwidth_bytes_per_s.is_infinite();
        for (p, dec) in decode_of.iter().enumerate() {
            let Some(dp) = *dec else { continue };
            let gpus = cfg.pools[p]
                .profile
                .gpus_per_instance
                .min(cfg.pools[dp].profile.gpus_per_instance);
            let bw = d.link.instance_bandwidth(gpus);
            link_base[p] = links.len() as u32;
            if ideal {
                continue;
            }
            let n = if d.link.shared {
                usize::from(links.is_empty())
            } else {
                allocated_instances(cfg, p)
            };
            links.extend((0..n).map(|_| PsLink::new(bw)));
            if d.link.shared {
                link_base[p] = 0;
            }
        }
        Handoff {
            decode_of,
            link_base,
            out: TransferOutcome {
                links: links.len(),
                ..TransferOutcome::default()
            },
            links,
            shared: d.link.shared,
            latency_ns: (d.link.latency_s * 1e9).round() as u64,
            kv_bytes_per_token: d.kv_bytes_per_token,
            finished: Vec::new(),
        }
    }
}

/// Schedule link `l`'s next completion at `t` (stale once its epoch moves on).
fn push_link_done(events: &mut EventQueue, l: usize, t: u64, epoch: u32) {
    let kind = EventKind::LinkDone {
        link: l as u32,
        epoch,
    };
    events.push(t, (1 << 48) + l as u64, kind);
}

impl<S: Server> Sim<'_, S> {
    /// Request `slab` finished its prefill on instance `i` of prefill pool
    /// `p`: start moving its KV cache (ISL + first token's predecessor tokens)
    /// to the decode pool.
    pub(super) fn start_transfer(&mut self, p: usize, i: usize, slab: u32) {
        let now = self.now;
        let h = self
            .handoff
            .as_mut()
            .expect("prefill-only pools imply a hand-off");
        let c = self.reqs.cold_mut(slab).expect("hand-offs keep cold parts");
        c.handoff_ns = now;
        let id = c.id;
        let r = &self.reqs[slab];
        if r.measured {
            h.out.prefill_phase.record(now - r.arrival_ns);
        }
        let bytes = r.isl as f64 * h.kv_bytes_per_token;
        if h.links.is_empty() {
            // Ideal link: only the fixed latency (zero for `inf`).
            let t = now + h.latency_ns;
            self.events.push(t, id, EventKind::Landed { req: slab });
            return;
        }
        let l = if h.shared {
            0
        } else {
            (h.link_base[p] as usize) + i
        };
        let t = h.links[l].start(now, bytes, slab);
        push_link_done(&mut self.events, l, t, h.links[l].epoch);
    }

    /// Link `l`'s scheduled completion: the finished transfers pay the fixed
    /// latency, then land.
    pub(super) fn link_done(&mut self, l: usize, epoch: u32) {
        let now = self.now;
        let h = self.handoff.as_mut().expect("link events imply a hand-off");
        if h.links[l].epoch != epoch {
            self.stale_events += 1;
            return;
        }
        let mut finished = std::mem::take(&mut h.finished);
        let next = h.links[l].complete(now, &mut finished);
        for &slab in &finished {
            let id = self.reqs.cold(slab).id;
            self.events
                .push(now + h.latency_ns, id, EventKind::Landed { req: slab });
        }
        finished.clear();
        h.finished = finished;
        if let Some(t) = next {
            push_link_done(&mut self.events, l, t, h.links[l].epoch);
        }
    }

    /// A KV cache landed: the first token reaches the user now, and the
    /// request joins its decode pool (dispatched by its policy, e.g. free KV).
    pub(super) fn land(&mut self, slab: u32) {
        let now = self.now;
        let h = self.handoff.as_mut().expect("landings imply a hand-off");
        let handoff_ns = self.reqs.cold(slab).handoff_ns;
        let r = &mut self.reqs[slab];
        let d = h.decode_of[r.pool as usize].expect("landing from a prefill pool");
        h.out.transfers += 1;
        h.out.bytes += r.isl as f64 * h.kv_bytes_per_token;
        if r.measured {
            h.out.transfer.record(now - handoff_ns);
        }
        r.first_token_ns = now;
        r.kv_ready = true;
        r.pool = d as u16;
        self.dispatch(slab, super::Admission::Accepted);
    }
}
