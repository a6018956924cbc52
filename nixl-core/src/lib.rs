//! # nixl-core
//!
//! NVIDIA NIXL's transfer engine in safe Rust: named [`Agent`]s own backends, register memory
//! as descriptor lists, exchange metadata blobs, and move bytes with READ/WRITE transfer
//! requests that are posted and polled, with notifications delivered to the remote agent only
//! after the data is visible there.
//!
//! The behaviour follows NIXL 1.5 (status codes, registration matching, notification
//! semantics, metadata calls); the wire formats are this library's own and versioned.
//!
//! ```
//! use nixl_core::{Agent, AgentConfig, Desc, MemType, OptArgs, RegDesc, RegDescList, Status, XferDescList, XferOp};
//!
//! let a = Agent::new("a", AgentConfig::default()).unwrap();
//! let b = Agent::new("b", AgentConfig::default()).unwrap();
//! for agent in [&a, &b] {
//!     agent.create_backend("UCX", &Default::default()).unwrap();
//! }
//! let src = vec![7u8; 4096];
//! let mut dst = vec![0u8; 4096];
//! let reg = |buf: &[u8]| RegDescList::from_descs(MemType::Dram, vec![RegDesc::new(buf.as_ptr() as u64, 4096, 0)]);
//! // SAFETY: both buffers outlive the agents and are only read after the transfer completes.
//! unsafe {
//!     a.register_mem(&reg(&src), None).unwrap();
//!     b.register_mem(&reg(&dst), None).unwrap();
//! }
//! a.load_remote_md(&b.local_md().unwrap()).unwrap();
//!
//! let local = XferDescList::from_descs(MemType::Dram, vec![Desc::new(src.as_ptr() as u64, 4096, 0)]);
//! let remote = XferDescList::from_descs(MemType::Dram, vec![Desc::new(dst.as_mut_ptr() as u64, 4096, 0)]);
//! let req = a.create_xfer_req(XferOp::Write, &local, &remote, "b", Some(&OptArgs::with_notif("done"))).unwrap();
//! let mut status = a.post_xfer_req(&req, None).unwrap();
//! while status == Status::InProg {
//!     status = a.xfer_status(&req).unwrap();
//! }
//! let mut notifs = nixl_core::NotifMap::new();
//! while notifs.is_empty() {
//!     b.get_notifs(&mut notifs).unwrap();
//! }
//! assert_eq!(notifs["a"], vec![b"done".to_vec()]);
//! assert_eq!(dst, src);
//! ```

// The public API is the agent API below (and `config`, `metrics`); every other module
// is private, so its items are free to change. Tests and the crate's own test drivers reach
// the few internals they exercise through `testing`.
mod agent;
mod auth;
mod backend;
mod codec;
pub mod config;
mod desc;
mod exchange;
mod metadata;
pub mod metrics;
mod registry;
mod sockio;
mod status;
mod types;
mod util;

pub use agent::{
    Agent, BackendHandle, NotifMap, NotifReady, OptArgs, PreppedDlist, XferReady, XferRequest,
    XferTelemetry,
};
pub use backend::Params;
pub use backend::net::shm::SharedBuffer;
pub use config::AgentConfig;
pub use desc::{Desc, DescList, MAX_META_BYTES, RegDesc, RegDescList, XferDescList};
pub use status::{NixlError, Result, Status};
pub use types::{MemType, ThreadSync, XferOp};

/// Internals that this crate's integration tests, examples and `nixl-peer` exercise directly
/// (wire formats to forge, the CUDA layer to set up devices). Not part of the API: no
/// stability promise, hidden from the documentation, as quinn-proto does.
#[doc(hidden)]
pub mod testing {
    pub use crate::backend::ResolvedDesc;
    #[cfg(feature = "cuda")]
    pub use crate::backend::cuda;
    pub use crate::backend::net::{conninfo::ConnInfo, proto};
    pub use crate::exchange::frame;
    /// The metadata blob's structure, to forge and inspect blobs.
    pub mod metadata {
        pub use crate::metadata::*;
    }
}
