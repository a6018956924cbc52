//! Disaggregated LLM serving, end to end on one machine (or several): prefill and decode
//! worker processes move real KV blocks through NIXL's C ABI, a frontend routes with the
//! `router` crate and the `planner` crate sizes the pools while the run goes.
//!
//! * [`kv`] — the workers' KV pools: layout, memory, deterministic contents, slots, host tier;
//! * [`transfer`] — READ/WRITE/notifications through `nixl_capi_*` ([`transfer::capi`]);
//! * [`worker`] — the worker process (mock engine from `sim` for timing);
//! * [`events`] — vLLM-format KV events over ZeroMQ;
//! * [`proto`] — the frontend ⇄ worker control channel;
//! * [`frontend`] — workload replay, routing, planner, faults, report.

pub mod cli;
pub mod events;
pub mod frontend;
pub mod kv;
mod linked;
pub mod proto;
pub mod transfer;
pub mod worker;
