//! Transfers: prepped lists, requests, post, status, release, cost and telemetry.

use libc::size_t;
use std::ffi::{c_char, c_int};

use nixl_core::{PreppedDlist, Status, XferRequest};

use crate::boundary::{CapiResult, Failure};
use crate::convert::{SUCCESS, into_handle, out_ptr, write_out};
use crate::plugins::nixl_capi_backend_s;
use crate::status::{CapiStatus, capi_status_of, nixl_capi_status_t};
use crate::types::{
    CostArg, XferOpArg, nixl_capi_agent_t, nixl_capi_backend_t, nixl_capi_cost_t,
    nixl_capi_opt_args_t, nixl_capi_xfer_dlist_handle_t, nixl_capi_xfer_dlist_t,
    nixl_capi_xfer_req_t, nixl_capi_xfer_telemetry_s, nixl_capi_xfer_telemetry_t,
};

/// A prepped descriptor list (`nixlDlistH`).
pub struct nixl_capi_xfer_dlist_handle_s {
    prepped: PreppedDlist,
}

/// A transfer request handle. `nixl_capi_release_xfer_req` releases the request (canceling
/// an in-flight post and waiting until its memory is no longer touched);
/// `nixl_capi_destroy_xfer_req` then frees the handle.
pub struct nixl_capi_xfer_req_s {
    req: Option<XferRequest>,
}

fn live(req: &nixl_capi_xfer_req_s) -> Result<&XferRequest, Failure> {
    req.req
        .as_ref()
        .ok_or_else(|| Failure::invalid("the transfer request was already released"))
}

fn progress(status: Status) -> CapiResult {
    Ok(capi_status_of(status))
}

/// Resolves a descriptor list once against registrations. `agent_name` is "" for this
/// agent's own (initiator) memory, a remote agent's name for its memory, or this agent's own
/// name for loopback targets. The caller owns `*dlist_hndl`
/// (`nixl_capi_release_xfer_dlist_handle`).
///
/// # Safety
/// `agent` must be a live agent, `agent_name` a NUL-terminated string, `descs` a live list,
/// `dlist_hndl` valid for a write, `opt_args` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_prep_xfer_dlist(
    agent: nixl_capi_agent_t,
    agent_name: *const c_char,
    descs: nixl_capi_xfer_dlist_t,
    dlist_hndl: *mut nixl_capi_xfer_dlist_handle_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let name = arg!(str agent_name);
        let descs = arg!(ref descs);
        let out = out_ptr(dlist_hndl, "dlist_hndl")?;
        let opts = arg!(opt opt_args);
        let prepped = agent.prep_xfer_dlist(Some(name), &descs.list, opts.as_ref())?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_xfer_dlist_handle_s { prepped })) };
        SUCCESS
    }
}

/// Frees a prepped list. Requests made from it stay valid.
///
/// # Safety
/// `agent` must be a live agent; `dlist_handle` NULL or a live prepped list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_release_xfer_dlist_handle(
    agent: nixl_capi_agent_t,
    dlist_handle: nixl_capi_xfer_dlist_handle_t,
) -> CapiStatus {
    ffi_boundary! {
        arg!(agent agent);
        drop(arg!(take dlist_handle));
        SUCCESS
    }
}

/// Makes a request from two prepped lists and equal-length arrays of `int` indices into
/// them; consecutive contiguous pairs are merged unless `opt_args` says otherwise. The caller
/// owns `*req_hndl`.
///
/// # Safety
/// `agent` must be a live agent, both handles live prepped lists of it, each index array
/// valid for its count (NULL only with count 0), `req_hndl` valid for a write, `opt_args`
/// NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_make_xfer_req(
    agent: nixl_capi_agent_t,
    operation: XferOpArg,
    local_descs: nixl_capi_xfer_dlist_handle_t,
    local_indices: *const c_int,
    local_indices_count: size_t,
    remote_descs: nixl_capi_xfer_dlist_handle_t,
    remote_indices: *const c_int,
    remote_indices_count: size_t,
    req_hndl: *mut nixl_capi_xfer_req_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let op = operation.get()?;
        let local = arg!(ref local_descs);
        let remote = arg!(ref remote_descs);
        let l_idx = arg!(ints local_indices, local_indices_count);
        let r_idx = arg!(ints remote_indices, remote_indices_count);
        let out = out_ptr(req_hndl, "req_hndl")?;
        let opts = arg!(opt opt_args);
        let req = agent.make_xfer_req(op, &local.prepped, l_idx, &remote.prepped, r_idx, opts.as_ref())?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_xfer_req_s { req: Some(req) })) };
        SUCCESS
    }
}

