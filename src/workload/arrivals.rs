//! Open-loop arrival processes: Poisson, piecewise-constant rate profiles
//! (optionally periodic, for diurnal load) and a two-state MMPP.
//!
//! All three are generated exactly by inverting the cumulative rate: each
//! arrival draws `E ~ Exp(1)` and advances time until the integral of the rate
//! since the previous arrival reaches `E`. Zero-rate stretches are skipped;
//! if the rate is zero forever the generator ends.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::rng::SimRng;
use crate::workload::secs_to_ns;

/// An arrival process, in requests per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalProcess {
    /// Homogeneous Poisson arrivals.
    Poisson {
        /// Rate, requests/s (> 0).
        rate_per_s: f64,
    },
    /// Piecewise-constant rate: segment `i` runs from its start to the next
    /// segment's start (the last one forever, or to `period_s`, after which
    /// the profile repeats).
    Profile {
        /// `(start_s, rate_per_s)`, starts strictly ascending from 0, rates ≥ 0.
        segments: Vec<(f64, f64)>,
        /// Repeat the profile with this period (> last start), e.g. 86400 for diurnal.
        period_s: Option<f64>,
    },
    /// Two-state Markov-modulated Poisson process (bursty traffic).
    Mmpp {
        /// Rate in the high state, requests/s.
        rate_high: f64,
        /// Rate in the low state, requests/s.
        rate_low: f64,
        /// Mean sojourn in the high state, s (exponential).
        mean_high_s: f64,
        /// Mean sojourn in the low state, s (exponential).
        mean_low_s: f64,
    },
}

fn num(flag: &str, what: &str, s: &str) -> Result<f64, InputError> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(InputError::field(
            flag,
            format!("{what} `{}` is not a finite number", s.trim()),
        )),
    }
}

impl ArrivalProcess {
    /// Parse a rate profile `0:50,600:120,1200:80` (`start_s:rate` pairs).
    pub fn parse_profile(
        flag: &str,
        spec: &str,
        period_s: Option<f64>,
    ) -> Result<Self, InputError> {
        let mut segments = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((s, r)) = item.split_once(':') else {
                return Err(InputError::field(
                    flag,
                    format!("`{item}`: expected START_S:RATE (e.g. 0:50,600:120)"),
                ));
            };
            segments.push((num(flag, "start", s)?, num(flag, "rate", r)?));
        }
        let p = ArrivalProcess::Profile { segments, period_s };
        p.validate(flag)?;
        Ok(p)
    }

    /// Parse an MMPP `HIGH:LOW:MEAN_HIGH_S:MEAN_LOW_S`.
    pub fn parse_mmpp(flag: &str, spec: &str) -> Result<Self, InputError> {
        let parts: Vec<&str> = spec.split(':').collect();
        let [h, l, mh, ml] = parts[..] else {
            return Err(InputError::field(
                flag,
                format!("`{spec}`: expected HIGH_RATE:LOW_RATE:MEAN_HIGH_S:MEAN_LOW_S"),
            ));
        };
        let p = ArrivalProcess::Mmpp {
            rate_high: num(flag, "HIGH_RATE", h)?,
            rate_low: num(flag, "LOW_RATE", l)?,
            mean_high_s: num(flag, "MEAN_HIGH_S", mh)?,
            mean_low_s: num(flag, "MEAN_LOW_S", ml)?,
        };
        p.validate(flag)?;
        Ok(p)
    }

    /// Check the parameters; `field` names the flag or field in errors.
    pub fn validate(&self, field: &str) -> Result<(), InputError> {
        let err = |r: String| Err(InputError::field(field, r));
        match self {
            ArrivalProcess::Poisson { rate_per_s } => {
                if !(rate_per_s.is_finite() && *rate_per_s > 0.0) {
                    return err(format!("rate {rate_per_s}: expected a finite rate > 0"));
                }
            }
            ArrivalProcess::Profile { segments, period_s } => {
                if segments.is_empty() {
                    return err("expected at least one START_S:RATE segment".into());
                }
                if segments[0].0 != 0.0 {
                    return err(format!(
                        "first segment starts at {} s; expected 0",
                        segments[0].0
                    ));
                }
                for (i, &(s, r)) in segments.iter().enumerate() {
                    if !(s.is_finite() && r.is_finite() && r >= 0.0) {
                        return err(format!("segment {i}: expected a finite start and rate ≥ 0"));
                    }
                    if i > 0 && s <= segments[i - 1].0 {
                        return err(format!(
                            "segment {i} starts at {s} s, not after {} s; expected strictly ascending starts",
                            segments[i - 1].0
                        ));
                    }
                }
                if segments.iter().all(|s| s.1 == 0.0) {
                    return err("every segment has rate 0; expected at least one rate > 0".into());
                }
                if let Some(p) = period_s {
                    let last = segments[segments.len() - 1].0;
                    if !(p.is_finite() && *p > last) {
                        return err(format!(
                            "period {p} s: expected a finite period after the last segment start {last} s"
                        ));
                    }
                }
            }
            ArrivalProcess::Mmpp {
                rate_high,
                rate_low,
                mean_high_s,
                mean_low_s,
            } => {
                if !(rate_high.is_finite() && rate_low.is_finite())
                    || *rate_high < 0.0
                    || *rate_low < 0.0
                    || *rate_high + *rate_low <= 0.0
                {
                    return err("expected finite rates ≥ 0, at least one > 0".into());
                }
                if !(mean_high_s.is_finite() && mean_low_s.is_finite())
                    || *mean_high_s <= 0.0
                    || *mean_low_s <= 0.0
                {
                    return err("expected finite mean sojourn times > 0 s".into());
                }
            }
        }
        Ok(())
    }

    /// Long-run mean rate, requests/s: the Poisson rate; for a periodic
    /// profile the average over one period; for a non-periodic profile the
    /// last segment's rate (it lasts forever); for MMPP the stationary mix.
    pub fn mean_rate(&self) -> f64 {
        match self {
            ArrivalProcess::Poisson { rate_per_s } => *rate_per_s,
            ArrivalProcess::Profile { segments, period_s } => match period_s {
                Some(p) => {
                    let mut integral = 0.0;
                    for (i, &(s, r)) in segments.iter().enumerate() {
                        let end = segments.get(i + 1).map_or(*p, |n| n.0);
                        integral += (end - s) * r;
                    }
                    integral / p
                }
                None => segments.last().map_or(0.0, |s| s.1),
            },
            ArrivalProcess::Mmpp {
                rate_high,
                rate_low,
                mean_high_s,
                mean_low_s,
            } => (rate_high * mean_high_s + rate_low * mean_low_s) / (mean_high_s + mean_low_s),
        }
    }

    /// The largest instantaneous rate, requests/s.
    pub fn peak_rate(&self) -> f64 {
        match self {
            ArrivalProcess::Poisson { rate_per_s } => *rate_per_s,
            ArrivalProcess::Profile { segments, .. } => {
                segments.iter().map(|s| s.1).fold(0.0, f64::max)
            }
            ArrivalProcess::Mmpp {
                rate_high,
                rate_low,
                ..
            } => rate_high.max(*rate_low),
        }
    }
}

