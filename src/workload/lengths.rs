//! Request length models: synthetic ISL/OSL distributions, the CDF split, and
//! the category mix.
//!
//! Every sampled length is an integer ≥ 1. Rounding of continuous
//! distributions:
//! - `exp:MEAN` returns `ceil(x)` of the continuous draw `x` (so ≥ 1); the
//!   result is geometric on {1, 2, ...} with mean `1 / (1 − e^(−1/MEAN))`;
//! - `lognormal:MEDIAN:SIGMA[:MAX]` returns `round(x)` clamped to `[1, MAX]`
//!   (`MAX` defaults to `u32::MAX`).

use std::fmt;

use rand::RngExt;

use crate::error::InputError;
use crate::rng::SimRng;
use crate::workload::Category;
use crate::workload::cdf::LengthCdf;

/// A distribution of one length (ISL or OSL) in tokens.
#[derive(Debug, Clone, PartialEq)]
pub enum LengthDist {
    /// Always `n_tok`.
    Fixed {
        /// The length.
        n_tok: u32,
    },
    /// Uniform integer in `[lo_tok, hi_tok]`.
    Uniform {
        /// Smallest length.
        lo_tok: u32,
        /// Largest length.
        hi_tok: u32,
    },
    /// `ceil` of an exponential draw with mean `mean_tok`.
    Exp {
        /// Mean of the continuous exponential.
        mean_tok: f64,
    },
    /// `round(median · e^(sigma·Z))`, clamped to `[1, max_tok]`.
    LogNormal {
        /// Median of the continuous distribution.
        median_tok: f64,
        /// Standard deviation of the log.
        sigma: f64,
        /// Optional clamp.
        max_tok: Option<u32>,
    },
    /// Uniform integer in `[ceil(n·ratio), n]` (the InferenceMAX convention).
    Range {
        /// Largest length.
        n_tok: u32,
        /// Lower bound as a fraction of `n_tok`, in `[0, 1]`.
        ratio: f64,
    },
}

fn parse_u32(flag: &str, spec: &str, what: &str, s: &str) -> Result<u32, InputError> {
    match s.trim().parse::<u32>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(InputError::field(
            flag,
            format!("`{spec}`: {what} `{s}` is not a positive integer"),
        )),
    }
}

fn parse_pos_f64(flag: &str, spec: &str, what: &str, s: &str) -> Result<f64, InputError> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(InputError::field(
            flag,
            format!("`{spec}`: {what} `{s}` is not a positive finite number"),
        )),
    }
}

/// The standard normal upper tail `P(Z > z)`, via a rational Chebyshev-style
/// approximation of `erfc` (fractional error below 1.2e-7 everywhere).
pub(crate) fn normal_sf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.5 * a);
    let poly = -a * a - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    let erfc = if x >= 0.0 { erfc } else { 2.0 - erfc };
    0.5 * erfc
}

