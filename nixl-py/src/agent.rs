//! `nixlAgentConfig`, `nixlAgent` (the C++ agent's methods, camelCase) and `nixlXferTelemetry`.
//!
//! Requests and prepped lists cross into Python as plain integers, as in NIXL; the agent keeps
//! the objects in tables. Every call that can wait, copy or use the network runs without the
//! GIL (`py.detach`), so other Python threads keep running meanwhile.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use nixl_core::{
    Agent, AgentConfig, BackendHandle, NotifMap, OptArgs, Params, PreppedDlist, Status, XferRequest,
};
use pyo3::exceptions::{PyOSError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::arrays;
use crate::dlist::{RegDList, XferDList};
use crate::enums::{PyMemType, PyStatus, PyThreadSync, PyXferOp};
use crate::errors::{IntoPy, nixlNotFoundError, nixlNotSupportedError};
use crate::wakeup::Wakeup;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Agent configuration (`nixlAgentConfig`), with NIXL's positional constructor.
#[pyclass(module = "nixl._bindings", name = "nixlAgentConfig", from_py_object)]
#[derive(Clone)]
pub struct PyAgentConfig {
    /// Progress thread (the default backend always progresses on its own threads).
    #[pyo3(get, set)]
    useProgThread: bool,
    /// Run the peer-to-peer metadata listener.
    #[pyo3(get, set)]
    useListenThread: bool,
    /// Listener port (0 = pick a free one).
    #[pyo3(get, set)]
    listenPort: u16,
    /// Locking mode (the agent is thread-safe in all).
    #[pyo3(get, set)]
    syncMode: PyThreadSync,
    /// Backend worker threads asked for.
    #[pyo3(get, set)]
    numWorkers: u32,
    /// Progress-thread delay, µs.
    #[pyo3(get, set)]
    pthrDelay: u64,
    /// Listener delay, µs.
    #[pyo3(get, set)]
    lthrDelay: u64,
    /// Record per-request telemetry.
    #[pyo3(get, set)]
    captureTelemetry: bool,
    /// How long a fetch from a central store waits, µs.
    #[pyo3(get, set)]
    etcdWatchTimeout: u64,
}

#[pymethods]
impl PyAgentConfig {
    #[new]
    #[pyo3(signature = (use_prog_thread = true, use_listen_thread = false, port = 0,
        sync_mode = PyThreadSync::NIXL_THREAD_SYNC_NONE, num_workers = 1, pthr_delay_us = 0,
        lthr_delay_us = 100_000, capture_telemetry = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        use_prog_thread: bool,
        use_listen_thread: bool,
        port: u16,
        sync_mode: PyThreadSync,
        num_workers: u32,
        pthr_delay_us: u64,
        lthr_delay_us: u64,
        capture_telemetry: bool,
    ) -> Self {
        PyAgentConfig {
            useProgThread: use_prog_thread,
            useListenThread: use_listen_thread,
            listenPort: port,
            syncMode: sync_mode,
            numWorkers: num_workers,
            pthrDelay: pthr_delay_us,
            lthrDelay: lthr_delay_us,
            captureTelemetry: capture_telemetry,
            etcdWatchTimeout: 5_000_000,
        }
    }
}

impl PyAgentConfig {
    fn to_core(&self) -> AgentConfig {
        AgentConfig {
            use_prog_thread: self.useProgThread,
            use_listen_thread: self.useListenThread,
            listen_port: self.listenPort,
            sync_mode: self.syncMode.into(),
            pthr_delay: Duration::from_micros(self.pthrDelay),
            lthr_delay: Duration::from_micros(self.lthrDelay),
            capture_telemetry: self.captureTelemetry,
            etcd_watch_timeout: Duration::from_micros(self.etcdWatchTimeout),
            ..AgentConfig::default()
        }
    }
}

