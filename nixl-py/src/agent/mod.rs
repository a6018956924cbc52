//! `nixlAgent`: the C++ agent's methods (camelCase) over nixl-core's [`Agent`].
//!
//! This file is the Python surface: names, signatures and defaults, each body a short call.
//! Every call that can wait, copy or use the network runs without the GIL ([`PyAgent::run`]),
//! so other Python threads keep running meanwhile. Requests and prepped lists cross into Python
//! as plain integers, as in NIXL (`tables`).

mod args;
mod tables;
mod waiting;

use std::sync::{Arc, OnceLock};

use nixl_core::{Agent, NotifMap, OptArgs, Params, Status};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::arrays;
use crate::config::PyAgentConfig;
use crate::dlist::{RegDList, XferDList};
use crate::enums::{PyStatus, PyXferOp};
use crate::errors::{IntoPy, nixlNotSupportedError};
use crate::telemetry::PyTelemetry;
use crate::wakeup::Wakeup;
use args::{data_bytes, mem_names, msg_bytes, params_dict, peer_opts, seconds};
use tables::Tables;

/// A native agent (`nixlAgent`).
#[pyclass(module = "nixl._bindings", name = "nixlAgent", frozen)]
pub struct PyAgent {
    agent: Arc<Agent>,
    tables: Tables,
    wakeup: OnceLock<Wakeup>,
}

const SUCCESS: PyResult<PyStatus> = Ok(PyStatus::NIXL_SUCCESS);

impl PyAgent {
    /// Runs `f` on the agent with the GIL released.
    fn run<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Agent) -> nixl_core::Result<R> + Send,
    ) -> PyResult<R> {
        let agent: &Agent = &self.agent;
        crate::exiting::detach(py, || f(agent)).py()
    }

    /// Optional arguments: backends by Python handle and a notification (empty: none).
    fn opts(&self, backends: &[u64], notif: Vec<u8>) -> PyResult<OptArgs> {
        Ok(OptArgs {
            backends: self.tables.backends(backends)?,
            notif: (!notif.is_empty()).then_some(notif),
            ..OptArgs::default()
        })
    }

    fn add_req(&self, req: nixl_core::XferRequest) -> u64 {
        self.tables.reap(&self.agent);
        self.tables.add_req(req)
    }
}

#[pymethods]
impl PyAgent {
    #[new]
    fn new(py: Python<'_>, name: &str, config: PyAgentConfig) -> PyResult<Self> {
        let core = config.to_core();
        let agent = crate::exiting::detach(py, || Agent::new(name, core)).py()?;
        Ok(PyAgent {
            agent: Arc::new(agent),
            tables: Tables::new(),
            wakeup: OnceLock::new(),
        })
    }

