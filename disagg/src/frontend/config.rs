//! Settings of one run.

use crate::proto::WorkerRole;
use crate::transfer::capi::LibChoice;
use sim::workload::Workload;
use std::path::PathBuf;

/// How decode workers get KV from prefill workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The decode worker READs the prefill worker's blocks; the read's notification frees
    /// them (vLLM's NixlConnector).
    Pull,
    /// The prefill worker WRITEs into slots the decode worker allocated, one notification per
    /// chunk (SGLang's disaggregation).
    Push,
}

impl Mode {
    /// `"pull"` or `"push"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Pull => "pull",
            Mode::Push => "push",
        }
    }
}

/// How workers learn each other's transfer metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Discovery {
    /// Blobs relayed over the frontend's control channel.
    Channel,
    /// Each worker runs the library's metadata listener; peers fetch from it by ip/port.
    Listener,
    /// Through etcd (`NIXL_ETCD_ENDPOINTS`).
    Etcd,
}

impl Discovery {
    /// Name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Discovery::Channel => "control channel",
            Discovery::Listener => "peer-to-peer listener",
            Discovery::Etcd => "etcd",
        }
    }
}

/// Kill one worker of `role` at `at_s` seconds into the run (fault injection).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kill {
    /// Which pool.
    pub role: WorkerRole,
    /// When, seconds after the start.
    pub at_s: f64,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Requests to replay.
    pub workload: Workload,
    /// Prefill workers at start.
    pub prefill: u32,
    /// Decode workers at start.
    pub decode: u32,
    /// Transfer style.
    pub mode: Mode,
    /// Let the planner resize the pools.
    pub planner: bool,
    /// Largest pool size the planner may ask for.
    pub max_workers: u32,
    /// Seconds between planner decisions.
    pub planner_interval_s: f64,
    /// Transfer library for the workers.
    pub lib: LibChoice,
    /// KV pool blocks per worker.
    pub blocks: usize,
    /// Divides the mock engine's step times.
    pub speedup: f64,
    /// Where the report, plot and worker logs go.
    pub out_dir: PathBuf,
    /// The `disagg` executable workers run from.
    pub exe: PathBuf,
    /// Faults to inject.
    pub kills: Vec<Kill>,
    /// Seconds a prefill worker keeps pulled blocks pinned without a notification.
    pub pin_timeout_s: f64,
    /// Seconds after which an unfinished request is failed.
    pub request_timeout_s: f64,
    /// Allow prefilling on the decode worker (the router's model-based rule).
    pub local_prefill: bool,
    /// Metadata discovery.
    pub discovery: Discovery,
    /// Address the frontend and workers bind.
    pub host: String,
    /// Show a progress bar.
    pub progress: bool,
    /// Blocks per push-mode WRITE.
    pub push_chunk: usize,
    /// Extra environment for workers (e.g. `NIXL_ETCD_ENDPOINTS`).
    pub worker_env: Vec<(String, String)>,
    /// Test hook: decode workers damage their first received block before verifying it.
    pub inject_corruption: bool,
    /// Run prefill / decode workers in these network namespaces, as (namespace, ip).
    pub worker_netns: Option<[(String, String); 2]>,
    /// Host-tier blocks per worker (0: no tier).
    pub host_tier_blocks: usize,
    /// Prefill workers fetch a longer cached prefix from the peer that holds it.
    pub fetch: bool,
    /// Seconds a prefix fetch may take before the worker recomputes.
    pub fetch_timeout_s: f64,
    /// Test hook: holders name a reused slot for the first block they lend.
    pub inject_stale_fetch: bool,
    /// Test hook: the first worker to lend blocks is killed mid-fetch.
    pub kill_holder_mid_fetch: bool,
}

impl RunConfig {
    /// Defaults around `workload`: 2 + 2 workers, pull mode, planner off, linked library.
    pub fn new(workload: Workload, exe: PathBuf) -> Self {
        RunConfig {
            workload,
            prefill: 2,
            decode: 2,
            mode: Mode::Pull,
            planner: false,
            max_workers: 4,
            planner_interval_s: 5.0,
            lib: LibChoice::Linked,
            blocks: 1024,
            speedup: 1.0,
            out_dir: PathBuf::from("target/disagg-out"),
            exe,
            kills: Vec::new(),
            pin_timeout_s: 10.0,
            request_timeout_s: 60.0,
            local_prefill: true,
            discovery: Discovery::Channel,
            host: "127.0.0.1".into(),
            progress: true,
            push_chunk: 8,
            worker_env: Vec::new(),
            inject_corruption: false,
            worker_netns: None,
            host_tier_blocks: 0,
            fetch: true,
            fetch_timeout_s: 1.0,
            inject_stale_fetch: false,
            kill_holder_mid_fetch: false,
        }
    }
}
