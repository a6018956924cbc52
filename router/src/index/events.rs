//! KV-cache events as the index consumes them (engine-agnostic; see `wire` for decoding
//! vLLM's msgpack format into these).

use crate::hashing::{BlockHash, ExternalHash};

/// One block announced by a `Stored` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBlock {
    /// The engine's identifier for the block, used by later `Removed` events.
    pub external: ExternalHash,
    /// Our hash of the block's tokens (recomputed from the event's token ids).
    pub tokens: BlockHash,
}

/// What changed in a worker's KV cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvEventData {
    /// A run of consecutive blocks was cached after `parent` (or at the start of a
    /// sequence when `parent` is `None`).
    Stored {
        /// The engine hash of the block preceding the first stored block.
        parent: Option<ExternalHash>,
        /// The blocks, in sequence order.
        blocks: Vec<StoredBlock>,
    },
    /// These blocks were evicted.
    Removed {
        /// Engine hashes of the evicted blocks.
        blocks: Vec<ExternalHash>,
    },
    /// The worker dropped its whole cache.
    Cleared,
}

/// Which memory of a worker an event is about (vLLM's `medium`: "GPU", "CPU", ...).
///
/// A worker with a host-memory tier announces a block moving from the GPU to host memory as
/// `Removed` on [`StorageTier::Device`] followed by `Stored` on [`StorageTier::Host`], and
/// the reverse when it onboards the block again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StorageTier {
    /// Accelerator memory: a hit costs nothing to use.
    #[default]
    Device,
    /// The worker's host memory: a hit must be copied to the device first.
    Host,
}

/// An event with its per-worker sequence number (monotonic, starting at 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEvent {
    /// Per-worker monotonic event id (shared by all tiers); a jump reveals lost events.
    pub event_id: u64,
    /// The change.
    pub data: KvEventData,
    /// The tier the change happened in.
    pub tier: StorageTier,
}

impl KvEvent {
    /// An event about the device tier (the only tier of engines without offloading).
    pub fn device(event_id: u64, data: KvEventData) -> Self {
        KvEvent {
            event_id,
            data,
            tier: StorageTier::Device,
        }
    }
}

/// What [`crate::Indexer::apply`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The event changed (or confirmed) the index.
    Applied,
    /// The event id was not newer than the last one seen; the event was ignored.
    Duplicate,
    /// A `Stored` event named a parent this worker does not hold; it was dropped
    /// (as Dynamo does). The worker should be re-synced.
    ParentMissing,
}

/// The result of applying one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// What happened to the event.
    pub outcome: ApplyOutcome,
    /// Event ids that were skipped before this one (`start..end`), if any: the caller
    /// should replay them or re-sync the worker from a dump.
    pub gap: Option<std::ops::Range<u64>>,
}
