//! A request source read ahead on a thread of its own.
//!
//! A long simulation that runs alone leaves a core idle while its one
//! thread both generates the workload (sampling lengths and arrival gaps,
//! or parsing a trace) and simulates it. [`ReadAhead`] moves the
//! generation to a second thread, which fills chunks of requests a few
//! chunks ahead of the simulation. The requests, their order, the errors
//! and where they occur, the end of the stream and the skipped-row counts
//! seen after each request are exactly those of the wrapped source, so a
//! run reads the same workload either way (the same seed gives the same
//! bytes). Memory stays bounded: at most [`CHUNKS_AHEAD`] chunks of
//! [`CHUNK_LEN`] requests wait at any time, and when the reader is dropped
//! (a run that stops early) the generating thread stops at its next chunk.

use std::sync::mpsc::{Receiver, sync_channel};

use super::{Request, RequestSource, SkipCounts};
use crate::error::InputError;

/// Requests per chunk handed from the generating thread to the reader.
pub const CHUNK_LEN: usize = 1024;

/// Chunks the generating thread may run ahead of the reader.
pub const CHUNKS_AHEAD: usize = 4;

/// A run of the wrapped source's answers: its requests, then (in the last
/// chunk) how the stream ended.
struct Chunk {
    reqs: Vec<Request>,
    /// `(k, counts)`: the source's skipped-row counts changed to `counts`
    /// with its answer number `k` in this chunk (`k == reqs.len()` is the
    /// ending answer).
    skips: Vec<(usize, SkipCounts)>,
    /// After the requests: `Some(Ok(()))` the end of the stream,
    /// `Some(Err(e))` the error the source returned; `None` more follow.
    end: Option<Result<(), InputError>>,
}

/// A [`RequestSource`] whose requests are generated on another thread.
pub struct ReadAhead {
    rx: Receiver<Chunk>,
    /// The generating thread, joined if it ends without its last chunk.
    thread: Option<std::thread::JoinHandle<()>>,
    current: std::vec::IntoIter<Request>,
    /// Answers given from `current`'s chunk so far.
    given: usize,
    skips: std::vec::IntoIter<(usize, SkipCounts)>,
    next_skip: Option<(usize, SkipCounts)>,
    end: Option<Result<(), InputError>>,
    /// The stream's end (or error) was returned; later calls return `None`.
    done: bool,
    skipped: SkipCounts,
    len_hint: Option<u64>,
}

impl ReadAhead {
    /// Read `source` ahead on a new thread.
    pub fn new(mut source: Box<dyn RequestSource>) -> ReadAhead {
        let len_hint = source.len_hint();
        let (tx, rx) = sync_channel::<Chunk>(CHUNKS_AHEAD);
        let thread = std::thread::spawn(move || {
            let mut skipped = source.skipped();
            loop {
                let mut reqs = Vec::with_capacity(CHUNK_LEN);
                let mut skips = Vec::new();
                let mut end = None;
                while end.is_none() && reqs.len() < CHUNK_LEN {
                    let answer = source.next_request();
                    let now = source.skipped();
                    if now != skipped {
                        skips.push((reqs.len(), now.clone()));
                        skipped = now;
                    }
                    match answer {
                        Ok(Some(r)) => reqs.push(r),
                        Ok(None) => end = Some(Ok(())),
                        Err(e) => end = Some(Err(e)),
                    }
                }
                let last = end.is_some();
                // The reader is gone (its run stopped): nothing to do.
                if tx.send(Chunk { reqs, skips, end }).is_err() || last {
                    return;
                }
            }
        });
        ReadAhead {
            rx,
            thread: Some(thread),
            current: Vec::new().into_iter(),
            given: 0,
            skips: Vec::new().into_iter(),
            next_skip: None,
            end: None,
            done: false,
            skipped: SkipCounts::default(),
            len_hint,
        }
    }

    /// Apply the skipped-row counts recorded with answer `k` of the chunk.
    #[inline]
    fn note_answer(&mut self, k: usize) {
        while let Some((at, _)) = &self.next_skip
            && *at == k
        {
            if let Some((_, counts)) = self.next_skip.take() {
                self.skipped = counts;
            }
            self.next_skip = self.skips.next();
        }
    }

    /// Take the next chunk. The generating thread sends one until its last;
    /// if it ends without (the source panicked), its panic is raised here,
    /// as it would have been had the source run on this thread.
    #[cold]
    fn refill(&mut self) {
        let chunk = match self.rx.recv() {
            Ok(chunk) => chunk,
            Err(_) => {
                if let Some(Err(panic)) = self.thread.take().map(|t| t.join()) {
                    std::panic::resume_unwind(panic);
                }
                unreachable!("the read-ahead thread ended without its last chunk or a panic")
            }
        };
        self.current = chunk.reqs.into_iter();
        self.given = 0;
        self.skips = chunk.skips.into_iter();
        self.next_skip = self.skips.next();
        self.end = chunk.end;
    }
}

