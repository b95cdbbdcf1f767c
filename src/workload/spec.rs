//! A serialisable description of a workload: what scenario TOML `[workload]`
//! tables hold and what the workload CLI flags resolve to.
//!
//! Fields mirror the CLI flags (`isl = "lognormal:1020:1.0:7000"`,
//! `lam = 40.0`, `rate_profile = "0:50,600:120"`, `trace = { path = "..." }`,
//! ...). Unset fields take the built-in default chat workload's values.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::rng::Streams;
use crate::workload::RequestSource;
use crate::workload::arrivals::ArrivalProcess;
use crate::workload::cdf::LengthCdf;
use crate::workload::lengths::{CategoryMix, LengthDist, LengthModel};
use crate::workload::synthetic::SyntheticSource;
use crate::workload::trace::{self, TraceFormat, TraceOptions};
use crate::workload::{MAX_SIM_TIME_S, MAX_THINK_TIME_S};

/// Default Poisson arrival rate of the built-in chat workload, requests/s.
pub const DEFAULT_CHAT_LAM: f64 = 40.0;
/// Default number of requests of a synthetic workload.
pub const DEFAULT_N_REQUESTS: u64 = 100_000;
/// Most requests of one synthetic or closed-loop run (about half an hour
/// of simulation at the engine's usual speed).
pub const MAX_N_REQUESTS: u64 = 1_000_000_000;
/// Default CDF input fraction (ISL = floor(0.8 · total)).
pub const DEFAULT_INPUT_FRAC: f64 = 0.8;
/// Default chat ISL: lognormal with median 1020 tokens, σ = 1, clamped at 7000.
pub const DEFAULT_CHAT_ISL: &str = "lognormal:1020:1.0:7000";
/// Default chat OSL: lognormal with median 129 tokens, σ = 1, clamped at 1000.
pub const DEFAULT_CHAT_OSL: &str = "lognormal:129:1.0:1000";

/// A trace replay in a workload description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// The trace file.
    pub path: PathBuf,
    /// Force a format instead of detecting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TraceFormat>,
    /// Multiplies inter-arrival gaps (load × 1/`time_scale`).
    #[serde(default = "one")]
    pub time_scale: f64,
    /// Replay at most this many requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
    /// Skip (and count) malformed rows.
    #[serde(default)]
    pub skip_bad_rows: bool,
}

fn one() -> f64 {
    1.0
}

impl TraceSpec {
    /// The replay options.
    pub fn options(&self) -> TraceOptions {
        TraceOptions {
            format: self.format,
            time_scale: self.time_scale,
            max_requests: self.max_requests,
            skip_bad_rows: self.skip_bad_rows,
        }
    }
}

/// What a workload is made of. See the module docs for the field forms.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Total-token CDF file (split by `input_frac`); excludes `isl`/`osl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdf: Option<PathBuf>,
    /// Input share of a CDF total, in (0, 1); default 0.8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_frac: Option<f64>,
    /// ISL distribution (`fixed:N`, `uniform:A:B`, `exp:MEAN`,
    /// `lognormal:MEDIAN:SIGMA[:MAX]`, `range:N:RATIO`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isl: Option<String>,
    /// OSL distribution (same forms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub osl: Option<String>,
    /// Category mix `prose=0.6,code=0.25,rag=0.15`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<String>,
    /// Poisson arrival rate, requests/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lam: Option<f64>,
    /// Piecewise-constant rate profile `START_S:RATE,...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_profile: Option<String>,
    /// Repeat the rate profile with this period, s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_period_s: Option<f64>,
    /// Two-state MMPP `HIGH:LOW:MEAN_HIGH_S:MEAN_LOW_S`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmpp: Option<String>,
    /// Closed loop: number of users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u32>,
    /// Closed loop: mean exponential think time, s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time_s: Option<f64>,
    /// Replay a trace instead of generating requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceSpec>,
    /// Number of requests (synthetic and closed-loop workloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_requests: Option<u64>,
}

/// How fields are named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldNaming {
    /// Command-line flags (`--input-frac`).
    Flags,
    /// Scenario TOML fields (`workload.input_frac`).
    Toml,
}

