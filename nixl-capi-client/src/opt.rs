//! Optional arguments (`nixl_capi_opt_args_t`) and backend handles.

use crate::error::{Result, check, cstr};
use crate::ffi::{BackendT, OptArgsT};
use crate::table::Api;
use std::sync::Arc;

/// A backend created on an agent. Dropping it frees the C handle only: the
/// agent keeps the backend engine until the agent itself is destroyed.
pub struct Backend {
    pub(crate) api: Arc<Api>,
    pub(crate) raw: BackendT,
    pub(crate) plugin: String,
}

// SAFETY: the handle is an immutable pointer wrapper owned by this value.
unsafe impl Send for Backend {}
// SAFETY: no method mutates the handle through `&self`.
unsafe impl Sync for Backend {}

impl Backend {
    /// The plugin name it was created from.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The raw handle, valid while `self` lives.
    pub fn as_raw(&self) -> BackendT {
        self.raw
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // SAFETY: `raw` came from create_backend and is freed once.
        unsafe { (self.api.destroy_backend)(self.raw) };
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("plugin", &self.plugin)
            .finish()
    }
}

/// Optional arguments for registration, transfers, notifications and
/// metadata exchange. Values are copied into the C object when set.
pub struct OptArgs {
    api: Arc<Api>,
    raw: OptArgsT,
}

// SAFETY: a heap object owned by this value; setters take `&mut self`.
unsafe impl Send for OptArgs {}
// SAFETY: the library only reads opt args passed by `&self`.
unsafe impl Sync for OptArgs {}

impl OptArgs {
    /// Creates empty optional arguments.
    pub fn new(api: &Arc<Api>) -> Result<OptArgs> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out pointer.
        check("create_opt_args", unsafe {
            (api.create_opt_args)(&mut raw)
        })?;
        Ok(OptArgs {
            api: api.clone(),
            raw,
        })
    }

    /// Restricts the operation to `backend`.
    pub fn add_backend(&mut self, backend: &Backend) -> Result<&mut Self> {
        // SAFETY: both handles are live.
        check("opt_args_add_backend", unsafe {
            (self.api.opt_args_add_backend)(self.raw, backend.raw)
        })?;
        Ok(self)
    }

    /// Attaches a notification message (and sets `has_notif`).
    pub fn notif(&mut self, msg: &[u8]) -> Result<&mut Self> {
        // SAFETY: `msg` is valid for its length; the library copies it.
        check("opt_args_set_notif_msg", unsafe {
            (self.api.opt_args_set_notif_msg)(self.raw, msg.as_ptr().cast(), msg.len())
        })?;
        self.has_notif(true)
    }

    /// Sets or clears `has_notif`.
    pub fn has_notif(&mut self, on: bool) -> Result<&mut Self> {
        // SAFETY: `raw` is live.
        check("opt_args_set_has_notif", unsafe {
            (self.api.opt_args_set_has_notif)(self.raw, on)
        })?;
        Ok(self)
    }

    /// Asks the library not to merge contiguous descriptors.
    pub fn skip_desc_merge(&mut self, on: bool) -> Result<&mut Self> {
        // SAFETY: `raw` is live.
        check("opt_args_set_skip_desc_merge", unsafe {
            (self.api.opt_args_set_skip_desc_merge)(self.raw, on)
        })?;
        Ok(self)
    }

    /// Peer address for socket metadata exchange.
    pub fn ip_addr(&mut self, ip: &str) -> Result<&mut Self> {
        let c = cstr("opt_args_set_ip_addr", ip)?;
        // SAFETY: `c` is NUL-terminated and outlives the call.
        check("opt_args_set_ip_addr", unsafe {
            (self.api.opt_args_set_ip_addr)(self.raw, c.as_ptr())
        })?;
        Ok(self)
    }

    /// Peer port for socket metadata exchange.
    pub fn port(&mut self, port: u16) -> Result<&mut Self> {
        // SAFETY: `raw` is live.
        check("opt_args_set_port", unsafe {
            (self.api.opt_args_set_port)(self.raw, port)
        })?;
        Ok(self)
    }

    /// The raw handle, valid while `self` lives.
    pub fn as_raw(&self) -> OptArgsT {
        self.raw
    }
}

impl Drop for OptArgs {
    fn drop(&mut self) {
        // SAFETY: created by create_opt_args, destroyed once.
        unsafe { (self.api.destroy_opt_args)(self.raw) };
    }
}

/// The raw pointer of an optional `OptArgs` (NULL when absent).
pub(crate) fn raw_opt(opt: Option<&OptArgs>) -> OptArgsT {
    opt.map_or(std::ptr::null_mut(), |o| o.raw)
}
