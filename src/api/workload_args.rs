//! Workload flags shared by the simulating subcommands, resolved into a
//! validated [`WorkloadSpec`].

use std::path::PathBuf;

use crate::error::InputError;
use crate::workload::spec::{FieldNaming, TraceSpec, WorkloadSpec};
use crate::workload::trace::TraceFormat;

/// Where requests come from. With no workload flag the built-in chat
/// workload is used (lognormal ISL/OSL, Poisson at 40 req/s, 100,000 requests).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WorkloadArgs {
    /// Total-token CDF JSON file (`[[tokens, cumulative_fraction], ...]`).
    #[arg(long, value_name = "FILE", help_heading = "Workload")]
    pub cdf: Option<PathBuf>,
    /// Input share of a CDF total, in (0, 1) [default: 0.8].
    #[arg(long, value_name = "F", help_heading = "Workload")]
    pub input_frac: Option<f64>,
    /// ISL distribution: `fixed:N`, `uniform:A:B`, `exp:MEAN`, `lognormal:MEDIAN:SIGMA[:MAX]`, `range:N:RATIO`.
    #[arg(long, value_name = "SPEC", help_heading = "Workload")]
    pub isl: Option<String>,
    /// OSL distribution (same forms as --isl).
    #[arg(long, value_name = "SPEC", help_heading = "Workload")]
    pub osl: Option<String>,
    /// Category mix, e.g. prose=0.6,code=0.25,rag=0.15.
    #[arg(long, value_name = "MIX", help_heading = "Workload")]
    pub categories: Option<String>,
    /// Poisson arrival rate, requests/s.
    #[arg(long, value_name = "RATE", help_heading = "Workload")]
    pub lam: Option<f64>,
    /// Piecewise-constant rate profile START_S:RATE,... (e.g. 0:50,600:120,1200:80).
    #[arg(long, value_name = "SEGMENTS", help_heading = "Workload")]
    pub rate_profile: Option<String>,
    /// Repeat the rate profile with this period, s (e.g. 86400 for diurnal).
    #[arg(long, value_name = "S", help_heading = "Workload")]
    pub rate_period_s: Option<f64>,
    /// Two-state MMPP HIGH_RATE:LOW_RATE:MEAN_HIGH_S:MEAN_LOW_S.
    #[arg(long, value_name = "SPEC", help_heading = "Workload")]
    pub mmpp: Option<String>,
    /// Closed loop with this many users.
    #[arg(long, value_name = "N", help_heading = "Workload")]
    pub users: Option<u32>,
    /// Closed loop: mean exponential think time, s.
    #[arg(long, value_name = "S", help_heading = "Workload")]
    pub think_time_s: Option<f64>,
    /// Replay a trace file (fleet-sim, Azure, Mooncake, Vidur, BurstGPT).
    #[arg(long, value_name = "FILE", help_heading = "Workload")]
    pub trace: Option<PathBuf>,
    /// Force the trace format instead of detecting it.
    #[arg(long, value_name = "F", help_heading = "Workload")]
    pub trace_format: Option<TraceFormat>,
    /// Multiply trace inter-arrival gaps by X (load × 1/X) [default: 1].
    #[arg(long, value_name = "X", help_heading = "Workload")]
    pub time_scale: Option<f64>,
    /// Replay at most N trace requests.
    #[arg(long, value_name = "N", help_heading = "Workload")]
    pub max_requests: Option<u64>,
    /// Skip and count malformed trace rows instead of failing.
    #[arg(long, help_heading = "Workload")]
    pub skip_bad_rows: bool,
    /// Number of synthetic requests, at most 1e9 (counts accept whole numbers like 1e6) [default: 100000].
    #[arg(long, value_name = "N", help_heading = "Workload")]
    pub n_req: Option<u64>,
}

