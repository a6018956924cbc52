//! Agent metadata: producing, loading, exchanging and invalidating it.

use libc::size_t;
use std::ffi::{c_char, c_void};

use nixl_core::{MemType, XferDescList};

use crate::boundary::Failure;
use crate::convert::{SUCCESS, malloc_bytes, malloc_cstr, out_ptr, write_out};
use crate::status::CapiStatus;
use crate::types::{
    nixl_capi_agent_t, nixl_capi_opt_args_t, nixl_capi_reg_dlist_t, nixl_capi_xfer_dlist_t,
};

/// The agent's full metadata blob, in a `malloc`ed buffer the caller frees with `free`.
///
/// # Safety
/// `agent` must be a live agent; `data` and `len` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_get_local_md(
    agent: nixl_capi_agent_t,
    data: *mut *mut c_void,
    len: *mut size_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let (data, len) = (out_ptr(data, "data")?, out_ptr(len, "len")?);
        let (buf, n) = malloc_bytes(&agent.local_md()?, false)?;
        // SAFETY: both checked non-NULL.
        unsafe {
            write_out(data, buf);
            write_out(len, n);
        }
        SUCCESS
    }
}

/// Partial metadata: with an empty `descs`, connection info only; otherwise just those
/// registrations (each must exactly match one). `malloc`ed; the caller frees it with `free`.
///
/// # Safety
/// `agent` must be a live agent, `descs` a live list, `opt_args` NULL or live; `data` and
/// `len` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_get_local_partial_md(
    agent: nixl_capi_agent_t,
    descs: nixl_capi_reg_dlist_t,
    data: *mut *mut c_void,
    len: *mut size_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let descs = arg!(ref descs);
        let (data, len) = (out_ptr(data, "data")?, out_ptr(len, "len")?);
        let opts = arg!(opt opt_args);
        let (buf, n) = malloc_bytes(&agent.local_partial_md(&descs.list, opts.as_ref())?, false)?;
        // SAFETY: both checked non-NULL.
        unsafe {
            write_out(data, buf);
            write_out(len, n);
        }
        SUCCESS
    }
}

/// Loads a remote agent's metadata and returns its name in a `malloc`ed string the caller
/// frees with `free`. Garbage or truncated blobs are refused with an error.
///
/// # Safety
/// `agent` must be a live agent; `data` valid for `len` bytes; `agent_name` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_load_remote_md(
    agent: nixl_capi_agent_t,
    data: *const c_void,
    len: size_t,
    agent_name: *mut *mut c_char,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        if len == 0 {
            return Err(Failure::invalid("metadata is empty"));
        }
        let blob = arg!(bytes data, len, "data");
        let out = out_ptr(agent_name, "agent_name")?;
        let name = agent.load_remote_md(blob)?;
        let name = malloc_cstr(&name)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, name) };
        SUCCESS
    }
}

/// Forgets a remote agent's metadata and closes connections to it; NOT_FOUND if unknown.
///
/// # Safety
/// `agent` must be a live agent, `remote_agent` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_invalidate_remote_md(
    agent: nixl_capi_agent_t,
    remote_agent: *const c_char,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let remote = arg!(str remote_agent);
        agent.invalidate_remote_md(remote)?;
        SUCCESS
    }
}

/// Tells peers (or the central store) to forget this agent. Asynchronous.
///
/// # Safety
/// `agent` must be a live agent, `opt_args` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_invalidate_local_md(
    agent: nixl_capi_agent_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        agent.invalidate_local_md(arg!(opt opt_args).as_ref())?;
        SUCCESS
    }
}

/// SUCCESS if `remote_name`'s metadata is loaded and (when `descs` is non-NULL and not empty)
/// covers every descriptor of `descs`; NOT_FOUND means "not (yet)".
///
/// # Safety
/// `agent` must be a live agent, `remote_name` a NUL-terminated string, `descs` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_check_remote_md(
    agent: nixl_capi_agent_t,
    remote_name: *const c_char,
    descs: nixl_capi_xfer_dlist_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let remote = arg!(str remote_name);
        let empty = XferDescList::new(MemType::Dram);
        // SAFETY: `descs` is NULL (no list) or a live list (this function's `# Safety`).
        let list = unsafe { descs.as_ref() }.map_or(&empty, |d| &d.list);
        agent.check_remote_md(remote, list)?;
        SUCCESS
    }
}

/// Publishes this agent's metadata to a peer (`ip_addr`/`port` in `opt_args`) or the central
/// store. Asynchronous: returns once queued.
///
/// # Safety
/// `agent` must be a live agent, `opt_args` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_send_local_md(
    agent: nixl_capi_agent_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        agent.send_local_md(arg!(opt opt_args).as_ref())?;
        SUCCESS
    }
}

/// Publishes part of this agent's metadata (empty `descs`: connection info only).
///
/// # Safety
/// `agent` must be a live agent, `descs` a live list, `opt_args` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_send_local_partial_md(
    agent: nixl_capi_agent_t,
    descs: nixl_capi_reg_dlist_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let descs = arg!(ref descs);
        agent.send_local_partial_md(&descs.list, arg!(opt opt_args).as_ref())?;
        SUCCESS
    }
}

/// Asks a peer (`ip_addr`/`port`) or the central store for `remote_name`'s metadata;
/// `nixl_capi_check_remote_md` tells when it has arrived.
///
/// # Safety
/// `agent` must be a live agent, `remote_name` a NUL-terminated string, `opt_args` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_fetch_remote_md(
    agent: nixl_capi_agent_t,
    remote_name: *const c_char,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let remote = arg!(str remote_name);
        agent.fetch_remote_md(remote, arg!(opt opt_args).as_ref())?;
        SUCCESS
    }
}