/// Telemetry of a request's last post (`nixlXferTelemetry`); durations in µs.
#[pyclass(
    module = "nixl._bindings",
    name = "nixlXferTelemetry",
    frozen,
    skip_from_py_object
)]
#[derive(Clone, Default)]
pub struct PyTelemetry {
    /// Start of the post, µs since the Unix epoch.
    #[pyo3(get)]
    startTime: u64,
    /// Time spent in the post call.
    #[pyo3(get)]
    postDuration: u64,
    /// From the start of the post to completion.
    #[pyo3(get)]
    xferDuration: u64,
    /// Bytes moved.
    #[pyo3(get)]
    totalBytes: u64,
    /// Descriptors after merging.
    #[pyo3(get)]
    descCount: u64,
}

#[pymethods]
impl PyTelemetry {
    #[new]
    fn new() -> Self {
        PyTelemetry::default()
    }

    fn __repr__(&self) -> String {
        format!(
            "nixlXferTelemetry(startTime={}, postDuration={}, xferDuration={}, totalBytes={}, descCount={})",
            self.startTime, self.postDuration, self.xferDuration, self.totalBytes, self.descCount
        )
    }
}

/// A native agent (`nixlAgent`).
#[pyclass(module = "nixl._bindings", name = "nixlAgent", frozen)]
pub struct PyAgent {
    agent: Arc<Agent>,
    /// Backend handles as Python sees them: position + 1 (0 is never a handle).
    backends: Mutex<Vec<BackendHandle>>,
    reqs: Mutex<HashMap<u64, Arc<XferRequest>>>,
    dlists: Mutex<HashMap<u64, Arc<PreppedDlist>>>,
    /// Requests whose Python handle was collected while they ran: kept until they finish.
    parked: Mutex<Vec<Arc<XferRequest>>>,
    next: AtomicU64,
    wakeup: OnceLock<Wakeup>,
}

fn msg_bytes(m: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<u8>> {
    let Some(m) = m.filter(|m| !m.is_none()) else {
        return Ok(Vec::new());
    };
    if let Ok(s) = m.extract::<String>() {
        return Ok(s.into_bytes());
    }
    m.extract::<Vec<u8>>()
        .map_err(|_| PyTypeError::new_err("a notification message must be bytes or str"))
}

fn params_dict<'py>(py: Python<'py>, p: &Params) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in p {
        d.set_item(k, v)?;
    }
    Ok(d)
}

fn mem_names(mems: &[nixl_core::MemType]) -> Vec<String> {
    mems.iter()
        .map(|m| format!("{:?}", PyMemType::from(*m)))
        .collect()
}

impl PyAgent {
    fn handle(&self) -> u64 {
        // Never 0, never a small integer that looks like a status.
        (1 << 32) + self.next.fetch_add(1, Ordering::Relaxed)
    }

    fn req(&self, h: u64) -> PyResult<Arc<XferRequest>> {
        lock(&self.reqs).get(&h).cloned().ok_or_else(|| {
            nixlNotFoundError::new_err(format!(
                "NIXL_ERR_NOT_FOUND: no transfer request {h:#x} on this agent"
            ))
        })
    }

    fn dlist(&self, h: u64) -> PyResult<Arc<PreppedDlist>> {
        lock(&self.dlists).get(&h).cloned().ok_or_else(|| {
            nixlNotFoundError::new_err(format!(
                "NIXL_ERR_NOT_FOUND: no prepped list {h:#x} on this agent"
            ))
        })
    }