impl LengthDist {
    /// Parse a spec string; `flag` names the flag or field in error messages.
    pub fn parse(flag: &str, spec: &str) -> Result<Self, InputError> {
        let parts: Vec<&str> = spec.trim().split(':').collect();
        let bad_arity =
            |form: &str| InputError::field(flag, format!("`{spec}`: expected `{form}`"));
        match parts[0].trim().to_ascii_lowercase().as_str() {
            "fixed" => {
                let [_, n] = parts[..] else {
                    return Err(bad_arity("fixed:N"));
                };
                Ok(LengthDist::Fixed {
                    n_tok: parse_u32(flag, spec, "N", n)?,
                })
            }
            "uniform" => {
                let [_, a, b] = parts[..] else {
                    return Err(bad_arity("uniform:A:B"));
                };
                let lo_tok = parse_u32(flag, spec, "A", a)?;
                let hi_tok = parse_u32(flag, spec, "B", b)?;
                if lo_tok > hi_tok {
                    return Err(InputError::field(flag, format!("`{spec}`: expected A ≤ B")));
                }
                Ok(LengthDist::Uniform { lo_tok, hi_tok })
            }
            "exp" => {
                let [_, m] = parts[..] else {
                    return Err(bad_arity("exp:MEAN"));
                };
                Ok(LengthDist::Exp {
                    mean_tok: parse_pos_f64(flag, spec, "MEAN", m)?,
                })
            }
            "lognormal" => {
                let (m, s, max) = match parts[..] {
                    [_, m, s] => (m, s, None),
                    [_, m, s, mx] => (m, s, Some(mx)),
                    _ => return Err(bad_arity("lognormal:MEDIAN:SIGMA[:MAX]")),
                };
                let median_tok = parse_pos_f64(flag, spec, "MEDIAN", m)?;
                let sigma = match s.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= 0.0 => v,
                    _ => {
                        return Err(InputError::field(
                            flag,
                            format!("`{spec}`: SIGMA `{s}` is not a finite number ≥ 0"),
                        ));
                    }
                };
                let max_tok = max.map(|mx| parse_u32(flag, spec, "MAX", mx)).transpose()?;
                Ok(LengthDist::LogNormal {
                    median_tok,
                    sigma,
                    max_tok,
                })
            }
            "range" => {
                let [_, n, r] = parts[..] else {
                    return Err(bad_arity("range:N:RATIO"));
                };
                let n_tok = parse_u32(flag, spec, "N", n)?;
                let ratio = match r.trim().parse::<f64>() {
                    Ok(v) if (0.0..=1.0).contains(&v) => v,
                    _ => {
                        return Err(InputError::field(
                            flag,
                            format!("`{spec}`: RATIO `{r}` is not a number in [0, 1]"),
                        ));
                    }
                };
                Ok(LengthDist::Range { n_tok, ratio })
            }
            other => Err(InputError::field(
                flag,
                format!(
                    "`{spec}`: unknown distribution `{other}`; expected fixed:N, uniform:A:B, \
                     exp:MEAN, lognormal:MEDIAN:SIGMA[:MAX] or range:N:RATIO"
                ),
            )),
        }
    }

    fn range_lo(n_tok: u32, ratio: f64) -> u32 {
        // Smallest integer ≥ n·ratio (with a little slack for float noise), at least 1.
        let lo = (n_tok as f64 * ratio - 1e-9).ceil();
        (lo.max(1.0) as u32).min(n_tok)
    }

    /// Draw one length (≥ 1).
    pub fn sample(&self, rng: &mut SimRng) -> u32 {
        match *self {
            LengthDist::Fixed { n_tok } => n_tok,
            LengthDist::Uniform { lo_tok, hi_tok } => rng.random_range(lo_tok..=hi_tok),
            LengthDist::Exp { mean_tok } => {
                let u = 1.0 - rng.random::<f64>(); // (0, 1]
                let x = -u.ln() * mean_tok;
                x.ceil().clamp(1.0, u32::MAX as f64) as u32
            }
            LengthDist::LogNormal {
                median_tok,
                sigma,
                max_tok,
            } => {
                let z: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, rng);
                let x = median_tok * (sigma * z).exp();
                let max = max_tok.unwrap_or(u32::MAX) as f64;
                x.round().clamp(1.0, max) as u32
            }
            LengthDist::Range { n_tok, ratio } => {
                rng.random_range(Self::range_lo(n_tok, ratio)..=n_tok)
            }
        }
    }

    /// Mean of the sampled integer distribution.
    ///
    /// Exact for `fixed`, `uniform`, `range` and `exp`; for `lognormal` the
    /// rounding is summed term by term up to 200,000 tokens and the remaining
    /// tail integrated in closed form.
    pub fn mean(&self) -> f64 {
        match *self {
            LengthDist::Fixed { n_tok } => n_tok as f64,
            LengthDist::Uniform { lo_tok, hi_tok } => (lo_tok as f64 + hi_tok as f64) / 2.0,
            LengthDist::Exp { mean_tok } => 1.0 / -(-1.0 / mean_tok).exp_m1(),
            LengthDist::LogNormal {
                median_tok,
                sigma,
                max_tok,
            } => lognormal_rounded_mean(median_tok, sigma, max_tok.unwrap_or(u32::MAX)),
            LengthDist::Range { n_tok, ratio } => {
                (Self::range_lo(n_tok, ratio) as f64 + n_tok as f64) / 2.0
            }
        }
    }
}

