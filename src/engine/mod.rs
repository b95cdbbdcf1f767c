//! The discrete-event simulator.
//!
//! One global [`events::EventQueue`] in integer nanoseconds drives arrivals,
//! routing (through `kvfleet-routers`), dispatch inside each pool
//! ([`dispatch`]) and serving instances ([`server::Server`]): the
//! iteration-level model ([`iteration`], with exact fast-forward or the naive
//! step reference) or the slot model ([`slot`]). [`run`] executes one
//! replication and returns a [`SimOutcome`].

pub mod config;
pub mod dispatch;
pub mod events;
pub mod iteration;
mod lineheap;
pub mod link;
mod outcome;
pub mod recovery;
pub mod requests;
pub mod server;
mod sim;
pub mod slot;
pub mod units;
mod wakes;

pub use config::{
    Arrivals, ClosedLoop, Control, ControlChange, Disagg, EngineKind, LinkSpec, MetricWindow,
    PoolConfig, ScaleMode, ServiceModel, SimConfig, Slo, Warmup, WindowMissWatch, window_arrivals,
};
pub use outcome::{
    PoolOutcome, RequestRecord, SimOutcome, TransferOutcome, Verdict, WindowOutcome,
};
pub use sim::{entry_pools, pool_views, run, run_with_router};
