//! The south-bound interface: what the agent asks of a transport or storage backend.
//!
//! The agent resolves every descriptor to its registered region before a backend sees it, so
//! backends never search; they receive [`ResolvedDesc`]s and a [`Target`] and move bytes.

pub mod completion;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod fabric;
pub mod net;
pub mod pacer;
pub mod params;
pub mod plugins;
pub mod posix;
pub mod signal;

use parking_lot::Mutex;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::AgentConfig;
use crate::registry::Region;
use crate::status::{Result, err};
use crate::types::{MemType, XferOp};

pub use completion::Completion;

/// Backend initialization parameters (`nixl_b_params_t`), ordered for stable output.
pub type Params = BTreeMap<String, String>;

/// What a backend can do (NIXL's `supportsRemote` / `supportsLocal` / `supportsNotif`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Can reach other agents.
    pub remote: bool,
    /// Can transfer within the agent (loopback, storage).
    pub local: bool,
    /// Delivers notifications.
    pub notif: bool,
}

impl Capabilities {
    /// Remote and local transfers with notifications (the network backends).
    pub const NETWORK: Capabilities = Capabilities {
        remote: true,
        local: true,
        notif: true,
    };
}

/// A descriptor resolved against a registration: the range plus the region's access key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ResolvedDesc {
    /// Start address (or file offset).
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
    /// Device id (GPU ordinal, file descriptor, ...).
    pub dev_id: u64,
    /// Key of the registration that covers the range.
    pub key: u64,
}

/// A backend's handle on one remote agent, made from the agent's connection info.
pub type PeerHandle = Arc<dyn Any + Send + Sync>;

/// Where the other side of a transfer lives.
#[derive(Clone)]
pub enum Target {
    /// The agent itself (loopback transfers, storage I/O).
    Loopback,
    /// A remote agent, through the backend's handle on it.
    Peer(PeerHandle),
}

/// A request's descriptors, shared by the request and the threads that move its bytes. A
/// `Vec` inside, so that making a request keeps the list it built instead of copying
/// (possibly hundreds of thousands of) descriptors into a fresh allocation.
pub type SharedDescs = Arc<Vec<ResolvedDesc>>;

/// One post of a transfer request, handed to a backend.
pub struct XferJob {
    /// READ pulls remote → local, WRITE pushes local → remote.
    pub op: XferOp,
    /// Memory type of the local descriptors.
    pub local_mem: MemType,
    /// Memory type of the remote descriptors.
    pub remote_mem: MemType,
    /// Local side, pairwise with `remote`.
    pub local: SharedDescs,
    /// Remote side.
    pub remote: SharedDescs,
    /// Who holds the remote side.
    pub target: Target,
    /// Message delivered to the target once all the data is visible there.
    pub notif: Option<Vec<u8>>,
    /// Sum of the descriptor lengths.
    pub total_bytes: u64,
}

/// Notifications received by an agent, in arrival order, with the sender's name.
#[derive(Default)]
pub struct NotifQueue {
    queue: Mutex<Vec<(String, Vec<u8>)>>,
    /// Woken by every push, for callers that wait for notifications instead of polling.
    arrived: signal::Signal,
}

impl NotifQueue {
    /// Queues a notification from `sender`.
    pub fn push(&self, sender: &str, msg: Vec<u8>) {
        self.queue.lock().push((sender.to_owned(), msg));
        self.arrived.notify();
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.lock().is_empty()
    }

    /// Blocks until a notification is queued or `deadline` passes; returns whether one is.
    pub fn wait(&self, deadline: Option<std::time::Instant>) -> bool {
        self.arrived.wait_until(|| !self.is_empty(), deadline)
    }

    /// Registers `waker` for the next push unless something is queued; returns whether it is.
    pub fn register(&self, waker: &std::task::Waker) -> bool {
        self.arrived.register(waker, || !self.is_empty())
    }

