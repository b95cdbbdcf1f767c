//! Errors caused by bad input. Any of these ends the program with exit code 2
//! and one line naming the file, line or field and what was expected.

use std::path::PathBuf;

/// Bad input from the user: a file, a flag or a field that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file could not be opened or read.
    #[error("{path}: cannot read: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error (part of the message, not a separate
        /// source, so `{:#}` prints it once).
        error: std::io::Error,
    },
    /// A file is empty (or holds no usable rows).
    #[error("{path}: file is empty; expected {expected}")]
    EmptyFile {
        /// The file.
        path: PathBuf,
        /// What it should have held.
        expected: String,
    },
    /// A CDF file is malformed at an index of its array.
    #[error("{path}: CDF entry {index}: {reason}")]
    Cdf {
        /// The CDF file.
        path: PathBuf,
        /// Zero-based index into the CDF array (or the array length for whole-array problems).
        index: usize,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// A trace row is malformed.
    #[error("{path}:{line}: field `{field}`: {reason}")]
    TraceRow {
        /// The trace file.
        path: PathBuf,
        /// One-based line number.
        line: u64,
        /// Field (column) name.
        field: String,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// A trace's format could not be recognised from its name and header.
    #[error("{path}: unknown trace format: {reason}")]
    UnknownTraceFormat {
        /// The trace file.
        path: PathBuf,
        /// What was seen and which formats are accepted.
        reason: String,
    },
    /// A structured file (TOML/JSON) failed to parse or validate.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming line/field where it can.
        reason: String,
    },
    /// One entry of a data file (a JSON field or a CSV cell) is missing or malformed.
    #[error("{path}: {location}: {reason}")]
    FileEntry {
        /// The file.
        path: PathBuf,
        /// Where in the file: a JSON field path, or a CSV line and column.
        location: String,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// The command line could not be parsed (unknown flag, missing value, ...).
    #[error("{0}")]
    Usage(String),
    /// A command-line flag or configuration field has an unusable value.
    #[error("{field}: {reason}")]
    Field {
        /// Flag (`--lam`) or field (`pools[1].max_ctx`) name.
        field: String,
        /// What is wrong and what was expected.
        reason: String,
    },
}

impl InputError {
    /// Shorthand for [`InputError::Field`].
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        InputError::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// True when the error (or anything in its cause chain) is bad input.
pub fn is_input_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<InputError>())
}

/// Longest stretch of a user's value quoted back in an error message.
const EXCERPT_MAX_CHARS: usize = 60;

/// A value from the user's input (a CSV cell, a header, a flag value) as
/// an error message quotes it: in backticks, on one line (control
/// characters escaped, so an unterminated CSV quote cannot spill the rest
/// of the file into the message) and at most [`EXCERPT_MAX_CHARS`]
/// characters of it, so the message stays bounded on any input.
pub fn excerpt(value: &str) -> String {
    let mut out = String::from("`");
    let mut chars = value.chars();
    for c in chars.by_ref().take(EXCERPT_MAX_CHARS) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    let rest = chars.count();
    if rest > 0 {
        out.push_str(&format!(" … ({rest} more characters)"));
    }
    out
}

/// The whole error chain as one line, as the CLI prints it after `error: `
/// and Python raises it: a message is one line by contract, and a newline
/// that reached one anyway (a parser's own message quoting the input) is
/// escaped rather than breaking it.
pub fn one_line_message(err: &anyhow::Error) -> String {
    let msg = format!("{err:#}");
    if msg.contains(['\n', '\r']) {
        msg.replace('\r', "\\r").replace('\n', "\\n")
    } else {
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_one_bounded_line() {
        assert_eq!(excerpt("8.2"), "`8.2`");
        assert_eq!(excerpt("8.2\n4,512"), "`8.2\\n4,512`");
        let long = "x".repeat(1000);
        let shown = excerpt(&long);
        assert!(shown.starts_with(&format!("`{}`", "x".repeat(EXCERPT_MAX_CHARS))));
        assert!(shown.ends_with("(940 more characters)"), "{shown}");
        assert!(!shown.contains('\n'));
    }

    #[test]
    fn a_message_with_a_newline_is_printed_on_one_line() {
        let err = anyhow::Error::new(InputError::field("f.csv", "got `a\nb`"));
        assert_eq!(one_line_message(&err), "f.csv: got `a\\nb`");
    }
}
