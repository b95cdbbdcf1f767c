//! The slab of requests in flight. Memory is bounded by requests in flight:
//! a completed request's slot is reused.

/// Sentinel for "not yet" timestamps.
pub const NEVER: u64 = u64::MAX;

/// One request in flight.
#[derive(Debug, Clone, Copy)]
pub struct ReqState {
    /// Arrival sequence number.
    pub id: u64,
    /// Original arrival time, ns (TTFT and E2E are measured from here).
    pub arrival_ns: u64,
    /// Prompt tokens (after any router transformation).
    pub isl: u32,
    /// Output tokens.
    pub osl: u32,
    /// Output tokens already generated (survives recompute preemption).
    pub generated: u32,
    /// First time the request was admitted to a running batch, ns.
    pub first_admit_ns: u64,
    /// Time the pool received it (arrival + router delay), ns.
    pub dispatch_ns: u64,
    /// Time of the first output token, ns.
    pub first_token_ns: u64,
    /// Time of completion, ns.
    pub done_ns: u64,
    /// End of the prefill on a prefill-only instance (the KV transfer's
    /// start), ns; `NEVER` outside disaggregated serving.
    pub handoff_ns: u64,
    /// Pool index where the request is (or was last) served.
    pub pool: u16,
    /// Pool the router chose (metrics are kept there; differs from `pool`
    /// after a disaggregated hand-off to a decode pool).
    pub home: u16,
    /// The request's KV cache (ISL + generated tokens) arrived from a prefill
    /// instance: a decode instance admits it straight into decode.
    pub kv_ready: bool,
    /// Instance index within the pool.
    pub instance: u32,
    /// Counted in statistics (arrived after warm-up).
    pub measured: bool,
    /// Closed-loop user, or `u32::MAX`.
    pub user: u32,
}

/// Slab of [`ReqState`] with a free list.
#[derive(Debug, Default)]
pub struct Requests {
    slots: Vec<ReqState>,
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

    /// Release a slab index.
    pub fn remove(&mut self, i: u32) -> ReqState {
        self.live -= 1;
        self.free.push(i);
        self.slots[i as usize]
    }

    /// Start loading slab entry `i` into the cache (a hint: no effect on
    /// results, any index accepted).
    #[inline(always)]
    pub fn prefetch(&self, i: u32) {
        let p = self.slots.as_ptr().wrapping_add(i as usize) as *const u8;
        super::server::prefetch(p);
        super::server::prefetch(p.wrapping_add(std::mem::size_of::<ReqState>() - 1));
    }

    /// Requests in flight.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Iterate over live requests (O(capacity); used once at the end of a run).
    pub fn iter_live(&self) -> impl Iterator<Item = &ReqState> {
        let mut is_free = vec![false; self.slots.len()];
        for &f in &self.free {
            is_free[f as usize] = true;
        }
        self.slots
            .iter()
            .enumerate()
            .filter(move |(i, _)| !is_free[*i])
            .map(|(_, r)| r)
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
