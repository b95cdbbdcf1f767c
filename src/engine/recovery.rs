//! Recovery from a scheduled event (e.g. a grid demand-response cap): the
//! waiting level a fleet returns to, when it gets there, and ending a run's
//! arrivals once it has.
//!
//! The level is the 95th percentile of the waiting-request samples of the
//! run's queue trace in the `pre_s` seconds before the event; the fleet has
//! recovered at the first sample at or after the event's end that is at or
//! below it. The driver applies the same rule online ([`EndAtRecovery`]) to
//! stop offering arrivals a margin after recovery: what follows is the
//! steady state the fleet was in before the event, which a run without the
//! event measures already.

use serde::{Deserialize, Serialize};

/// End a run's arrivals `margin_s` after the fleet has recovered from the
/// event `[event_start_s, event_end_s)` (see the module documentation), or
/// at the workload's end if it does not recover. Requests already admitted
/// run to completion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EndAtRecovery {
    /// Event start, s.
    pub event_start_s: f64,
    /// Event end, s.
    pub event_end_s: f64,
    /// Seconds before the event whose waiting level the fleet recovers to.
    pub pre_s: f64,
    /// Seconds of arrivals kept after recovery.
    pub margin_s: f64,
}

/// The waiting level to recover to: the 95th percentile (the sample at
/// index ⌊0.95 n⌋ of the sorted ones) of the samples in
/// `[event_start_s − pre_s, event_start_s)`; 0 with none.
pub fn recovery_level(trace: &[(f64, u64)], event_start_s: f64, pre_s: f64) -> u64 {
    let mut pre: Vec<u64> = trace
        .iter()
        .filter(|(t, _)| *t >= event_start_s - pre_s && *t < event_start_s)
        .map(|&(_, w)| w)
        .collect();
    pre.sort_unstable();
    pre.get((pre.len() as f64 * 0.95) as usize)
        .copied()
        .or(pre.last().copied())
        .unwrap_or(0)
}

/// Whether the sample `(t_s, waiting)` shows the fleet recovered to `level`
/// after an event ending at `event_end_s`.
pub fn is_recovered(t_s: f64, waiting: u64, event_end_s: f64, level: u64) -> bool {
    t_s >= event_end_s && waiting <= level
}

/// Seconds after `event_end_s` until the trace is back at its
/// [`recovery_level`] (`None`: not within the trace).
pub fn recovery_s(
    trace: &[(f64, u64)],
    event_start_s: f64,
    event_end_s: f64,
    pre_s: f64,
) -> Option<f64> {
    let level = recovery_level(trace, event_start_s, pre_s);
    trace
        .iter()
        .find(|&&(t, w)| is_recovered(t, w, event_end_s, level))
        .map(|(t, _)| t - event_end_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_is_the_95th_percentile_before_the_event() {
        // 20 samples before t = 20 s: waiting 0..19; the 95th percentile is
        // index 19 of the sorted ones.
        let mut trace: Vec<(f64, u64)> = (0..20).map(|i| (i as f64, i as u64)).collect();
        assert_eq!(recovery_level(&trace, 20.0, 100.0), 19);
        // Only the last 10 s count with pre_s = 10: samples 10..19.
        assert_eq!(recovery_level(&trace, 20.0, 10.0), 19);
        // The event's own samples do not count.
        trace.push((20.0, 500));
        assert_eq!(recovery_level(&trace, 20.0, 100.0), 19);
        assert_eq!(recovery_level(&[], 20.0, 100.0), 0);
    }

    #[test]
    fn recovery_is_the_first_sample_after_the_event_back_at_the_level() {
        let trace = vec![
            (0.0, 2),
            (1.0, 3),
            (2.0, 50), // event
            (3.0, 2),  // during the event: not a recovery
            (4.0, 40), // event ends at 4
            (5.0, 9),
            (6.5, 3),
            (7.0, 1),
        ];
        assert_eq!(recovery_s(&trace, 2.0, 4.0, 10.0), Some(2.5));
        // Every sample 10 higher: the level rises with them (13), and
        // recovery is found at the same sample.
        let worse: Vec<_> = trace.iter().map(|&(t, w)| (t, w + 10)).collect();
        let level = recovery_level(&worse, 2.0, 10.0);
        assert_eq!(level, 13);
        assert_eq!(recovery_s(&worse, 2.0, 4.0, 10.0), Some(2.5));
        assert_eq!(recovery_s(&trace[..6], 2.0, 4.0, 10.0), None);
    }
}
