//! Total-token length CDFs loaded from JSON files.
//!
//! A CDF file is either a bare array `[[tokens, cumulative_fraction], ...]` or
//! an object holding that array under `"cdf"` (any other fields are provenance
//! and are ignored). Thresholds are strictly ascending positive integers;
//! fractions are finite, non-decreasing, in `[0, 1]`, and the last one is 1
//! within 1e-6.
//!
//! Sampling draws `u` in `(0, 1]`, takes the first bin whose fraction is ≥ `u`
//! and returns an integer drawn uniformly in `(previous threshold, threshold]`
//! (the first bin starts at 1). Bins with zero probability are never chosen.

use std::path::Path;

use rand::RngExt;

use crate::error::InputError;
use crate::rng::SimRng;
use crate::workload::builtin_cdf::{self, BuiltinMatch};

/// Tolerance on the last cumulative fraction (it must be 1 within this).
pub const LAST_FRACTION_TOLERANCE: f64 = 1e-6;

/// A validated total-token CDF and its sampler.
#[derive(Debug, Clone, PartialEq)]
pub struct LengthCdf {
    /// `(threshold_tok, cumulative_fraction)`, validated; the last fraction is
    /// stored as exactly 1.
    points: Vec<(u32, f64)>,
}

/// A validation failure: the offending index and what was expected.
type PointError = (usize, String);

fn validate(points: &[(u32, f64)]) -> Result<(), PointError> {
    if points.is_empty() {
        return Err((
            0,
            "the CDF is empty; expected at least one [tokens, fraction] pair".into(),
        ));
    }
    let mut prev: Option<(u32, f64)> = None;
    for (i, &(tok, frac)) in points.iter().enumerate() {
        if tok == 0 {
            return Err((i, "threshold is 0; expected a positive integer".into()));
        }
        if !frac.is_finite() {
            return Err((
                i,
                format!("fraction is {frac}; expected a finite number in [0, 1]"),
            ));
        }
        if !(0.0..=1.0).contains(&frac) {
            return Err((i, format!("fraction {frac} is outside [0, 1]")));
        }
        if let Some((ptok, pfrac)) = prev {
            if tok <= ptok {
                return Err((
                    i,
                    format!(
                        "threshold {tok} is not above the previous threshold {ptok}; \
                         expected strictly ascending thresholds"
                    ),
                ));
            }
            if frac < pfrac {
                return Err((
                    i,
                    format!(
                        "fraction {frac} is below the previous fraction {pfrac}; \
                         expected non-decreasing fractions"
                    ),
                ));
            }
        }
        prev = Some((tok, frac));
    }
    let last = points.len() - 1;
    let last_frac = points[last].1;
    if (last_frac - 1.0).abs() > LAST_FRACTION_TOLERANCE {
        return Err((
            last,
            format!("last fraction is {last_frac}; expected 1 (within 1e-6)"),
        ));
    }
    Ok(())
}

/// True the first time this process asks about `path` (so a CDF loaded by
/// several planner stages is announced once).
fn first_mention(path: &Path) -> bool {
    static SEEN: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.iter().any(|p| p == path) {
        return false;
    }
    seen.push(path.to_path_buf());
    true
}

/// Read one `[tokens, fraction]` entry of a JSON CDF array.
fn json_point(v: &serde_json::Value) -> Result<(u32, f64), String> {
    let pair = v
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(|| format!("found {v}; expected a [tokens, fraction] pair"))?;
    let tok = match &pair[0] {
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u32::try_from(u).map_err(|_| format!("threshold {u} exceeds {}", u32::MAX))?
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f > 0.0 && f <= u32::MAX as f64 {
                    f as u32
                } else {
                    return Err(format!("threshold {n}; expected a positive integer"));
                }
            }
        }
        other => return Err(format!("threshold {other}; expected a positive integer")),
    };
    let frac = pair[1]
        .as_f64()
        .ok_or_else(|| format!("fraction {}; expected a number in [0, 1]", pair[1]))?;
    Ok((tok, frac))
}

