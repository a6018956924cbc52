//! `nixl._bindings`: NIXL 1.5's native Python module over nixl-core. The pure-Python layer
//! (`nixl._api`, in `python/nixl`) is built on it, as NIXL's is on its pybind11 module.
//!
//! Every call that can wait, copy or touch the network releases the GIL.

#![allow(non_snake_case)] // NIXL's camelCase method and attribute names.

mod agent;
mod arrays;
mod config;
mod dlist;
mod enums;
mod errors;
mod exiting;
mod telemetry;
mod wakeup;

use pyo3::prelude::*;

/// The module.
#[pymodule]
fn _bindings(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    exiting::register(m)?;
    enums::register(m)?;
    m.add_class::<dlist::XferDList>()?;
    m.add_class::<dlist::RegDList>()?;
    m.add_class::<dlist::RemoteDList>()?;
    m.add_class::<config::PyAgentConfig>()?;
    m.add_class::<agent::PyAgent>()?;
    m.add_class::<telemetry::PyTelemetry>()?;
    m.add("NIXL_INIT_AGENT", "")?;
    m.add("DEFAULT_COMM_PORT", nixl_core::config::DEFAULT_COMM_PORT)?;
    m.add("HAVE_UCX_GPU_DEVICE_API", false)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