/// Draw `Exp(1)`.
pub(crate) fn exp1(rng: &mut SimRng) -> f64 {
    -(1.0 - rng.random::<f64>()).ln()
}

/// The next Poisson arrival time after `*t_s`, s, from a unit-rate gap
/// (an `Exp(1)` draw) at `rate_per_s`, advancing `*t_s` to it. The one
/// formula a Poisson generator and a rate-rescaled replay share, so both
/// give the same bits.
#[inline]
pub(crate) fn poisson_next_s(t_s: &mut f64, unit_gap: f64, rate_per_s: f64) -> f64 {
    *t_s += unit_gap / rate_per_s;
    *t_s
}

/// Where a generator is inside its process.
#[derive(Debug, Clone)]
enum State {
    Poisson,
    Profile {
        /// Index of the current segment.
        seg: usize,
        /// Absolute start of the current period (0 when not periodic).
        cycle_start_s: f64,
        /// Integral of the rate over one period (periodic only).
        per_period: f64,
    },
    Mmpp {
        high: bool,
        /// When the current state ends, s.
        state_end_s: f64,
    },
    Done,
}

/// Generates arrival times of an [`ArrivalProcess`] from its own stream.
#[derive(Debug, Clone)]
pub struct ArrivalGen {
    process: ArrivalProcess,
    rng: SimRng,
    t_s: f64,
    state: State,
}

impl ArrivalGen {
    /// A generator starting at time 0. The process should have passed
    /// [`ArrivalProcess::validate`]; an invalid one yields no arrivals.
    pub fn new(process: ArrivalProcess, mut rng: SimRng) -> Self {
        let state = if process.validate("arrivals").is_err() {
            State::Done
        } else {
            match &process {
                ArrivalProcess::Poisson { .. } => State::Poisson,
                ArrivalProcess::Profile { .. } => State::Profile {
                    seg: 0,
                    cycle_start_s: 0.0,
                    per_period: process.mean_rate() * period_of(&process),
                },
                ArrivalProcess::Mmpp {
                    mean_high_s,
                    mean_low_s,
                    ..
                } => {
                    // Start in the stationary distribution.
                    let high = rng.random::<f64>() * (mean_high_s + mean_low_s) < *mean_high_s;
                    let mean = if high { *mean_high_s } else { *mean_low_s };
                    State::Mmpp {
                        high,
                        state_end_s: exp1(&mut rng) * mean,
                    }
                }
            }
        };
        ArrivalGen {
            process,
            rng,
            t_s: 0.0,
            state,
        }
    }