impl LengthCdf {
    /// Load and validate a CDF file (bare array, or object with a `"cdf"` array).
    ///
    /// A path that does not exist but names a built-in CDF (`azure`,
    /// `agent_heavy`, the reference's `data/azure_cdf.json`; see
    /// [`builtin_cdf`]) loads the built-in; a path-like spelling logs one
    /// warning saying so.
    pub fn load(path: &Path) -> Result<LengthCdf, InputError> {
        if !path.exists() {
            if let Some((builtin, how)) = builtin_cdf::lookup(path) {
                if how == BuiltinMatch::ReferenceFile && first_mention(path) {
                    tracing::warn!(
                        "{}: no such file; using the built-in `{}` CDF (the same published data)",
                        path.display(),
                        builtin.name
                    );
                }
                return Self::parse_json(builtin.json, Path::new(builtin.name));
            }
            return Err(InputError::File {
                path: path.to_path_buf(),
                reason: format!(
                    "cannot read: no such file; expected a CDF JSON file or a built-in name ({})",
                    builtin_cdf::names()
                ),
            });
        }
        let text = crate::input_file::read_text(path)?;
        Self::parse_json(&text, path)
    }

    /// Parse and validate CDF JSON text; `path` names it in errors.
    fn parse_json(text: &str, path: &Path) -> Result<LengthCdf, InputError> {
        let cdf_err = |index: usize, reason: String| InputError::Cdf {
            path: path.to_path_buf(),
            index,
            reason,
        };
        if text.trim().is_empty() {
            return Err(InputError::EmptyFile {
                path: path.to_path_buf(),
                expected: "a JSON array of [tokens, cumulative_fraction] pairs".into(),
            });
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| InputError::File {
                path: path.to_path_buf(),
                reason: format!("invalid JSON: {e}"),
            })?;
        let array = match &value {
            serde_json::Value::Array(a) => a,
            serde_json::Value::Object(o) => match o.get("cdf") {
                Some(serde_json::Value::Array(a)) => a,
                _ => {
                    return Err(InputError::File {
                        path: path.to_path_buf(),
                        reason: "expected a JSON array, or an object with a \"cdf\" array".into(),
                    });
                }
            },
            _ => {
                return Err(InputError::File {
                    path: path.to_path_buf(),
                    reason: "expected a JSON array, or an object with a \"cdf\" array".into(),
                });
            }
        };
        let mut points = Vec::with_capacity(array.len());
        for (i, v) in array.iter().enumerate() {
            points.push(json_point(v).map_err(|r| cdf_err(i, r))?);
        }
        validate(&points).map_err(|(i, r)| cdf_err(i, r))?;
        Ok(Self::from_valid(points))
    }

    /// Build a CDF from `(threshold_tok, cumulative_fraction)` points, validated
    /// as for [`LengthCdf::load`]; the error names the offending index.
    pub fn from_points(points: Vec<(u32, f64)>) -> Result<Self, String> {
        validate(&points).map_err(|(i, r)| format!("CDF entry {i}: {r}"))?;
        Ok(Self::from_valid(points))
    }

    fn from_valid(mut points: Vec<(u32, f64)>) -> Self {
        if let Some(last) = points.last_mut() {
            last.1 = 1.0;
        }
        LengthCdf { points }
    }

    /// The validated points (the last fraction is exactly 1).
    pub fn points(&self) -> &[(u32, f64)] {
        &self.points
    }

    /// The largest total length the CDF can produce.
    pub fn max_tokens(&self) -> u32 {
        self.points.last().map_or(1, |p| p.0)
    }

