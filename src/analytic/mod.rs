//! Analytic queueing models: the cross-check for the simulator.

pub mod erlang;

pub use erlang::{MmcQueue, erlang_b, erlang_c};