    // ----- backends and memory -----

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
        let b = self.tables.backends(&[backend])?[0];
        let (mems, params) = self.agent.backend_params(b).py()?;
        Ok((params_dict(py, &params)?, mem_names(&mems)))
    }

    /// Instantiates a plugin; returns its handle.
    #[pyo3(signature = (name, params = None))]
    fn createBackend(&self, py: Python<'_>, name: &str, params: Option<Params>) -> PyResult<u64> {
        let params = params.unwrap_or_default();
        let b = self.run(py, |a| a.create_backend(name, &params))?;
        Ok(self.tables.add_backend(b))
    }

    /// Registers memory.
    #[pyo3(signature = (descs, backends = Vec::new()))]
    fn registerMem(
        &self,
        py: Python<'_>,
        descs: &Bound<'_, RegDList>,
        backends: Vec<u64>,
    ) -> PyResult<PyStatus> {
        let opts = self.opts(&backends, Vec::new())?;
        let list = descs.borrow().list.clone();
        // SAFETY: the Python caller promises, as with NIXL, that registered memory stays
        // allocated until it is deregistered; this is the contract of `register_memory`.
        self.run(py, |a| unsafe { a.register_mem(&list, Some(&opts)) })?;
        SUCCESS
    }

    /// Deregisters memory.
    #[pyo3(signature = (descs, backends = Vec::new()))]
    fn deregisterMem(
        &self,
        py: Python<'_>,
        descs: &Bound<'_, RegDList>,
        backends: Vec<u64>,
    ) -> PyResult<PyStatus> {
        let opts = self.opts(&backends, Vec::new())?;
        let list = descs.borrow().list.clone();
        self.run(py, |a| a.deregister_mem(&list, Some(&opts)))?;
        SUCCESS
    }

    /// Asks one backend about registered descriptors: a dict or None per descriptor.
    fn queryMem<'py>(
        &self,
        py: Python<'py>,
        descs: &Bound<'_, RegDList>,
        backend: u64,
    ) -> PyResult<Bound<'py, PyList>> {
        let opts = self.opts(&[backend], Vec::new())?;
        let list = descs.borrow().list.clone();
        let out = self.run(py, |a| a.query_mem(&list, Some(&opts)))?;
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
        self.run(py, |a| a.make_connection(remote_agent))?;
        SUCCESS
    }

    // ----- descriptor lists and requests -----

    /// Resolves a descriptor list once: `(agent_name, descs, backends)` or `(descs, backends)`
    /// for the local side (`NIXL_INIT_AGENT` = `""` is the local side too). The list is
    /// shared, not copied (it is copied on write if Python changes it later).
    #[pyo3(signature = (a, b = None, backends = None))]
    fn prepXferDlist(
        &self,
        py: Python<'_>,
        a: &Bound<'_, PyAny>,
        b: Option<&Bound<'_, PyAny>>,
        backends: Option<Vec<u64>>,
    ) -> PyResult<u64> {
        let (name, descs, backends) = args::prep_args(a, b, backends)?;
        let opts = self.opts(&backends, Vec::new())?;
        let prepped = self.run(py, |a| a.prep_shared_dlist(Some(&name), descs, Some(&opts)))?;
        Ok(self.tables.add_dlist(prepped))
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
        let (l, r) = (
            self.tables.dlist(local_side)?,
            self.tables.dlist(remote_side)?,
        );
        let mut opts = self.opts(&backends, msg_bytes(notif_msg)?)?;
        opts.skip_desc_merge = skip_desc_merge;
        let op: nixl_core::XferOp = operation.into();
        let req = self.run(py, |a| a.make_xfer_req(op, &l, &li, &r, &ri, Some(&opts)))?;
        Ok(self.add_req(req))
    }

    /// Builds a request from two descriptor lists.
    #[pyo3(signature = (operation, local_descs, remote_descs, remote_agent, notif_msg = None,
        backends = Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn createXferReq(
        &self,
        py: Python<'_>,
        operation: PyXferOp,
        local_descs: &Bound<'_, XferDList>,
        remote_descs: &Bound<'_, XferDList>,
        remote_agent: &str,
        notif_msg: Option<&Bound<'_, PyAny>>,
        backends: Vec<u64>,
    ) -> PyResult<u64> {
        let opts = self.opts(&backends, msg_bytes(notif_msg)?)?;
        let (l, r) = (
            local_descs.borrow().list.clone(),
            remote_descs.borrow().list.clone(),
        );
        let op: nixl_core::XferOp = operation.into();
        let req = self.run(py, |a| {
            a.create_xfer_req(op, &l, &r, remote_agent, Some(&opts))
        })?;
        Ok(self.add_req(req))
    }

    /// Cost estimate `(duration_us, error_margin_us, method)`; this library has no cost
    /// model, so it answers as NIXL's UCX backend does: zeros and "UNKNOWN".
    fn estimateXferCost(&self, reqh: u64) -> PyResult<(i64, i64, String)> {
        self.tables.req(reqh)?;
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
        let req = self.tables.req(reqh)?;
        let msg = msg_bytes(notif_msg)?;
        let opts = (!msg.is_empty()).then(|| OptArgs::with_notif(msg));
        Ok(self
            .run(py, |a| a.post_xfer_req(&req, opts.as_ref()))?
            .into())
    }

    /// A request's status: NIXL_IN_PROG, NIXL_SUCCESS, or the error raised.
    fn getXferStatus(&self, py: Python<'_>, reqh: u64) -> PyResult<PyStatus> {
        let req = self.tables.req(reqh)?;
        Ok(self.run(py, |a| a.xfer_status(&req))?.into())
    }

    /// Telemetry of the last post (raises nixlNoTelemetryError when disabled).
    fn getXferTelemetry(&self, py: Python<'_>, reqh: u64) -> PyResult<PyTelemetry> {
        let req = self.tables.req(reqh)?;
        let t = self.run(py, |a| a.xfer_telemetry(&req))?;
        Ok(t.map(PyTelemetry::from).unwrap_or_default())
    }

    /// The backend handle a request uses.
    fn queryXferBackend(&self, reqh: u64) -> PyResult<u64> {
        Ok(self.tables.py_backend(self.tables.req(reqh)?.backend()))
    }

    /// Releases a request: an in-flight post is canceled and waited for, even while another
    /// thread still holds the request (waiting on it: that thread sees CANCELED).
    fn releaseXferReq(&self, py: Python<'_>, reqh: u64) -> PyResult<PyStatus> {
        let req = self.tables.take_req(reqh)?;
        let agent: &Agent = &self.agent;
        crate::exiting::detach(py, || {
            let canceled = agent.cancel_xfer_req(&req);
            drop(req);
            canceled
        })
        .py()?;
        SUCCESS
    }

    /// Extension: forgets a request whose Python handle was collected. One still running is
    /// kept until it finishes (never canceled or freed under the transfer).
    fn _parkXferReq(&self, py: Python<'_>, reqh: u64) {
        let Ok(req) = self.tables.take_req(reqh) else {
            return;
        };
        let agent: &Agent = &self.agent;
        let running =
            crate::exiting::detach(py, || matches!(agent.xfer_status(&req), Ok(Status::InProg)));
        if running {
            self.tables.park(req);
        } else {
            crate::exiting::detach(py, || drop(req));
        }
    }

    /// Extension: how many collected requests are still running.
    fn _parkedCount(&self) -> usize {
        self.tables.reap(&self.agent)
    }

    /// Releases a prepped list.
    fn releasedDlistH(&self, py: Python<'_>, dlist: u64) -> PyResult<PyStatus> {
        let d = self.tables.take_dlist(dlist)?;
        crate::exiting::detach(py, || drop(d));
        SUCCESS
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

    // ----- notifications -----

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
        let map = notif_map.unwrap_or_else(|| PyDict::new(py));
        // Checked before the notifications are taken: none is lost to a bad map.
        args::check_notif_map(&map)?;
        let mut got = NotifMap::new();
        self.run(py, |a| a.get_notifs(&mut got))?;
        args::merge_notifs(&map, got)?;
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
        let msg = data_bytes(msg, "a notification message")?;
        self.run(py, |a| a.gen_notif(remote_agent, &msg, Some(&opts)))?;
        SUCCESS
    }

    // ----- metadata -----

    /// This agent's metadata.
    fn getLocalMD<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let md = self.run(py, |a| a.local_md())?;
        Ok(PyBytes::new(py, &md))
    }

    /// Metadata for some registrations (none: connection info only).
    #[pyo3(signature = (descs, inc_conn_info = false, backends = Vec::new()))]
    fn getLocalPartialMD<'py>(
        &self,
        py: Python<'py>,
        descs: &Bound<'_, RegDList>,
        inc_conn_info: bool,
        backends: Vec<u64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut opts = self.opts(&backends, Vec::new())?;
        opts.include_conn_info = inc_conn_info;
        let list = descs.borrow().list.clone();
        let md = self.run(py, |a| a.local_partial_md(&list, Some(&opts)))?;
        Ok(PyBytes::new(py, &md))
    }

    /// Loads a remote agent's metadata; returns its name as bytes (as NIXL does).
    fn loadRemoteMD<'py>(
        &self,
        py: Python<'py>,
        md: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let md = data_bytes(md, "metadata")?;
        let name = self.run(py, |a| a.load_remote_md(&md))?;
        Ok(PyBytes::new(py, name.as_bytes()))
    }

    /// Forgets a remote agent.
    fn invalidateRemoteMD(&self, py: Python<'_>, remote_agent: &str) -> PyResult<PyStatus> {
        self.run(py, |a| a.invalidate_remote_md(remote_agent))?;
        SUCCESS
    }

    /// Sends this agent's metadata to a peer's listener (or the central store).
    #[pyo3(signature = (ip_addr = String::new(), port = 0))]
    fn sendLocalMD(&self, py: Python<'_>, ip_addr: String, port: u16) -> PyResult<()> {
        let opts = peer_opts(ip_addr, port);
        self.run(py, |a| a.send_local_md(Some(&opts)))
    }

    /// Sends partial metadata to a peer's listener (or the central store under `label`).
    #[pyo3(signature = (descs, inc_conn_info = false, backends = Vec::new(), ip_addr = String::new(), port = 0, label = String::new()))]
    #[allow(clippy::too_many_arguments)]
    fn sendLocalPartialMD(
        &self,
        py: Python<'_>,
        descs: &Bound<'_, RegDList>,
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
        let list = descs.borrow().list.clone();
        self.run(py, |a| a.send_local_partial_md(&list, Some(&opts)))
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
        self.run(py, |a| a.fetch_remote_md(remote_agent, Some(&opts)))
    }

    /// Tells a peer (or the central store) to forget this agent.
    #[pyo3(signature = (ip_addr = String::new(), port = 0))]
    fn invalidateLocalMD(&self, py: Python<'_>, ip_addr: String, port: u16) -> PyResult<()> {
        let opts = peer_opts(ip_addr, port);
        self.run(py, |a| a.invalidate_local_md(Some(&opts)))
    }

    /// NIXL_SUCCESS if `remote_agent`'s metadata (covering `descs`) is loaded; raises
    /// nixlNotFoundError if not (yet).
    #[pyo3(signature = (remote_agent, descs = None))]
    fn checkRemoteMD(
        &self,
        py: Python<'_>,
        remote_agent: &str,
        descs: Option<&Bound<'_, XferDList>>,
    ) -> PyResult<PyStatus> {
        let list = match descs {
            Some(d) => d.borrow().list.clone(),
            None => Arc::new(nixl_core::XferDescList::new(nixl_core::MemType::Dram)),
        };
        self.run(py, |a| a.check_remote_md(remote_agent, &list))?;
        SUCCESS
    }

    /// The listener's actual port (useful when configured as 0), or None.
    fn getListenPort(&self) -> Option<u16> {
        self.agent.listen_port()
    }

    // ----- waiting (extensions) -----

    /// Extension: blocks (GIL released, no CPU used) until the request's post leaves
    /// IN_PROG or `timeout` seconds pass (None: no limit); returns the status then.
    #[pyo3(signature = (reqh, timeout = None))]
    fn waitXferReq(&self, py: Python<'_>, reqh: u64, timeout: Option<f64>) -> PyResult<PyStatus> {
        let req = self.tables.req(reqh)?;
        let timeout = seconds(timeout)?;
        let agent: &Agent = &self.agent;
        let status = waiting::sliced(py, timeout, |t| {
            let s = agent.wait_xfer(&req, Some(t))?;
            Ok((s, s != Status::InProg))
        })?;
        Ok(status.into())
    }

    /// Extension: blocks until a notification is waiting or `timeout` seconds pass; returns
    /// whether one is.
    #[pyo3(signature = (timeout = None))]
    fn waitNotifs(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let timeout = seconds(timeout)?;
        let agent: &Agent = &self.agent;
        waiting::sliced(py, timeout, |t| {
            let got = agent.wait_notifs(Some(t));
            Ok((got, got))
        })
    }

    /// Extension: the descriptor an asyncio loop watches for `_armXfer` / `_armNotifs`.
    fn _wakeFd(&self) -> PyResult<i32> {
        Ok(waiting::wakeup(&self.wakeup)?.fd())
    }

    /// Extension: true if the request's post ended; otherwise the wake descriptor becomes
    /// readable when it may have.
    fn _armXfer(&self, reqh: u64) -> PyResult<bool> {
        let req = self.tables.req(reqh)?;
        let fut = self.agent.xfer_ready(&req).py()?;
        Ok(waiting::arm(fut, waiting::wakeup(&self.wakeup)?))
    }

    /// Extension: true if a notification is waiting; otherwise the wake descriptor becomes
    /// readable when one arrives.
    fn _armNotifs(&self) -> PyResult<bool> {
        Ok(waiting::arm(
            self.agent.notif_ready(),
            waiting::wakeup(&self.wakeup)?,
        ))
    }
}
