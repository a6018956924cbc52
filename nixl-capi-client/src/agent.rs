//! [`Agent`]: an owned `nixl_capi_agent_t` with its metadata, registration,
//! backend and notification calls.

use crate::dlist::{RegList, XferList};
use crate::error::{Error, Result, check, cstr};
use crate::ffi::{self, AgentConfigRaw, AgentT};
use crate::notif::NotifMap;
use crate::opt::{Backend, OptArgs, raw_opt};
use crate::table::Api;
use parking_lot::{Mutex, MutexGuard};
use std::ffi::{CStr, c_char, c_void};
use std::sync::Arc;

/// Thread-safety mode of an agent (`nixl_capi_thread_sync_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadSync {
    /// No locking inside the library; this binding then serialises calls itself.
    None = 0,
    /// One lock around every call.
    Strict = 1,
    /// Reader/writer lock: transfers share, registration excludes.
    Rw = 2,
}

/// Agent configuration (`nixl_capi_agent_config_t`).
#[derive(Debug, Clone, Copy)]
pub struct AgentConfig {
    /// Start the progress thread.
    pub enable_prog_thread: bool,
    /// Start the metadata listener thread (needed by peers' `fetch_remote_md`).
    pub enable_listen_thread: bool,
    /// Listener port.
    pub listen_port: u16,
    /// Thread-safety mode.
    pub thread_sync: ThreadSync,
    /// Backend worker count (0 = library default).
    pub num_workers: u32,
    /// Progress thread delay in µs.
    pub pthr_delay_us: u64,
    /// Listener thread delay in µs.
    pub lthr_delay_us: u64,
    /// Capture per-request telemetry.
    pub capture_telemetry: bool,
}

impl Default for AgentConfig {
    /// Progress thread on, no listener, `ThreadSync::Rw`, library defaults.
    fn default() -> Self {
        AgentConfig {
            enable_prog_thread: true,
            enable_listen_thread: false,
            listen_port: 0,
            thread_sync: ThreadSync::Rw,
            num_workers: 0,
            pthr_delay_us: 0,
            lthr_delay_us: 100_000,
            capture_telemetry: false,
        }
    }
}

pub(crate) struct AgentInner {
    pub(crate) api: Arc<Api>,
    pub(crate) raw: AgentT,
    name: String,
    /// Present when the library does no locking of its own.
    serial: Option<Mutex<()>>,
}

// SAFETY: the agent is a heap object usable from any thread; when the library
// does not lock (`ThreadSync::None`, or unknown for `create_agent`), every call
// goes through `serial`, so concurrent `&self` use is serialised.
unsafe impl Send for AgentInner {}
// SAFETY: see above.
unsafe impl Sync for AgentInner {}

impl AgentInner {
    /// Holds the serialising lock (if any) for the duration of one C call.
    pub(crate) fn guard(&self) -> Option<MutexGuard<'_, ()>> {
        self.serial.as_ref().map(|m| m.lock())
    }
}

impl Drop for AgentInner {
    fn drop(&mut self) {
        // SAFETY: created by create_*agent; every object that referred to it
        // (requests, prepped lists) holds an Arc on us, so none is left.
        unsafe { (self.api.destroy_agent)(self.raw) };
    }
}

/// A NIXL agent. Cheap to clone (shared); destroyed when the last clone, and
/// every [`crate::PreppedList`] and [`crate::Request`] made from it, is dropped.
#[derive(Clone)]
pub struct Agent {
    pub(crate) inner: Arc<AgentInner>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.inner.name)
            .finish()
    }
}

/// Copies a malloc'ed buffer out and frees it with `libc::free`.
///
/// # Safety
/// `data` must be NULL or a malloc'ed block of at least `len` bytes.
unsafe fn take_malloced(data: *mut c_void, len: usize) -> Vec<u8> {
    if data.is_null() {
        return Vec::new();
    }
    // SAFETY: per the contract, `data` holds `len` readable bytes.
    let out = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }.to_vec();
    // SAFETY: the ABI says the caller frees it with free().
    unsafe { libc::free(data) };
    out
}

