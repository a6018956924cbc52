//! `nixlAgentConfig`: the agent's options, with NIXL's positional constructor and attribute
//! names.

use std::time::Duration;

use nixl_core::AgentConfig;
use pyo3::prelude::*;

use crate::enums::PyThreadSync;

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
    /// The options as nixl-core takes them.
    pub fn to_core(&self) -> AgentConfig {
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
