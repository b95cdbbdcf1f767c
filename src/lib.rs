//! # kvfleet
//!
//! A capacity planner for LLM serving fleets, built around an exact, fast
//! discrete-event simulator of GPU serving instances.
//!
//! ## A tour of the architecture
//!
//! - [`workload`] — where requests come from: CDF files, synthetic length
//!   distributions, arrival processes (Poisson, rate profiles, MMPP, closed
//!   loop) and streamed trace replay.
//! - [`profile`] — what one serving instance costs and how fast it steps
//!   (the manual presets `a10g`, `a100`, `h100`, custom and TOML profiles;
//!   hardware and model catalogs, a roofline step model validated against
//!   published measurements, linearised into computed profiles; calibration
//!   from measured step times).
//! - [`engine`] — the discrete-event simulator: one global event queue in
//!   integer nanoseconds, pools of serving instances with iteration-level
//!   continuous batching (chunked prefill, paged KV blocks, recompute
//!   preemption), a fast-forward over pure-decode runs, the naive step engine
//!   kept as its reference, the slot (M/G/c) model, and dispatchers. Controls
//!   change caps and instance counts during a run (demand response,
//!   autoscaling, failures); disaggregated fleets hand KV caches from
//!   prefill-only to decode-only pools over processor-sharing links.
//! - routers live in the leaf crate `kvfleet-routers`; the engine hands
//!   them read-only views and applies their decisions.
//! - [`metrics`] — latency histograms (hdrhistogram's 3-digit bucketing), SLO attainment, utilisation,
//!   replications with confidence intervals, the JSON report.
//! - [`analytic`] — Erlang-B/C and M/M/c, the cross-check for the slot model;
//!   per-pool calibration from a workload and side-by-side estimates
//!   (reference formula, M/M/c, Allen–Cunneen, batching-aware birth–death).
//! - [`planner`] — fleets sized with the DES in the loop: `optimize`,
//!   `pareto`, `whatif`, grid flexibility, tokens per watt, disaggregation.
//! - [`cluster`] — rack-scale sizing (`kvfleet cluster`): rack presets with
//!   sources, TP×PP×EP×DP plans on the roofline step model, KV tiers (HBM,
//!   host DRAM, NVMe, storage servers) and a DES check of the users as sessions.
//! - [`scenario`] and [`fleet_file`] — a planning question as one file.
//! - [`api`] — the front door every front end uses: one argument type per
//!   subcommand (the CLI's flags, also built from Python keyword arguments
//!   and planner scenario files), resolved into a validated library
//!   configuration before any work, [`api::execute`] to run it with the
//!   caller's progress observer, and [`api::Report`], whose serde form is
//!   the `--json` document.
//! - [`report_format`] — how a report is shown: tables, CSV and SVG charts,
//!   one trait per text format, and the output files a run's flags name.
//! - [`progress`] — the observer trait long runs report to; the caller
//!   passes one (bars on stderr in the CLI, a tqdm-like factory in Python,
//!   [`progress::SILENT`] in tests). Nothing global.
//! - [`cli`] — the binary's front end: `argv` → [`api::Command`] →
//!   [`api::execute`] → stdout and files. No library module imports it; the
//!   Python package (`python/`, PyO3) is a second front end on [`api`].
//! - [`rng`] — one seed, one independent stream per purpose and replication.
//! - [`error`] — bad-input errors (exit code 2); [`input_file`] — the one
//!   capped, gzip-aware reader every input file goes through.
//! - [`shared_data`] — how tests find `../shared/data`, and skip loudly without it.
//! - [`process_memory`] — the allocator settings a simulating process makes
//!   at start (huge pages, freed memory kept).

pub mod analytic;
pub mod api;
pub mod benchmark;
pub mod cli;
pub mod cluster;
pub mod compare;
pub mod deployment;
pub mod engine;
pub mod error;
pub mod fleet_file;
pub mod input_file;
pub mod metrics;
pub mod planner;
pub mod process_memory;
pub mod profile;
pub mod progress;
pub mod report_format;
pub mod rng;
pub mod scenario;
pub mod shared_data;
pub mod simulate;
pub mod sizing_calc;
pub mod workload;
