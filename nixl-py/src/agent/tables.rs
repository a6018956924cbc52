//! What Python holds as plain integers, as in NIXL: backend handles, transfer requests and
//! prepped lists, looked up in per-agent tables; and requests whose Python handle was
//! collected while they ran, kept until they finish.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use nixl_core::{Agent, BackendHandle, PreppedDlist, Status, XferRequest};
use pyo3::prelude::*;

use crate::errors::{nixlInvalidParamError, nixlNotFoundError};

/// Objects by handle; a missing handle is `nixlNotFoundError` naming `what`.
struct Table<T> {
    what: &'static str,
    items: Mutex<HashMap<u64, Arc<T>>>,
}

impl<T> Table<T> {
    fn new(what: &'static str) -> Self {
        Table {
            what,
            items: Mutex::new(HashMap::new()),
        }
    }

    fn missing(&self, h: u64) -> PyErr {
        nixlNotFoundError::new_err(format!(
            "NIXL_ERR_NOT_FOUND: no {} {h:#x} on this agent",
            self.what
        ))
    }

    fn get(&self, h: u64) -> PyResult<Arc<T>> {
        self.items
            .lock()
            .get(&h)
            .cloned()
            .ok_or_else(|| self.missing(h))
    }

    fn take(&self, h: u64) -> PyResult<Arc<T>> {
        self.items.lock().remove(&h).ok_or_else(|| self.missing(h))
    }
}

/// An agent's handle tables.
pub struct Tables {
    /// Backend handles as Python sees them: position + 1 (0 is never a handle).
    backends: Mutex<Vec<BackendHandle>>,
    reqs: Table<XferRequest>,
    dlists: Table<PreppedDlist>,
    /// Requests whose Python handle was collected while they ran.
    parked: Mutex<Vec<Arc<XferRequest>>>,
}

/// Handles are numbered across all agents of the process, so a handle given to the wrong
/// agent is not found there instead of naming one of that agent's own objects.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

impl Tables {
    pub fn new() -> Self {
        Tables {
            backends: Mutex::new(Vec::new()),
            reqs: Table::new("transfer request"),
            dlists: Table::new("prepped list"),
            parked: Mutex::new(Vec::new()),
        }
    }

    fn handle(&self) -> u64 {
        // Never 0, never a small integer that looks like a status.
        (1 << 32) + NEXT_HANDLE.fetch_add(1, Ordering::Relaxed)
    }

    /// Records a new backend; returns its Python handle.
    pub fn add_backend(&self, b: BackendHandle) -> u64 {
        let mut table = self.backends.lock();
        table.push(b);
        table.len() as u64
    }

    /// The backends behind Python handles; an unknown one is `nixlInvalidParamError`.
    pub fn backends(&self, handles: &[u64]) -> PyResult<Vec<BackendHandle>> {
        let table = self.backends.lock();
        handles
            .iter()
            .map(|&b| {
                usize::try_from(b)
                    .ok()
                    .and_then(|b| b.checked_sub(1))
                    .and_then(|b| table.get(b).copied())
                    .ok_or_else(|| {
                        nixlInvalidParamError::new_err(format!(
                            "NIXL_ERR_INVALID_PARAM: {b} is not a backend handle of this agent"
                        ))
                    })
            })
            .collect()
    }

    /// The Python handle of a backend (0 if unknown).
    pub fn py_backend(&self, b: BackendHandle) -> u64 {
        self.backends
            .lock()
            .iter()
            .position(|x| *x == b)
            .map_or(0, |p| p as u64 + 1)
    }

    pub fn add_req(&self, r: XferRequest) -> u64 {
        let h = self.handle();
        self.reqs.items.lock().insert(h, Arc::new(r));
        h
    }

    pub fn req(&self, h: u64) -> PyResult<Arc<XferRequest>> {
        self.reqs.get(h)
    }

    pub fn take_req(&self, h: u64) -> PyResult<Arc<XferRequest>> {
        self.reqs.take(h)
    }

    pub fn add_dlist(&self, d: PreppedDlist) -> u64 {
        let h = self.handle();
        self.dlists.items.lock().insert(h, Arc::new(d));
        h
    }

    pub fn dlist(&self, h: u64) -> PyResult<Arc<PreppedDlist>> {
        self.dlists.get(h)
    }

    pub fn take_dlist(&self, h: u64) -> PyResult<Arc<PreppedDlist>> {
        self.dlists.take(h)
    }

    /// Keeps a running request until it finishes (never canceled or freed under the transfer).
    pub fn park(&self, r: Arc<XferRequest>) {
        self.parked.lock().push(r);
    }

    /// Drops parked requests that finished; returns how many still run.
    pub fn reap(&self, agent: &Agent) -> usize {
        let mut parked = self.parked.lock();
        if !parked.is_empty() {
            parked.retain(|r| matches!(agent.xfer_status(r), Ok(Status::InProg)));
        }
        parked.len()
    }
}