/// Makes a request directly from two descriptor lists (no merging). Any failure is
/// NIXL_CAPI_ERROR_BACKEND, as upstream (the extension has the precise status). The caller
/// owns `*req_hndl`.
///
/// # Safety
/// `agent` must be a live agent, both lists live, `remote_agent` a NUL-terminated string,
/// `req_hndl` valid for a write, `opt_args` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_create_xfer_req(
    agent: nixl_capi_agent_t,
    operation: XferOpArg,
    local_descs: nixl_capi_xfer_dlist_t,
    remote_descs: nixl_capi_xfer_dlist_t,
    remote_agent: *const c_char,
    req_hndl: *mut nixl_capi_xfer_req_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let op = operation.get()?;
        let local = arg!(ref local_descs);
        let remote = arg!(ref remote_descs);
        let remote_agent = arg!(str remote_agent);
        let out = out_ptr(req_hndl, "req_hndl")?;
        let opts = arg!(opt opt_args);
        let req = agent
            .create_xfer_req(op, &local.list, &remote.list, remote_agent, opts.as_ref())
            .map_err(|e| Failure::from(e).folded())?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_xfer_req_s { req: Some(req) })) };
        SUCCESS
    }
}

/// Estimates a request's duration. No backend of this library implements cost estimation:
/// the call returns NIXL_CAPI_ERROR_BACKEND (NOT_SUPPORTED in the extension) after setting
/// the outputs to 0 and `NIXL_CAPI_COST_ANALYTICAL_BACKEND`.
///
/// # Safety
/// `agent` must be a live agent, `req_hndl` a live request, the outputs valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_estimate_xfer_cost(
    agent: nixl_capi_agent_t,
    req_hndl: nixl_capi_xfer_req_t,
    opt_args: nixl_capi_opt_args_t,
    duration_us: *mut i64,
    err_margin_us: *mut i64,
    method: *mut CostArg,
) -> CapiStatus {
    ffi_boundary! {
        arg!(agent agent);
        live(arg!(ref req_hndl))?;
        let (d, e) = (out_ptr(duration_us, "duration_us")?, out_ptr(err_margin_us, "err_margin_us")?);
        let m = out_ptr(method, "method")?;
        let _ = arg!(opt opt_args);
        // SAFETY: all three checked non-NULL.
        unsafe {
            write_out(d, 0);
            write_out(e, 0);
            write_out(m, CostArg(nixl_capi_cost_t::NIXL_CAPI_COST_ANALYTICAL_BACKEND as c_int));
        }
        Err(Failure::from(nixl_core::NixlError::new(
            Status::NotSupported,
            "no backend of this library estimates transfer cost",
        )))
    }
}

/// Posts a request: SUCCESS if it completed inline, IN_PROG if it is running, or an error.
/// `opt_args` with a notification replaces the request's; `opt_args` without one clears it.
///
/// # Safety
/// `agent` must be a live agent, `req_hndl` a live request of it, `opt_args` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_post_xfer_req(
    agent: nixl_capi_agent_t,
    req_hndl: nixl_capi_xfer_req_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let req = live(arg!(ref req_hndl))?;
        let opts = arg!(opt opt_args);
        progress(agent.post_xfer_req(req, opts.as_ref())?)
    }
}

