//! What an agent knows about one remote agent: its connection handles and registrations.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use super::memory::MemTables;
use crate::backend::PeerHandle;

/// A backend's handle on the remote agent, made from the connection info it published.
pub(crate) struct Link {
    pub(crate) backend: usize,
    pub(crate) conn_info: Vec<u8>,
    pub(crate) peer: PeerHandle,
}

/// One loaded incarnation of a remote agent's metadata.
///
/// Requests keep an `Arc` to it; invalidation flips `invalid`, so a stale request is refused
/// with one atomic load and no lookup. Reloading after invalidation makes a new incarnation
/// (a new `Arc`), which old requests never see.
pub(crate) struct RemoteAgent {
    pub(crate) name: String,
    pub(crate) links: Vec<Link>,
    /// Registrations per backend index.
    pub(crate) tables: RwLock<HashMap<usize, MemTables>>,
    invalid: AtomicBool,
    /// Metric handles for requests to this incarnation, so requests skip the global families.
    pub(crate) metrics: crate::metrics::HandleCache,
}

impl RemoteAgent {
    pub(crate) fn new(name: String, links: Vec<Link>) -> Self {
        RemoteAgent {
            name,
            links,
            tables: RwLock::new(HashMap::new()),
            invalid: AtomicBool::new(false),
            metrics: Default::default(),
        }
    }

    pub(crate) fn is_valid(&self) -> bool {
        !self.invalid.load(Ordering::Acquire)
    }

    pub(crate) fn mark_invalid(&self) {
        self.invalid.store(true, Ordering::Release);
    }

    pub(crate) fn link(&self, backend: usize) -> Option<&Link> {
        self.links.iter().find(|l| l.backend == backend)
    }
}

/// Statuses that mean the peer is gone.
pub(crate) fn is_disconnect(status: crate::Status) -> bool {
    status == crate::Status::RemoteDisconnect
}
