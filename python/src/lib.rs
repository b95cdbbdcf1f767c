//! `kvfleet._native`: the thin PyO3 layer of the Python package.
//!
//! Python keyword arguments arrive here already normalised by
//! `kvfleet/__init__.py` (a flag name, and `True`, a string or a list of
//! strings); [`argv`] turns them into the argument list the CLI would get,
//! using the CLI's own argument definitions (so each kwarg has exactly its
//! flag's meaning, and a bad value fails with the CLI's one-line message),
//! and [`run`] parses, resolves and executes it through `kvfleet::api` with
//! the GIL released. Progress goes to a Python factory of tqdm-like objects.

use std::path::PathBuf;

use kvfleet::api::{self, Parsed};
use kvfleet::progress::{Reporter, Task};
use kvfleet::report_format::Destinations;
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(
    kvfleet,
    InputError,
    PyValueError,
    "Bad input: a flag, file or field kvfleet cannot use. The message is the CLI's one line (exit code 2 there)."
);

/// A keyword argument's value, as `kvfleet/__init__.py` passes it.
#[derive(Debug, FromPyObject)]
enum Value {
    /// `True`/`False` for a switch.
    Flag(bool),
    /// One value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

fn input_error(msg: impl Into<String>) -> PyErr {
    InputError::new_err(msg.into())
}

/// The clap command of a subcommand path (`["profile", "step"]`).
fn subcommand<'a>(root: &'a clap::Command, path: &[String]) -> PyResult<&'a clap::Command> {
    let mut cmd = root;
    for name in path {
        cmd = cmd
            .find_subcommand(name)
            .ok_or_else(|| input_error(format!("unknown subcommand `{name}`")))?;
    }
    Ok(cmd)
}

/// Append one keyword argument to `out` as the flag (or positional value) it names.
fn push_arg(arg: &clap::Arg, value: &Value, out: &mut Vec<String>) -> PyResult<()> {
    let long = arg.get_long().map(|l| format!("--{l}"));
    let takes_values = arg.get_action().takes_values();
    let values: Vec<String> = match (value, takes_values) {
        (Value::Flag(false), _) => return Ok(()),
        (Value::Flag(true), false) => {
            out.push(long.unwrap_or_default());
            return Ok(());
        }
        (Value::Flag(true), true) => vec!["true".into()],
        (_, false) => {
            return Err(input_error(format!(
                "{}: expected True or False",
                long.as_deref().unwrap_or(arg.get_id().as_str())
            )));
        }
        (Value::One(s), true) => vec![s.clone()],
        (Value::Many(v), true) => v.clone(),
    };
    let many = arg.get_num_args().is_some_and(|r| r.max_values() > 1)
        || matches!(arg.get_action(), clap::ArgAction::Append);
    match (&long, arg.get_value_delimiter()) {
        (None, _) => out.extend(values),
        (Some(l), Some(d)) => {
            out.push(l.clone());
            out.push(values.join(&d.to_string()));
        }
        (Some(l), None) if many && matches!(arg.get_action(), clap::ArgAction::Append) => {
            for v in values {
                out.push(l.clone());
                out.push(v);
            }
        }
        (Some(l), None) if many => {
            out.push(l.clone());
            out.extend(values);
        }
        (Some(l), None) => {
            // A one-value flag that takes a comma-separated list (`--routers a,b`).
            out.push(l.clone());
            out.push(values.join(","));
        }
    }
    Ok(())
}

/// The argument list the CLI would get for `kvfleet PATH... --flags`:
/// each keyword is an argument id (the flag with `_` for `-`) of the
/// subcommand or, for nested subcommands, of its parent.
#[pyfunction]
fn argv(path: Vec<String>, kwargs: Vec<(String, Value)>) -> PyResult<Vec<String>> {
    let root = api::command();
    let mut levels: Vec<(&clap::Command, Vec<String>)> = Vec::new();
    for depth in 1..=path.len() {
        levels.push((subcommand(&root, &path[..depth])?, Vec::new()));
    }
    let mut positionals: Vec<(usize, usize, String)> = Vec::new();
    for (key, value) in &kwargs {
        if key == "json" {
            continue; // the document is always returned
        }
        let found = levels.iter().enumerate().rev().find_map(|(li, (cmd, _))| {
            cmd.get_arguments()
                .find(|a| a.get_id().as_str() == key && !a.is_hide_set())
                .map(|a| (li, a.clone()))
        });
        let Some((li, arg)) = found else {
            let cmd = levels.last().map(|l| l.0).unwrap_or(&root);
            let known: Vec<String> = cmd
                .get_arguments()
                .filter(|a| !a.is_hide_set() && a.get_id() != "help")
                .map(|a| a.get_id().to_string())
                .collect();
            return Err(input_error(format!(
                "{}: unknown keyword `{key}`; expected one of {}",
                path.join(" "),
                known.join(", ")
            )));
        };
        if arg.is_positional() {
            let mut v = Vec::new();
            push_arg(&arg, value, &mut v)?;
            let index = arg.get_index().unwrap_or(0);
            for s in v {
                positionals.push((li, index, s));
            }
        } else {
            push_arg(&arg, value, &mut levels[li].1)?;
        }
    }
    positionals.sort_by_key(|p| (p.0, p.1));
    let mut out = vec!["kvfleet".to_string()];
    for (li, (name, (_, flags))) in path.iter().zip(&levels).enumerate() {
        out.push(name.clone());
        out.extend(flags.iter().cloned());
        out.extend(
            positionals
                .iter()
                .filter(|p| p.0 == li)
                .map(|p| p.2.clone()),
        );
    }
    Ok(out)
}

