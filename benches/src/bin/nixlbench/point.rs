//! One measured configuration and its result.

use serde::{Deserialize, Serialize};

/// A configuration to measure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    /// Workload label (`sweep`, `vllm`, ...).
    pub name: String,
    /// READ or WRITE.
    pub op: String,
    /// Descriptor size in bytes.
    pub block: usize,
    /// Descriptors per request (per thread).
    pub batch: usize,
    /// Threads posting on the one agent.
    pub threads: usize,
    /// Timed iterations per thread.
    pub iters: usize,
    /// Untimed iterations first.
    pub warmup: usize,
    /// Attach a notification to each request.
    pub notif: bool,
    /// Verify the data afterwards.
    pub check: bool,
    /// Seed of the remote shuffle and data pattern.
    pub seed: u64,
}

impl Point {
    /// Bytes per request per thread.
    pub fn request_bytes(&self) -> usize {
        self.block * self.batch
    }

    /// Bytes of buffer each side needs.
    pub fn buffer_bytes(&self) -> usize {
        self.request_bytes() * self.threads
    }
}

/// Measured outcome of a point on one library.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// Library label.
    pub lib: String,
    /// Aggregate GB/s over the timed phase (all threads).
    pub gbps: f64,
    /// Mean post→complete time per request, µs.
    pub avg_lat_us: f64,
    /// `make_xfer_req` time, mean and p99, µs.
    pub avg_prep_us: f64,
    /// p99 of the above.
    pub p99_prep_us: f64,
    /// `post_xfer_req` time, mean, µs.
    pub avg_post_us: f64,
    /// p99 of the above.
    pub p99_post_us: f64,
    /// post→complete, mean, µs.
    pub avg_tx_us: f64,
    /// p99 of the above.
    pub p99_tx_us: f64,
    /// Time to prepare both descriptor lists, µs.
    pub prep_lists_us: f64,
    /// Data verified (None when not checked).
    pub verified: Option<bool>,
    /// Every notification arrived (None when none were sent).
    pub notifs_ok: Option<bool>,
    /// Failure, if the point could not run.
    pub error: Option<String>,
}

/// Mean and p99 of samples in seconds, returned in µs.
pub fn stats_us(samples: &mut [f64]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort_by(f64::total_cmp);
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let idx = ((samples.len() as f64 * 0.99).ceil() as usize).clamp(1, samples.len()) - 1;
    (mean * 1e6, samples[idx] * 1e6)
}