    /// Takes every queued notification.
    pub fn drain(&self) -> Vec<(String, Vec<u8>)> {
        std::mem::take(&mut *self.queue.lock())
    }
}

/// What every backend is built from.
#[derive(Clone)]
pub struct BackendContext {
    /// The owning agent's name.
    pub agent_name: String,
    /// The owning agent's configuration.
    pub config: AgentConfig,
    /// Where received notifications go.
    pub notifs: Arc<NotifQueue>,
}

/// A transport or storage engine (NIXL's `nixlBackendEngine`).
pub trait Backend: Send + Sync {
    /// The plugin name it was created as.
    fn name(&self) -> &str;
    /// What it can do.
    fn capabilities(&self) -> Capabilities;
    /// Memory types it serves.
    fn mem_types(&self) -> &[MemType];
    /// Its effective parameters.
    fn params(&self) -> Params;
    /// Accepts (or refuses) a new registration.
    fn register(&self, mem: MemType, region: &Region) -> Result<()>;
    /// Forgets a registration; after it returns no peer can reach the region.
    fn deregister(&self, mem: MemType, region: &Region);
    /// What peers need to know about one registered region besides its range and key (e.g. a
    /// CUDA IPC handle); published in the metadata. Empty by default.
    fn public_data(&self, mem: MemType, region: &Region) -> Vec<u8> {
        let _ = (mem, region);
        Vec::new()
    }
    /// Connection info peers need to reach this backend (remote-capable backends only).
    fn conn_info(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Makes a handle on a remote agent from its connection info (does not connect).
    fn load_remote(&self, remote_agent: &str, conn_info: &[u8]) -> Result<PeerHandle> {
        let _ = conn_info;
        Err(err!(
            NotSupported,
            "{} cannot reach remote agent {remote_agent}",
            self.name()
        ))
    }
    /// Learns a remote agent's region (with the public data its backend published), when its
    /// metadata is loaded. Backends that need per-region state (opened IPC handles) keep it.
    fn load_remote_region(&self, peer: &PeerHandle, mem: MemType, region: &Region) -> Result<()> {
        let _ = (peer, mem, region);
        Ok(())
    }
    /// Whether the remote agent behind `peer` still answers (a bounded check). Used before
    /// refusing metadata of a new incarnation under a known name.
    fn peer_alive(&self, peer: &PeerHandle) -> bool {
        let _ = peer;
        true
    }
    /// The transport a request to `peer` between these memory types (and remote
    /// descriptors) takes, as a short bounded name for metric labels (`cma`, `shm`, `tcp`,
    /// ...); `None` when the backend does not say. Called once per request made.
    fn transport(
        &self,
        peer: &PeerHandle,
        local_mem: MemType,
        remote_mem: MemType,
        remote: &[ResolvedDesc],
    ) -> Option<&'static str> {
        let _ = (peer, local_mem, remote_mem, remote);
        None
    }
    /// Drops a remote agent's handle and any connection to it.
    fn disconnect(&self, peer: &PeerHandle) {
        let _ = peer;
    }
    /// Starts a transfer. Returns its completion, which may already be done.
    fn post(&self, job: XferJob) -> Result<Arc<Completion>>;
    /// Sends a standalone notification.
    fn gen_notif(&self, target: &Target, msg: &[u8]) -> Result<()> {
        let _ = (target, msg);
        Err(err!(
            NotSupported,
            "{} does not deliver notifications",
            self.name()
        ))
    }
    /// Reports, per descriptor, what the backend knows about it (e.g. file existence, size).
    fn query_mem(
        &self,
        mem: MemType,
        descs: &[crate::desc::RegDesc],
    ) -> Result<Vec<Option<Params>>> {
        let _ = (mem, descs);
        Err(err!(
            NotSupported,
            "{} does not answer memory queries",
            self.name()
        ))
    }
    /// Stops threads and connections; called once when the agent is dropped.
    fn shutdown(&self) {}
}
