//! KV cache events: the router's own event type ([`router::KvEvent`]), so engines publish
//! exactly what the router consumes (no conversion). Each event says which
//! [`StorageTier`] it is about; the simulation numbers them per worker across tiers.

pub use router::{KvEvent, KvEventData, StorageTier, StoredBlock};

/// Identifies a worker (one engine replica) in the simulation.
pub type WorkerId = u64;