impl RequestSource for ReadAhead {
    #[inline]
    fn next_request(&mut self) -> Result<Option<Request>, InputError> {
        loop {
            if let Some(r) = self.current.next() {
                let k = self.given;
                self.given += 1;
                if self.next_skip.is_some() {
                    self.note_answer(k);
                }
                return Ok(Some(r));
            }
            if self.done {
                return Ok(None);
            }
            if let Some(end) = self.end.take() {
                self.done = true;
                self.note_answer(self.given);
                return end.map(|()| None);
            }
            self.refill();
        }
    }

    fn len_hint(&self) -> Option<u64> {
        self.len_hint
    }

    fn skipped(&self) -> SkipCounts {
        self.skipped.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source of `n` requests whose skipped-row counts rise at some
    /// answers, ending with an error when `fail` (else the end).
    struct Scripted {
        n: u64,
        given: u64,
        skipped: SkipCounts,
        fail: bool,
    }

    impl RequestSource for Scripted {
        fn next_request(&mut self) -> Result<Option<Request>, InputError> {
            let k = self.given;
            self.given += 1;
            // Rows are skipped before some answers, the last one included.
            if k % 7 == 3 || k.is_multiple_of(1000) || k == self.n {
                self.skipped.bad_rows += 1;
            }
            if k == self.n / 2 {
                self.skipped.failed_requests += 2;
            }
            if k < self.n {
                Ok(Some(Request::new(
                    k * 10,
                    1 + (k % 97) as u32,
                    1 + (k % 13) as u32,
                )))
            } else if self.fail {
                Err(InputError::Usage(format!("row {k}: bad")))
            } else {
                Ok(None)
            }
        }

        fn len_hint(&self) -> Option<u64> {
            Some(self.n)
        }

        fn skipped(&self) -> SkipCounts {
            self.skipped.clone()
        }
    }

    fn scripted(n: u64, fail: bool) -> Scripted {
        Scripted {
            n,
            given: 0,
            skipped: SkipCounts::default(),
            fail,
        }
    }

    /// Every answer, and the skipped counts after it, of `src` up to its
    /// end or error.
    fn answers(src: &mut dyn RequestSource) -> Vec<(String, SkipCounts)> {
        let mut out = Vec::new();
        loop {
            let a = src.next_request();
            let last = !matches!(a, Ok(Some(_)));
            out.push((format!("{a:?}"), src.skipped()));
            if last {
                return out;
            }
        }
    }

    #[test]
    fn reads_exactly_what_the_source_gives_across_chunk_boundaries() {
        let n_chunk = CHUNK_LEN as u64;
        for n in [0, 1, n_chunk - 1, n_chunk, n_chunk + 1, 3 * n_chunk, 5000] {
            for fail in [false, true] {
                let want = answers(&mut scripted(n, fail));
                let mut ahead = ReadAhead::new(Box::new(scripted(n, fail)));
                assert_eq!(ahead.len_hint(), Some(n));
                let got = answers(&mut ahead);
                assert_eq!(got.len(), want.len(), "n = {n}, fail = {fail}");
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g, w, "n = {n}, fail = {fail}: answer {k}");
                }
                // After its end or error, the stream stays ended.
                for _ in 0..2 {
                    assert!(matches!(ahead.next_request(), Ok(None)));
                }
            }
        }
    }

    #[test]
    fn a_reader_dropped_early_stops_the_generating_thread() {
        let mut ahead = ReadAhead::new(Box::new(scripted(u64::MAX, false)));
        for _ in 0..10 {
            assert!(matches!(ahead.next_request(), Ok(Some(_))));
        }
        // The thread is blocked on a full channel; dropping the reader
        // fails its next send, and it returns.
        let thread = ahead.thread.take().expect("the thread handle");
        drop(ahead);
        assert!(thread.join().is_ok());
    }

    #[test]
    fn a_panic_of_the_source_is_raised_on_the_reader() {
        struct Panics;
        impl RequestSource for Panics {
            fn next_request(&mut self) -> Result<Option<Request>, InputError> {
                panic!("the source broke")
            }
        }
        let mut ahead = ReadAhead::new(Box::new(Panics));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = ahead.next_request();
        }));
        let payload = caught.expect_err("the panic reaches the reader");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"the source broke"));
    }
}
