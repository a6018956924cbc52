//! KV cache events in the router's format (Dynamo's converted `RouterEvent`):
//! per-worker monotonic event ids, stores carrying the parent's sequence hash
//! and each block's sequence and local hash, removals by sequence hash.

use serde::{Deserialize, Serialize};

/// Identifies a worker (one engine replica) in the simulation.
pub type WorkerId = u64;

/// One block in a store event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlock {
    /// The engine's (external) sequence hash of the block.
    pub block_hash: u64,
    /// Hash of the block's tokens alone (the router's `LocalBlockHash`).
    pub tokens_hash: u64,
}

/// What happened to the worker's cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvEventData {
    /// Consecutive blocks became cached; `parent_hash` is the block before
    /// the first one (`None` at the start of a sequence).
    Stored {
        /// Sequence hash of the parent block.
        parent_hash: Option<u64>,
        /// The blocks, in prefix order.
        blocks: Vec<StoredBlock>,
    },
    /// Blocks were evicted.
    Removed {
        /// Sequence hashes of the evicted blocks.
        block_hashes: Vec<u64>,
    },
    /// The worker dropped its whole cache (it left the pool).
    Cleared,
}

/// One event as published by a worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEvent {
    /// The publishing worker.
    pub worker_id: WorkerId,
    /// Monotonic per worker, starting at 0.
    pub event_id: u64,
    /// The change.
    pub data: KvEventData,
}