/// `E[clamp(round(X), 1, max)]` for `X = median · e^(sigma·Z)`.
///
/// Uses `E[Y] = Σ_{k=1..max} P(Y ≥ k) = 1 + Σ_{k=2..max} P(X ≥ k − ½)`.
fn lognormal_rounded_mean(median: f64, sigma: f64, max: u32) -> f64 {
    if sigma == 0.0 {
        return median.round().clamp(1.0, max as f64);
    }
    let mu = median.ln();
    let tail = |x: f64| normal_sf((x.ln() - mu) / sigma); // P(X ≥ x)
    const EXACT_LIMIT: u32 = 200_000;
    let k_end = max.min(EXACT_LIMIT);
    let mut sum = 1.0;
    for k in 2..=k_end {
        sum += tail(k as f64 - 0.5);
    }
    if max > k_end {
        // Σ_{k=K+1..M} P(X ≥ k − ½) ≈ ∫_K^M P(X ≥ x) dx = E[(X−K)+] − E[(X−M)+].
        let partial = |a: f64| {
            let d = (mu - a.ln()) / sigma;
            (mu + sigma * sigma / 2.0).exp() * normal_sf(-(d + sigma)) - a * normal_sf(-d)
        };
        sum += (partial(k_end as f64) - partial(max as f64)).max(0.0);
    }
    sum
}

impl fmt::Display for LengthDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LengthDist::Fixed { n_tok } => write!(f, "fixed:{n_tok}"),
            LengthDist::Uniform { lo_tok, hi_tok } => write!(f, "uniform:{lo_tok}:{hi_tok}"),
            LengthDist::Exp { mean_tok } => write!(f, "exp:{mean_tok}"),
            LengthDist::LogNormal {
                median_tok,
                sigma,
                max_tok,
            } => {
                write!(f, "lognormal:{median_tok}:{sigma}")?;
                if let Some(m) = max_tok {
                    write!(f, ":{m}")?;
                }
                Ok(())
            }
            LengthDist::Range { n_tok, ratio } => write!(f, "range:{n_tok}:{ratio}"),
        }
    }
}

/// How a request's ISL and OSL are drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum LengthModel {
    /// A total-token CDF split as ISL = max(1, floor(input_frac·total)),
    /// OSL = max(1, total − ISL).
    Cdf {
        /// The total-length CDF.
        cdf: LengthCdf,
        /// Fraction of the total that is input, in (0, 1).
        input_frac: f64,
    },
    /// Independent ISL and OSL distributions.
    Separate {
        /// Input length distribution.
        isl: LengthDist,
        /// Output length distribution.
        osl: LengthDist,
    },
}

/// The CDF split of one total length into `(isl, osl)`.
fn split_total(total: u32, input_frac: f64) -> (u32, u32) {
    let isl = ((input_frac * total as f64).floor() as u32).max(1);
    let osl = total.saturating_sub(isl).max(1);
    (isl, osl)
}

impl LengthModel {
    /// Draw `(isl_tok, osl_tok)`, both ≥ 1.
    pub fn sample(&self, rng: &mut SimRng) -> (u32, u32) {
        match self {
            LengthModel::Cdf { cdf, input_frac } => split_total(cdf.sample_total(rng), *input_frac),
            LengthModel::Separate { isl, osl } => {
                let i = isl.sample(rng);
                (i, osl.sample(rng))
            }
        }
    }

    /// Exact `(E[ISL], E[OSL])` of the CDF split (summed per integer total for
    /// CDFs up to 10M tokens; beyond that, the continuous split of the mean).
    fn cdf_means(cdf: &LengthCdf, input_frac: f64) -> (f64, f64) {
        if cdf.max_tokens() > 10_000_000 {
            let m = cdf.mean_total();
            return (input_frac * m, (1.0 - input_frac) * m);
        }
        let (mut mi, mut mo) = (0.0, 0.0);
        for (lo, hi, p) in cdf.bin_iter() {
            if p <= 0.0 {
                continue;
            }
            let (mut si, mut so) = (0.0, 0.0);
            for t in lo + 1..=hi {
                let (i, o) = split_total(t, input_frac);
                si += i as f64;
                so += o as f64;
            }
            let w = (hi - lo) as f64;
            mi += p * si / w;
            mo += p * so / w;
        }
        (mi, mo)
    }

    /// Mean input length.
    pub fn mean_isl(&self) -> f64 {
        match self {
            LengthModel::Cdf { cdf, input_frac } => Self::cdf_means(cdf, *input_frac).0,
            LengthModel::Separate { isl, .. } => isl.mean(),
        }
    }

    /// Mean output length.
    pub fn mean_osl(&self) -> f64 {
        match self {
            LengthModel::Cdf { cdf, input_frac } => Self::cdf_means(cdf, *input_frac).1,
            LengthModel::Separate { osl, .. } => osl.mean(),
        }
    }
}