/// A request's status: SUCCESS, IN_PROG, or the error that ended it.
///
/// A thread that calls this for the same request again and again, microseconds apart, once the
/// transfer has run 500 us, may be parked here for up to 250 us (woken when the transfer ends),
/// so that its loop leaves the CPU to the threads moving the bytes.
///
/// # Safety
/// `agent` must be a live agent, `req_hndl` a live request of it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_get_xfer_status(
    agent: nixl_capi_agent_t,
    req_hndl: nixl_capi_xfer_req_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let req = live(arg!(ref req_hndl))?;
        progress(agent.xfer_status(req)?)
    }
}

/// The backend chosen for the request, as a new handle owned by the caller
/// (`nixl_capi_destroy_backend`).
///
/// # Safety
/// `agent` must be a live agent, `req_hndl` a live request, `backend` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_query_xfer_backend(
    agent: nixl_capi_agent_t,
    req_hndl: nixl_capi_xfer_req_t,
    backend: *mut nixl_capi_backend_t,
) -> CapiStatus {
    ffi_boundary! {
        arg!(agent agent);
        let req = live(arg!(ref req_hndl))?;
        let out = out_ptr(backend, "backend")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_backend_s { handle: req.backend() })) };
        SUCCESS
    }
}

/// Releases a request: cancels an in-flight post and waits until none of its memory is being
/// touched. The handle itself is freed by `nixl_capi_destroy_xfer_req`.
///
/// # Safety
/// `agent` must be a live agent, `req` a live request handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_release_xfer_req(
    agent: nixl_capi_agent_t,
    req: nixl_capi_xfer_req_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let handle = arg!(mut req);
        let r = handle.req.take().ok_or_else(|| Failure::invalid("the transfer request was already released"))?;
        agent.release_xfer_req(r)?;
        SUCCESS
    }
}

/// Frees a request handle; INVALID_STATE if the request was not released first.
///
/// # Safety
/// `req` must be NULL or a live request handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_destroy_xfer_req(req: nixl_capi_xfer_req_t) -> CapiStatus {
    ffi_boundary! {
        if arg!(ref req).req.is_some() {
            return Err(Failure::invalid_state("release the transfer request before destroying it"));
        }
        drop(arg!(take req));
        SUCCESS
    }
}

/// Fills `telemetry` with the last post's telemetry. NO_TELEMETRY if telemetry is off (set
/// `capture_telemetry` or `NIXL_TELEMETRY_ENABLE=y`), IN_PROG while the post runs, and
/// NIXL_CAPI_ERROR_BACKEND before the first post (NOT_POSTED in the extension).
///
/// # Safety
/// `agent` must be a live agent, `req_hndl` a live request, `telemetry` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_get_xfer_telemetry(
    agent: nixl_capi_agent_t,
    req_hndl: nixl_capi_xfer_req_t,
    telemetry: nixl_capi_xfer_telemetry_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let req = live(arg!(ref req_hndl))?;
        let out = out_ptr(telemetry, "telemetry")?;
        let Some(t) = agent.xfer_telemetry(req)? else {
            return Ok(nixl_capi_status_t::NIXL_CAPI_IN_PROG);
        };
        let value = nixl_capi_xfer_telemetry_s {
            start_time_us: t.start_time_us,
            post_duration_us: t.post_duration_us,
            xfer_duration_us: t.xfer_duration_us,
            total_bytes: t.total_bytes,
            desc_count: t.desc_count,
        };
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, value) };
        SUCCESS
    }
}

/// Extension: blocks, without spinning, until the request's last post leaves IN_PROG or
/// `timeout_us` microseconds pass (negative: no limit); returns what
/// `nixl_capi_get_xfer_status` would then (`NIXL_CAPI_IN_PROG` only on timeout). For engines
/// that poll `nixl_capi_get_xfer_status` with sleeps (Dynamo's block manager uses 5 ms).
///
/// # Safety
/// `agent` must be a live agent, `req_hndl` a live request of it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_wait_xfer_req(
    agent: nixl_capi_agent_t,
    req_hndl: nixl_capi_xfer_req_t,
    timeout_us: i64,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let req = live(arg!(ref req_hndl))?;
        let timeout = u64::try_from(timeout_us).ok().map(std::time::Duration::from_micros);
        progress(agent.wait_xfer(req, timeout)?)
    }
}
