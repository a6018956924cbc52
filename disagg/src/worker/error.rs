//! Why a worker stopped, and why one transfer or peer failed while the worker went on.

use crate::kv::AllocError;
use crate::transfer::TransferError;
use std::io;

/// What ends a worker process (returned by [`super::run`]; the frontend then sees it exit).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The KV pool or host tier could not be allocated.
    #[error(transparent)]
    Alloc(#[from] AllocError),
    /// The transfer library did not load, or its agent did not start.
    #[error("transfer library: {0}")]
    Library(#[source] TransferError),
    /// The KV-event publisher did not bind.
    #[error("kv events: {0}")]
    KvEvents(#[source] io::Error),
    /// The frontend could not be reached.
    #[error("connect to frontend {addr}: {source}")]
    Connect {
        /// The frontend's control address.
        addr: String,
        /// The connection's error.
        #[source]
        source: io::Error,
    },
    /// This agent's metadata could not be had or published.
    #[error("{what} metadata: {source}")]
    Metadata {
        /// `local` or `publish`.
        what: &'static str,
        /// The library's error.
        #[source]
        source: TransferError,
    },
    /// Writing to the frontend failed.
    #[error("control channel: {0}")]
    Control(#[source] io::Error),
    /// The library's notifications could not be read.
    #[error("notifications: {0}")]
    Notifications(#[source] TransferError),
    /// A thread or a second handle of the control connection could not be made.
    #[error("{what}: {source}")]
    Io {
        /// What was being made.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// A transfer or a peer that failed while the worker goes on: the request fails (and the
/// frontend re-routes it) or the peer is left out. Host-tier copies are transfers with this
/// agent itself.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// A peer's metadata blob did not load.
    #[error("load metadata of {agent}: {source}")]
    LoadMetadata {
        /// The peer.
        agent: String,
        /// The library's error.
        #[source]
        source: TransferError,
    },
    /// A peer's metadata could not be fetched from its listener (or etcd).
    #[error("fetch metadata of {agent}: {source}")]
    FetchMetadata {
        /// The peer.
        agent: String,
        /// The library's last error.
        #[source]
        source: TransferError,
    },
    /// Fetched, but the library never reported the peer loaded.
    #[error("fetch metadata of {agent}: not loaded after fetching")]
    NotLoaded {
        /// The peer.
        agent: String,
    },
    /// A notification to a peer failed.
    #[error("notify {agent}: {source}")]
    Notify {
        /// The peer.
        agent: String,
        /// The library's error.
        #[source]
        source: TransferError,
    },
    /// A READ from a peer could not be posted.
    #[error("read from {agent}: {source}")]
    Read {
        /// The peer.
        agent: String,
        /// The library's error.
        #[source]
        source: TransferError,
    },
    /// The prefill worker holding the blocks is not (or no longer) a peer.
    #[error("prefill worker {0} is unknown or gone")]
    UnknownPrefill(String),
    /// The prefill worker's slot list does not match the prompt's blocks.
    #[error("prefill sent {sent} slots for {blocks} blocks")]
    SlotCount {
        /// Slots sent.
        sent: usize,
        /// Blocks in the prompt.
        blocks: usize,
    },
    /// A WRITE to a decode worker (push mode) failed.
    #[error("push to {agent}: {source}")]
    Push {
        /// The decode worker.
        agent: String,
        /// The library's error.
        #[source]
        source: TransferError,
    },
    /// The decode worker left while blocks were pushed to it.
    #[error("decode worker {0} left during the push")]
    LeftDuringPush(String),
    /// A copy between the GPU pool and the host tier failed.
    #[error("local transfer: {0}")]
    Local(#[source] TransferError),
    /// A copy between the GPU pool and the host tier took too long.
    #[error("local transfer timed out")]
    LocalTimeout,
}
