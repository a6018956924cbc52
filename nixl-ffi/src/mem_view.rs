//! Memory views for GPU-initiated transfers. They need a GPU backend with a device API, which
//! this library does not have: preparing a view is an error, never an abort.

use nixl_core::{NixlError, Status};

use crate::boundary::Failure;
use crate::convert::out_ptr;
use crate::status::CapiStatus;
use crate::types::{
    nixl_capi_agent_t, nixl_capi_mem_view_t, nixl_capi_opt_args_t, nixl_capi_remote_dlist_t,
    nixl_capi_xfer_dlist_t,
};

/// A memory view (never created by this library).
pub struct nixl_capi_mem_view_s {
    _private: (),
}

fn unsupported() -> Failure {
    Failure::from(NixlError::new(
        Status::NotSupported,
        "memory views need a GPU backend with a device API, which this library does not provide",
    ))
}

/// Prepares a view of local buffers: always NIXL_CAPI_ERROR_BACKEND (NOT_SUPPORTED in the
/// extension) after checking the arguments; `*mvh` is not written.
///
/// # Safety
/// `agent` must be a live agent, `descs` a live list, `mvh` valid for a write, `opt_args`
/// NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_prep_mem_view_local(
    agent: nixl_capi_agent_t,
    descs: nixl_capi_xfer_dlist_t,
    mvh: *mut nixl_capi_mem_view_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        arg!(agent agent);
        arg!(ref descs);
        out_ptr(mvh, "mvh")?;
        let _ = arg!(opt opt_args);
        Err(unsupported())
    }
}

/// Prepares a view of remote buffers: as `nixl_capi_prep_mem_view_local`.
///
/// # Safety
/// As `nixl_capi_prep_mem_view_local`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_prep_mem_view_remote(
    agent: nixl_capi_agent_t,
    descs: nixl_capi_remote_dlist_t,
    mvh: *mut nixl_capi_mem_view_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        arg!(agent agent);
        arg!(ref descs);
        out_ptr(mvh, "mvh")?;
        let _ = arg!(opt opt_args);
        Err(unsupported())
    }
}

/// Releases a memory view. No view is ever handed out by this library, so any non-NULL
/// handle is foreign: INVALID_PARAM, and the pointer is not touched.
///
/// # Safety
/// `agent` must be a live agent.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_release_mem_view(
    agent: nixl_capi_agent_t,
    mvh: nixl_capi_mem_view_t,
) -> CapiStatus {
    ffi_boundary! {
        arg!(agent agent);
        if mvh.is_null() {
            return Err(Failure::invalid("mvh is NULL"));
        }
        Err(Failure::invalid("this memory view was not prepared by this library"))
    }
}
