//! A thin binding over the `nixl_capi_*` C ABI of NIXL 1.5 (`wrapper.h`).
//!
//! The ABI is reached through a table of function pointers, [`Api`], filled by
//! `dlopen` from any `libnixl_capi.so` ([`Api::load`]): ours (crate `nixl-ffi`)
//! or real NIXL's, so the same binary can run on either library. Nothing has
//! to be installed to build this crate.
//!
//! On top of the table sit small RAII wrappers that turn status codes into
//! [`Error`] (carrying the code) and free every malloc'ed output with
//! `libc::free`, as the ABI requires:
//!
//! | Wrapper | C object |
//! |---|---|
//! | [`Agent`] | `nixl_capi_agent_t` (+ metadata, registration, notifications) |
//! | [`Backend`], [`OptArgs`] | `nixl_capi_backend_t`, `nixl_capi_opt_args_t` |
//! | [`RegList`], [`XferList`] | `nixl_capi_reg_dlist_t`, `nixl_capi_xfer_dlist_t` |
//! | [`PreppedList`] | `nixl_capi_xfer_dlist_handle_t` |
//! | [`Request`] | `nixl_capi_xfer_req_t` |
//! | [`NotifMap`] | `nixl_capi_notif_map_t` |
//!
//! ```no_run
//! use nixl_capi_client::*;
//! use std::sync::Arc;
//! let api = Arc::new(Api::load("/path/to/libnixl_capi.so")?);
//! let agent = Agent::with_config(&api, "a", &AgentConfig::default())?;
//! let _ucx = agent.create_backend("UCX", &[])?;
//! let buf = vec![0u8; 4096];
//! let mut reg = RegList::new(&api, MemType::Dram)?;
//! reg.add(buf.as_ptr() as usize, buf.len(), 0, &[])?;
//! agent.register(&reg, None)?;
//! let md = agent.local_md()?;
//! # let _ = md;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Thread safety: an [`Agent`] is `Send + Sync`. When the library does not
//! lock internally (`ThreadSync::None`, or the unknown default of
//! [`Agent::new`]) the binding serialises calls on that agent itself;
//! [`AgentConfig::default`] asks for `ThreadSync::Rw` so concurrent posts
//! run in parallel.

mod agent;
mod dlist;
mod error;
pub mod ffi;
mod notif;
mod opt;
mod table;
mod xfer;

pub use agent::{Agent, AgentConfig, ThreadSync};
pub use dlist::{MemType, RegList, XferList, XferOp};
pub use error::{Error, Result, code_name};
pub use ffi::XferTelemetry;
pub use notif::NotifMap;
pub use opt::{Backend, OptArgs};
pub use table::{Api, LoadError};
pub use xfer::{LOCAL_AGENT, PreppedList, Request, XferState};

/// Path of a `libnixl_capi.so` from the environment: `NIXL_CAPI_LIB`, or
/// `None` when unset.
pub fn lib_from_env() -> Option<std::path::PathBuf> {
    std::env::var_os("NIXL_CAPI_LIB").map(Into::into)
}