impl Agent {
    /// `create_agent(name)`: the library's default configuration.
    pub fn new(api: &Arc<Api>, name: &str) -> Result<Agent> {
        let c = cstr("create_agent", name)?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: `c` is NUL-terminated, `raw` a valid out pointer.
        check("create_agent", unsafe {
            (api.create_agent)(c.as_ptr(), &mut raw)
        })?;
        Ok(Agent::wrap(api, raw, name, true))
    }

    /// `create_configured_agent(name, cfg)`.
    pub fn with_config(api: &Arc<Api>, name: &str, cfg: &AgentConfig) -> Result<Agent> {
        let c = cstr("create_configured_agent", name)?;
        let raw_cfg = AgentConfigRaw {
            enable_prog_thread: cfg.enable_prog_thread,
            enable_listen_thread: cfg.enable_listen_thread,
            listen_port: i32::from(cfg.listen_port),
            thread_sync: cfg.thread_sync as i32,
            num_workers: cfg.num_workers,
            pthr_delay_us: cfg.pthr_delay_us,
            lthr_delay_us: cfg.lthr_delay_us,
            capture_telemetry: cfg.capture_telemetry,
        };
        let mut raw = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call.
        check("create_configured_agent", unsafe {
            (api.create_configured_agent)(c.as_ptr(), &raw_cfg, &mut raw)
        })?;
        Ok(Agent::wrap(
            api,
            raw,
            name,
            cfg.thread_sync == ThreadSync::None,
        ))
    }