    /// The process being generated.
    pub fn process(&self) -> &ArrivalProcess {
        &self.process
    }

    /// Long-run mean rate of the process, requests/s.
    pub fn mean_rate(&self) -> f64 {
        self.process.mean_rate()
    }

    /// The next arrival time in ns (non-decreasing), or `None` when the rate
    /// is zero from now on.
    pub fn next_arrival_ns(&mut self) -> Option<u64> {
        self.next_arrival_s().map(secs_to_ns)
    }

    /// The next arrival time in seconds.
    pub fn next_arrival_s(&mut self) -> Option<f64> {
        let mut rem = exp1(&mut self.rng);
        match &mut self.state {
            State::Done => None,
            State::Poisson => {
                let ArrivalProcess::Poisson { rate_per_s } = self.process else {
                    return None;
                };
                Some(poisson_next_s(&mut self.t_s, rem, rate_per_s))
            }
            State::Profile {
                seg,
                cycle_start_s,
                per_period,
            } => {
                let ArrivalProcess::Profile { segments, period_s } = &self.process else {
                    return None;
                };
                loop {
                    let rate = segments[*seg].1;
                    let end = match (segments.get(*seg + 1), period_s) {
                        (Some(next), _) => *cycle_start_s + next.0,
                        (None, Some(p)) => *cycle_start_s + p,
                        (None, None) => f64::INFINITY,
                    };
                    let avail = if rate > 0.0 {
                        (end - self.t_s) * rate
                    } else {
                        0.0
                    };
                    if rate > 0.0 && rem <= avail {
                        self.t_s += rem / rate;
                        return Some(self.t_s);
                    }
                    if end.is_infinite() {
                        self.state = State::Done;
                        return None;
                    }
                    rem -= avail;
                    self.t_s = end;
                    *seg += 1;
                    if *seg == segments.len() {
                        let p = period_s.unwrap_or(f64::INFINITY);
                        *seg = 0;
                        *cycle_start_s += p;
                        // Skip whole periods at once.
                        let whole = (rem / *per_period).floor();
                        if whole >= 1.0 {
                            rem = (rem - whole * *per_period).max(0.0);
                            *cycle_start_s += whole * p;
                        }
                        self.t_s = *cycle_start_s;
                    }
                }
            }
            State::Mmpp { high, state_end_s } => {
                let ArrivalProcess::Mmpp {
                    rate_high,
                    rate_low,
                    mean_high_s,
                    mean_low_s,
                } = self.process
                else {
                    return None;
                };
                loop {
                    let rate = if *high { rate_high } else { rate_low };
                    let avail = (*state_end_s - self.t_s) * rate;
                    if rate > 0.0 && rem <= avail {
                        self.t_s += rem / rate;
                        return Some(self.t_s);
                    }
                    rem -= avail;
                    self.t_s = *state_end_s;
                    *high = !*high;
                    let mean = if *high { mean_high_s } else { mean_low_s };
                    *state_end_s = self.t_s + exp1(&mut self.rng) * mean;
                }
            }
        }
    }
}

