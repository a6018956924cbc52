//! NIXL's enums with their upstream names and values; each member is also a module-level name.

use nixl_core::{MemType, Status, ThreadSync, XferOp};
use pyo3::prelude::*;

/// Memory types (`nixl_mem_t`).
#[pyclass(
    module = "nixl._bindings",
    name = "nixl_mem_t",
    eq,
    eq_int,
    hash,
    frozen,
    from_py_object
)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PyMemType {
    /// Host memory.
    DRAM_SEG = 0,
    /// GPU memory.
    VRAM_SEG = 1,
    /// Block devices.
    BLK_SEG = 2,
    /// Object stores.
    OBJ_SEG = 3,
    /// Files.
    FILE_SEG = 4,
}

impl From<PyMemType> for MemType {
    fn from(m: PyMemType) -> MemType {
        match m {
            PyMemType::DRAM_SEG => MemType::Dram,
            PyMemType::VRAM_SEG => MemType::Vram,
            PyMemType::BLK_SEG => MemType::Blk,
            PyMemType::OBJ_SEG => MemType::Obj,
            PyMemType::FILE_SEG => MemType::File,
        }
    }
}

impl From<MemType> for PyMemType {
    fn from(m: MemType) -> PyMemType {
        match m {
            MemType::Dram => PyMemType::DRAM_SEG,
            MemType::Vram => PyMemType::VRAM_SEG,
            MemType::Blk => PyMemType::BLK_SEG,
            MemType::Obj => PyMemType::OBJ_SEG,
            MemType::File => PyMemType::FILE_SEG,
        }
    }
}

/// Transfer operations (`nixl_xfer_op_t`).
#[pyclass(
    module = "nixl._bindings",
    name = "nixl_xfer_op_t",
    eq,
    eq_int,
    hash,
    frozen,
    from_py_object
)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PyXferOp {
    /// Remote to local.
    NIXL_READ = 0,
    /// Local to remote.
    NIXL_WRITE = 1,
}

impl From<PyXferOp> for XferOp {
    fn from(op: PyXferOp) -> XferOp {
        match op {
            PyXferOp::NIXL_READ => XferOp::Read,
            PyXferOp::NIXL_WRITE => XferOp::Write,
        }
    }
}

/// Agent locking modes (`nixl_thread_sync_t`); the agent is thread-safe in all of them.
#[pyclass(
    module = "nixl._bindings",
    name = "nixl_thread_sync_t",
    eq,
    eq_int,
    hash,
    frozen,
    from_py_object
)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PyThreadSync {
    /// No agent lock in NIXL (the default).
    NIXL_THREAD_SYNC_NONE = 0,
    /// One lock for all calls in NIXL.
    NIXL_THREAD_SYNC_STRICT = 1,
    /// Reader/writer lock in NIXL.
    NIXL_THREAD_SYNC_RW = 2,
}

#[pymethods]
impl PyThreadSync {
    /// NIXL's default mode, an alias of `NIXL_THREAD_SYNC_NONE`.
    #[classattr]
    #[allow(non_snake_case)]
    fn NIXL_THREAD_SYNC_DEFAULT() -> PyThreadSync {
        PyThreadSync::NIXL_THREAD_SYNC_NONE
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Reduced<'py>> {
        let getattr = slf.py().import("builtins")?.getattr("getattr")?;
        Ok((
            getattr,
            (slf.as_any().get_type(), format!("{:?}", *slf.get())),
        ))
    }
}

impl From<PyThreadSync> for ThreadSync {
    fn from(s: PyThreadSync) -> ThreadSync {
        match s {
            PyThreadSync::NIXL_THREAD_SYNC_NONE => ThreadSync::None,
            PyThreadSync::NIXL_THREAD_SYNC_STRICT => ThreadSync::Strict,
            PyThreadSync::NIXL_THREAD_SYNC_RW => ThreadSync::Rw,
        }
    }
}

impl From<ThreadSync> for PyThreadSync {
    fn from(s: ThreadSync) -> PyThreadSync {
        match s {
            ThreadSync::None => PyThreadSync::NIXL_THREAD_SYNC_NONE,
            ThreadSync::Strict => PyThreadSync::NIXL_THREAD_SYNC_STRICT,
            ThreadSync::Rw => PyThreadSync::NIXL_THREAD_SYNC_RW,
        }
    }
}

