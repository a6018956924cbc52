//! Step-time performance model: how long one engine pass takes.
//!
//! Two sources: Dynamo mocker's fitted polynomials (the default) or measured tables loaded
//! from a JSON file, interpolated and clamped at the table edges. Both live in the
//! `engine-timing` crate, shared with the router and the planner; these are the simulator's
//! names for them.

/// Predicts prefill and decode time (ms) for one scheduler pass:
/// [`engine_timing::EngineTiming`] under the simulator's name.
pub use engine_timing::EngineTiming as PerfModel;
/// Measured timing tables: [`engine_timing::PerfTable`].
pub use engine_timing::PerfTable;
