//! How long an LLM engine takes: the one timing model of the workspace, shared by the
//! router's TTFT policy (`router::perf_model`), the simulator's engines (`sim::perf`) and the
//! planner's profiles (`planner::interp`, `planner::profile`).
//!
//! * [`Polynomial`] — Dynamo mocker's fitted polynomials (prefill in the pass's new tokens,
//!   decode in the KV utilisation), chunked prefill and the KV-transfer link;
//! * [`Table1d`] and [`Grid2d`] — measured profiles, interpolated piecewise-linearly;
//! * [`PerfTable`] — a measured prefill table and decode grid for the simulator;
//! * [`EngineTiming`] — the simulator's choice between the two.
//!
//! # The edge rule
//!
//! Every table here is interpolated linearly (bilinearly on a grid) between its points and
//! **clamped** outside them: below the first point the first value holds, above the last the
//! last one does. A table never reports a value it did not measure (no negative times from a
//! sparse profile, no throughput extrapolated past saturation); Dynamo's profile
//! interpolators clamp the same way. Profile the range you serve.

mod engine;
mod polynomial;
mod table;

pub use engine::{EngineTiming, PerfTable, TableFileError};
pub use polynomial::Polynomial;
pub use table::{Grid2d, Table1d, TableError};
