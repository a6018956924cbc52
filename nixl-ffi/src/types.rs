//! Enums, by-value structs and handle typedefs of the C API, with upstream's values and
//! layouts.

use std::ffi::c_int;

use nixl_core::{MemType, ThreadSync, XferOp};

use crate::boundary::Failure;

/// Memory types (values identical to upstream and to NIXL's `nixl_mem_t`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nixl_capi_mem_type_t {
    /// Host memory.
    NIXL_CAPI_MEM_DRAM = 0,
    /// GPU memory.
    NIXL_CAPI_MEM_VRAM = 1,
    /// Block device.
    NIXL_CAPI_MEM_BLOCK = 2,
    /// Object store.
    NIXL_CAPI_MEM_OBJECT = 3,
    /// File (`addr` = offset, `dev_id` = file descriptor).
    NIXL_CAPI_MEM_FILE = 4,
    /// Unknown memory type.
    NIXL_CAPI_MEM_UNKNOWN = 5,
}

impl From<MemType> for nixl_capi_mem_type_t {
    fn from(m: MemType) -> Self {
        match m {
            MemType::Dram => Self::NIXL_CAPI_MEM_DRAM,
            MemType::Vram => Self::NIXL_CAPI_MEM_VRAM,
            MemType::Blk => Self::NIXL_CAPI_MEM_BLOCK,
            MemType::Obj => Self::NIXL_CAPI_MEM_OBJECT,
            MemType::File => Self::NIXL_CAPI_MEM_FILE,
        }
    }
}

/// Transfer operations (values identical to upstream).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nixl_capi_xfer_op_t {
    /// Pull remote -> local.
    NIXL_CAPI_XFER_OP_READ = 0,
    /// Push local -> remote.
    NIXL_CAPI_XFER_OP_WRITE = 1,
}

/// Agent thread-synchronisation modes (values identical to upstream). This library's agent is
/// thread-safe in every mode; the mode is recorded only.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nixl_capi_thread_sync_t {
    /// No agent-wide lock (the default).
    NIXL_CAPI_THREAD_SYNC_NONE = 0,
    /// One lock for every call.
    NIXL_CAPI_THREAD_SYNC_STRICT = 1,
    /// Reader/writer lock.
    NIXL_CAPI_THREAD_SYNC_RW = 2,
}

/// Cost-estimation methods (values identical to upstream).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nixl_capi_cost_t {
    /// Estimated analytically by the backend.
    NIXL_CAPI_COST_ANALYTICAL_BACKEND = 0,
}

/// A memory-type argument as C passes it. It appears as `nixl_capi_mem_type_t` in the header;
/// it is read as a plain `int` so that an out-of-range value is an error, not undefined
/// behaviour.
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct MemTypeArg(pub c_int);

impl From<MemType> for MemTypeArg {
    fn from(m: MemType) -> Self {
        MemTypeArg(nixl_capi_mem_type_t::from(m) as c_int)
    }
}

/// A cost-method output as C stores it (`nixl_capi_cost_t` in the header).
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct CostArg(pub c_int);

/// A transfer-op argument as C passes it (`nixl_capi_xfer_op_t` in the header).
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct XferOpArg(pub c_int);

/// A thread-sync field as C stores it (`nixl_capi_thread_sync_t` in the header).
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct ThreadSyncArg(pub c_int);

impl MemTypeArg {
    /// The memory type, or INVALID_PARAM (also for `NIXL_CAPI_MEM_UNKNOWN`).
    pub fn get(self) -> Result<MemType, Failure> {
        u32::try_from(self.0)
            .ok()
            .and_then(|c| MemType::from_code(c).ok())
            .ok_or_else(|| Failure::invalid(format!("invalid memory type {}", self.0)))
    }
}

impl XferOpArg {
    /// The operation, or INVALID_PARAM.
    pub fn get(self) -> Result<XferOp, Failure> {
        u32::try_from(self.0)
            .ok()
            .and_then(|c| XferOp::from_code(c).ok())
            .ok_or_else(|| Failure::invalid(format!("invalid transfer operation {}", self.0)))
    }
}

impl ThreadSyncArg {
    /// The mode; unknown values mean the default, as upstream.
    pub fn get(self) -> ThreadSync {
        match self.0 {
            1 => ThreadSync::Strict,
            2 => ThreadSync::Rw,
            _ => ThreadSync::None,
        }
    }
}