/// Category weights (normalised to sum 1 when sampling).
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryMix {
    /// `(category, weight)`, weights ≥ 0 with a positive sum.
    weights: Vec<(Category, f64)>,
}

impl Default for CategoryMix {
    /// prose 0.60, code 0.25, rag 0.15.
    fn default() -> Self {
        CategoryMix {
            weights: vec![
                (Category::Prose, 0.60),
                (Category::Code, 0.25),
                (Category::Rag, 0.15),
            ],
        }
    }
}

impl CategoryMix {
    /// Parse `prose=0.6,code=0.25,rag=0.15` (categories prose, code, rag,
    /// mixed; weights ≥ 0 with a positive sum; they need not sum to 1).
    pub fn parse(flag: &str, spec: &str) -> Result<Self, InputError> {
        let mut weights: Vec<(Category, f64)> = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((name, w)) = item.split_once('=') else {
                return Err(InputError::field(
                    flag,
                    format!(
                        "`{item}`: expected CATEGORY=WEIGHT (e.g. prose=0.6,code=0.25,rag=0.15)"
                    ),
                ));
            };
            let cat = Category::from_word(name);
            if cat == Category::Other {
                return Err(InputError::field(
                    flag,
                    format!(
                        "unknown category `{}`; expected prose, code, rag or mixed",
                        name.trim()
                    ),
                ));
            }
            if weights.iter().any(|(c, _)| *c == cat) {
                return Err(InputError::field(
                    flag,
                    format!("category `{}` given twice", cat.as_str()),
                ));
            }
            let w = match w.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => v,
                _ => {
                    return Err(InputError::field(
                        flag,
                        format!(
                            "weight `{}` of {}: expected a finite number ≥ 0",
                            w.trim(),
                            cat.as_str()
                        ),
                    ));
                }
            };
            weights.push((cat, w));
        }
        if weights.iter().map(|w| w.1).sum::<f64>() <= 0.0 {
            return Err(InputError::field(
                flag,
                format!("`{spec}`: expected at least one positive weight"),
            ));
        }
        Ok(CategoryMix { weights })
    }

    /// The weights as given.
    pub fn weights(&self) -> &[(Category, f64)] {
        &self.weights
    }

    /// Draw one category.
    pub fn sample(&self, rng: &mut SimRng) -> Category {
        let total: f64 = self.weights.iter().map(|w| w.1).sum();
        let mut u = rng.random::<f64>() * total;
        for &(c, w) in &self.weights {
            if u < w {
                return c;
            }
            u -= w;
        }
        // Float round-off: the last category with a positive weight.
        self.weights
            .iter()
            .rev()
            .find(|w| w.1 > 0.0)
            .map_or(Category::Prose, |w| w.0)
    }
}

