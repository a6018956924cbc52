//! The worker's KV cache in memory: geometry ([`KvLayout`]), the bytes ([`KvPool`]),
//! deterministic block contents ([`content`]), slot bookkeeping with a prefix cache
//! ([`SlotTable`]) and the host-memory tier ([`HostTier`]).

pub mod content;
mod error;
mod host_tier;
mod layout;
mod pool;
mod slots;

pub use error::{AllocError, DoesNotFit};
pub use host_tier::{HostTier, available_memory, check_fits, host_blocks_that_fit};
pub use layout::KvLayout;
pub use pool::KvPool;
pub use slots::{SlotId, SlotTable};