    fn wrap(api: &Arc<Api>, raw: AgentT, name: &str, serialise: bool) -> Agent {
        Agent {
            inner: Arc::new(AgentInner {
                api: api.clone(),
                raw,
                name: name.to_string(),
                serial: serialise.then(|| Mutex::new(())),
            }),
        }
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The function table this agent calls through.
    pub fn api(&self) -> &Arc<Api> {
        &self.inner.api
    }

    /// The raw handle, valid while any clone of `self` lives.
    pub fn as_raw(&self) -> AgentT {
        self.inner.raw
    }

    /// Names of the plugins the library can load.
    pub fn available_plugins(&self) -> Result<Vec<String>> {
        let api = &self.inner.api;
        let mut list = std::ptr::null_mut();
        let _g = self.inner.guard();
        // SAFETY: agent live, `list` a valid out pointer.
        check("get_available_plugins", unsafe {
            (api.get_available_plugins)(self.inner.raw, &mut list)
        })?;
        let mut out = Vec::new();
        let mut n = 0;
        // SAFETY: `list` is live until destroyed below; strings are borrowed
        // and copied before that.
        let r = unsafe {
            let mut r = (api.string_list_size)(list, &mut n);
            for i in 0..n {
                let mut s: *const c_char = std::ptr::null();
                r = (api.string_list_get)(list, i, &mut s);
                if r != ffi::SUCCESS {
                    break;
                }
                out.push(CStr::from_ptr(s).to_string_lossy().into_owned());
            }
            (api.destroy_string_list)(list);
            r
        };
        check("string_list_get", r)?;
        Ok(out)
    }

    /// Default parameters of `plugin`, as `(key, value)` pairs.
    pub fn plugin_params(&self, plugin: &str) -> Result<Vec<(String, String)>> {
        let api = &self.inner.api;
        let c = cstr("get_plugin_params", plugin)?;
        let (mut mems, mut params) = (std::ptr::null_mut(), std::ptr::null_mut());
        let _g = self.inner.guard();
        // SAFETY: pointers valid; outputs destroyed below.
        check("get_plugin_params", unsafe {
            (api.get_plugin_params)(self.inner.raw, c.as_ptr(), &mut mems, &mut params)
        })?;
        let mut out = Vec::new();
        // SAFETY: `params` is live; iterator strings are copied before destroy.
        unsafe {
            let mut it = std::ptr::null_mut();
            if (api.params_create_iterator)(params, &mut it) == ffi::SUCCESS {
                loop {
                    let (mut k, mut v): (*const c_char, *const c_char) =
                        (std::ptr::null(), std::ptr::null());
                    let mut more = false;
                    if (api.params_iterator_next)(it, &mut k, &mut v, &mut more) != ffi::SUCCESS
                        || k.is_null()
                    {
                        break;
                    }
                    let v = if v.is_null() {
                        String::new()
                    } else {
                        CStr::from_ptr(v).to_string_lossy().into_owned()
                    };
                    out.push((CStr::from_ptr(k).to_string_lossy().into_owned(), v));
                    if !more {
                        break;
                    }
                }
                (api.params_destroy_iterator)(it);
            }
            (api.destroy_mem_list)(mems);
            (api.destroy_params)(params);
        }
        Ok(out)
    }

    /// Creates a backend from `plugin` with the given parameters (missing
    /// keys take the plugin's defaults).
    pub fn create_backend(&self, plugin: &str, params: &[(&str, &str)]) -> Result<Backend> {
        let api = &self.inner.api;
        let name = cstr("create_backend", plugin)?;
        let mut p = std::ptr::null_mut();
        // SAFETY: `p` a valid out pointer.
        check("create_params", unsafe { (api.create_params)(&mut p) })?;
        let result = (|| {
            for (k, v) in params {
                let (k, v) = (cstr("params_add", k)?, cstr("params_add", v)?);
                // SAFETY: `p` live; strings NUL-terminated and copied.
                check("params_add", unsafe {
                    (api.params_add)(p, k.as_ptr(), v.as_ptr())
                })?;
            }
            let mut b = std::ptr::null_mut();
            let _g = self.inner.guard();
            // SAFETY: all handles live.
            check("create_backend", unsafe {
                (api.create_backend)(self.inner.raw, name.as_ptr(), p, &mut b)
            })?;
            Ok(Backend {
                api: api.clone(),
                raw: b,
                plugin: plugin.to_string(),
            })
        })();
        // SAFETY: created above, destroyed once.
        unsafe { (api.destroy_params)(p) };
        result
    }

    /// Registers the regions in `list`.
    pub fn register(&self, list: &RegList, opt: Option<&OptArgs>) -> Result<()> {
        let _g = self.inner.guard();
        // SAFETY: all handles live.
        check("register_mem", unsafe {
            (self.inner.api.register_mem)(self.inner.raw, list.as_raw(), raw_opt(opt))
        })
    }

    /// Deregisters the regions in `list`.
    pub fn deregister(&self, list: &RegList, opt: Option<&OptArgs>) -> Result<()> {
        let _g = self.inner.guard();
        // SAFETY: all handles live.
        check("deregister_mem", unsafe {
            (self.inner.api.deregister_mem)(self.inner.raw, list.as_raw(), raw_opt(opt))
        })
    }

    /// This agent's metadata blob (copied out; the C buffer is freed).
    pub fn local_md(&self) -> Result<Vec<u8>> {
        let (mut data, mut len) = (std::ptr::null_mut(), 0usize);
        let _g = self.inner.guard();
        // SAFETY: out pointers valid.
        check("get_local_md", unsafe {
            (self.inner.api.get_local_md)(self.inner.raw, &mut data, &mut len)
        })?;
        // SAFETY: on success `data` is a malloc'ed block of `len` bytes.
        Ok(unsafe { take_malloced(data, len) })
    }

    /// Loads a peer's metadata blob; returns the peer's name.
    pub fn load_remote_md(&self, md: &[u8]) -> Result<String> {
        let mut name: *mut c_char = std::ptr::null_mut();
        let _g = self.inner.guard();
        // SAFETY: `md` valid for its length; `name` a valid out pointer.
        check("load_remote_md", unsafe {
            (self.inner.api.load_remote_md)(self.inner.raw, md.as_ptr().cast(), md.len(), &mut name)
        })?;
        if name.is_null() {
            return Ok(String::new());
        }
        // SAFETY: on success `name` is a malloc'ed NUL-terminated string we own.
        let s = unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: freed once, as the ABI says.
        unsafe { libc::free(name.cast()) };
        Ok(s)
    }

    /// Forgets a peer's metadata.
    pub fn invalidate_remote_md(&self, remote: &str) -> Result<()> {
        let c = cstr("invalidate_remote_md", remote)?;
        let _g = self.inner.guard();
        // SAFETY: `c` NUL-terminated.
        check("invalidate_remote_md", unsafe {
            (self.inner.api.invalidate_remote_md)(self.inner.raw, c.as_ptr())
        })
    }

    /// Whether `remote`'s metadata is loaded (and covers `descs` if given).
    /// `NOT_FOUND` maps to `Ok(false)`.
    pub fn check_remote_md(&self, remote: &str, descs: Option<&XferList>) -> Result<bool> {
        let c = cstr("check_remote_md", remote)?;
        let d = descs.map_or(std::ptr::null_mut(), |d| d.as_raw());
        let _g = self.inner.guard();
        // SAFETY: handles live; NULL descs is allowed by the ABI.
        let r = unsafe { (self.inner.api.check_remote_md)(self.inner.raw, c.as_ptr(), d) };
        match r {
            ffi::SUCCESS => Ok(true),
            ffi::ERROR_NOT_FOUND => Ok(false),
            code => Err(Error {
                code,
                op: "check_remote_md",
            }),
        }
    }

    /// Publishes local metadata (to `ip_addr`/`port` in `opt`, or etcd).
    pub fn send_local_md(&self, opt: Option<&OptArgs>) -> Result<()> {
        let _g = self.inner.guard();
        // SAFETY: handles live.
        check("send_local_md", unsafe {
            (self.inner.api.send_local_md)(self.inner.raw, raw_opt(opt))
        })
    }

    /// Asks for `remote`'s metadata (from `ip_addr`/`port` in `opt`, or etcd).
    pub fn fetch_remote_md(&self, remote: &str, opt: Option<&OptArgs>) -> Result<()> {
        let c = cstr("fetch_remote_md", remote)?;
        let _g = self.inner.guard();
        // SAFETY: handles live; `c` NUL-terminated.
        check("fetch_remote_md", unsafe {
            (self.inner.api.fetch_remote_md)(self.inner.raw, c.as_ptr(), raw_opt(opt))
        })
    }

    /// Withdraws published local metadata.
    pub fn invalidate_local_md(&self, opt: Option<&OptArgs>) -> Result<()> {
        let _g = self.inner.guard();
        // SAFETY: handles live.
        check("invalidate_local_md", unsafe {
            (self.inner.api.invalidate_local_md)(self.inner.raw, raw_opt(opt))
        })
    }

    /// Establishes the connection to `remote` ahead of the first transfer.
    pub fn make_connection(&self, remote: &str, opt: Option<&OptArgs>) -> Result<()> {
        let c = cstr("agent_make_connection", remote)?;
        let _g = self.inner.guard();
        // SAFETY: handles live.
        check("agent_make_connection", unsafe {
            (self.inner.api.agent_make_connection)(self.inner.raw, c.as_ptr(), raw_opt(opt))
        })
    }

    /// Appends pending notifications to `map`.
    pub fn get_notifs(&self, map: &mut NotifMap, opt: Option<&OptArgs>) -> Result<()> {
        let _g = self.inner.guard();
        // SAFETY: handles live; `map` is exclusively borrowed.
        check("get_notifs", unsafe {
            (self.inner.api.get_notifs)(self.inner.raw, map.as_raw(), raw_opt(opt))
        })
    }

    /// Sends a notification message to `remote`.
    pub fn gen_notif(&self, remote: &str, msg: &[u8], opt: Option<&OptArgs>) -> Result<()> {
        let c = cstr("gen_notif", remote)?;
        let _g = self.inner.guard();
        // SAFETY: `msg` valid for its length; library copies it.
        check("gen_notif", unsafe {
            (self.inner.api.gen_notif)(
                self.inner.raw,
                c.as_ptr(),
                msg.as_ptr().cast(),
                msg.len(),
                raw_opt(opt),
            )
        })
    }
}