/// Cost estimation methods (`nixl_cost_t`).
#[pyclass(
    module = "nixl._bindings",
    name = "nixl_cost_t",
    eq,
    eq_int,
    hash,
    frozen,
    from_py_object
)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PyCost {
    /// The backend's analytical model.
    NIXL_COST_ANALYTICAL_BACKEND = 0,
}

/// Status codes (`nixl_status_t`); the error codes are raised as exceptions instead.
#[pyclass(
    module = "nixl._bindings",
    name = "nixl_status_t",
    eq,
    eq_int,
    hash,
    frozen,
    from_py_object
)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PyStatus {
    /// Still running.
    NIXL_IN_PROG = 1,
    /// Done.
    NIXL_SUCCESS = 0,
    /// Never posted.
    NIXL_ERR_NOT_POSTED = -1,
    /// Bad argument.
    NIXL_ERR_INVALID_PARAM = -2,
    /// Backend failure.
    NIXL_ERR_BACKEND = -3,
    /// Not found.
    NIXL_ERR_NOT_FOUND = -4,
    /// Mismatch.
    NIXL_ERR_MISMATCH = -5,
    /// Not allowed.
    NIXL_ERR_NOT_ALLOWED = -6,
    /// Reposted while active.
    NIXL_ERR_REPOST_ACTIVE = -7,
    /// Unknown failure.
    NIXL_ERR_UNKNOWN = -8,
    /// Not supported.
    NIXL_ERR_NOT_SUPPORTED = -9,
}

impl From<Status> for PyStatus {
    fn from(s: Status) -> PyStatus {
        match s {
            Status::InProg => PyStatus::NIXL_IN_PROG,
            Status::Success => PyStatus::NIXL_SUCCESS,
            Status::NotPosted => PyStatus::NIXL_ERR_NOT_POSTED,
            Status::InvalidParam => PyStatus::NIXL_ERR_INVALID_PARAM,
            Status::Backend => PyStatus::NIXL_ERR_BACKEND,
            Status::NotFound => PyStatus::NIXL_ERR_NOT_FOUND,
            Status::Mismatch => PyStatus::NIXL_ERR_MISMATCH,
            Status::NotAllowed => PyStatus::NIXL_ERR_NOT_ALLOWED,
            Status::RepostActive => PyStatus::NIXL_ERR_REPOST_ACTIVE,
            Status::NotSupported => PyStatus::NIXL_ERR_NOT_SUPPORTED,
            Status::Unknown | Status::RemoteDisconnect | Status::Canceled | Status::NoTelemetry => {
                PyStatus::NIXL_ERR_UNKNOWN
            }
        }
    }
}

/// What `__reduce__` returns for a member: `getattr` and `(class, name)`.
type Reduced<'py> = (Bound<'py, PyAny>, (Bound<'py, pyo3::types::PyType>, String));

/// Adds the enum classes and every member as a module-level name.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMemType>()?;
    m.add_class::<PyXferOp>()?;
    m.add_class::<PyThreadSync>()?;
    m.add_class::<PyCost>()?;
    m.add_class::<PyStatus>()?;
    for class in [
        "nixl_mem_t",
        "nixl_xfer_op_t",
        "nixl_thread_sync_t",
        "nixl_cost_t",
        "nixl_status_t",
    ] {
        let cls = m.getattr(class)?;
        for (name, value) in cls
            .getattr("__dict__")?
            .call_method0("items")?
            .try_iter()?
            .map(|i| i.and_then(|i| i.extract::<(String, Bound<'_, PyAny>)>()))
            .collect::<PyResult<Vec<_>>>()?
        {
            if name.starts_with("NIXL_") || name.ends_with("_SEG") {
                m.add(name.as_str(), value)?;
            }
        }
    }
    Ok(())
}

/// Pickles a member as `getattr(its class, its name)`.
macro_rules! picklable {
    ($($t:ty),*) => {$(
        #[pymethods]
        impl $t {
            fn __reduce__<'py>(
                slf: &Bound<'py, Self>,
            ) -> PyResult<Reduced<'py>> {
                let getattr = slf.py().import("builtins")?.getattr("getattr")?;
                Ok((getattr, (slf.as_any().get_type(), format!("{:?}", *slf.get()))))
            }
        }
    )*};
}

picklable!(PyMemType, PyXferOp, PyStatus, PyCost);
