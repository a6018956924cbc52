//! One Python exception class per NIXL error status, as `nixl._bindings` names them.

#![allow(non_camel_case_types)] // NIXL's exception names.

use nixl_core::{NixlError, Status};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    _bindings,
    nixlNotPostedError,
    PyException,
    "NIXL_ERR_NOT_POSTED"
);
create_exception!(
    _bindings,
    nixlInvalidParamError,
    PyException,
    "NIXL_ERR_INVALID_PARAM"
);
create_exception!(_bindings, nixlBackendError, PyException, "NIXL_ERR_BACKEND");
create_exception!(
    _bindings,
    nixlNotFoundError,
    PyException,
    "NIXL_ERR_NOT_FOUND"
);
create_exception!(
    _bindings,
    nixlMismatchError,
    PyException,
    "NIXL_ERR_MISMATCH"
);
create_exception!(
    _bindings,
    nixlNotAllowedError,
    PyException,
    "NIXL_ERR_NOT_ALLOWED"
);
create_exception!(
    _bindings,
    nixlRepostActiveError,
    PyException,
    "NIXL_ERR_REPOST_ACTIVE"
);
create_exception!(_bindings, nixlUnknownError, PyException, "NIXL_ERR_UNKNOWN");
create_exception!(
    _bindings,
    nixlNotSupportedError,
    PyException,
    "NIXL_ERR_NOT_SUPPORTED"
);
create_exception!(
    _bindings,
    nixlRemoteDisconnectError,
    PyException,
    "NIXL_ERR_REMOTE_DISCONNECT"
);
create_exception!(
    _bindings,
    nixlCancelledError,
    PyException,
    "NIXL_ERR_CANCELED"
);
create_exception!(
    _bindings,
    nixlNoTelemetryError,
    PyException,
    "NIXL_ERR_NO_TELEMETRY"
);

/// The Python exception for a failed native call: the class of its status, the message
/// `NIXL_ERR_...: what went wrong`.
pub fn to_py(e: NixlError) -> PyErr {
    let msg = format!("{}: {}", e.status().name(), e.message());
    match e.status() {
        Status::NotPosted => nixlNotPostedError::new_err(msg),
        Status::InvalidParam => nixlInvalidParamError::new_err(msg),
        Status::Backend => nixlBackendError::new_err(msg),
        Status::NotFound => nixlNotFoundError::new_err(msg),
        Status::Mismatch => nixlMismatchError::new_err(msg),
        Status::NotAllowed => nixlNotAllowedError::new_err(msg),
        Status::RepostActive => nixlRepostActiveError::new_err(msg),
        Status::NotSupported => nixlNotSupportedError::new_err(msg),
        Status::RemoteDisconnect => nixlRemoteDisconnectError::new_err(msg),
        Status::Canceled => nixlCancelledError::new_err(msg),
        Status::NoTelemetry => nixlNoTelemetryError::new_err(msg),
        Status::Unknown | Status::Success | Status::InProg => nixlUnknownError::new_err(msg),
    }
}

/// `Result<T, NixlError>` into a Python result.
pub trait IntoPy<T> {
    /// Maps the error to its exception.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for nixl_core::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// Adds every exception class to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("nixlNotPostedError", py.get_type::<nixlNotPostedError>())?;
    m.add(
        "nixlInvalidParamError",
        py.get_type::<nixlInvalidParamError>(),
    )?;
    m.add("nixlBackendError", py.get_type::<nixlBackendError>())?;
    m.add("nixlNotFoundError", py.get_type::<nixlNotFoundError>())?;
    m.add("nixlMismatchError", py.get_type::<nixlMismatchError>())?;
    m.add("nixlNotAllowedError", py.get_type::<nixlNotAllowedError>())?;
    m.add(
        "nixlRepostActiveError",
        py.get_type::<nixlRepostActiveError>(),
    )?;
    m.add("nixlUnknownError", py.get_type::<nixlUnknownError>())?;
    m.add(
        "nixlNotSupportedError",
        py.get_type::<nixlNotSupportedError>(),
    )?;
    m.add(
        "nixlRemoteDisconnectError",
        py.get_type::<nixlRemoteDisconnectError>(),
    )?;
    m.add("nixlCancelledError", py.get_type::<nixlCancelledError>())?;
    m.add(
        "nixlNoTelemetryError",
        py.get_type::<nixlNoTelemetryError>(),
    )?;
    Ok(())
}