    /// Iterate bins as `(low_exclusive_tok, high_inclusive_tok, probability)`.
    fn bins(&self) -> impl Iterator<Item = (u32, u32, f64)> + '_ {
        let mut prev = (0u32, 0.0f64);
        self.points.iter().map(move |&(tok, frac)| {
            let bin = (prev.0, tok, frac - prev.1);
            prev = (tok, frac);
            bin
        })
    }

    /// Draw one total length (≥ 1, ≤ [`LengthCdf::max_tokens`]).
    pub fn sample_total(&self, rng: &mut SimRng) -> u32 {
        // u in (0, 1]: a bin with fraction 0 (or equal to its predecessor's) is never chosen.
        let u = 1.0 - rng.random::<f64>();
        let idx = self
            .points
            .partition_point(|p| p.1 < u)
            .min(self.points.len() - 1);
        let lo = if idx == 0 { 0 } else { self.points[idx - 1].0 };
        let hi = self.points[idx].0;
        rng.random_range(lo + 1..=hi)
    }

    /// The exact mean of [`LengthCdf::sample_total`].
    pub fn mean_total(&self) -> f64 {
        self.bins()
            .map(|(lo, hi, p)| p * (lo as f64 + 1.0 + hi as f64) / 2.0)
            .sum()
    }

    /// Probability that a sampled total is ≤ `tokens` (exact for the sampler:
    /// linear inside a bin, since lengths are uniform within bins).
    pub fn fraction_at_or_below(&self, tokens: u32) -> f64 {
        let mut acc = 0.0;
        for (lo, hi, p) in self.bins() {
            if tokens >= hi {
                acc += p;
            } else {
                if tokens > lo {
                    acc += p * (tokens - lo) as f64 / (hi - lo) as f64;
                }
                break;
            }
        }
        acc.min(1.0)
    }

    /// Iterate the exact distribution as `(low_exclusive_tok, high_inclusive_tok,
    /// probability)` bins; each integer inside a bin has probability `p / width`.
    pub fn bin_iter(&self) -> impl Iterator<Item = (u32, u32, f64)> + '_ {
        self.bins()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn err_index(points: Vec<(u32, f64)>) -> String {
        LengthCdf::from_points(points).unwrap_err()
    }

    #[test]
    fn validation_names_the_offending_index() {
        assert!(err_index(vec![]).starts_with("CDF entry 0:"));
        let e = err_index(vec![(10, 0.2), (10, 0.5), (20, 1.0)]);
        assert!(
            e.starts_with("CDF entry 1:") && e.contains("ascending"),
            "{e}"
        );
        let e = err_index(vec![(10, 0.2), (5, 0.5), (20, 1.0)]);
        assert!(e.starts_with("CDF entry 1:"), "{e}");
        let e = err_index(vec![(10, 0.2), (20, 1.5), (30, 1.0)]);
        assert!(e.starts_with("CDF entry 1:") && e.contains("[0, 1]"), "{e}");
        let e = err_index(vec![(10, 0.2), (20, 0.6), (30, 0.5), (40, 1.0)]);
        assert!(
            e.starts_with("CDF entry 2:") && e.contains("non-decreasing"),
            "{e}"
        );
        let e = err_index(vec![(10, 0.2), (20, 0.9)]);
        assert!(
            e.starts_with("CDF entry 1:") && e.contains("expected 1"),
            "{e}"
        );
        let e = err_index(vec![(10, 0.2), (20, f64::NAN), (30, 1.0)]);
        assert!(e.starts_with("CDF entry 1:") && e.contains("finite"), "{e}");
        let e = err_index(vec![(0, 0.2), (20, 1.0)]);
        assert!(e.starts_with("CDF entry 0:"), "{e}");
        let e = err_index(vec![(10, -0.1), (20, 1.0)]);
        assert!(e.starts_with("CDF entry 0:"), "{e}");
        // Within tolerance is accepted and stored as exactly 1.
        let c = LengthCdf::from_points(vec![(10, 0.5), (20, 1.0 - 5e-7)]).unwrap();
        assert_eq!(c.points()[1].1, 1.0);
    }

    fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kvfleet-cdf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn load_accepts_both_layouts_and_rejects_with_index() {
        let p = write_temp("bare.json", "[[100, 0.5], [200, 1.0]]");
        let c = LengthCdf::load(&p).unwrap();
        assert_eq!(c.points(), &[(100, 0.5), (200, 1.0)]);
        let p = write_temp(
            "obj.json",
            r#"{"source": "x", "n_samples": 5, "cdf": [[100, 0.5], [200, 1.0]]}"#,
        );
        assert_eq!(LengthCdf::load(&p).unwrap(), c);
        let p = write_temp("bad.json", "[[100, 0.5], [200, 0.4], [300, 1.0]]");
        match LengthCdf::load(&p) {
            Err(InputError::Cdf { index, path, .. }) => {
                assert_eq!(index, 1);
                assert_eq!(path, p);
            }
            other => panic!("{other:?}"),
        }
        let p = write_temp("frac_tok.json", "[[100.5, 0.5], [200, 1.0]]");
        assert!(matches!(
            LengthCdf::load(&p),
            Err(InputError::Cdf { index: 0, .. })
        ));
        let p = write_temp("shape.json", "[[100, 0.5], [200]]");
        assert!(matches!(
            LengthCdf::load(&p),
            Err(InputError::Cdf { index: 1, .. })
        ));
        let p = write_temp("empty_arr.json", "[]");
        assert!(matches!(
            LengthCdf::load(&p),
            Err(InputError::Cdf { index: 0, .. })
        ));
        let p = write_temp("empty.json", "");
        assert!(matches!(
            LengthCdf::load(&p),
            Err(InputError::EmptyFile { .. })
        ));
        let p = write_temp("notjson.json", "{oops");
        assert!(matches!(LengthCdf::load(&p), Err(InputError::File { .. })));
    }

    #[test]
    fn sampling_matches_cdf_and_mean() {
        let cdf =
            LengthCdf::from_points(vec![(64, 0.0), (128, 0.1), (512, 0.6), (2048, 1.0)]).unwrap();
        let mut rng = SimRng::seed_from_u64(7);
        let n = 400_000;
        let edges = [32u32, 64, 100, 128, 300, 512, 1000, 2048];
        let mut counts = vec![0u64; edges.len()];
        let mut sum = 0.0;
        for _ in 0..n {
            let x = cdf.sample_total(&mut rng);
            assert!((65..=2048).contains(&x), "{x}");
            sum += x as f64;
            let k = edges.partition_point(|&e| e < x);
            counts[k] += 1;
        }
        // Chi-square over the cells defined by `edges`.
        let mut chi2 = 0.0;
        let mut prev = 0.0;
        for (k, &e) in edges.iter().enumerate() {
            let f = cdf.fraction_at_or_below(e);
            let expected = (f - prev) * n as f64;
            prev = f;
            if expected > 0.0 {
                chi2 += (counts[k] as f64 - expected).powi(2) / expected;
            } else {
                assert_eq!(counts[k], 0, "cell {k} should be empty");
            }
        }
        // 6 non-empty cells → 5 degrees of freedom; 0.1% critical value ≈ 20.5.
        assert!(chi2 < 20.5, "chi2 = {chi2}");
        let emp = sum / n as f64;
        let m = cdf.mean_total();
        let exact =
            0.1 * (65.0 + 128.0) / 2.0 + 0.5 * (129.0 + 512.0) / 2.0 + 0.4 * (513.0 + 2048.0) / 2.0;
        assert!((m - exact).abs() < 1e-9);
        assert!((emp - m).abs() / m < 0.005, "emp {emp} mean {m}");
        assert_eq!(cdf.fraction_at_or_below(64), 0.0);
        assert!((cdf.fraction_at_or_below(128) - 0.1).abs() < 1e-12);
        assert!((cdf.fraction_at_or_below(320) - 0.35).abs() < 1e-12);
        assert_eq!(cdf.fraction_at_or_below(5000), 1.0);
        assert_eq!(cdf.max_tokens(), 2048);
    }

    #[test]
    fn builtin_cdfs_load_by_name_and_reference_spelling() {
        for b in builtin_cdf::BUILTIN_CDFS {
            let by_name = LengthCdf::load(Path::new(b.name)).unwrap();
            let by_file = LengthCdf::load(&Path::new("no/such/dir").join(b.file_name)).unwrap();
            assert_eq!(by_name, by_file, "{}", b.name);
            assert!(by_name.points().len() >= 10, "{}", b.name);
        }
        // A missing file that names no built-in lists the names.
        let err = LengthCdf::load(Path::new("no/such/dir/azure.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no such file") && err.contains("agent-heavy"),
            "{err}"
        );
    }

    #[test]
    fn builtin_cdfs_equal_the_shared_data_files() {
        let Some(dir) =
            crate::shared_data::shared_data("cdf", "builtin_cdfs_equal_the_shared_data_files")
        else {
            return;
        };
        for b in builtin_cdf::BUILTIN_CDFS {
            let shared = LengthCdf::load(&dir.join(b.file_name)).unwrap();
            assert_eq!(
                LengthCdf::load(Path::new(b.name)).unwrap(),
                shared,
                "{}",
                b.name
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn from_points_errors_or_samples_in_range(
            raw in proptest::collection::vec((0u32..5000, -0.2f64..1.2), 0..12),
            seed in 0u64..1000,
        ) {
            if let Ok(cdf) = LengthCdf::from_points(raw) {
                let mut rng = SimRng::seed_from_u64(seed);
                for _ in 0..200 {
                    let x = cdf.sample_total(&mut rng);
                    proptest::prop_assert!(x >= 1 && x <= cdf.max_tokens());
                }
                let m = cdf.mean_total();
                proptest::prop_assert!(m >= 1.0 - 1e-9 && m <= cdf.max_tokens() as f64 + 1e-9);
            }
        }

        #[test]
        fn sorted_valid_points_are_accepted(
            mut toks in proptest::collection::btree_set(1u32..100_000, 1..10),
            fr in proptest::collection::vec(0.0f64..1.0, 10),
        ) {
            let toks: Vec<u32> = std::mem::take(&mut toks).into_iter().collect();
            let mut fr: Vec<f64> = fr[..toks.len()].to_vec();
            fr.sort_by(f64::total_cmp);
            let n = toks.len();
            fr[n - 1] = 1.0;
            let pts: Vec<(u32, f64)> = toks.into_iter().zip(fr).collect();
            let cdf = LengthCdf::from_points(pts);
            proptest::prop_assert!(cdf.is_ok());
        }
    }
}
