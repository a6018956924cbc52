//! Converting arguments and results between Python's shapes and nixl-core's.

use std::sync::Arc;
use std::time::Duration;

use nixl_core::{MemType, NotifMap, OptArgs, Params, XferDescList};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::dlist::XferDList;
use crate::enums::PyMemType;

/// A message as bytes: bytes or str; None is empty.
pub fn msg_bytes(m: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<u8>> {
    let Some(m) = m.filter(|m| !m.is_none()) else {
        return Ok(Vec::new());
    };
    if let Ok(s) = m.extract::<String>() {
        return Ok(s.into_bytes());
    }
    m.extract::<Vec<u8>>()
        .map_err(|_| PyTypeError::new_err("a notification message must be bytes or str"))
}

/// Bytes that must be given (metadata, a notification's payload): bytes or str, not None.
pub fn data_bytes(m: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    if m.is_none() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be bytes or str, not None"
        )));
    }
    msg_bytes(Some(m))
}

pub fn params_dict<'py>(py: Python<'py>, p: &Params) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in p {
        d.set_item(k, v)?;
    }
    Ok(d)
}

pub fn mem_names(mems: &[MemType]) -> Vec<String> {
    mems.iter()
        .map(|m| format!("{:?}", PyMemType::from(*m)))
        .collect()
}

/// Where metadata goes or comes from: a peer's listener, or the central store if no address.
pub fn peer_opts(ip_addr: String, port: u16) -> OptArgs {
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

/// A timeout in seconds (None: no limit). Negative is zero; one too long for a `Duration`
/// (infinity included) is no limit; NaN is a `ValueError`.
pub fn seconds(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() => Err(PyValueError::new_err(
            "timeout must be a number of seconds, not NaN",
        )),
        Some(t) => Ok(Duration::try_from_secs_f64(t.max(0.0)).ok()),
    }
}

/// `prepXferDlist`'s two call shapes: `(agent_name, descs, backends)`, or `(descs, backends)`
/// for the local side. Returns the agent name ("" for local), the list and the backends.
pub fn prep_args(
    a: &Bound<'_, PyAny>,
    b: Option<&Bound<'_, PyAny>>,
    backends: Option<Vec<u64>>,
) -> PyResult<(String, Arc<XferDescList>, Vec<u64>)> {
    if let Ok(d) = a.cast::<XferDList>() {
        let backends = match b {
            Some(b) => b.extract::<Vec<u64>>()?,
            None => backends.unwrap_or_default(),
        };
        return Ok((String::new(), d.borrow().list.clone(), backends));
    }
    let name: String = a.extract().map_err(|_| {
        PyTypeError::new_err("prepXferDlist(agent_name: str, descs: nixlXferDList, backends=[])")
    })?;
    let d = b
        .ok_or_else(|| PyTypeError::new_err("prepXferDlist needs a descriptor list"))?
        .cast::<XferDList>()
        .map_err(|_| PyTypeError::new_err("descs must be a nixlXferDList"))?;
    let list = d.borrow().list.clone();
    Ok((name, list, backends.unwrap_or_default()))
}

/// Refuses a map `merge_notifs` could not append to: each value must be a list.
pub fn check_notif_map(map: &Bound<'_, PyDict>) -> PyResult<()> {
    for (sender, msgs) in map.iter() {
        if !msgs.is_instance_of::<PyList>() {
            return Err(PyTypeError::new_err(format!(
                "notif_map[{sender}] must be a list of messages"
            )));
        }
    }
    Ok(())
}

/// Appends received notifications to `map` (name → list of bytes).
pub fn merge_notifs<'py>(map: &Bound<'py, PyDict>, got: NotifMap) -> PyResult<()> {
    let py = map.py();
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
    Ok(())
}
