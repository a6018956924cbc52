//! `nixlXferTelemetry`: what a request's last post took.

use nixl_core::XferTelemetry;
use pyo3::prelude::*;

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

impl From<XferTelemetry> for PyTelemetry {
    fn from(t: XferTelemetry) -> Self {
        PyTelemetry {
            startTime: t.start_time_us,
            postDuration: t.post_duration_us,
            xferDuration: t.xfer_duration_us,
            totalBytes: t.total_bytes,
            descCount: t.desc_count,
        }
    }
}
