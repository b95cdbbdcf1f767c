//! Workloads: where requests come from.
//!
//! A [`Request`] carries its arrival time, lengths, category and optional
//! trace metadata. A [`RequestSource`] yields requests in arrival order and is
//! streamed (never loaded whole). Sources:
//! - [`cdf`]: total-token CDF files (validated), split into ISL/OSL;
//! - [`builtin_cdf`]: the reference tool's four published CDFs, by name (`azure`, ...);
//! - [`lengths`]: synthetic ISL/OSL distributions (`fixed:N`, `uniform:A:B`, ...);
//! - [`arrivals`]: Poisson, piecewise rate profiles, two-state MMPP;
//! - [`synthetic`]: arrivals × lengths × categories, N requests;
//! - [`trace`]: replay of fleet-sim, Azure, Mooncake, Vidur/Splitwise and BurstGPT traces.

pub mod arrivals;
pub mod builtin_cdf;
pub mod cdf;
pub mod lengths;
pub mod memory;
pub mod merge;
pub mod read_ahead;
pub mod replay;
pub mod spec;
pub mod synthetic;
pub mod trace;

use crate::error::InputError;

/// Request category; the free-text form keeps the trace's own word in
/// [`RequestExtra::category_text`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Natural-language prose (compressible).
    #[default]
    Prose,
    /// Source code (not safe to compress).
    Code,
    /// Retrieval-augmented generation (compressible).
    Rag,
    /// A mix (compressible).
    Mixed,
    /// Anything else; the text is in the request's extra data.
    Other,
}

impl Category {
    /// Parse a category word; unknown words map to [`Category::Other`].
    pub fn from_word(word: &str) -> Category {
        match word.trim().to_ascii_lowercase().as_str() {
            "prose" | "chat" => Category::Prose,
            "code" => Category::Code,
            "rag" => Category::Rag,
            "mixed" => Category::Mixed,
            _ => Category::Other,
        }
    }

    /// The category's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Prose => "prose",
            Category::Code => "code",
            Category::Rag => "rag",
            Category::Mixed => "mixed",
            Category::Other => "other",
        }
    }
}

/// Rarely present request data, boxed so that the common request stays small.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestExtra {
    /// Model id (`model` or `selected_model` in a trace).
    pub model: Option<String>,
    /// The category word when it is not one of the built-in categories.
    pub category_text: Option<String>,
    /// Free-form labels (e.g. `("complexity", "low")`, `("selected_model", "llama8b")`).
    pub labels: Vec<(String, String)>,
    /// Prefix block hashes (Mooncake `hash_ids`).
    pub prefix_hashes: Vec<u64>,
    /// A predicted output length, if the trace carries one.
    pub predicted_output_tokens: Option<u32>,
}

/// One inference request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Arrival time, ns since the start of the run.
    pub arrival_ns: u64,
    /// Prompt tokens (ISL), ≥ 1.
    pub input_tokens: u32,
    /// Output tokens (OSL), ≥ 1.
    pub output_tokens: u32,
    /// Category.
    pub category: Category,
    /// Optional trace metadata.
    pub extra: Option<Box<RequestExtra>>,
}

impl Request {
    /// A plain request with no metadata.
    pub fn new(arrival_ns: u64, input_tokens: u32, output_tokens: u32) -> Self {
        Request {
            arrival_ns,
            input_tokens,
            output_tokens,
            category: Category::Prose,
            extra: None,
        }
    }

    /// ISL + OSL.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens as u64 + self.output_tokens as u64
    }

    /// The category as text (the trace's own word for [`Category::Other`]).
    pub fn category_str(&self) -> &str {
        match (
            &self.category,
            self.extra.as_ref().and_then(|e| e.category_text.as_deref()),
        ) {
            (Category::Other, Some(t)) => t,
            (c, _) => c.as_str(),
        }
    }
}

/// Counts of trace rows that were skipped rather than replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SkipCounts {
    /// Malformed rows skipped because of `--skip-bad-rows`.
    pub bad_rows: u64,
    /// Rows describing failed requests (e.g. BurstGPT rows with 0 response tokens).
    pub failed_requests: u64,
}

/// A stream of requests in non-decreasing arrival order.
pub trait RequestSource: Send {
    /// The next request, `Ok(None)` at the end, or an error naming file/line/field.
    fn next_request(&mut self) -> Result<Option<Request>, InputError>;

    /// The next request's arrival time alone, ns (`Ok(None)` at the end),
    /// for counting arrivals: a source may skip drawing the rest of the
    /// request, so one read this way is not read by
    /// [`RequestSource::next_request`] afterwards (open a fresh one).
    fn next_arrival_only_ns(&mut self) -> Result<Option<u64>, InputError> {
        Ok(self.next_request()?.map(|r| r.arrival_ns))
    }

    /// How many requests the source will yield, if known in advance.
    fn len_hint(&self) -> Option<u64> {
        None
    }

    /// Rows skipped so far (traces only).
    fn skipped(&self) -> SkipCounts {
        SkipCounts::default()
    }
}

/// Longest simulated time, s (1e9 s ≈ 31.7 years): arrivals and events past
/// it are refused, so that integer-nanosecond times (u64, ≈ 584 years) keep
/// ample room for service times and never overflow.
pub const MAX_SIM_TIME_S: f64 = 1e9;

/// [`MAX_SIM_TIME_S`] in nanoseconds.
pub const MAX_SIM_TIME_NS: u64 = 1_000_000_000 * 1_000_000_000;

/// Accepted range of a trace's `time_scale` (gap multiplier).
pub const TIME_SCALE_RANGE: (f64, f64) = (1e-6, 1e6);

/// Longest mean think time of a closed loop, s (one year).
pub const MAX_THINK_TIME_S: f64 = 3.15e7;

/// Convert seconds (f64) to integer nanoseconds, saturating; negative → 0.
pub fn secs_to_ns(s: f64) -> u64 {
    if s.is_nan() || s <= 0.0 {
        0
    } else {
        let ns = s * 1e9;
        if ns >= u64::MAX as f64 {
            u64::MAX
        } else {
            ns.round() as u64
        }
    }
}
