//! Creating and destroying agents.

use std::ffi::c_char;
use std::time::Duration;

use nixl_core::{Agent, AgentConfig};

use crate::convert::{SUCCESS, borrow, into_handle, out_ptr, write_out};
use crate::status::CapiStatus;
use crate::types::{nixl_capi_agent_config_t, nixl_capi_agent_t};

/// An agent handle: owns a nixl-core agent.
pub struct nixl_capi_agent_s {
    pub(crate) agent: Agent,
}

/// Creates an agent named `name` with the default configuration (progress thread on, as
/// upstream). The caller owns `*agent` and frees it with `nixl_capi_destroy_agent`.
///
/// # Safety
/// `name` must be a NUL-terminated string; `agent` must be valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_create_agent(
    name: *const c_char,
    agent: *mut nixl_capi_agent_t,
) -> CapiStatus {
    ffi_boundary! {
        let name = arg!(str name);
        let out = out_ptr(agent, "agent")?;
        let config = AgentConfig { use_prog_thread: true, ..AgentConfig::default() };
        let a = Agent::new(name, config).map_err(|e| crate::boundary::Failure::from(e).folded())?;
        // SAFETY: `out` was checked non-NULL and the caller provides a writable slot.
        unsafe { write_out(out, into_handle(nixl_capi_agent_s { agent: a })) };
        SUCCESS
    }
}

/// Creates an agent with the given configuration. `num_workers` is ignored, as upstream.
///
/// # Safety
/// `name` must be a NUL-terminated string, `cfg` a valid config, `agent` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_create_configured_agent(
    name: *const c_char,
    cfg: *const nixl_capi_agent_config_t,
    agent: *mut nixl_capi_agent_t,
) -> CapiStatus {
    ffi_boundary! {
        let name = arg!(str name);
        let cfg = arg!(ref cfg);
        let out = out_ptr(agent, "agent")?;
        let config = AgentConfig {
            use_prog_thread: cfg.enable_prog_thread,
            use_listen_thread: cfg.enable_listen_thread,
            listen_port: cfg.listen_port as u16,
            sync_mode: cfg.thread_sync.get(),
            pthr_delay: Duration::from_micros(cfg.pthr_delay_us),
            lthr_delay: Duration::from_micros(cfg.lthr_delay_us),
            capture_telemetry: cfg.capture_telemetry,
            ..AgentConfig::default()
        };
        let a = Agent::new(name, config).map_err(|e| crate::boundary::Failure::from(e).folded())?;
        // SAFETY: `out` was checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_agent_s { agent: a })) };
        SUCCESS
    }
}

/// Destroys an agent: stops its backends, cancels in-flight transfers, forgets its
/// registrations. Requests and prepped lists still held stay safe to release afterwards.
///
/// # Safety
/// `agent` must be NULL or an agent from `nixl_capi_create_*agent` not destroyed yet, and no
/// other thread may be using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_destroy_agent(agent: nixl_capi_agent_t) -> CapiStatus {
    ffi_boundary! {
        drop(arg!(take agent));
        SUCCESS
    }
}

/// Borrows the agent behind a handle.
///
/// # Safety
/// `agent` must be NULL or a live agent handle.
pub(crate) unsafe fn agent_ref<'a>(
    agent: nixl_capi_agent_t,
) -> Result<&'a Agent, crate::boundary::Failure> {
    // SAFETY: `agent` is NULL or a live handle (this function's `# Safety`).
    unsafe { borrow(agent, "agent") }.map(|a| &a.agent)
}
