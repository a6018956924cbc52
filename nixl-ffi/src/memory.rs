//! Registration, deregistration, memory queries and connections.

use libc::size_t;
use std::ffi::c_char;

use nixl_core::Params;

use crate::boundary::Failure;
use crate::convert::{SUCCESS, into_handle, out_ptr, write_out};
use crate::params::nixl_capi_params_s;
use crate::status::CapiStatus;
use crate::types::{
    nixl_capi_agent_t, nixl_capi_opt_args_t, nixl_capi_params_t, nixl_capi_query_resp_list_t,
    nixl_capi_reg_dlist_t,
};

/// Responses of `nixl_capi_query_mem`, one per descriptor: absent, or a parameter map.
#[derive(Default)]
pub struct nixl_capi_query_resp_list_s {
    responses: Vec<Option<Params>>,
}

/// Registers memory with every backend serving its type (or those in `opt_args`).
///
/// The caller promises that registered memory stays allocated and valid until it is
/// deregistered or the agent destroyed: transfers of this agent and of peers holding its
/// metadata may read and write it at any time until then.
///
/// # Safety
/// `agent` must be a live agent, `dlist` a live list, `opt_args` NULL or live, and the memory
/// described must satisfy the promise above.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_register_mem(
    agent: nixl_capi_agent_t,
    dlist: nixl_capi_reg_dlist_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let dlist = arg!(ref dlist);
        let opts = arg!(opt opt_args);
        // SAFETY: the C caller made the promise `Agent::register_mem` needs (see above): the
        // memory stays valid until deregistered or the agent is destroyed.
        unsafe { agent.register_mem(&dlist.list, opts.as_ref()) }?;
        SUCCESS
    }
}

/// Deregisters memory; every descriptor must exactly match a registration (else NOT_FOUND
/// and nothing is deregistered).
///
/// # Safety
/// `agent` must be a live agent, `dlist` a live list, `opt_args` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_deregister_mem(
    agent: nixl_capi_agent_t,
    dlist: nixl_capi_reg_dlist_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let dlist = arg!(ref dlist);
        agent.deregister_mem(&dlist.list, arg!(opt opt_args).as_ref())?;
        SUCCESS
    }
}

/// Checks that a remote agent's metadata is loaded (connections open lazily); NOT_FOUND if
/// not.
///
/// # Safety
/// `agent` must be a live agent, `remote_agent` a NUL-terminated string, `opt_args` NULL or
/// live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_agent_make_connection(
    agent: nixl_capi_agent_t,
    remote_agent: *const c_char,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let remote = arg!(str remote_agent);
        let _ = arg!(opt opt_args);
        agent.make_connection(remote)?;
        SUCCESS
    }
}

/// Asks the one backend named in `opt_args` about each descriptor (the POSIX backend: does
/// the file exist, its size, mode and mtime). Replaces the contents of `resp`.
///
/// # Safety
/// `agent` must be a live agent, `descs` a live list, `resp` a live response list, `opt_args`
/// NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_query_mem(
    agent: nixl_capi_agent_t,
    descs: nixl_capi_reg_dlist_t,
    resp: nixl_capi_query_resp_list_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let descs = arg!(ref descs);
        let resp = arg!(mut resp);
        resp.responses = agent.query_mem(&descs.list, arg!(opt opt_args).as_ref())?;
        SUCCESS
    }
}

/// Creates an empty response list, owned by the caller (`nixl_capi_destroy_query_resp_list`).
///
/// # Safety
/// `list` must be valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_create_query_resp_list(
    list: *mut nixl_capi_query_resp_list_t,
) -> CapiStatus {
    ffi_boundary! {
        let out = out_ptr(list, "list")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_query_resp_list_s::default())) };
        SUCCESS
    }
}

/// Destroys a response list.
///
/// # Safety
/// `list` must be NULL or a live response list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_destroy_query_resp_list(
    list: nixl_capi_query_resp_list_t,
) -> CapiStatus {
    ffi_boundary! { drop(arg!(take list)); SUCCESS }
}

/// Number of responses.
///
/// # Safety
/// `list` must be a live response list, `size` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_query_resp_list_size(
    list: nixl_capi_query_resp_list_t,
    size: *mut size_t,
) -> CapiStatus {
    ffi_boundary! {
        let list = arg!(ref list);
        let out = out_ptr(size, "size")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, list.responses.len()) };
        SUCCESS
    }
}

fn response(list: &nixl_capi_query_resp_list_s, index: size_t) -> Result<&Option<Params>, Failure> {
    list.responses.get(index).ok_or_else(|| {
        Failure::invalid(format!(
            "index {index} is past the end ({})",
            list.responses.len()
        ))
    })
}

/// Whether response `index` has a value (e.g. the file exists).
///
/// # Safety
/// `list` must be a live response list, `has_value` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_query_resp_list_has_value(
    list: nixl_capi_query_resp_list_t,
    index: size_t,
    has_value: *mut bool,
) -> CapiStatus {
    ffi_boundary! {
        let list = arg!(ref list);
        let out = out_ptr(has_value, "has_value")?;
        let r = response(list, index)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, r.is_some()) };
        SUCCESS
    }
}

/// A copy of response `index`'s parameters, owned by the caller (`nixl_capi_destroy_params`);
/// INVALID_PARAM if it has no value.
///
/// # Safety
/// `list` must be a live response list, `params` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_query_resp_list_get_params(
    list: nixl_capi_query_resp_list_t,
    index: size_t,
    params: *mut nixl_capi_params_t,
) -> CapiStatus {
    ffi_boundary! {
        let list = arg!(ref list);
        let out = out_ptr(params, "params")?;
        let p = response(list, index)?
            .clone()
            .ok_or_else(|| Failure::invalid(format!("response {index} has no value")))?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_params_s { params: p })) };
        SUCCESS
    }
}
