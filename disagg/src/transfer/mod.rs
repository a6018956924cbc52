//! KV block transfers as an inference engine does them: through NIXL's C ABI.
//!
//! [`Transport`] is the small surface a worker needs (metadata exchange, READ/WRITE with a
//! notification, polling, notifications). The shipped implementation, [`capi::CapiTransport`],
//! goes through `nixl_capi_*` via the `nixl-capi-client` binding: either `libnixl_capi.so` loaded
//! from a path (`--lib`), or the `nixl-ffi` implementation linked into this binary.

pub mod capi;

/// One contiguous piece of memory in a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Address (in the owner's address space).
    pub addr: u64,
    /// Length in bytes.
    pub len: usize,
}

/// Direction of a transfer, seen from the initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Copy remote memory into local memory.
    Read,
    /// Copy local memory into remote memory.
    Write,
}

/// Handle of a posted transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct XferId(pub u64);

/// Where a transfer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XferState {
    /// Still moving bytes.
    InProgress,
    /// Complete: the bytes are in place (and the notification, if any, was sent).
    Done,
}

/// A transfer-library failure.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The library given with `--lib` did not load.
    #[error("load {}: {source}", path.display())]
    Load {
        /// The library.
        path: std::path::PathBuf,
        /// The loader's error.
        #[source]
        source: nixl_capi_client::LoadError,
    },
    /// A `nixl_capi_*` call failed (its C status and function).
    #[error(transparent)]
    Capi(#[from] nixl_capi_client::Error),
    /// A handle this transport never gave out (or already released).
    #[error("unknown transfer {0}")]
    UnknownXfer(u64),
    /// The transport does not do this.
    #[error("{0} is not supported")]
    Unsupported(&'static str),
}

/// Result of a transfer call.
pub type XResult<T> = Result<T, TransferError>;

/// What a worker needs from the transfer library. One agent per worker, with the worker's
/// KV pool registered at construction.
pub trait Transport {
    /// This agent's name.
    fn name(&self) -> &str;

    /// This agent's metadata blob, to hand to peers.
    fn local_md(&mut self) -> XResult<Vec<u8>>;

    /// Loads a peer's metadata; returns the peer's agent name.
    fn load_peer(&mut self, md: &[u8]) -> XResult<String>;

    /// Forgets a peer (it left).
    fn forget_peer(&mut self, name: &str);

    /// Posts a transfer of `local[i]` ⇄ `remote[i]` with `peer`, delivering `notif` to the
    /// peer when it completes.
    fn post(
        &mut self,
        op: Op,
        peer: &str,
        local: &[Segment],
        remote: &[Segment],
        notif: Option<&[u8]>,
    ) -> XResult<XferId>;

    /// Polls a posted transfer.
    fn poll(&mut self, id: XferId) -> XResult<XferState>;

    /// Releases a transfer handle (completed or abandoned).
    fn release(&mut self, id: XferId);

    /// Notifications received since the last call: `(peer agent, message)`.
    fn take_notifs(&mut self) -> XResult<Vec<(String, Vec<u8>)>>;

    /// Sends a notification without data.
    fn notify(&mut self, peer: &str, msg: &[u8]) -> XResult<()>;

    /// Publishes this agent's metadata through the library's peer-to-peer listener (or
    /// etcd when the library is configured for it). `Err` when not supported.
    fn publish_md(&mut self) -> XResult<()> {
        Err(TransferError::Unsupported("metadata publishing"))
    }

    /// Fetches a peer's metadata through its listener at `ip:port` (or etcd); the peer is
    /// usable once [`Transport::has_peer`] says so.
    fn fetch_peer(&mut self, _name: &str, _ip: Option<&str>, _port: Option<u16>) -> XResult<()> {
        Err(TransferError::Unsupported("metadata fetching"))
    }

    /// True once `name`'s metadata is loaded.
    fn has_peer(&mut self, _name: &str) -> bool {
        false
    }
}
