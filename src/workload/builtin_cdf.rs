//! The reference tool's four published workload CDFs, compiled into the binary.
//!
//! Source: the `vllm-sr-sim` fleet simulator's `data/` folder (Apache-2.0),
//! copied unchanged into this repository's `data/cdf/` (see its README):
//!
//! | name | file | what it is |
//! |---|---|---|
//! | `azure` | `azure_cdf.json` | Azure LLM inference trace 2023, conversation |
//! | `lmsys` | `lmsys_cdf.json` | LMSYS-Chat-1M, single turn |
//! | `lmsys-multiturn` | `lmsys_multiturn_cdf.json` | LMSYS-Chat-1M, whole conversations |
//! | `agent-heavy` | `agent_heavy_cdf.json` | synthetic agent mix (SWE-bench, BFCL, RAG) |
//!
//! [`lookup`] resolves a `--cdf` value that is not an existing file: the bare
//! name (`azure`), the name with underscores (`agent_heavy`), or the
//! reference's own spelling (`data/azure_cdf.json`), matched on the last path
//! component so that names in scenario files work wherever the file sits.

use std::path::Path;

/// One built-in CDF: its name, the reference's file name and the JSON text.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinCdf {
    /// The name users type (`--cdf azure`).
    pub name: &'static str,
    /// The reference tool's file name (`azure_cdf.json`).
    pub file_name: &'static str,
    /// The JSON document, as published.
    pub json: &'static str,
}

/// Every built-in CDF, in the order the help text lists them.
pub const BUILTIN_CDFS: [BuiltinCdf; 4] = [
    BuiltinCdf {
        name: "azure",
        file_name: "azure_cdf.json",
        json: include_str!("../../data/cdf/azure_cdf.json"),
    },
    BuiltinCdf {
        name: "lmsys",
        file_name: "lmsys_cdf.json",
        json: include_str!("../../data/cdf/lmsys_cdf.json"),
    },
    BuiltinCdf {
        name: "lmsys-multiturn",
        file_name: "lmsys_multiturn_cdf.json",
        json: include_str!("../../data/cdf/lmsys_multiturn_cdf.json"),
    },
    BuiltinCdf {
        name: "agent-heavy",
        file_name: "agent_heavy_cdf.json",
        json: include_str!("../../data/cdf/agent_heavy_cdf.json"),
    },
];

/// How a `--cdf` value matched a built-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinMatch {
    /// The value is a built-in name (`azure`, `agent_heavy`): nothing to say.
    Name,
    /// The value looks like a path to the reference's file
    /// (`data/azure_cdf.json`) that does not exist here: worth one note.
    ReferenceFile,
}

/// The built-in CDF a (non-existent) path names, if any.
pub fn lookup(path: &Path) -> Option<(BuiltinCdf, BuiltinMatch)> {
    let last = path.file_name()?.to_str()?;
    let bare = path.parent().is_none_or(|p| p.as_os_str().is_empty());
    BUILTIN_CDFS.iter().find_map(|b| {
        if last == b.name || last.replace('_', "-") == b.name {
            // A bare name, or a name a scenario file's folder was joined to.
            let how = if bare || !last.contains('.') {
                BuiltinMatch::Name
            } else {
                BuiltinMatch::ReferenceFile
            };
            Some((*b, how))
        } else if last == b.file_name {
            Some((*b, BuiltinMatch::ReferenceFile))
        } else {
            None
        }
    })
}

/// The built-in names, comma-separated (for help texts and error messages).
pub fn names() -> String {
    BUILTIN_CDFS
        .iter()
        .map(|b| b.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_reference_spellings_resolve() {
        let m = |s: &str| lookup(Path::new(s)).map(|(b, how)| (b.name, how));
        assert_eq!(m("azure"), Some(("azure", BuiltinMatch::Name)));
        assert_eq!(m("agent_heavy"), Some(("agent-heavy", BuiltinMatch::Name)));
        assert_eq!(
            m("/some/scenario/dir/lmsys-multiturn"),
            Some(("lmsys-multiturn", BuiltinMatch::Name))
        );
        assert_eq!(
            m("data/azure_cdf.json"),
            Some(("azure", BuiltinMatch::ReferenceFile))
        );
        assert_eq!(
            m("../shared/data/cdf/agent_heavy_cdf.json"),
            Some(("agent-heavy", BuiltinMatch::ReferenceFile))
        );
        assert_eq!(m("azure.json"), None);
        assert_eq!(m("data/other_cdf.json"), None);
    }
}
