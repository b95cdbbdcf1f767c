//! The text forms a report can take besides its serde (JSON) form — one
//! trait per format. Reports render to strings; where the text goes (stdout,
//! a file, a notebook cell) is the front end's business.

/// A report that can be shown to a person as text (usually a table).
pub trait HumanReport {
    /// Render the report as text.
    fn human(&self) -> String;
}

/// A report that has a CSV form (sweeps).
pub trait CsvReport {
    /// Render the report as CSV text with a header row.
    fn csv(&self) -> String;
}