impl fmt::Display for CategoryMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (c, w)) in self.weights.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={w}", c.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn empirical_mean(d: &LengthDist, n: usize, seed: u64) -> (f64, u32, u32) {
        let mut rng = SimRng::seed_from_u64(seed);
        let (mut sum, mut lo, mut hi) = (0.0, u32::MAX, 0);
        for _ in 0..n {
            let x = d.sample(&mut rng);
            sum += x as f64;
            lo = lo.min(x);
            hi = hi.max(x);
        }
        (sum / n as f64, lo, hi)
    }

    #[test]
    fn each_dist_mean_matches_empirical() {
        let cases = [
            ("fixed:17", 0.0),
            ("uniform:10:20", 0.005),
            ("exp:3", 0.01),
            ("exp:0.2", 0.01),
            ("exp:500", 0.01),
            ("lognormal:1020:1.0:7000", 0.01),
            ("lognormal:129:1.0:1000", 0.01),
            ("lognormal:3:1.5", 0.02),
            ("lognormal:50:0.3", 0.005),
            ("range:1000:0.8", 0.005),
            ("range:7:0.5", 0.005),
        ];
        for (spec, tol) in cases {
            let d = LengthDist::parse("--isl", spec).unwrap();
            let (emp, lo, _) = empirical_mean(&d, 300_000, 11);
            let m = d.mean();
            assert!(lo >= 1, "{spec}");
            assert!(
                (emp - m).abs() <= tol * m + 1e-12,
                "{spec}: empirical {emp} vs mean {m}"
            );
        }
        // Exact values where they are simple.
        let m = LengthDist::parse("x", "exp:0.2").unwrap().mean();
        assert!((m - 1.0 / (1.0 - (-5.0f64).exp())).abs() < 1e-12);
        let r = LengthDist::parse("x", "range:7:0.5").unwrap();
        assert_eq!(r.mean(), 5.5); // uniform on [4, 7]
        let (_, lo, hi) = empirical_mean(&r, 10_000, 1);
        assert_eq!((lo, hi), (4, 7));
        let (_, _, hi) = empirical_mean(
            &LengthDist::parse("x", "lognormal:1020:1.0:7000").unwrap(),
            100_000,
            2,
        );
        assert_eq!(hi, 7000);
    }

    #[test]
    fn parse_errors_and_display_round_trip() {
        for bad in [
            "fixed:0",
            "fixed:-3",
            "fixed",
            "uniform:5:2",
            "uniform:1",
            "exp:0",
            "exp:nan",
            "lognormal:100",
            "lognormal:100:-1",
            "lognormal:100:1:0",
            "range:10:1.5",
            "gamma:2:3",
            "",
        ] {
            match LengthDist::parse("--osl", bad) {
                Err(InputError::Field { field, .. }) => assert_eq!(field, "--osl", "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        for good in [
            "fixed:5",
            "uniform:1:9",
            "exp:12.5",
            "lognormal:1020:1",
            "lognormal:1020:1.5:7000",
            "range:1024:0.8",
        ] {
            let d = LengthDist::parse("x", good).unwrap();
            assert_eq!(d.to_string(), good);
            assert_eq!(LengthDist::parse("x", &d.to_string()).unwrap(), d);
        }
    }

    #[test]
    fn normal_tail_is_accurate() {
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_sf(1.959_963_985) - 0.025).abs() < 1e-8);
        assert!((normal_sf(-1.0) - 0.841_344_746).abs() < 1e-7);
    }

    #[test]
    fn cdf_split_and_means() {
        let cdf = LengthCdf::from_points(vec![(1, 0.1), (10, 0.5), (1000, 1.0)]).unwrap();
        let m = LengthModel::Cdf {
            cdf,
            input_frac: 0.8,
        };
        let mut rng = SimRng::seed_from_u64(3);
        let n = 300_000;
        let (mut si, mut so) = (0.0, 0.0);
        for _ in 0..n {
            let (i, o) = m.sample(&mut rng);
            assert!(i >= 1 && o >= 1);
            si += i as f64;
            so += o as f64;
        }
        let (ei, eo) = (m.mean_isl(), m.mean_osl());
        assert!(
            (si / n as f64 - ei).abs() / ei < 0.01,
            "{} {ei}",
            si / n as f64
        );
        assert!(
            (so / n as f64 - eo).abs() / eo < 0.01,
            "{} {eo}",
            so / n as f64
        );
        assert_eq!(split_total(1, 0.8), (1, 1));
        assert_eq!(split_total(10, 0.8), (8, 2));
        assert_eq!(split_total(3, 0.5), (1, 2));
    }

    #[test]
    fn category_mix_parse_and_sample() {
        let mix = CategoryMix::parse("--categories", "prose=0.6, code=0.25,rag=0.15").unwrap();
        assert_eq!(mix, CategoryMix::default());
        let mut rng = SimRng::seed_from_u64(5);
        let n = 200_000;
        let mut counts = [0usize; 3];
        for _ in 0..n {
            match mix.sample(&mut rng) {
                Category::Prose => counts[0] += 1,
                Category::Code => counts[1] += 1,
                Category::Rag => counts[2] += 1,
                c => panic!("unexpected {c:?}"),
            }
        }
        for (c, p) in counts.iter().zip([0.6, 0.25, 0.15]) {
            assert!((*c as f64 / n as f64 - p).abs() < 0.005);
        }
        let only = CategoryMix::parse("f", "code=2").unwrap();
        assert!((0..100).all(|_| only.sample(&mut rng) == Category::Code));
        for bad in [
            "prose",
            "prose=-1",
            "poetry=1",
            "prose=0",
            "code=1,code=2",
            "",
        ] {
            assert!(CategoryMix::parse("--categories", bad).is_err(), "{bad}");
        }
        assert_eq!(CategoryMix::parse("f", &mix.to_string()).unwrap(), mix);
    }
}