fn period_of(p: &ArrivalProcess) -> f64 {
    match p {
        ArrivalProcess::Profile {
            period_s: Some(p), ..
        } => *p,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn times(p: &ArrivalProcess, seed: u64, n: usize) -> Vec<f64> {
        let mut g = ArrivalGen::new(p.clone(), SimRng::seed_from_u64(seed));
        (0..n).map_while(|_| g.next_arrival_s()).collect()
    }

    #[test]
    fn poisson_rate_and_cv() {
        let p = ArrivalProcess::Poisson { rate_per_s: 40.0 };
        let t = times(&p, 1, 200_000);
        let rate = t.len() as f64 / t[t.len() - 1];
        assert!((rate - 40.0).abs() / 40.0 < 0.01, "{rate}");
        let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        let m = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - m).powi(2)).sum::<f64>() / gaps.len() as f64;
        let cv = var.sqrt() / m;
        assert!((cv - 1.0).abs() < 0.02, "cv {cv}");
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn determinism_same_seed_same_sequence() {
        for p in [
            ArrivalProcess::Poisson { rate_per_s: 3.0 },
            ArrivalProcess::parse_profile("f", "0:5,10:0,20:7", Some(30.0)).unwrap(),
            ArrivalProcess::parse_mmpp("f", "50:5:2:8").unwrap(),
        ] {
            let mut a = ArrivalGen::new(p.clone(), SimRng::seed_from_u64(9));
            let mut b = ArrivalGen::new(p.clone(), SimRng::seed_from_u64(9));
            let xa: Vec<_> = (0..1000).map(|_| a.next_arrival_ns()).collect();
            let xb: Vec<_> = (0..1000).map(|_| b.next_arrival_ns()).collect();
            assert_eq!(xa, xb);
            let c: Vec<_> = times(&p, 10, 1000);
            assert_ne!(c, times(&p, 9, 1000));
        }
    }

    #[test]
    fn profile_segment_rates() {
        let p =
            ArrivalProcess::parse_profile("--rate-profile", "0:50,600:120,1200:0,1800:80", None)
                .unwrap();
        let t = times(&p, 2, 200_000);
        let count = |a: f64, b: f64| t.iter().filter(|&&x| x >= a && x < b).count() as f64;
        assert!((count(0.0, 600.0) / 600.0 - 50.0).abs() < 2.0);
        assert!((count(600.0, 1200.0) / 600.0 - 120.0).abs() < 3.0);
        assert_eq!(count(1200.0, 1800.0), 0.0);
        assert!((count(1800.0, 2400.0) / 600.0 - 80.0).abs() < 2.5);
        assert_eq!(p.mean_rate(), 80.0);
        assert_eq!(p.peak_rate(), 120.0);
    }

    #[test]
    fn periodic_profile_repeats_and_zero_forever_ends() {
        let p = ArrivalProcess::parse_profile("f", "0:10,5:0", Some(20.0)).unwrap();
        assert!((p.mean_rate() - 2.5).abs() < 1e-12);
        let t = times(&p, 3, 50_000);
        for x in &t {
            let phase = x % 20.0;
            assert!(phase <= 5.0 + 1e-9, "arrival in a zero-rate phase: {x}");
        }
        let rate = t.len() as f64 / t[t.len() - 1];
        assert!((rate - 2.5).abs() / 2.5 < 0.02, "{rate}");
        // Zero rate forever after 1 s: finitely many arrivals, then None.
        let p = ArrivalProcess::parse_profile("f", "0:100,1:0", None).unwrap();
        let t = times(&p, 4, 10_000);
        assert!(t.len() < 200 && t.iter().all(|&x| x <= 1.0), "{}", t.len());
    }

    #[test]
    fn mmpp_long_run_rate() {
        let p = ArrivalProcess::parse_mmpp("--mmpp", "100:10:1:4").unwrap();
        assert!((p.mean_rate() - 28.0).abs() < 1e-12);
        let t = times(&p, 5, 400_000);
        let rate = t.len() as f64 / t[t.len() - 1];
        assert!((rate - 28.0).abs() / 28.0 < 0.03, "{rate}");
        // Bursty: inter-arrival CV above 1.
        let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        let m = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - m).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!(sd / m > 1.2, "cv {}", sd / m);
        let p = ArrivalProcess::parse_mmpp("f", "0:10:1:1").unwrap();
        let t = times(&p, 6, 100_000);
        assert!((t.len() as f64 / t[t.len() - 1] - 5.0).abs() < 0.2);
    }

    #[test]
    fn parse_errors_name_the_flag() {
        for bad in [
            "",
            "5:10",
            "0:10,0:20",
            "0:10,5:-1",
            "0:0,10:0",
            "0:x",
            "0-10",
        ] {
            match ArrivalProcess::parse_profile("--rate-profile", bad, None) {
                Err(InputError::Field { field, .. }) => assert_eq!(field, "--rate-profile"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(ArrivalProcess::parse_profile("f", "0:1,10:2", Some(10.0)).is_err());
        for bad in ["1:2:3", "1:2:0:1", "0:0:1:1", "-1:2:1:1", "a:b:c:d"] {
            assert!(ArrivalProcess::parse_mmpp("--mmpp", bad).is_err(), "{bad}");
        }
        assert!(
            ArrivalProcess::Poisson { rate_per_s: 0.0 }
                .validate("--lam")
                .is_err()
        );
    }

    #[test]
    fn serde_round_trip() {
        let p = ArrivalProcess::parse_profile("f", "0:1,10:2", Some(20.0)).unwrap();
        let j = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<ArrivalProcess>(&j).unwrap(), p);
    }
}