/// Agent configuration, mirroring `nixlAgentConfig` (layout identical to upstream).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct nixl_capi_agent_config_s {
    /// Ask backends for a progress thread.
    pub enable_prog_thread: bool,
    /// Run the peer-to-peer metadata listener.
    pub enable_listen_thread: bool,
    /// Listener port (truncated to 16 bits, as upstream).
    pub listen_port: c_int,
    /// Thread-synchronisation mode.
    pub thread_sync: ThreadSyncArg,
    /// Accepted and ignored, as upstream.
    pub num_workers: std::ffi::c_uint,
    /// Progress-thread poll delay in microseconds.
    pub pthr_delay_us: u64,
    /// Metadata-listener poll delay in microseconds.
    pub lthr_delay_us: u64,
    /// Record per-request telemetry.
    pub capture_telemetry: bool,
}

/// Agent configuration (`struct nixl_capi_agent_config_s`).
pub type nixl_capi_agent_config_t = nixl_capi_agent_config_s;

/// Telemetry of a transfer request's last post (layout identical to upstream).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct nixl_capi_xfer_telemetry_s {
    /// When the post started, in microseconds since the Unix epoch.
    pub start_time_us: u64,
    /// How long the post call took, in microseconds.
    pub post_duration_us: u64,
    /// From the start of the post to observed completion, in microseconds.
    pub xfer_duration_us: u64,
    /// Bytes moved.
    pub total_bytes: u64,
    /// Descriptors in the request.
    pub desc_count: u64,
}

/// Pointer to a caller-owned telemetry struct that `nixl_capi_get_xfer_telemetry` fills.
pub type nixl_capi_xfer_telemetry_t = *mut nixl_capi_xfer_telemetry_s;

/// An agent (owned; `nixl_capi_destroy_agent`).
pub type nixl_capi_agent_t = *mut crate::agent::nixl_capi_agent_s;
/// Backend parameters (owned; `nixl_capi_destroy_params`).
pub type nixl_capi_params_t = *mut crate::params::nixl_capi_params_s;
/// A list of memory types (owned; `nixl_capi_destroy_mem_list`).
pub type nixl_capi_mem_list_t = *mut crate::params::nixl_capi_mem_list_s;
/// A list of strings (owned; `nixl_capi_destroy_string_list`).
pub type nixl_capi_string_list_t = *mut crate::params::nixl_capi_string_list_s;
/// A backend handle (owned handle, borrowed backend; `nixl_capi_destroy_backend` frees the
/// handle only: backends live as long as their agent).
pub type nixl_capi_backend_t = *mut crate::plugins::nixl_capi_backend_s;
/// Optional arguments (owned; `nixl_capi_destroy_opt_args`).
pub type nixl_capi_opt_args_t = *mut crate::opt_args::nixl_capi_opt_args_s;
/// An iterator over parameters (owned; `nixl_capi_params_destroy_iterator`).
pub type nixl_capi_param_iter_t = *mut crate::params::nixl_capi_param_iter_s;
/// A transfer descriptor list (owned; `nixl_capi_destroy_xfer_dlist`).
pub type nixl_capi_xfer_dlist_t = *mut crate::dlist::nixl_capi_xfer_dlist_s;
/// A prepped descriptor list (owned; `nixl_capi_release_xfer_dlist_handle`).
pub type nixl_capi_xfer_dlist_handle_t = *mut crate::xfer::nixl_capi_xfer_dlist_handle_s;
/// A registration descriptor list (owned; `nixl_capi_destroy_reg_dlist`).
pub type nixl_capi_reg_dlist_t = *mut crate::dlist::nixl_capi_reg_dlist_s;
/// A transfer request (owned; `nixl_capi_release_xfer_req` then `nixl_capi_destroy_xfer_req`).
pub type nixl_capi_xfer_req_t = *mut crate::xfer::nixl_capi_xfer_req_s;
/// A notification map (owned; `nixl_capi_destroy_notif_map`).
pub type nixl_capi_notif_map_t = *mut crate::notif::nixl_capi_notif_map_s;
/// A list of `query_mem` responses (owned; `nixl_capi_destroy_query_resp_list`).
pub type nixl_capi_query_resp_list_t = *mut crate::memory::nixl_capi_query_resp_list_s;
/// A remote descriptor list (owned; `nixl_capi_destroy_remote_dlist`).
pub type nixl_capi_remote_dlist_t = *mut crate::dlist::nixl_capi_remote_dlist_s;
/// A memory view (GPU-initiated transfers; never created by this library).
pub type nixl_capi_mem_view_t = *mut crate::mem_view::nixl_capi_mem_view_s;