impl WorkloadArgs {
    /// Resolve the flags into a validated workload; errors name the flag.
    pub fn resolve(&self) -> Result<WorkloadSpec, InputError> {
        let trace = match &self.trace {
            Some(path) => Some(TraceSpec {
                path: path.clone(),
                format: self.trace_format,
                time_scale: self.time_scale.unwrap_or(1.0),
                max_requests: self.max_requests,
                skip_bad_rows: self.skip_bad_rows,
            }),
            None => {
                self.check_no_trace_options()?;
                None
            }
        };
        let spec = WorkloadSpec {
            cdf: self.cdf.clone(),
            input_frac: self.input_frac,
            isl: self.isl.clone(),
            osl: self.osl.clone(),
            categories: self.categories.clone(),
            lam: self.lam,
            rate_profile: self.rate_profile.clone(),
            rate_period_s: self.rate_period_s,
            mmpp: self.mmpp.clone(),
            users: self.users,
            think_time_s: self.think_time_s,
            trace,
            n_requests: self.n_req,
        };
        let spec = if spec == WorkloadSpec::default() {
            WorkloadSpec::default_chat()
        } else {
            spec
        };
        spec.validate_named(FieldNaming::Flags)?;
        Ok(spec)
    }
}

impl WorkloadArgs {
    /// Apply the flags to a file's workload (`--scenario FILE --lam 12`):
    /// each flag replaces only its own field, except that choosing a length
    /// model or an arrival process replaces the file's other choice of that
    /// kind (`--cdf` drops the file's `isl`/`osl`, `--mmpp` its `lam`, ...),
    /// and `--trace` replaces the whole workload. Trace options
    /// (`--time-scale`, ...) apply to the file's trace. The result is
    /// validated; a flag that cannot apply to the file's workload is named.
    pub fn apply_to(&self, base: &WorkloadSpec) -> Result<WorkloadSpec, InputError> {
        if self.trace.is_some() {
            return self.resolve();
        }
        let mut w = base.clone();
        if let Some(t) = &mut w.trace {
            let synthetic = [
                ("--cdf", self.cdf.is_some()),
                ("--input-frac", self.input_frac.is_some()),
                ("--isl", self.isl.is_some()),
                ("--osl", self.osl.is_some()),
                ("--categories", self.categories.is_some()),
                ("--lam", self.lam.is_some()),
                ("--rate-profile", self.rate_profile.is_some()),
                ("--rate-period-s", self.rate_period_s.is_some()),
                ("--mmpp", self.mmpp.is_some()),
                ("--users", self.users.is_some()),
                ("--think-time-s", self.think_time_s.is_some()),
                ("--n-req", self.n_req.is_some()),
            ];
            if let Some((flag, _)) = synthetic.iter().find(|(_, set)| *set) {
                return Err(InputError::field(
                    *flag,
                    format!(
                        "the scenario replays the trace {}, which carries its own arrivals and \
                         lengths; give --trace FILE to replace it{}",
                        t.path.display(),
                        if *flag == "--n-req" {
                            ", or --max-requests to truncate it"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            if let Some(f) = self.trace_format {
                t.format = Some(f);
            }
            if let Some(x) = self.time_scale {
                t.time_scale = x;
            }
            if let Some(m) = self.max_requests {
                t.max_requests = Some(m);
            }
            t.skip_bad_rows |= self.skip_bad_rows;
        } else {
            self.check_no_trace_options()?;
        }
        // Length model: a CDF, or separate ISL/OSL distributions.
        if self.cdf.is_some() {
            (w.isl, w.osl) = (None, None);
            w.cdf = self.cdf.clone();
        }
        if self.isl.is_some() || self.osl.is_some() {
            (w.cdf, w.input_frac) = (None, None);
        }
        set(&mut w.isl, &self.isl);
        set(&mut w.osl, &self.osl);
        set(&mut w.input_frac, &self.input_frac);
        set(&mut w.categories, &self.categories);
        // Arrival process: one of lam, rate profile, MMPP, closed loop.
        let process = [
            self.lam.is_some(),
            self.rate_profile.is_some(),
            self.mmpp.is_some(),
            self.users.is_some(),
        ];
        if process.iter().any(|&set| set) {
            w.lam = None;
            w.rate_profile = None;
            w.rate_period_s = None;
            w.mmpp = None;
            if self.users.is_none() {
                (w.users, w.think_time_s) = (None, None);
            }
        }
        set(&mut w.lam, &self.lam);
        set(&mut w.rate_profile, &self.rate_profile);
        set(&mut w.rate_period_s, &self.rate_period_s);
        set(&mut w.mmpp, &self.mmpp);
        set(&mut w.users, &self.users);
        set(&mut w.think_time_s, &self.think_time_s);
        set(&mut w.n_requests, &self.n_req);
        w.validate().map_err(|e| self.name_flags(e))?;
        Ok(w)
    }

    /// Trace options without a trace to apply to are an error naming the flag.
    fn check_no_trace_options(&self) -> Result<(), InputError> {
        let trace_only = [
            ("--trace-format", self.trace_format.is_some()),
            ("--time-scale", self.time_scale.is_some()),
            ("--max-requests", self.max_requests.is_some()),
            ("--skip-bad-rows", self.skip_bad_rows),
        ];
        match trace_only.iter().find(|(_, set)| *set) {
            Some((flag, _)) => Err(InputError::field(
                *flag,
                "only applies to trace replay; give --trace FILE too",
            )),
            None => Ok(()),
        }
    }

    /// An error about a `workload.KEY` field that a flag set names the flag.
    fn name_flags(&self, e: InputError) -> InputError {
        let InputError::Field { field, reason } = e else {
            return e;
        };
        let Some(key) = field.strip_prefix("workload.") else {
            return InputError::Field { field, reason };
        };
        let given = match key {
            "cdf" => self.cdf.is_some(),
            "input_frac" => self.input_frac.is_some(),
            "isl" => self.isl.is_some(),
            "osl" => self.osl.is_some(),
            "categories" => self.categories.is_some(),
            "lam" => self.lam.is_some(),
            "rate_profile" => self.rate_profile.is_some(),
            "rate_period_s" => self.rate_period_s.is_some(),
            "mmpp" => self.mmpp.is_some(),
            "users" => self.users.is_some(),
            "think_time_s" => self.think_time_s.is_some(),
            "n_requests" => self.n_req.is_some(),
            "trace.time_scale" => self.time_scale.is_some(),
            "trace.max_requests" => self.max_requests.is_some(),
            _ => false,
        };
        let field = if given {
            FieldNaming::Flags.name(key)
        } else {
            field
        };
        InputError::Field { field, reason }
    }
}

/// Replace `field` with the flag's value when the flag was given.
fn set<T: Clone>(field: &mut Option<T>, flag: &Option<T>) {
    if flag.is_some() {
        field.clone_from(flag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(flatten)]
        workload: WorkloadArgs,
    }

    fn resolve(args: &[&str]) -> Result<WorkloadSpec, InputError> {
        let mut argv = vec!["kvfleet"];
        argv.extend_from_slice(args);
        TestCli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{e}"))
            .workload
            .resolve()
    }

    fn flag_of(args: &[&str]) -> String {
        match resolve(args) {
            Err(InputError::Field { field, .. }) => field,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn no_flags_is_default_chat_and_lam_only_keeps_lengths() {
        assert_eq!(resolve(&[]).unwrap(), WorkloadSpec::default_chat());
        let s = resolve(&["--lam", "12.5"]).unwrap();
        assert_eq!(s.lam, Some(12.5));
        assert_eq!(s.mean_isl(), WorkloadSpec::default_chat().mean_isl());
        assert_eq!(s.n_requests(), 100_000);
        let s = resolve(&["--isl", "fixed:100", "--osl", "fixed:10", "--n-req", "7"]).unwrap();
        assert_eq!(s.n_requests(), 7);
        assert_eq!(s.mean_isl(), Some(100.0));
    }

    #[test]
    fn bad_combinations_name_the_flag() {
        assert_eq!(flag_of(&["--cdf", "c.json", "--isl", "fixed:3"]), "--isl");
        assert_eq!(flag_of(&["--trace", "t.csv", "--lam", "3"]), "--lam");
        assert_eq!(flag_of(&["--trace", "t.csv", "--n-req", "3"]), "--n-req");
        assert_eq!(flag_of(&["--lam", "0"]), "--lam");
        assert_eq!(flag_of(&["--lam", "inf"]), "--lam");
        assert_eq!(
            flag_of(&["--cdf", "c.json", "--input-frac", "1.5"]),
            "--input-frac"
        );
        assert_eq!(flag_of(&["--input-frac", "0.5"]), "--input-frac");
        assert_eq!(flag_of(&["--lam", "3", "--mmpp", "1:2:3:4"]), "--mmpp");
        assert_eq!(flag_of(&["--mmpp", "1:2:3"]), "--mmpp");
        assert_eq!(flag_of(&["--rate-profile", "5:10"]), "--rate-profile");
        assert_eq!(flag_of(&["--rate-period-s", "60"]), "--rate-period-s");
        assert_eq!(flag_of(&["--users", "4"]), "--users");
        assert_eq!(flag_of(&["--think-time-s", "4"]), "--think-time-s");
        assert_eq!(flag_of(&["--time-scale", "2"]), "--time-scale");
        assert_eq!(flag_of(&["--skip-bad-rows"]), "--skip-bad-rows");
        assert_eq!(
            flag_of(&["--trace", "t.csv", "--time-scale", "0"]),
            "--time-scale"
        );
        assert_eq!(flag_of(&["--isl", "weird:3"]), "--isl");
        assert_eq!(flag_of(&["--categories", "prose"]), "--categories");
        assert_eq!(flag_of(&["--n-req", "0"]), "--n-req");
    }

    fn apply(base: &WorkloadSpec, args: &[&str]) -> Result<WorkloadSpec, InputError> {
        let mut argv = vec!["kvfleet"];
        argv.extend_from_slice(args);
        TestCli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{e}"))
            .workload
            .apply_to(base)
    }

    #[test]
    fn flags_override_only_their_field_of_a_file_workload() {
        let file = WorkloadSpec {
            cdf: Some("c.json".into()),
            input_frac: Some(0.7),
            lam: Some(5.0),
            n_requests: Some(300),
            categories: Some("code=1".into()),
            ..WorkloadSpec::default()
        };
        // No flags: the file's workload as it is.
        assert_eq!(apply(&file, &[]).unwrap(), file);
        // One field.
        let w = apply(&file, &["--lam", "20"]).unwrap();
        assert_eq!(
            w,
            WorkloadSpec {
                lam: Some(20.0),
                ..file.clone()
            }
        );
        // Another arrival process replaces the file's rate; lengths stay.
        let w = apply(&file, &["--mmpp", "10:1:2:3"]).unwrap();
        assert_eq!((w.lam, w.mmpp.as_deref()), (None, Some("10:1:2:3")));
        assert_eq!((w.cdf, w.n_requests), (file.cdf.clone(), Some(300)));
        // ISL/OSL replace the file's CDF (and its split).
        let w = apply(&file, &["--isl", "fixed:10", "--osl", "fixed:5"]).unwrap();
        assert_eq!((w.cdf, w.input_frac, w.lam), (None, None, Some(5.0)));
        // A closed loop needs its think time; the error names the flag typed.
        assert_eq!(
            match apply(&file, &["--users", "4"]) {
                Err(InputError::Field { field, .. }) => field,
                other => panic!("{other:?}"),
            },
            "--users"
        );
        // --trace replaces the whole workload.
        let w = apply(&file, &["--trace", "t.csv"]).unwrap();
        assert_eq!((w.cdf, w.lam, w.n_requests), (None, None, None));
    }

    #[test]
    fn good_combinations_resolve() {
        let s = resolve(&[
            "--trace",
            "t.csv",
            "--trace-format",
            "burstgpt",
            "--time-scale",
            "2",
        ])
        .unwrap();
        let t = s.trace.unwrap();
        assert_eq!((t.format, t.time_scale), (Some(TraceFormat::BurstGpt), 2.0));
        let s = resolve(&["--rate-profile", "0:50,600:120", "--rate-period-s", "1200"]).unwrap();
        assert!((s.mean_rate().unwrap() - 85.0).abs() < 1e-9);
        let s = resolve(&[
            "--users",
            "16",
            "--think-time-s",
            "1.5",
            "--isl",
            "fixed:10",
        ])
        .unwrap();
        assert_eq!(s.users, Some(16));
        assert!(resolve(&["--cdf", "c.json", "--input-frac", "0.7"]).is_ok());
    }
}