    fn opts(&self, backends: &[u64], notif: Vec<u8>) -> PyResult<OptArgs> {
        let table = lock(&self.backends);
        let backends = backends
            .iter()
            .map(|&b| {
                usize::try_from(b)
                    .ok()
                    .and_then(|b| b.checked_sub(1))
                    .and_then(|b| table.get(b).copied())
                    .ok_or_else(|| {
                        crate::errors::nixlInvalidParamError::new_err(format!(
                            "NIXL_ERR_INVALID_PARAM: {b} is not a backend handle of this agent"
                        ))
                    })
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(OptArgs {
            backends,
            notif: (!notif.is_empty()).then_some(notif),
            ..OptArgs::default()
        })
    }

    fn py_backend(&self, b: BackendHandle) -> u64 {
        lock(&self.backends)
            .iter()
            .position(|x| *x == b)
            .map_or(0, |p| p as u64 + 1)
    }

    /// Drops parked requests that finished.
    fn reap(&self) {
        let mut parked = lock(&self.parked);
        if !parked.is_empty() {
            parked.retain(|r| matches!(self.agent.xfer_status(r), Ok(Status::InProg)));
        }
    }

    fn wakeup(&self) -> PyResult<&Wakeup> {
        if let Some(w) = self.wakeup.get() {
            return Ok(w);
        }
        let w = Wakeup::new().map_err(|e| PyOSError::new_err(e.to_string()))?;
        let _ = self.wakeup.set(w);
        Ok(self.wakeup.get().expect("just set"))
    }
}

/// Polls a future once with the agent's wake-up waker: true if it is ready, else the waker
/// is registered and the wake-up socket becomes readable when it should be polled again.
fn arm<F: Future<Output = ()>>(fut: F, wakeup: &Wakeup) -> bool {
    let waker = wakeup.waker();
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    matches!(Pin::as_mut(&mut fut).poll(&mut cx), Poll::Ready(()))
}

#[pymethods]
impl PyAgent {
    #[new]
    fn new(py: Python<'_>, name: &str, config: PyAgentConfig) -> PyResult<Self> {
        let core = config.to_core();
        let agent = py.detach(|| Agent::new(name, core)).py()?;
        Ok(PyAgent {
            agent: Arc::new(agent),
            backends: Mutex::new(Vec::new()),
            reqs: Mutex::new(HashMap::new()),
            dlists: Mutex::new(HashMap::new()),
            parked: Mutex::new(Vec::new()),
            next: AtomicU64::new(1),
            wakeup: OnceLock::new(),
        })
    }

    /// Plugins that can be instantiated.
    fn getAvailPlugins(&self) -> Vec<String> {
        self.agent.available_plugins()
    }

    /// A plugin's default parameters and memory types.
    fn getPluginParams<'py>(
        &self,
        py: Python<'py>,
        name: &str,
    ) -> PyResult<(Bound<'py, PyDict>, Vec<String>)> {
        let (mems, params) = self.agent.plugin_params(name).py()?;
        Ok((params_dict(py, &params)?, mem_names(&mems)))
    }

    /// A backend's effective parameters and memory types.
    fn getBackendParams<'py>(
        &self,
        py: Python<'py>,
        backend: u64,
    ) -> PyResult<(Bound<'py, PyDict>, Vec<String>)> {
        let opts = self.opts(&[backend], Vec::new())?;
        let (mems, params) = self.agent.backend_params(opts.backends[0]).py()?;
        Ok((params_dict(py, &params)?, mem_names(&mems)))
    }

    /// Instantiates a plugin; returns its handle.
    #[pyo3(signature = (name, params = None))]
    fn createBackend(&self, py: Python<'_>, name: &str, params: Option<Params>) -> PyResult<u64> {
        let params = params.unwrap_or_default();
        let agent = self.agent.clone();
        let h = py.detach(|| agent.create_backend(name, &params)).py()?;
        let mut table = lock(&self.backends);
        table.push(h);
        Ok(table.len() as u64)
    }

    /// Registers memory.
    #[pyo3(signature = (descs, backends = Vec::new()))]
    fn registerMem(
        &self,
        py: Python<'_>,
        descs: PyRef<'_, RegDList>,
        backends: Vec<u64>,
    ) -> PyResult<PyStatus> {
        let opts = self.opts(&backends, Vec::new())?;
        let list = descs.list.clone();
        drop(descs);
        let agent = self.agent.clone();
        // SAFETY: the Python caller promises, as with NIXL, that registered memory stays
        // allocated until it is deregistered; this is the contract of `register_memory`.
        py.detach(|| unsafe { agent.register_mem(&list, Some(&opts)) })
            .py()?;
        Ok(PyStatus::NIXL_SUCCESS)
    }

