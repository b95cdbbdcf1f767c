//! `--shard I/N` on the sweeping commands and `kvfleet merge`: a sweep
//! split across batch jobs (a Slurm array, say), each writing a shard
//! document, merged into the report a single run gives, byte for byte.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::output::OutputArgs;
use super::{Command, Outcome, Parsed, Report};
use crate::error::InputError;
use crate::planner::shard::{Shard, ShardComplete, Sweep};
use crate::progress::Reporter;

/// The sharding flag of a sweeping command.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SweepArgs {
    /// Compute only part I of N of the sweep (its items i with i mod N = I,
    /// 0 ≤ I < N) and report them as a shard document for `kvfleet merge`.
    #[arg(long, value_name = "I/N", allow_hyphen_values = true)]
    pub shard: Option<Shard>,
    /// Items replayed from merged shards (set by `merge`, never by a flag).
    #[arg(skip)]
    pub replay: Option<Arc<BTreeMap<usize, Value>>>,
}

impl SweepArgs {
    /// How the planner obtains its sweep items.
    pub fn sweep(&self) -> Sweep {
        match &self.replay {
            Some(items) => Sweep::Replay((**items).clone()),
            None => Sweep::new(self.shard),
        }
    }
}

/// The shard document format version.
pub const SHARD_FORMAT: u32 = 1;

/// One shard's items, as `--shard` reports them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardDoc {
    /// Format version ([`SHARD_FORMAT`]).
    pub kvfleet_shard: u32,
    /// The subcommand (`pareto`, `whatif`, `grid-flex`, `tok-per-watt`).
    pub command: String,
    /// The command line without `--shard` and output flags; `merge` reruns
    /// it with the items of every shard (relative paths resolve from the
    /// folder `merge` runs in).
    pub argv: Vec<String>,
    /// Which part of the sweep this is.
    pub shard: Shard,
    /// Items in the whole sweep.
    pub items_total: usize,
    /// This shard's items by index (floats as bit patterns: exact).
    pub items: BTreeMap<usize, Value>,
}

impl crate::report_format::HumanReport for ShardDoc {
    fn human(&self) -> String {
        format!(
            "{} shard {}: {} of {} sweep items computed. Write each shard with --out (or --json) and run `kvfleet merge SHARD.json...` for the report.\n",
            self.command,
            self.shard,
            self.items.len(),
            self.items_total
        )
    }
}

/// A sweeping planner's result: its report, or — when it ran as a shard —
/// the shard document.
pub(super) fn finish_sweep<T>(
    result: anyhow::Result<T>,
    sweep: &Sweep,
    command: &str,
    wrap: impl FnOnce(T) -> Report,
) -> anyhow::Result<Outcome> {
    match result {
        Ok(r) => Ok(wrap(r).into()),
        Err(e) if e.is::<ShardComplete>() => {
            let (shard, items, items_total) = sweep
                .take_done()
                .ok_or_else(|| anyhow::anyhow!("a shard ended without its items"))?;
            Ok(Report::Shard(Box::new(ShardDoc {
                kvfleet_shard: SHARD_FORMAT,
                command: command.to_string(),
                argv: Vec::new(),
                shard,
                items_total,
                items,
            }))
            .into())
        }
        Err(e) => Err(e),
    }
}

/// Flags that shape output, not the computation: dropped from a shard's
/// stored command line (`merge` takes its own). The bool says whether the
/// flag takes a value.
const OUTPUT_FLAGS: [(&str, bool); 7] = [
    ("--shard", true),
    ("--out", true),
    ("--csv", true),
    ("--plot", true),
    ("--json", false),
    ("--quiet", false),
    ("-q", false),
];

/// A command line without `--shard` and the output flags.
pub fn strip_output_flags(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let name = a.split('=').next().unwrap_or(a);
        match OUTPUT_FLAGS.iter().find(|(f, _)| *f == name) {
            Some((_, takes)) => {
                if *takes && !a.contains('=') {
                    it.next();
                }
            }
            None => out.push(a.clone()),
        }
    }
    out
}

