//! Raw C types of the `nixl_capi_*` ABI (NIXL 1.5 `wrapper.h`).
//!
//! Handles are opaque pointers; enums are C `int`s. Layouts of the two
//! by-value structs match the header exactly. The constants here and the enum values of
//! `MemType`, `XferOp` and `ThreadSync` are checked against `include/nixl_capi.h` by
//! `tests/header_constants.rs`.

use std::ffi::c_void;

/// `nixl_capi_status_t` (a C enum, passed as `int`).
pub type Status = i32;

/// Success.
pub const SUCCESS: Status = 0;
/// The request is still in progress.
pub const IN_PROG: Status = 1;
/// Invalid parameter.
pub const ERROR_INVALID_PARAM: Status = -1;
/// Backend error (upstream folds many NIXL codes into this one).
pub const ERROR_BACKEND: Status = -2;
/// Invalid state.
pub const ERROR_INVALID_STATE: Status = -3;
/// An exception was caught inside the library.
pub const ERROR_EXCEPTION: Status = -4;
/// Telemetry was not captured.
pub const ERROR_NO_TELEMETRY: Status = -5;
/// Metadata not loaded, or no backend serves the request.
pub const ERROR_NOT_FOUND: Status = -6;

/// `nixl_capi_mem_type_t`.
pub type MemTypeRaw = i32;
/// `nixl_capi_xfer_op_t`.
pub type XferOpRaw = i32;
/// `nixl_capi_thread_sync_t`.
pub type ThreadSyncRaw = i32;
/// `nixl_capi_cost_t`.
pub type CostRaw = i32;

macro_rules! opaque {
    ($($(#[$m:meta])* $name:ident;)*) => {$(
        $(#[$m])*
        #[repr(C)]
        pub struct $name {
            _private: [u8; 0],
        }
    )*};
}

opaque! {
    /// `struct nixl_capi_agent_s`.
    AgentS;
    /// `struct nixl_capi_params_s`.
    ParamsS;
    /// `struct nixl_capi_mem_list_s`.
    MemListS;
    /// `struct nixl_capi_string_list_s`.
    StringListS;
    /// `struct nixl_capi_backend_s`.
    BackendS;
    /// `struct nixl_capi_opt_args_s`.
    OptArgsS;
    /// `struct nixl_capi_param_iter_s`.
    ParamIterS;
    /// `struct nixl_capi_xfer_dlist_s`.
    XferDlistS;
    /// `struct nixl_capi_xfer_dlist_handle_s`.
    XferDlistHandleS;
    /// `struct nixl_capi_reg_dlist_s`.
    RegDlistS;
    /// `struct nixl_capi_xfer_req_s`.
    XferReqS;
    /// `struct nixl_capi_notif_map_s`.
    NotifMapS;
}

/// `nixl_capi_agent_t`.
pub type AgentT = *mut AgentS;
/// `nixl_capi_params_t`.
pub type ParamsT = *mut ParamsS;
/// `nixl_capi_mem_list_t`.
pub type MemListT = *mut MemListS;
/// `nixl_capi_string_list_t`.
pub type StringListT = *mut StringListS;
/// `nixl_capi_backend_t`.
pub type BackendT = *mut BackendS;
/// `nixl_capi_opt_args_t`.
pub type OptArgsT = *mut OptArgsS;
/// `nixl_capi_param_iter_t`.
pub type ParamIterT = *mut ParamIterS;
/// `nixl_capi_xfer_dlist_t`.
pub type XferDlistT = *mut XferDlistS;
/// `nixl_capi_xfer_dlist_handle_t`.
pub type XferDlistHandleT = *mut XferDlistHandleS;
/// `nixl_capi_reg_dlist_t`.
pub type RegDlistT = *mut RegDlistS;
/// `nixl_capi_xfer_req_t`.
pub type XferReqT = *mut XferReqS;
/// `nixl_capi_notif_map_t`.
pub type NotifMapT = *mut NotifMapS;

/// `nixl_capi_agent_config_t`, passed by pointer to `create_configured_agent`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AgentConfigRaw {
    /// Start the progress thread.
    pub enable_prog_thread: bool,
    /// Start the metadata listener thread.
    pub enable_listen_thread: bool,
    /// Listener port (C `int`).
    pub listen_port: i32,
    /// Thread-safety mode.
    pub thread_sync: ThreadSyncRaw,
    /// Backend worker count.
    pub num_workers: u32,
    /// Progress thread delay in µs.
    pub pthr_delay_us: u64,
    /// Listener thread delay in µs.
    pub lthr_delay_us: u64,
    /// Capture per-request telemetry.
    pub capture_telemetry: bool,
}

/// `struct nixl_capi_xfer_telemetry_s`, filled by `get_xfer_telemetry`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XferTelemetry {
    /// Start time in µs since the epoch.
    pub start_time_us: u64,
    /// Time spent in `post` in µs.
    pub post_duration_us: u64,
    /// Time from post to completion in µs.
    pub xfer_duration_us: u64,
    /// Bytes transferred.
    pub total_bytes: u64,
    /// Number of descriptors.
    pub desc_count: u64,
}

/// Convenience alias for `void*` in signatures.
pub type VoidPtr = *mut c_void;