impl FieldNaming {
    /// The name of a spec field (`trace.time_scale`, `n_requests`, ...).
    pub fn name(self, key: &str) -> String {
        match self {
            FieldNaming::Toml => format!("workload.{key}"),
            FieldNaming::Flags => match key {
                "n_requests" => "--n-req".into(),
                "trace.path" => "--trace".into(),
                "trace.format" => "--trace-format".into(),
                k => format!("--{}", k.trim_start_matches("trace.").replace('_', "-")),
            },
        }
    }
}

/// A closed-loop workload: `users` users each issue a request, wait for its
/// completion, think for an exponential time, and repeat. The engine drives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedLoopSpec {
    /// Number of concurrent users.
    pub users: u32,
    /// Mean exponential think time between a completion and the next request, s.
    pub think_time_mean_s: f64,
    /// Request lengths.
    pub lengths: LengthModel,
    /// Request categories.
    pub categories: CategoryMix,
    /// Total requests issued over all users.
    pub n_requests: u64,
}

/// An opened workload.
pub enum Workload {
    /// A stream of requests with fixed arrival times.
    Open(Box<dyn RequestSource>),
    /// A closed loop driven by the engine.
    Closed(ClosedLoopSpec),
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Workload::Open(s) => write!(f, "Workload::Open(len_hint {:?})", s.len_hint()),
            Workload::Closed(c) => write!(f, "Workload::Closed({c:?})"),
        }
    }
}

impl WorkloadSpec {
    /// The built-in chat workload used when no workload is given: ISL
    /// `lognormal:1020:1.0:7000`, OSL `lognormal:129:1.0:1000`, Poisson
    /// arrivals at [`DEFAULT_CHAT_LAM`] req/s, 100,000 requests, default
    /// category mix. The medians (1020 input, 129 output tokens) are those of
    /// the Azure 2023 conversation trace as published in the Splitwise paper
    /// (Patel et al., ISCA 2024); σ = 1 and the clamps are kvfleet's choice.
    pub fn default_chat() -> Self {
        WorkloadSpec {
            isl: Some(DEFAULT_CHAT_ISL.into()),
            osl: Some(DEFAULT_CHAT_OSL.into()),
            lam: Some(DEFAULT_CHAT_LAM),
            n_requests: Some(DEFAULT_N_REQUESTS),
            ..WorkloadSpec::default()
        }
    }

    /// Check fields and combinations, naming fields as TOML fields.
    pub fn validate(&self) -> Result<(), InputError> {
        self.validate_named(FieldNaming::Toml)
    }