    /// Deregisters memory.
    #[pyo3(signature = (descs, backends = Vec::new()))]
    fn deregisterMem(
        &self,
        py: Python<'_>,
        descs: PyRef<'_, RegDList>,
        backends: Vec<u64>,
    ) -> PyResult<PyStatus> {
        let opts = self.opts(&backends, Vec::new())?;
        let list = descs.list.clone();
        drop(descs);
        let agent = self.agent.clone();
        py.detach(|| agent.deregister_mem(&list, Some(&opts)))
            .py()?;
        Ok(PyStatus::NIXL_SUCCESS)
    }

    /// Asks one backend about registered descriptors: a dict or None per descriptor.
    fn queryMem<'py>(
        &self,
        py: Python<'py>,
        descs: PyRef<'_, RegDList>,
        backend: u64,
    ) -> PyResult<Bound<'py, PyList>> {
        let opts = self.opts(&[backend], Vec::new())?;
        let list = descs.list.clone();
        drop(descs);
        let agent = self.agent.clone();
        let out = py.detach(|| agent.query_mem(&list, Some(&opts))).py()?;
        let l = PyList::empty(py);
        for entry in out {
            match entry {
                Some(p) => l.append(params_dict(py, &p)?)?,
                None => l.append(py.None())?,
            }
        }
        Ok(l)
    }

    /// Connects to a remote agent ahead of the first transfer.
    #[pyo3(signature = (remote_agent, backends = Vec::new()))]
    fn makeConnection(
        &self,
        py: Python<'_>,
        remote_agent: &str,
        backends: Vec<u64>,
    ) -> PyResult<PyStatus> {
        let _ = backends;
        let agent = self.agent.clone();
        py.detach(|| agent.make_connection(remote_agent)).py()?;
        Ok(PyStatus::NIXL_SUCCESS)
    }

    /// Resolves a descriptor list once: `(agent_name, descs, backends)` or `(descs, backends)`
    /// for the local side (`NIXL_INIT_AGENT` = `""` is the local side too).
    #[pyo3(signature = (a, b = None, backends = None))]
    fn prepXferDlist(
        &self,
        py: Python<'_>,
        a: &Bound<'_, PyAny>,
        b: Option<&Bound<'_, PyAny>>,
        backends: Option<Vec<u64>>,
    ) -> PyResult<u64> {
        let (name, descs, backends) = if let Ok(d) = a.cast::<XferDList>() {
            let backends = match b {
                Some(b) => b.extract::<Vec<u64>>()?,
                None => backends.unwrap_or_default(),
            };
            (String::new(), d.borrow().list.clone(), backends)
        } else {
            let name: String = a.extract().map_err(|_| {
                PyTypeError::new_err(
                    "prepXferDlist(agent_name: str, descs: nixlXferDList, backends=[])",
                )
            })?;
            let d = b
                .ok_or_else(|| PyTypeError::new_err("prepXferDlist needs a descriptor list"))?
                .cast::<XferDList>()
                .map_err(|_| PyTypeError::new_err("descs must be a nixlXferDList"))?;
            let list = d.borrow().list.clone();
            (name, list, backends.unwrap_or_default())
        };
        let opts = self.opts(&backends, Vec::new())?;
        let agent = self.agent.clone();
        let prepped = py
            .detach(|| agent.prep_xfer_dlist(Some(name.as_str()), &descs, Some(&opts)))
            .py()?;
        let h = self.handle();
        lock(&self.dlists).insert(h, Arc::new(prepped));
        Ok(h)
    }

    /// Builds a request from two prepped lists and index lists (lists or numpy arrays).
    #[pyo3(signature = (operation, local_side, local_indices, remote_side, remote_indices,
        notif_msg = None, backends = Vec::new(), skip_desc_merge = false))]
    #[allow(clippy::too_many_arguments)]
    fn makeXferReq(
        &self,
        py: Python<'_>,
        operation: PyXferOp,
        local_side: u64,
        local_indices: &Bound<'_, PyAny>,
        remote_side: u64,
        remote_indices: &Bound<'_, PyAny>,
        notif_msg: Option<&Bound<'_, PyAny>>,
        backends: Vec<u64>,
        skip_desc_merge: bool,
    ) -> PyResult<u64> {
        let li = arrays::index_list(local_indices)?;
        let ri = arrays::index_list(remote_indices)?;
        let (l, r) = (self.dlist(local_side)?, self.dlist(remote_side)?);
        let mut opts = self.opts(&backends, msg_bytes(notif_msg)?)?;
        opts.skip_desc_merge = skip_desc_merge;
        let agent = self.agent.clone();
        let req = py
            .detach(|| agent.make_xfer_req(operation.into(), &l, &li, &r, &ri, Some(&opts)))
            .py()?;
        self.reap();
        let h = self.handle();
        lock(&self.reqs).insert(h, Arc::new(req));
        Ok(h)
    }

    /// Builds a request from two descriptor lists.
    #[pyo3(signature = (operation, local_descs, remote_descs, remote_agent, notif_msg = None,
        backends = Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn createXferReq(
        &self,
        py: Python<'_>,
        operation: PyXferOp,
        local_descs: PyRef<'_, XferDList>,
        remote_descs: PyRef<'_, XferDList>,
        remote_agent: &str,
        notif_msg: Option<&Bound<'_, PyAny>>,
        backends: Vec<u64>,
    ) -> PyResult<u64> {
        let opts = self.opts(&backends, msg_bytes(notif_msg)?)?;
        let (l, r) = (local_descs.list.clone(), remote_descs.list.clone());
        drop((local_descs, remote_descs));
        let agent = self.agent.clone();
        let req = py
            .detach(|| agent.create_xfer_req(operation.into(), &l, &r, remote_agent, Some(&opts)))
            .py()?;
        self.reap();
        let h = self.handle();
        lock(&self.reqs).insert(h, Arc::new(req));
        Ok(h)
    }

    /// Cost estimate `(duration_us, error_margin_us, method)`; this library has no cost
    /// model, so it answers as NIXL's UCX backend does: zeros and "UNKNOWN".
    fn estimateXferCost(&self, reqh: u64) -> PyResult<(i64, i64, String)> {
        self.req(reqh)?;
        Ok((0, 0, "UNKNOWN".into()))
    }

    /// Posts a request; a non-empty `notif_msg` replaces its notification.
    #[pyo3(signature = (reqh, notif_msg = None))]
    fn postXferReq(
        &self,
        py: Python<'_>,
        reqh: u64,
        notif_msg: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyStatus> {
        let req = self.req(reqh)?;
        let msg = msg_bytes(notif_msg)?;
        let opts = (!msg.is_empty()).then(|| OptArgs::with_notif(msg));
        let agent = self.agent.clone();
        let s = py
            .detach(|| agent.post_xfer_req(&req, opts.as_ref()))
            .py()?;
        Ok(s.into())
    }

    /// A request's status: NIXL_IN_PROG, NIXL_SUCCESS, or the error raised.
    fn getXferStatus(&self, py: Python<'_>, reqh: u64) -> PyResult<PyStatus> {
        let req = self.req(reqh)?;
        let agent = self.agent.clone();
        Ok(py.detach(|| agent.xfer_status(&req)).py()?.into())
    }

    /// Telemetry of the last post (raises nixlNoTelemetryError when disabled).
    fn getXferTelemetry(&self, py: Python<'_>, reqh: u64) -> PyResult<PyTelemetry> {
        let req = self.req(reqh)?;
        let agent = self.agent.clone();
        let t = py.detach(|| agent.xfer_telemetry(&req)).py()?;
        Ok(t.map(|t| PyTelemetry {
            startTime: t.start_time_us,
            postDuration: t.post_duration_us,
            xferDuration: t.xfer_duration_us,
            totalBytes: t.total_bytes,
            descCount: t.desc_count,
        })
        .unwrap_or_default())
    }

    /// The backend handle a request uses.
    fn queryXferBackend(&self, reqh: u64) -> PyResult<u64> {
        Ok(self.py_backend(self.req(reqh)?.backend()))
    }

    /// Releases a request: an in-flight post is canceled and waited for.
    fn releaseXferReq(&self, py: Python<'_>, reqh: u64) -> PyResult<PyStatus> {
        let req = lock(&self.reqs).remove(&reqh).ok_or_else(|| {
            nixlNotFoundError::new_err(format!(
                "NIXL_ERR_NOT_FOUND: no transfer request {reqh:#x} on this agent"
            ))
        })?;
        py.detach(|| drop(req));
        Ok(PyStatus::NIXL_SUCCESS)
    }

    /// Extension: forgets a request whose Python handle was collected. One still running is
    /// kept until it finishes (never canceled or freed under the transfer).
    fn _parkXferReq(&self, py: Python<'_>, reqh: u64) {
        let Some(req) = lock(&self.reqs).remove(&reqh) else {
            return;
        };
        let agent = self.agent.clone();
        let running = py.detach(|| matches!(agent.xfer_status(&req), Ok(Status::InProg)));
        if running {
            lock(&self.parked).push(req);
        } else {
            py.detach(|| drop(req));
        }
    }

    /// Extension: how many collected requests are still running.
    fn _parkedCount(&self) -> usize {
        self.reap();
        lock(&self.parked).len()
    }

    /// Releases a prepped list.
    fn releasedDlistH(&self, py: Python<'_>, dlist: u64) -> PyResult<PyStatus> {
        let d = lock(&self.dlists).remove(&dlist).ok_or_else(|| {
            nixlNotFoundError::new_err(format!(
                "NIXL_ERR_NOT_FOUND: no prepped list {dlist:#x} on this agent"
            ))
        })?;
        py.detach(|| drop(d));
        Ok(PyStatus::NIXL_SUCCESS)
    }

    /// Takes received notifications, appending them to `notif_map` (name → list of bytes),
    /// which is returned.
    #[pyo3(signature = (notif_map = None, backends = Vec::new()))]
    fn getNotifs<'py>(
        &self,
        py: Python<'py>,
        notif_map: Option<Bound<'py, PyDict>>,
        backends: Vec<u64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let _ = backends;
        let agent = self.agent.clone();
        let mut got = NotifMap::new();
        py.detach(|| agent.get_notifs(&mut got)).py()?;
        let map = notif_map.unwrap_or_else(|| PyDict::new(py));
        for (sender, msgs) in got {
            let list = match map.get_item(&sender)? {
                Some(l) => l.cast_into::<PyList>()?,
                None => {
                    let l = PyList::empty(py);
                    map.set_item(&sender, &l)?;
                    l
                }
            };
            for m in msgs {
                list.append(PyBytes::new(py, &m))?;
            }
        }
        Ok(map)
    }

    /// Sends a notification.
    #[pyo3(signature = (remote_agent, msg, backends = Vec::new()))]
    fn genNotif(
        &self,
        py: Python<'_>,
        remote_agent: &str,
        msg: &Bound<'_, PyAny>,
        backends: Vec<u64>,
    ) -> PyResult<PyStatus> {
        let opts = self.opts(&backends, Vec::new())?;
        let msg = msg_bytes(Some(msg))?;
        let agent = self.agent.clone();
        py.detach(|| agent.gen_notif(remote_agent, &msg, Some(&opts)))
            .py()?;
        Ok(PyStatus::NIXL_SUCCESS)
    }

    /// This agent's metadata.
    fn getLocalMD<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let agent = self.agent.clone();
        let md = py.detach(|| agent.local_md()).py()?;
        Ok(PyBytes::new(py, &md))
    }

    /// Metadata for some registrations (none: connection info only).
    #[pyo3(signature = (descs, inc_conn_info = false, backends = Vec::new()))]
    fn getLocalPartialMD<'py>(
        &self,
        py: Python<'py>,
        descs: PyRef<'_, RegDList>,
        inc_conn_info: bool,
        backends: Vec<u64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut opts = self.opts(&backends, Vec::new())?;
        opts.include_conn_info = inc_conn_info;
        let list = descs.list.clone();
        drop(descs);
        let agent = self.agent.clone();
        let md = py
            .detach(|| agent.local_partial_md(&list, Some(&opts)))
            .py()?;
        Ok(PyBytes::new(py, &md))
    }

    /// Loads a remote agent's metadata; returns its name as bytes (as NIXL does).
    fn loadRemoteMD<'py>(
        &self,
        py: Python<'py>,
        md: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let md = msg_bytes(Some(md))?;
        let agent = self.agent.clone();
        let name = py.detach(|| agent.load_remote_md(&md)).py()?;
        Ok(PyBytes::new(py, name.as_bytes()))
    }

    /// Forgets a remote agent.
    fn invalidateRemoteMD(&self, py: Python<'_>, remote_agent: &str) -> PyResult<PyStatus> {
        let agent = self.agent.clone();
        py.detach(|| agent.invalidate_remote_md(remote_agent))
            .py()?;
        Ok(PyStatus::NIXL_SUCCESS)
    }

    /// Sends this agent's metadata to a peer's listener (or the central store).
    #[pyo3(signature = (ip_addr = String::new(), port = 0))]
    fn sendLocalMD(&self, py: Python<'_>, ip_addr: String, port: u16) -> PyResult<()> {
        let opts = peer_opts(ip_addr, port);
        let agent = self.agent.clone();
        py.detach(|| agent.send_local_md(Some(&opts))).py()
    }

    /// Sends partial metadata to a peer's listener (or the central store under `label`).
    #[pyo3(signature = (descs, inc_conn_info = false, backends = Vec::new(), ip_addr = String::new(), port = 0, label = String::new()))]
    #[allow(clippy::too_many_arguments)]
    fn sendLocalPartialMD(
        &self,
        py: Python<'_>,
        descs: PyRef<'_, RegDList>,
        inc_conn_info: bool,
        backends: Vec<u64>,
        ip_addr: String,
        port: u16,
        label: String,
    ) -> PyResult<()> {
        let mut opts = self.opts(&backends, Vec::new())?;
        let peer = peer_opts(ip_addr, port);
        opts.ip_addr = peer.ip_addr;
        opts.port = peer.port;
        opts.include_conn_info = inc_conn_info;
        opts.metadata_label = (!label.is_empty()).then_some(label);
        let list = descs.list.clone();
        drop(descs);
        let agent = self.agent.clone();
        py.detach(|| agent.send_local_partial_md(&list, Some(&opts)))
            .py()
    }

    /// Asks a peer's listener (or the central store) for `remote_agent`'s metadata.
    #[pyo3(signature = (remote_agent, ip_addr = String::new(), port = 0, label = String::new()))]
    fn fetchRemoteMD(
        &self,
        py: Python<'_>,
        remote_agent: &str,
        ip_addr: String,
        port: u16,
        label: String,
    ) -> PyResult<()> {
        let mut opts = peer_opts(ip_addr, port);
        opts.metadata_label = (!label.is_empty()).then_some(label);
        let agent = self.agent.clone();
        py.detach(|| agent.fetch_remote_md(remote_agent, Some(&opts)))
            .py()
    }

    /// Tells a peer (or the central store) to forget this agent.
    #[pyo3(signature = (ip_addr = String::new(), port = 0))]
    fn invalidateLocalMD(&self, py: Python<'_>, ip_addr: String, port: u16) -> PyResult<()> {
        let opts = peer_opts(ip_addr, port);
        let agent = self.agent.clone();
        py.detach(|| agent.invalidate_local_md(Some(&opts))).py()
    }

    /// NIXL_SUCCESS if `remote_agent`'s metadata (covering `descs`) is loaded; raises
    /// nixlNotFoundError if not (yet).
    #[pyo3(signature = (remote_agent, descs = None))]
    fn checkRemoteMD(
        &self,
        py: Python<'_>,
        remote_agent: &str,
        descs: Option<PyRef<'_, XferDList>>,
    ) -> PyResult<PyStatus> {
        let list = match descs {
            Some(d) => d.list.clone(),
            None => Arc::new(nixl_core::XferDescList::new(nixl_core::MemType::Dram)),
        };
        let agent = self.agent.clone();
        py.detach(|| agent.check_remote_md(remote_agent, &list))
            .py()?;
        Ok(PyStatus::NIXL_SUCCESS)
    }

    /// GPU-initiated memory views are not supported by this library.
    #[pyo3(signature = (dlist, backends = Vec::new()))]
    fn prepMemView(&self, dlist: &Bound<'_, PyAny>, backends: Vec<u64>) -> PyResult<u64> {
        let _ = (dlist, backends);
        Err(nixlNotSupportedError::new_err(
            "NIXL_ERR_NOT_SUPPORTED: GPU-initiated memory views are not supported",
        ))
    }

    /// See `prepMemView`.
    fn releaseMemView(&self, handle: u64) -> PyResult<()> {
        let _ = handle;
        Err(nixlNotSupportedError::new_err(
            "NIXL_ERR_NOT_SUPPORTED: GPU-initiated memory views are not supported",
        ))
    }

    /// The listener's actual port (useful when configured as 0), or None.
    fn getListenPort(&self) -> Option<u16> {
        self.agent.listen_port()
    }

    /// Extension: blocks (GIL released, no CPU used) until the request's post leaves
    /// IN_PROG or `timeout` seconds pass (None: no limit); returns the status then.
    #[pyo3(signature = (reqh, timeout = None))]
    fn waitXferReq(&self, py: Python<'_>, reqh: u64, timeout: Option<f64>) -> PyResult<PyStatus> {
        let req = self.req(reqh)?;
        let timeout = seconds(timeout)?;
        let agent = self.agent.clone();
        Ok(py.detach(|| agent.wait_xfer(&req, timeout)).py()?.into())
    }

    /// Extension: blocks until a notification is waiting or `timeout` seconds pass; returns
    /// whether one is.
    #[pyo3(signature = (timeout = None))]
    fn waitNotifs(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let timeout = seconds(timeout)?;
        let agent = self.agent.clone();
        Ok(py.detach(|| agent.wait_notifs(timeout)))
    }

    /// Extension: the descriptor an asyncio loop watches for `_armXfer` / `_armNotifs`.
    fn _wakeFd(&self) -> PyResult<i32> {
        Ok(self.wakeup()?.fd())
    }

    /// Extension: true if the request's post ended; otherwise the wake descriptor becomes
    /// readable when it may have.
    fn _armXfer(&self, reqh: u64) -> PyResult<bool> {
        let req = self.req(reqh)?;
        let fut = self.agent.xfer_ready(&req).py()?;
        Ok(arm(fut, self.wakeup()?))
    }

    /// Extension: true if a notification is waiting; otherwise the wake descriptor becomes
    /// readable when one arrives.
    fn _armNotifs(&self) -> PyResult<bool> {
        Ok(arm(self.agent.notif_ready(), self.wakeup()?))
    }
}

fn peer_opts(ip_addr: String, port: u16) -> OptArgs {
    OptArgs {
        ip_addr: (!ip_addr.is_empty()).then_some(ip_addr),
        port: if port == 0 {
            nixl_core::config::DEFAULT_COMM_PORT
        } else {
            port
        },
        ..OptArgs::default()
    }
}

fn seconds(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    timeout
        .map(|t| {
            Duration::try_from_secs_f64(t.max(0.0))
                .map_err(|_| PyTypeError::new_err("timeout must be a finite number of seconds"))
        })
        .transpose()
}
