//! Plugins and backends.

use std::ffi::c_char;

use nixl_core::BackendHandle;

use crate::boundary::Failure;
use crate::convert::{SUCCESS, into_handle, out_ptr, to_cstring, write_out};
use crate::params::{nixl_capi_mem_list_s, nixl_capi_params_s, nixl_capi_string_list_s};
use crate::status::CapiStatus;
use crate::types::{
    nixl_capi_agent_t, nixl_capi_backend_t, nixl_capi_mem_list_t, nixl_capi_params_t,
    nixl_capi_string_list_t,
};

/// A handle on a backend instance of an agent. Destroying the handle does not destroy the
/// backend, which lives as long as its agent (as upstream).
pub struct nixl_capi_backend_s {
    pub(crate) handle: BackendHandle,
}

/// Lists the plugins this library provides ("UCX", "POSIX", "LIBFABRIC"). The caller owns `*plugins`
/// (`nixl_capi_destroy_string_list`).
///
/// # Safety
/// `agent` must be a live agent, `plugins` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_get_available_plugins(
    agent: nixl_capi_agent_t,
    plugins: *mut nixl_capi_string_list_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let out = out_ptr(plugins, "plugins")?;
        let strings = agent.available_plugins().iter().map(|s| to_cstring(s)).collect();
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_string_list_s { strings })) };
        SUCCESS
    }
}

/// A plugin's memory types and default parameters; both outputs are owned by the caller.
/// An unknown plugin is NIXL_CAPI_ERROR_BACKEND (NOT_FOUND in the extension), as upstream.
///
/// # Safety
/// `agent` must be a live agent, `plugin_name` a NUL-terminated string, `mems` and `params`
/// valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_get_plugin_params(
    agent: nixl_capi_agent_t,
    plugin_name: *const c_char,
    mems: *mut nixl_capi_mem_list_t,
    params: *mut nixl_capi_params_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let name = arg!(str plugin_name);
        let (mems_out, params_out) = (out_ptr(mems, "mems")?, out_ptr(params, "params")?);
        let (m, p) = agent.plugin_params(name).map_err(|e| Failure::from(e).folded())?;
        // SAFETY: both checked non-NULL.
        unsafe {
            write_out(mems_out, into_handle(nixl_capi_mem_list_s { mems: m }));
            write_out(params_out, into_handle(nixl_capi_params_s { params: p }));
        }
        SUCCESS
    }
}

/// Creates a backend of plugin `plugin_name` on the agent. The caller owns the handle
/// `*backend` (`nixl_capi_destroy_backend`). Any failure is NIXL_CAPI_ERROR_BACKEND, as
/// upstream (a second instance of one plugin is INVALID_PARAM in the extension).
///
/// # Safety
/// `agent` must be a live agent, `plugin_name` a NUL-terminated string, `params` a live
/// parameter map, `backend` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_create_backend(
    agent: nixl_capi_agent_t,
    plugin_name: *const c_char,
    params: nixl_capi_params_t,
    backend: *mut nixl_capi_backend_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let name = arg!(str plugin_name);
        let params = arg!(ref params);
        let out = out_ptr(backend, "backend")?;
        let handle = agent.create_backend(name, &params.params).map_err(|e| Failure::from(e).folded())?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_backend_s { handle })) };
        SUCCESS
    }
}

/// Frees a backend handle (the backend itself lives as long as its agent).
///
/// # Safety
/// `backend` must be NULL or a live backend handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_destroy_backend(backend: nixl_capi_backend_t) -> CapiStatus {
    ffi_boundary! {
        drop(arg!(take backend));
        SUCCESS
    }
}

/// A backend's memory types and effective parameters; both outputs owned by the caller.
/// Failures are NIXL_CAPI_ERROR_BACKEND, as upstream.
///
/// # Safety
/// `agent` must be a live agent, `backend` a live handle from it, `mems` and `params` valid
/// for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_get_backend_params(
    agent: nixl_capi_agent_t,
    backend: nixl_capi_backend_t,
    mems: *mut nixl_capi_mem_list_t,
    params: *mut nixl_capi_params_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let backend = arg!(ref backend);
        let (mems_out, params_out) = (out_ptr(mems, "mems")?, out_ptr(params, "params")?);
        let (m, p) = agent.backend_params(backend.handle).map_err(|e| Failure::from(e).folded())?;
        // SAFETY: both checked non-NULL.
        unsafe {
            write_out(mems_out, into_handle(nixl_capi_mem_list_s { mems: m }));
            write_out(params_out, into_handle(nixl_capi_params_s { params: p }));
        }
        SUCCESS
    }
}