impl Report {
    /// Give a shard document the command line that produced it.
    pub fn record_argv(&mut self, argv: &[String]) {
        if let Report::Shard(d) = self {
            d.argv = strip_output_flags(argv);
            // The program's own path differs between machines; the run does not.
            if let Some(first) = d.argv.first_mut() {
                *first = "kvfleet".into();
            }
        }
    }
}

/// Flags of `merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Shard documents (`--shard I/N --out FILE` of one command, every I of 0..N).
    #[arg(required = true, value_name = "SHARD.json")]
    pub shards: Vec<PathBuf>,
    /// Write the merged report's rows as CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Write the merged report's SVG chart.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputArgs,
}

fn bad(path: &std::path::Path, reason: impl Into<String>) -> InputError {
    InputError::File {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Read and check the shards: one command line, every part exactly once.
fn read_shards(paths: &[PathBuf]) -> Result<(ShardDoc, BTreeMap<usize, Value>), InputError> {
    let mut first: Option<(PathBuf, ShardDoc)> = None;
    let mut seen: BTreeMap<u32, PathBuf> = BTreeMap::new();
    let mut items = BTreeMap::new();
    for path in paths {
        let text = crate::input_file::read_text(path)?;
        let doc: ShardDoc = serde_json::from_str(&text).map_err(|e| {
            bad(
                path,
                format!("not a kvfleet shard document (from --shard I/N --out FILE): {e}"),
            )
        })?;
        if doc.kvfleet_shard != SHARD_FORMAT {
            return Err(bad(
                path,
                format!(
                    "shard format {}, expected {SHARD_FORMAT}",
                    doc.kvfleet_shard
                ),
            ));
        }
        if doc.argv.is_empty() {
            return Err(bad(path, "the shard records no command line"));
        }
        if let Some((p0, d0)) = &first
            && (doc.argv != d0.argv || doc.shard.count != d0.shard.count)
        {
            return Err(bad(
                path,
                format!(
                    "comes from another run than {} (`{}` with {} shards vs `{}` with {})",
                    p0.display(),
                    doc.argv.join(" "),
                    doc.shard.count,
                    d0.argv.join(" "),
                    d0.shard.count
                ),
            ));
        }
        if let Some(other) = seen.insert(doc.shard.index, path.clone()) {
            return Err(bad(
                path,
                format!("shard {} is also in {}", doc.shard, other.display()),
            ));
        }
        for (i, v) in &doc.items {
            if *i >= doc.items_total || *i as u32 % doc.shard.count != doc.shard.index {
                return Err(bad(
                    path,
                    format!("item {i} does not belong to shard {}", doc.shard),
                ));
            }
            items.insert(*i, v.clone());
        }
        if first.is_none() {
            first = Some((path.clone(), doc));
        }
    }
    let (_, doc) = first.ok_or_else(|| InputError::field("merge", "no shard documents given"))?;
    let missing: Vec<String> = (0..doc.shard.count)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{}", doc.shard.count))
        .collect();
    if !missing.is_empty() {
        return Err(InputError::field(
            "merge",
            format!("missing shard(s) {}", missing.join(", ")),
        ));
    }
    Ok((doc, items))
}

/// Run `merge`: the command the shards came from, with every shard's items.
pub fn execute(args: MergeArgs, reporter: &dyn Reporter) -> anyhow::Result<Outcome> {
    let (doc, items) = read_shards(&args.shards)?;
    let replay = Some(Arc::new(items));
    let mut command = match super::parse(&doc.argv)? {
        Parsed::Run(c) => *c,
        Parsed::Text(_) => {
            return Err(InputError::field("merge", "the shards' command line is not a run").into());
        }
    };
    let (sweep, output): (&mut SweepArgs, &mut OutputArgs) = match &mut command {
        Command::Pareto(a) => (&mut a.sweep, &mut a.output),
        Command::Whatif(a) => (&mut a.sweep, &mut a.output),
        Command::GridFlex(a) => (&mut a.sweep, &mut a.output),
        Command::TokPerWatt(a) => (&mut a.sweep, &mut a.output),
        c => {
            return Err(InputError::field(
                "merge",
                format!("`{}` has no sweep to merge", c.name()),
            )
            .into());
        }
    };
    sweep.shard = None;
    sweep.replay = replay;
    *output = args.output.clone();
    super::execute(command, reporter)
}