    /// Check fields and combinations, naming fields with `naming`.
    pub fn validate_named(&self, naming: FieldNaming) -> Result<(), InputError> {
        let n = |k: &str| naming.name(k);
        let conflict = |a: &str, b: &str, why: &str| {
            Err(InputError::field(
                n(a),
                format!("cannot be combined with {}{why}", n(b)),
            ))
        };
        if let Some(t) = &self.trace {
            let others: [(&str, bool); 11] = [
                ("cdf", self.cdf.is_some()),
                ("input_frac", self.input_frac.is_some()),
                ("isl", self.isl.is_some()),
                ("osl", self.osl.is_some()),
                ("categories", self.categories.is_some()),
                ("lam", self.lam.is_some()),
                ("rate_profile", self.rate_profile.is_some()),
                ("rate_period_s", self.rate_period_s.is_some()),
                ("mmpp", self.mmpp.is_some()),
                ("users", self.users.is_some()),
                ("think_time_s", self.think_time_s.is_some()),
            ];
            if let Some((k, _)) = others.iter().find(|(_, set)| *set) {
                return conflict(
                    k,
                    "trace.path",
                    " (a trace carries its own arrivals and lengths)",
                );
            }
            if self.n_requests.is_some() {
                return conflict(
                    "n_requests",
                    "trace.path",
                    &format!("; use {} to truncate a trace", n("trace.max_requests")),
                );
            }
            trace::check_time_scale(t.time_scale)
                .map_err(|e| InputError::field(n("trace.time_scale"), e))?;
            if t.max_requests == Some(0) {
                return Err(InputError::field(
                    n("trace.max_requests"),
                    "0: expected at least 1",
                ));
            }
            return Ok(());
        }
        if self.cdf.is_some() {
            for k in ["isl", "osl"] {
                let set = if k == "isl" { &self.isl } else { &self.osl };
                if set.is_some() {
                    return conflict(
                        k,
                        "cdf",
                        " (a CDF gives total lengths; use one or the other)",
                    );
                }
            }
        } else if self.input_frac.is_some() {
            return Err(InputError::field(
                n("input_frac"),
                format!("only applies to a CDF; give {} too", n("cdf")),
            ));
        }
        if let Some(f) = self.input_frac
            && !(f > 0.0 && f < 1.0)
        {
            return Err(InputError::field(
                n("input_frac"),
                format!("{f}: expected a fraction strictly between 0 and 1"),
            ));
        }
        self.length_dists(naming)?;
        if let Some(c) = &self.categories {
            CategoryMix::parse(&n("categories"), c)?;
        }
        let arrivals: Vec<&str> = [
            ("lam", self.lam.is_some()),
            ("rate_profile", self.rate_profile.is_some()),
            ("mmpp", self.mmpp.is_some()),
            ("users", self.users.is_some()),
        ]
        .iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| *k)
        .collect();
        if arrivals.len() > 1 {
            return conflict(arrivals[1], arrivals[0], "; give one arrival process");
        }
        if self.rate_period_s.is_some() && self.rate_profile.is_none() {
            return Err(InputError::field(
                n("rate_period_s"),
                format!(
                    "only applies to a rate profile; give {} too",
                    n("rate_profile")
                ),
            ));
        }
        match (self.users, self.think_time_s) {
            (Some(0), _) => {
                return Err(InputError::field(n("users"), "0: expected at least 1 user"));
            }
            (Some(_), None) => {
                return Err(InputError::field(
                    n("users"),
                    format!(
                        "a closed loop needs {} (mean think time)",
                        n("think_time_s")
                    ),
                ));
            }
            (None, Some(_)) => {
                return Err(InputError::field(
                    n("think_time_s"),
                    format!("only applies to a closed loop; give {} too", n("users")),
                ));
            }
            (Some(_), Some(t)) if !(t.is_finite() && (0.0..=MAX_THINK_TIME_S).contains(&t)) => {
                return Err(InputError::field(
                    n("think_time_s"),
                    format!("{t}: expected seconds in [0, {MAX_THINK_TIME_S:e}]"),
                ));
            }
            _ => {}
        }
        let process = self.arrival_process_named(naming)?;
        if let Some(k) = self.n_requests
            && !(1..=MAX_N_REQUESTS).contains(&k)
        {
            return Err(InputError::field(
                n("n_requests"),
                format!("{k}: expected 1 to {MAX_N_REQUESTS} requests"),
            ));
        }
        if let Some(p) = process {
            // The expected span of the arrivals must fit the simulated-time limit.
            let span_s = self.n_requests() as f64 / p.mean_rate();
            if span_s.is_nan() || span_s > MAX_SIM_TIME_S {
                let key = if self.rate_profile.is_some() {
                    "rate_profile"
                } else if self.mmpp.is_some() {
                    "mmpp"
                } else {
                    "lam"
                };
                return Err(InputError::field(
                    n(key),
                    format!(
                        "{} requests at a mean {} req/s span {span_s:.3e} s of simulated time; \
                         expected at most {MAX_SIM_TIME_S:e} s (raise the rate or lower {})",
                        self.n_requests(),
                        p.mean_rate(),
                        n("n_requests")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// ISL and OSL distributions (defaults for the unset one), `None` with a CDF or trace.
    fn length_dists(
        &self,
        naming: FieldNaming,
    ) -> Result<Option<(LengthDist, LengthDist)>, InputError> {
        if self.cdf.is_some() || self.trace.is_some() {
            return Ok(None);
        }
        let isl = LengthDist::parse(
            &naming.name("isl"),
            self.isl.as_deref().unwrap_or(DEFAULT_CHAT_ISL),
        )?;
        let osl = LengthDist::parse(
            &naming.name("osl"),
            self.osl.as_deref().unwrap_or(DEFAULT_CHAT_OSL),
        )?;
        Ok(Some((isl, osl)))
    }

    /// The length model (loads the CDF file); `None` for a trace.
    pub fn length_model(&self) -> Result<Option<LengthModel>, InputError> {
        if self.trace.is_some() {
            return Ok(None);
        }
        if let Some(path) = &self.cdf {
            let cdf = LengthCdf::load(path)?;
            return Ok(Some(LengthModel::Cdf {
                cdf,
                input_frac: self.input_frac.unwrap_or(DEFAULT_INPUT_FRAC),
            }));
        }
        Ok(self
            .length_dists(FieldNaming::Toml)?
            .map(|(isl, osl)| LengthModel::Separate { isl, osl }))
    }

    /// The category mix (default prose/code/rag = 0.60/0.25/0.15).
    pub fn category_mix(&self) -> Result<CategoryMix, InputError> {
        match &self.categories {
            Some(c) => CategoryMix::parse(&FieldNaming::Toml.name("categories"), c),
            None => Ok(CategoryMix::default()),
        }
    }

    /// The open-loop arrival process (Poisson at [`DEFAULT_CHAT_LAM`] when
    /// none is given); `None` for a trace or a closed loop.
    pub fn arrival_process(&self) -> Result<Option<ArrivalProcess>, InputError> {
        self.arrival_process_named(FieldNaming::Toml)
    }

    fn arrival_process_named(
        &self,
        naming: FieldNaming,
    ) -> Result<Option<ArrivalProcess>, InputError> {
        if self.trace.is_some() || self.users.is_some() {
            return Ok(None);
        }
        let p = if let Some(s) = &self.rate_profile {
            ArrivalProcess::parse_profile(&naming.name("rate_profile"), s, self.rate_period_s)?
        } else if let Some(s) = &self.mmpp {
            ArrivalProcess::parse_mmpp(&naming.name("mmpp"), s)?
        } else {
            let p = ArrivalProcess::Poisson {
                rate_per_s: self.lam.unwrap_or(DEFAULT_CHAT_LAM),
            };
            p.validate(&naming.name("lam"))?;
            p
        };
        Ok(Some(p))
    }

    /// Number of requests of a synthetic or closed-loop workload.
    pub fn n_requests(&self) -> u64 {
        self.n_requests.unwrap_or(DEFAULT_N_REQUESTS)
    }

    /// Open the workload: validate, load files, and build the source.
    pub fn open(&self, streams: &Streams) -> Result<Workload, InputError> {
        self.validate()?;
        if let Some(t) = &self.trace {
            return Ok(Workload::Open(trace::open(&t.path, &t.options())?));
        }
        let Some(lengths) = self.length_model()? else {
            return Err(InputError::field("workload", "no length model"));
        };
        let categories = self.category_mix()?;
        if let (Some(users), Some(think)) = (self.users, self.think_time_s) {
            return Ok(Workload::Closed(ClosedLoopSpec {
                users,
                think_time_mean_s: think,
                lengths,
                categories,
                n_requests: self.n_requests(),
            }));
        }
        let Some(process) = self.arrival_process()? else {
            return Err(InputError::field("workload", "no arrival process"));
        };
        Ok(Workload::Open(Box::new(SyntheticSource::new(
            process,
            lengths,
            categories,
            self.n_requests(),
            streams,
        ))))
    }

    /// A one-line human description.
    pub fn describe(&self) -> String {
        if let Some(t) = &self.trace {
            let mut s = format!(
                "trace {} ({})",
                t.path.display(),
                t.format
                    .map_or("auto-detected format".to_string(), |f| f.to_string())
            );
            if t.time_scale != 1.0 {
                s += &format!(", time scale ×{}", t.time_scale);
            }
            if let Some(m) = t.max_requests {
                s += &format!(", first {m} requests");
            }
            if t.skip_bad_rows {
                s += ", skipping bad rows";
            }
            return s;
        }
        let arrivals = if let (Some(u), Some(th)) = (self.users, self.think_time_s) {
            format!("closed loop of {u} users, mean think time {th} s")
        } else if let Some(p) = &self.rate_profile {
            match self.rate_period_s {
                Some(per) => format!("rate profile {p} (repeating every {per} s)"),
                None => format!("rate profile {p}"),
            }
        } else if let Some(m) = &self.mmpp {
            format!("MMPP {m} (high:low rates, mean high:low sojourn s)")
        } else {
            format!("Poisson {} req/s", self.lam.unwrap_or(DEFAULT_CHAT_LAM))
        };
        let lengths = match &self.cdf {
            Some(c) => format!(
                "total-length CDF {} split {}% input",
                c.display(),
                self.input_frac.unwrap_or(DEFAULT_INPUT_FRAC) * 100.0
            ),
            None => format!(
                "ISL {} / OSL {}",
                self.isl.as_deref().unwrap_or(DEFAULT_CHAT_ISL),
                self.osl.as_deref().unwrap_or(DEFAULT_CHAT_OSL)
            ),
        };
        let cats = self
            .category_mix()
            .map_or_else(|_| "?".to_string(), |m| m.to_string());
        format!(
            "{} requests, {arrivals}, {lengths}, categories {cats}",
            self.n_requests()
        )
    }

    /// Mean ISL, tokens, when known without replaying a trace.
    pub fn mean_isl(&self) -> Option<f64> {
        self.length_model().ok().flatten().map(|m| m.mean_isl())
    }

    /// Mean OSL, tokens, when known without replaying a trace.
    pub fn mean_osl(&self) -> Option<f64> {
        self.length_model().ok().flatten().map(|m| m.mean_osl())
    }

    /// Long-run mean open-loop arrival rate, requests/s, when known.
    pub fn mean_rate(&self) -> Option<f64> {
        self.arrival_process().ok().flatten().map(|p| p.mean_rate())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Category;

    fn field_of(spec: &WorkloadSpec) -> String {
        match spec.validate() {
            Err(InputError::Field { field, .. }) => field,
            other => panic!("{spec:?}: {other:?}"),
        }
    }

    #[test]
    fn default_chat_opens_and_matches_design() {
        let spec = WorkloadSpec::default_chat();
        spec.validate().unwrap();
        let Workload::Open(mut src) = spec.open(&Streams::new(1, 0)).unwrap() else {
            panic!("expected an open workload");
        };
        assert_eq!(src.len_hint(), Some(100_000));
        let r = src.next_request().unwrap().unwrap();
        assert!(r.input_tokens >= 1 && r.input_tokens <= 7000);
        assert!(r.output_tokens >= 1 && r.output_tokens <= 1000);
        assert_eq!(spec.mean_rate(), Some(DEFAULT_CHAT_LAM));
        let isl = spec.mean_isl().unwrap();
        assert!(isl > 1020.0 && isl < 1700.0, "{isl}");
        assert!(spec.describe().contains("Poisson 40 req/s"));
    }

    #[test]
    fn toml_round_trip_and_unknown_fields() {
        let text = r#"
            isl = "fixed:100"
            osl = "exp:20"
            mmpp = "100:10:1:4"
            categories = "code=1"
            n_requests = 50
        "#;
        let spec: WorkloadSpec = toml::from_str(text).unwrap();
        spec.validate().unwrap();
        let back: WorkloadSpec = toml::from_str(&toml::to_string(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
        let Workload::Open(mut src) = spec.open(&Streams::new(2, 0)).unwrap() else {
            panic!()
        };
        let mut n = 0;
        while let Some(r) = src.next_request().unwrap() {
            assert_eq!(r.category, Category::Code);
            assert_eq!(r.input_tokens, 100);
            n += 1;
        }
        assert_eq!(n, 50);
        assert!(toml::from_str::<WorkloadSpec>("lamda = 3.0").is_err());
        let t: WorkloadSpec =
            toml::from_str("trace = { path = \"x.csv\", format = \"burstgpt\" }").unwrap();
        assert_eq!(
            t.trace.as_ref().unwrap().format,
            Some(TraceFormat::BurstGpt)
        );
        assert_eq!(t.trace.as_ref().unwrap().time_scale, 1.0);
        assert!(toml::from_str::<WorkloadSpec>("trace = { path = \"x\", speed = 2 }").is_err());
    }

    #[test]
    fn closed_loop_and_combinations() {
        let spec = WorkloadSpec {
            users: Some(8),
            think_time_s: Some(2.5),
            ..WorkloadSpec::default()
        };
        match spec.open(&Streams::new(1, 0)).unwrap() {
            Workload::Closed(c) => {
                assert_eq!(
                    (c.users, c.think_time_mean_s, c.n_requests),
                    (8, 2.5, 100_000)
                );
            }
            w => panic!("{w:?}"),
        }
        let base = WorkloadSpec::default();
        let with = |f: &dyn Fn(&mut WorkloadSpec)| {
            let mut s = base.clone();
            f(&mut s);
            s
        };
        assert_eq!(field_of(&with(&|s| s.users = Some(3))), "workload.users");
        assert_eq!(
            field_of(&with(&|s| s.think_time_s = Some(3.0))),
            "workload.think_time_s"
        );
        assert_eq!(
            field_of(&with(&|s| {
                s.lam = Some(3.0);
                s.mmpp = Some("1:2:3:4".into());
            })),
            "workload.mmpp"
        );
        assert_eq!(field_of(&with(&|s| s.lam = Some(-1.0))), "workload.lam");
        assert_eq!(
            field_of(&with(&|s| s.input_frac = Some(0.5))),
            "workload.input_frac"
        );
        assert_eq!(
            field_of(&with(&|s| {
                s.cdf = Some("c.json".into());
                s.isl = Some("fixed:3".into());
            })),
            "workload.isl"
        );
        assert_eq!(
            field_of(&with(&|s| {
                s.cdf = Some("c.json".into());
                s.input_frac = Some(1.0);
            })),
            "workload.input_frac"
        );
        assert_eq!(
            field_of(&with(&|s| s.rate_period_s = Some(5.0))),
            "workload.rate_period_s"
        );
        assert_eq!(
            field_of(&with(&|s| s.osl = Some("exp:-1".into()))),
            "workload.osl"
        );
        assert_eq!(
            field_of(&with(&|s| s.n_requests = Some(0))),
            "workload.n_requests"
        );
        let trace = TraceSpec {
            path: "t.csv".into(),
            format: None,
            time_scale: 1.0,
            max_requests: None,
            skip_bad_rows: false,
        };
        assert_eq!(
            field_of(&with(&|s| {
                s.trace = Some(trace.clone());
                s.lam = Some(2.0);
            })),
            "workload.lam"
        );
        assert_eq!(
            field_of(&with(&|s| {
                s.trace = Some(TraceSpec {
                    time_scale: 0.0,
                    ..trace.clone()
                })
            })),
            "workload.trace.time_scale"
        );
        assert_eq!(FieldNaming::Flags.name("trace.time_scale"), "--time-scale");
        assert_eq!(FieldNaming::Flags.name("n_requests"), "--n-req");
        assert_eq!(FieldNaming::Flags.name("rate_period_s"), "--rate-period-s");
    }

    #[test]
    fn cdf_and_trace_open() {
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/traces");
        let spec = WorkloadSpec {
            trace: Some(TraceSpec {
                path: fixtures.join("vidur.csv"),
                format: None,
                time_scale: 1.0,
                max_requests: Some(2),
                skip_bad_rows: false,
            }),
            ..WorkloadSpec::default()
        };
        assert_eq!(spec.mean_isl(), None);
        let Workload::Open(mut src) = spec.open(&Streams::new(1, 0)).unwrap() else {
            panic!()
        };
        assert_eq!(src.next_request().unwrap().unwrap().input_tokens, 512);
        assert!(src.next_request().unwrap().is_some());
        assert!(src.next_request().unwrap().is_none());

        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let cdf = dir.join("c.json");
        std::fs::write(&cdf, "[[10, 0.5], [20, 1.0]]").unwrap();
        let spec = WorkloadSpec {
            cdf: Some(cdf),
            input_frac: Some(0.5),
            n_requests: Some(10),
            ..WorkloadSpec::default()
        };
        let isl = spec.mean_isl().unwrap();
        let osl = spec.mean_osl().unwrap();
        // Totals uniform on 1..=20; a total of 1 becomes (1, 1).
        assert!((isl + osl - 10.55).abs() < 1e-9, "{isl} {osl}");
        assert!(matches!(
            spec.open(&Streams::new(1, 0)),
            Ok(Workload::Open(_))
        ));
    }
}
