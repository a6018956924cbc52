//! The worker's KV cache in memory: geometry ([`KvLayout`]), the bytes ([`KvPool`]),
//! deterministic block contents ([`content`]) and slot bookkeeping with a prefix cache
//! ([`SlotTable`]).

pub mod content;
mod layout;
mod pool;
mod slots;

pub use layout::KvLayout;
pub use pool::KvPool;
pub use slots::{SlotId, SlotTable};
