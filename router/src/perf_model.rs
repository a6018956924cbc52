//! Engine timing model: the workspace's one model lives in the `engine-timing` crate (shared
//! with the simulator and the planner); this module keeps the router's name for it.
//!
//! * prefill: `prefill_ms(x) = p2·x² + p1·x + p0`, `x` = tokens computed in one forward pass;
//!   a prompt longer than the chunk size `max_batched_tokens` runs as `ceil(x / chunk)`
//!   passes (chunked prefill);
//! * decode: `decode_ms = d2·u² + d1·u + d0 + per_seq·b`, `u = k / kv_capacity_tokens`;
//! * KV transfer (disaggregation): `latency + tokens · kv_bytes_per_token / bandwidth`.

/// Prefill/decode/transfer timing of one engine configuration (outputs in seconds):
/// [`engine_timing::Polynomial`] under the router's name.
pub use engine_timing::Polynomial as PerfModel;
