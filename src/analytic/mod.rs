//! Analytic queueing models: the cross-check for the simulator.
//!
//! - [`erlang`] — stable Erlang-B/C and the exact M/M/c waiting-time law;
//! - [`calibration`] — a pool's arrival rate, slots and service/prefill-time
//!   moments from a workload sample under the slot model;
//! - [`estimates`] — side-by-side P99 estimates: the reference tool's
//!   formula, exact M/M/c, Allen–Cunneen (= Lee–Longton for Poisson arrivals)
//!   and a batching-aware birth–death model of the iteration engine;
//! - [`iteration_model`] — the cross-check kvfleet stands behind: the
//!   iteration engine's own mechanics (length-biased contexts, step-boundary
//!   admission, the prefill chunk queue, dispatch) and P99 TTFT as a quantile
//!   of the whole sum;
//! - [`validate`] — the validation matrix of every model against the DES.

pub mod calibration;
pub mod erlang;
pub mod estimates;
pub mod iteration_model;
pub mod validate;

pub use calibration::{PoolCalibration, sample_lengths};
pub use erlang::{MmcQueue, erlang_b, erlang_c};
pub use estimates::{PoolEstimate, all_estimates, allen_cunneen, birth_death, mmc, reference_p99};