/// A tqdm-like object made by the Python progress factory.
struct PyTask(Py<PyAny>);

impl Task for PyTask {
    fn inc(&self, n: u64) {
        Python::attach(|py| {
            let _ = self.0.call_method1(py, "update", (n,));
        });
    }
    fn set_message(&self, msg: &str) {
        Python::attach(|py| {
            let _ = self.0.call_method1(py, "set_description", (msg,));
        });
    }
    fn finish(&self) {
        Python::attach(|py| {
            let _ = self.0.call_method0(py, "close");
        });
    }
}

/// Progress through a Python factory `factory(total=..., desc=...)` that
/// returns an object with `update(n)`, `set_description(s)` and `close()`
/// (`tqdm.tqdm` is one).
struct PyReporter(Py<PyAny>);

impl PyReporter {
    fn make(&self, total: Option<u64>, what: &str) -> Option<Box<dyn Task>> {
        Python::attach(|py| {
            let kw = PyDict::new(py);
            kw.set_item("total", total).ok()?;
            kw.set_item("desc", what).ok()?;
            let obj = self.0.call(py, (), Some(&kw)).ok()?;
            Some(Box::new(PyTask(obj)) as Box<dyn Task>)
        })
    }
}

impl Reporter for PyReporter {
    fn bar(&self, len: u64, what: &str) -> Option<Box<dyn Task>> {
        self.make(Some(len), what)
    }
    fn spinner(&self, what: &str) -> Option<Box<dyn Task>> {
        self.make(None, what)
    }
}

/// A finished run: the subcommand, its `--json` document, its table, its
/// CSV (if it has one), notices and why nothing was measured (if so).
#[pyclass(module = "kvfleet._native", frozen, get_all)]
struct Outcome {
    command: String,
    json: String,
    table: String,
    csv: Option<String>,
    notices: Vec<String>,
    failure: Option<String>,
    files: Vec<PathBuf>,
}

fn to_py_err(err: anyhow::Error) -> PyErr {
    let msg = kvfleet::error::one_line_message(&err);
    if kvfleet::error::is_input_error(&err) {
        InputError::new_err(msg)
    } else {
        PyRuntimeError::new_err(msg)
    }
}

/// Parse, resolve and run a full argument list (as [`argv`] builds it),
/// with the GIL released. Files named by `out`, `csv`, `plot` and
/// `plot_dir` are written as the CLI writes them.
#[pyfunction]
#[pyo3(signature = (args, progress=None))]
fn run(py: Python<'_>, args: Vec<String>, progress: Option<Py<PyAny>>) -> PyResult<Outcome> {
    let command = match api::parse(&args).map_err(|e| InputError::new_err(e.to_string()))? {
        Parsed::Run(c) => *c,
        Parsed::Text(t) => return Err(input_error(t)),
    };
    for (flag, path, kind) in command.output_paths() {
        api::output::check_output_path(flag, path, kind)
            .map_err(|e| InputError::new_err(e.to_string()))?;
    }
    let name = command.name().to_string();
    let dest = Destinations::of(&command);
    let quiet = !command.shows_progress();
    let reporter: Box<dyn Reporter> = match progress {
        Some(f) if !quiet => Box::new(PyReporter(f)),
        _ => Box::new(kvfleet::progress::Silent),
    };
    let result = py.detach(move || -> anyhow::Result<Outcome> {
        let mut outcome = api::execute(command, reporter.as_ref())?;
        outcome.report.record_argv(&args);
        let report = &outcome.report;
        let files = dest.write_files(report)?;
        Ok(Outcome {
            command: name,
            json: report.to_json_pretty()?,
            table: report.human(),
            csv: report.csv(),
            notices: outcome.notices,
            failure: report.failure(),
            files,
        })
    });
    result.map_err(to_py_err)
}

/// One argument of [`describe`]: `(id, flag, kind, default, help, choices, positional)`.
type ArgRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    Vec<String>,
    bool,
);

/// The arguments of a subcommand, for docstrings and type stubs: per
/// argument `(id, flag, kind, default, help, choices, positional)`, where
/// `kind` is `switch`, `value` or `values`.
#[pyfunction]
fn describe(path: Vec<String>) -> PyResult<(String, Vec<ArgRow>)> {
    let root = api::command();
    let mut rows = Vec::new();
    let mut about = String::new();
    for depth in 1..=path.len() {
        let cmd = subcommand(&root, &path[..depth])?;
        about = cmd.get_about().map(|s| s.to_string()).unwrap_or_default();
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if a.is_hide_set() || matches!(id, "help" | "version" | "json") {
                continue;
            }
            if rows.iter().any(|r: &ArgRow| r.0 == id) {
                continue;
            }
            let kind = if !a.get_action().takes_values() {
                "switch"
            } else if a.get_num_args().is_some_and(|r| r.max_values() > 1)
                || a.get_value_delimiter().is_some()
                || matches!(a.get_action(), clap::ArgAction::Append)
            {
                "values"
            } else {
                "value"
            };
            let default = a
                .get_default_values()
                .first()
                .map(|d| d.to_string_lossy().to_string());
            let choices = a
                .get_possible_values()
                .iter()
                .map(|p| p.get_name().to_string())
                .collect();
            rows.push((
                id.to_string(),
                a.get_long().map(|l| format!("--{l}")).unwrap_or_default(),
                kind.to_string(),
                default,
                a.get_help().map(|h| h.to_string()).unwrap_or_default(),
                choices,
                a.is_positional(),
            ));
        }
    }
    Ok((about, rows))
}

/// The kvfleet version this package was built from.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add_class::<Outcome>()?;
    m.add_function(wrap_pyfunction!(argv, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(describe, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    Ok(())
}
