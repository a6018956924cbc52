//! The function-pointer table over the `nixl_capi_*` C ABI.
//!
//! [`Api::load`] fills it with `dlopen` from any `libnixl_capi.so` (ours from
//! `nixl-ffi`, or real NIXL's), so one binary can drive either library.
//! [`Api::from_current_process`] resolves the same symbols from the running
//! executable and the libraries it already links (useful once `nixl-ffi` is
//! linked in with its symbols exported).

use crate::ffi::*;
use std::ffi::{c_char, c_int, c_void};
use std::path::{Path, PathBuf};

/// Failure to load a library or one of its symbols.
#[derive(Debug)]
pub struct LoadError {
    /// What was being loaded (library path or symbol name).
    pub what: String,
    /// The loader's message.
    pub source: libloading::Error,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "loading {}: {}", self.what, self.source)
    }
}

impl std::error::Error for LoadError {}

macro_rules! api_table {
    ($( $(#[$doc:meta])* $field:ident = $sym:literal ( $($arg:ty),* $(,)? ); )*) => {
        /// Function pointers for the `nixl_capi_*` functions used by engines.
        ///
        /// Every field is the C function of the same name with the
        /// `nixl_capi_` prefix removed. Calling them is `unsafe`: the caller
        /// upholds the C ABI's contracts (valid handles, output pointers).
        /// The safe wrappers in this crate do that for you.
        pub struct Api {
            $( $(#[$doc])* pub $field: unsafe extern "C" fn($($arg),*) -> Status, )*
            /// `nixl_capi_is_stub`, absent from some builds.
            pub is_stub: Option<unsafe extern "C" fn() -> bool>,
            /// `nixl_capi_ext_start_metrics(port, local, &bound_port)`: our extension,
            /// absent from real NIXL (see [`Api::start_metrics`]).
            pub ext_start_metrics: Option<unsafe extern "C" fn(u16, bool, *mut u16) -> Status>,
            path: Option<PathBuf>,
            _lib: Option<libloading::Library>,
        }

        #[cfg(feature = "linked")]
        mod linked_syms {
            use super::*;
            unsafe extern "C" {
                $( #[link_name = $sym] pub fn $field($(_: $arg),*) -> Status; )*
                #[link_name = "nixl_capi_is_stub"] pub fn is_stub() -> bool;
                #[link_name = "nixl_capi_ext_start_metrics"]
                pub fn ext_start_metrics(port: u16, local: bool, bound_port: *mut u16) -> Status;
            }
        }

        impl Api {
            /// The table over the implementation linked into this binary
            /// (feature `linked`): no dlopen, calls are direct. The binary
            /// must link one, e.g. depend on `nixl-ffi` (renamed, as `disagg` does).
            #[cfg(feature = "linked")]
            pub fn linked() -> Api {
                Api {
                    $( $field: linked_syms::$field, )*
                    is_stub: Some(linked_syms::is_stub),
                    ext_start_metrics: Some(linked_syms::ext_start_metrics),
                    path: None,
                    _lib: None,
                }
            }

            fn resolve(lib: libloading::Library, path: Option<PathBuf>) -> Result<Api, LoadError> {
                // SAFETY: each symbol is declared in wrapper.h with exactly the
                // signature of the field it is stored in; `lib` is kept alive
                // in the returned table for as long as the pointers are used.
                unsafe {
                    Ok(Api {
                        $( $field: *lib
                            .get::<unsafe extern "C" fn($($arg),*) -> Status>(concat!($sym, "\0").as_bytes())
                            .map_err(|source| LoadError { what: $sym.to_string(), source })?, )*
                        is_stub: lib
                            .get::<unsafe extern "C" fn() -> bool>(b"nixl_capi_is_stub\0")
                            .ok()
                            .map(|s| *s),
                        ext_start_metrics: lib
                            .get::<unsafe extern "C" fn(u16, bool, *mut u16) -> Status>(
                                b"nixl_capi_ext_start_metrics\0",
                            )
                            .ok()
                            .map(|s| *s),
                        path,
                        _lib: Some(lib),
                    })
                }
            }
        }
    };
}

api_table! {
    /// `create_agent(name, &agent)`.
    create_agent = "nixl_capi_create_agent"(*const c_char, *mut AgentT);
    /// `create_configured_agent(name, &cfg, &agent)`.
    create_configured_agent = "nixl_capi_create_configured_agent"(*const c_char, *const AgentConfigRaw, *mut AgentT);
    /// `destroy_agent(agent)`.
    destroy_agent = "nixl_capi_destroy_agent"(AgentT);
    /// `get_local_md(agent, &data, &len)`; `data` is malloc'ed.
    get_local_md = "nixl_capi_get_local_md"(AgentT, *mut *mut c_void, *mut usize);
    /// `load_remote_md(agent, data, len, &name)`; `name` is malloc'ed.
    load_remote_md = "nixl_capi_load_remote_md"(AgentT, *const c_void, usize, *mut *mut c_char);
    /// `invalidate_remote_md(agent, name)`.
    invalidate_remote_md = "nixl_capi_invalidate_remote_md"(AgentT, *const c_char);
    /// `invalidate_local_md(agent, opt)`.
    invalidate_local_md = "nixl_capi_invalidate_local_md"(AgentT, OptArgsT);
    /// `check_remote_md(agent, name, xfer_dlist_or_null)`.
    check_remote_md = "nixl_capi_check_remote_md"(AgentT, *const c_char, XferDlistT);
    /// `send_local_md(agent, opt)`.
    send_local_md = "nixl_capi_send_local_md"(AgentT, OptArgsT);
    /// `fetch_remote_md(agent, name, opt)`.
    fetch_remote_md = "nixl_capi_fetch_remote_md"(AgentT, *const c_char, OptArgsT);
    /// `get_available_plugins(agent, &list)`.
    get_available_plugins = "nixl_capi_get_available_plugins"(AgentT, *mut StringListT);
    /// `destroy_string_list(list)`.
    destroy_string_list = "nixl_capi_destroy_string_list"(StringListT);
    /// `string_list_size(list, &n)`.
    string_list_size = "nixl_capi_string_list_size"(StringListT, *mut usize);
    /// `string_list_get(list, i, &str)` (borrowed).
    string_list_get = "nixl_capi_string_list_get"(StringListT, usize, *mut *const c_char);
    /// `get_plugin_params(agent, plugin, &mems, &params)`.
    get_plugin_params = "nixl_capi_get_plugin_params"(AgentT, *const c_char, *mut MemListT, *mut ParamsT);
    /// `destroy_mem_list(list)`.
    destroy_mem_list = "nixl_capi_destroy_mem_list"(MemListT);
    /// `create_params(&params)`.
    create_params = "nixl_capi_create_params"(*mut ParamsT);
    /// `params_add(params, key, value)`.
    params_add = "nixl_capi_params_add"(ParamsT, *const c_char, *const c_char);
    /// `destroy_params(params)`.
    destroy_params = "nixl_capi_destroy_params"(ParamsT);
    /// `params_create_iterator(params, &iter)`.
    params_create_iterator = "nixl_capi_params_create_iterator"(ParamsT, *mut ParamIterT);
    /// `params_iterator_next(iter, &key, &value, &has_next)`.
    params_iterator_next = "nixl_capi_params_iterator_next"(ParamIterT, *mut *const c_char, *mut *const c_char, *mut bool);
    /// `params_destroy_iterator(iter)`.
    params_destroy_iterator = "nixl_capi_params_destroy_iterator"(ParamIterT);
    /// `create_backend(agent, plugin, params, &backend)`.
    create_backend = "nixl_capi_create_backend"(AgentT, *const c_char, ParamsT, *mut BackendT);
    /// `destroy_backend(backend)`: frees the handle, the agent keeps the engine.
    destroy_backend = "nixl_capi_destroy_backend"(BackendT);
    /// `create_opt_args(&args)`.
    create_opt_args = "nixl_capi_create_opt_args"(*mut OptArgsT);
    /// `destroy_opt_args(args)`.
    destroy_opt_args = "nixl_capi_destroy_opt_args"(OptArgsT);
    /// `opt_args_add_backend(args, backend)`.
    opt_args_add_backend = "nixl_capi_opt_args_add_backend"(OptArgsT, BackendT);
    /// `opt_args_set_notif_msg(args, data, len)` (copied).
    opt_args_set_notif_msg = "nixl_capi_opt_args_set_notif_msg"(OptArgsT, *const c_void, usize);
    /// `opt_args_set_has_notif(args, flag)`.
    opt_args_set_has_notif = "nixl_capi_opt_args_set_has_notif"(OptArgsT, bool);
    /// `opt_args_set_skip_desc_merge(args, flag)`.
    opt_args_set_skip_desc_merge = "nixl_capi_opt_args_set_skip_desc_merge"(OptArgsT, bool);
    /// `opt_args_set_ip_addr(args, ip)`.
    opt_args_set_ip_addr = "nixl_capi_opt_args_set_ip_addr"(OptArgsT, *const c_char);
    /// `opt_args_set_port(args, port)`.
    opt_args_set_port = "nixl_capi_opt_args_set_port"(OptArgsT, u16);
    /// `register_mem(agent, reg_dlist, opt)`.
    register_mem = "nixl_capi_register_mem"(AgentT, RegDlistT, OptArgsT);
    /// `deregister_mem(agent, reg_dlist, opt)`.
    deregister_mem = "nixl_capi_deregister_mem"(AgentT, RegDlistT, OptArgsT);
    /// `agent_make_connection(agent, remote, opt)`.
    agent_make_connection = "nixl_capi_agent_make_connection"(AgentT, *const c_char, OptArgsT);
    /// `prep_xfer_dlist(agent, agent_name, xfer_dlist, &handle, opt)`.
    prep_xfer_dlist = "nixl_capi_prep_xfer_dlist"(AgentT, *const c_char, XferDlistT, *mut XferDlistHandleT, OptArgsT);
    /// `release_xfer_dlist_handle(agent, handle)`: also frees the handle.
    release_xfer_dlist_handle = "nixl_capi_release_xfer_dlist_handle"(AgentT, XferDlistHandleT);
    /// `make_xfer_req(agent, op, local_h, local_idx, n, remote_h, remote_idx, n, &req, opt)`.
    make_xfer_req = "nixl_capi_make_xfer_req"(AgentT, XferOpRaw, XferDlistHandleT, *const c_int, usize, XferDlistHandleT, *const c_int, usize, *mut XferReqT, OptArgsT);
    /// `create_xfer_req(agent, op, local, remote, remote_agent, &req, opt)`.
    create_xfer_req = "nixl_capi_create_xfer_req"(AgentT, XferOpRaw, XferDlistT, XferDlistT, *const c_char, *mut XferReqT, OptArgsT);
    /// `post_xfer_req(agent, req, opt)`: SUCCESS (done) or IN_PROG.
    post_xfer_req = "nixl_capi_post_xfer_req"(AgentT, XferReqT, OptArgsT);
    /// `get_xfer_status(agent, req)`: SUCCESS, IN_PROG or an error.
    get_xfer_status = "nixl_capi_get_xfer_status"(AgentT, XferReqT);
    /// `release_xfer_req(agent, req)`.
    release_xfer_req = "nixl_capi_release_xfer_req"(AgentT, XferReqT);
    /// `destroy_xfer_req(req)`: after a successful release.
    destroy_xfer_req = "nixl_capi_destroy_xfer_req"(XferReqT);
    /// `get_xfer_telemetry(agent, req, &telemetry)`.
    get_xfer_telemetry = "nixl_capi_get_xfer_telemetry"(AgentT, XferReqT, *mut XferTelemetry);
    /// `create_xfer_dlist(mem_type, &dlist)`.
    create_xfer_dlist = "nixl_capi_create_xfer_dlist"(MemTypeRaw, *mut XferDlistT);
    /// `destroy_xfer_dlist(dlist)`.
    destroy_xfer_dlist = "nixl_capi_destroy_xfer_dlist"(XferDlistT);
    /// `xfer_dlist_add_desc(dlist, addr, len, dev_id)`.
    xfer_dlist_add_desc = "nixl_capi_xfer_dlist_add_desc"(XferDlistT, usize, usize, u64);
    /// `xfer_dlist_desc_count(dlist, &n)`.
    xfer_dlist_desc_count = "nixl_capi_xfer_dlist_desc_count"(XferDlistT, *mut usize);
    /// `xfer_dlist_resize(dlist, n)`.
    xfer_dlist_resize = "nixl_capi_xfer_dlist_resize"(XferDlistT, usize);
    /// `xfer_dlist_clear(dlist)`.
    xfer_dlist_clear = "nixl_capi_xfer_dlist_clear"(XferDlistT);
    /// `create_reg_dlist(mem_type, &dlist)`.
    create_reg_dlist = "nixl_capi_create_reg_dlist"(MemTypeRaw, *mut RegDlistT);
    /// `destroy_reg_dlist(dlist)`.
    destroy_reg_dlist = "nixl_capi_destroy_reg_dlist"(RegDlistT);
    /// `reg_dlist_add_desc(dlist, addr, len, dev_id, meta, meta_len)`.
    reg_dlist_add_desc = "nixl_capi_reg_dlist_add_desc"(RegDlistT, usize, usize, u64, *const c_void, usize);
    /// `reg_dlist_desc_count(dlist, &n)`.
    reg_dlist_desc_count = "nixl_capi_reg_dlist_desc_count"(RegDlistT, *mut usize);
    /// `create_notif_map(&map)`.
    create_notif_map = "nixl_capi_create_notif_map"(*mut NotifMapT);
    /// `destroy_notif_map(map)`.
    destroy_notif_map = "nixl_capi_destroy_notif_map"(NotifMapT);
    /// `get_notifs(agent, map, opt)`: appends to `map`.
    get_notifs = "nixl_capi_get_notifs"(AgentT, NotifMapT, OptArgsT);
    /// `notif_map_size(map, &n)`.
    notif_map_size = "nixl_capi_notif_map_size"(NotifMapT, *mut usize);
    /// `notif_map_get_agent_at(map, i, &name)` (borrowed).
    notif_map_get_agent_at = "nixl_capi_notif_map_get_agent_at"(NotifMapT, usize, *mut *const c_char);
    /// `notif_map_get_notifs_size(map, agent, &n)`.
    notif_map_get_notifs_size = "nixl_capi_notif_map_get_notifs_size"(NotifMapT, *const c_char, *mut usize);
    /// `notif_map_get_notif(map, agent, i, &data, &len)` (borrowed).
    notif_map_get_notif = "nixl_capi_notif_map_get_notif"(NotifMapT, *const c_char, usize, *mut *const c_void, *mut usize);
    /// `notif_map_clear(map)`.
    notif_map_clear = "nixl_capi_notif_map_clear"(NotifMapT);
    /// `gen_notif(agent, remote, data, len, opt)`.
    gen_notif = "nixl_capi_gen_notif"(AgentT, *const c_char, *const c_void, usize, OptArgsT);
}

impl Api {
    /// Loads `libnixl_capi.so` (or any library exporting the ABI) from `path`.
    ///
    /// The library's own dependencies are resolved the usual way (its RPATH,
    /// `LD_LIBRARY_PATH`); NIXL finds its plugins beside itself.
    pub fn load(path: impl AsRef<Path>) -> Result<Api, LoadError> {
        let path = path.as_ref();
        // SAFETY: loading a shared library runs its initialisers; the caller
        // chose a library that implements the nixl_capi ABI.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|source| LoadError {
            what: path.display().to_string(),
            source,
        })?;
        Api::resolve(lib, Some(path.to_path_buf()))
    }

    /// Resolves the ABI from the running executable and the libraries it
    /// already has loaded (`dlopen(NULL)`), e.g. when linked against
    /// `libnixl_capi.so` or when `nixl-ffi` is linked in with exported symbols.
    pub fn from_current_process() -> Result<Api, LoadError> {
        let lib: libloading::Library = libloading::os::unix::Library::this().into();
        Api::resolve(lib, None)
    }

    /// The path this table was loaded from (`None` for the current process).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether the library reports itself as a stub build (`false` if it
    /// does not export `nixl_capi_is_stub`).
    pub fn is_stub(&self) -> bool {
        // SAFETY: takes no arguments and returns a bool per wrapper.h.
        self.is_stub.is_some_and(|f| unsafe { f() })
    }
}

impl Api {
    /// Starts the library's Prometheus endpoint on `port` (0: any free port; 127.0.0.1 only
    /// when `local`) through our extension `nixl_capi_ext_start_metrics`, and returns the bound
    /// port (the running endpoint's, if one runs already). `None` when the library lacks the
    /// extension, as real NIXL's does: its exporter starts only from the `NIXL_TELEMETRY_*`
    /// variables, when an agent is created, and never says which port it bound.
    pub fn start_metrics(&self, port: u16, local: bool) -> Option<crate::Result<u16>> {
        let f = self.ext_start_metrics?;
        let mut bound = 0u16;
        // SAFETY: the extension's contract: `bound` is valid for a write.
        let code = unsafe { f(port, local, &mut bound) };
        Some(crate::error::check("ext_start_metrics", code).map(|()| bound))
    }
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
