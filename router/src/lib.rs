//! KV-aware request router.
//!
//! * [`hashing`]: Dynamo/vLLM-compatible block and sequence hashes;
//! * [`index`]: worker → cached blocks, fed by KV events (or approximated from routing);
//! * [`wire`]: decoding vLLM's ZMQ/msgpack KV-event stream;
//! * [`perf_model`]: prefill/decode timing shared with the planner and simulator;
//! * [`transfer_cost`]: KV bytes per token from the model shape and the price of moving
//!   blocks between device, host memory and peer workers;
//! * [`sched`]: load bookkeeping, routing policies (Dynamo's cost, predicted TTFT,
//!   round-robin, random) and the disaggregation decision.
//!
//! The core does no I/O and reads no clock: time is passed in (seconds, `f64`), and all
//! randomness comes from seeded generators, so a discrete-event simulation can drive it
//! deterministically.

pub mod hashing;
pub mod index;
pub mod perf_model;
pub mod sched;
pub mod trace_hashing;
pub mod transfer_cost;
pub mod wire;
mod worker;

pub use hashing::{BlockHash, ExternalHash, PromptHashes, SequenceHash, hash_blocks, hash_prompt};
pub use index::{
    ApplyOutcome, ApplyReport, ApproxConfig, ApproxIndexer, Indexer, KvEvent, KvEventData,
    OverlapScores, StorageTier, StoredBlock,
};

pub use perf_model::PerfModel;
pub use transfer_cost::{ModelShape, TransferCost};
pub use worker::WorkerId;
