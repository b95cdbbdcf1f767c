//! The slab of requests in flight. Memory is bounded by requests in flight:
//! a completed request's slot is reused.

/// Sentinel for "not yet" timestamps.
pub const NEVER: u64 = u64::MAX;

/// One request in flight: the fields a step or a completion reads, in one
/// 64-byte cache line (the rarely read ones are in [`ReqCold`]).
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
pub struct ReqState {
    /// Original arrival time, ns (TTFT and E2E are measured from here).
    pub arrival_ns: u64,
    /// First time the request was admitted to a running batch, ns.
    pub first_admit_ns: u64,
    /// Time the pool received it (arrival + router delay), ns.
    pub dispatch_ns: u64,
    /// Time of the first output token, ns.
    pub first_token_ns: u64,
    /// Time of completion, ns.
    pub done_ns: u64,
    /// Prompt tokens (after any router transformation).
    pub isl: u32,
    /// Output tokens.
    pub osl: u32,
    /// Output tokens already generated (survives recompute preemption).
    pub generated: u32,
    /// Closed-loop user, or `u32::MAX`.
    pub user: u32,
    /// Pool index where the request is (or was last) served.
    pub pool: u16,
    /// Pool the router chose (metrics are kept there; differs from `pool`
    /// after a disaggregated hand-off to a decode pool).
    pub home: u16,
    /// The request's KV cache (ISL + generated tokens) arrived from a prefill
    /// instance: a decode instance admits it straight into decode.
    pub kv_ready: bool,
    /// Counted in statistics (arrived after warm-up).
    pub measured: bool,
}

const _: () = assert!(std::mem::size_of::<ReqState>() == 64);

/// The rarely read part of a request in flight (read at a disaggregated
/// hand-off and for per-request records), kept beside [`ReqState`] under the
/// same slab index. It is stored only by a run that reads it (see
/// [`Requests::set_cold`]), so other runs never touch it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReqCold {
    /// Arrival sequence number.
    pub id: u64,
    /// End of the prefill on a prefill-only instance (the KV transfer's
    /// start), ns; `NEVER` outside disaggregated serving.
    pub handoff_ns: u64,
    /// Instance index within the pool.
    pub instance: u32,
}

/// Slab of [`ReqState`] with a free list.
#[derive(Debug, Default)]
pub struct Requests {
    slots: Vec<ReqState>,
    cold: Vec<ReqCold>,
    free: Vec<u32>,
    live: usize,
}

impl Requests {
    /// Store a request; returns its slab index.
    pub fn insert(&mut self, r: ReqState) -> u32 {
        self.live += 1;
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = r;
            i
        } else {
            self.slots.push(r);
            (self.slots.len() - 1) as u32
        }
    }

    /// Release a slab index; returns its last state. Its cold part stays
    /// readable through [`Requests::cold`] until the index is reused.
    pub fn remove(&mut self, i: u32) -> ReqState {
        self.live -= 1;
        self.free.push(i);
        self.slots[i as usize]
    }

    /// Store the cold part of slab entry `i`. Entries never stored read as
    /// [`ReqCold::default`].
    pub fn set_cold(&mut self, i: u32, c: ReqCold) {
        let i = i as usize;
        if self.cold.len() <= i {
            self.cold.resize(i + 1, ReqCold::default());
        }
        self.cold[i] = c;
    }

    /// The cold part of slab entry `i` (default if never stored).
    #[inline]
    pub fn cold(&self, i: u32) -> ReqCold {
        self.cold.get(i as usize).copied().unwrap_or_default()
    }

    /// The cold part of slab entry `i`, mutably, if it was ever stored.
    #[inline]
    pub fn cold_mut(&mut self, i: u32) -> Option<&mut ReqCold> {
        self.cold.get_mut(i as usize)
    }

    /// Start loading slab entry `i` into the cache (a hint: no effect on
    /// results, any index accepted).
    #[inline(always)]
    pub fn prefetch(&self, i: u32) {
        // One aligned line per entry.
        super::server::prefetch(self.slots.as_ptr().wrapping_add(i as usize));
    }

    /// Requests in flight.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Iterate over live requests (O(capacity); used once at the end of a run).
    pub fn iter_live(&self) -> impl Iterator<Item = (&ReqState, ReqCold)> {
        let mut is_free = vec![false; self.slots.len()];
        for &f in &self.free {
            is_free[f as usize] = true;
        }
        self.slots
            .iter()
            .enumerate()
            .filter(move |(i, _)| !is_free[*i])
            .map(|(i, r)| (r, self.cold(i as u32)))
    }
}

impl std::ops::Index<u32> for Requests {
    type Output = ReqState;
    #[inline]
    fn index(&self, i: u32) -> &ReqState {
        &self.slots[i as usize]
    }
}

impl std::ops::IndexMut<u32> for Requests {
    #[inline]
    fn index_mut(&mut self, i: u32) -> &mut ReqState {
        &mut self.slots[i as usize]
    }
}
