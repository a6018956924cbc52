//! Workloads: the requests a simulation replays, from a Mooncake trace file
//! or a seeded synthetic generator.

mod mooncake;
mod synthetic;

pub use mooncake::{TraceError, load_mooncake, parse_mooncake};
pub use synthetic::{ArrivalShape, SyntheticSpec};

use serde::{Deserialize, Serialize};

/// One request to replay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestSpec {
    /// Arrival time, ms since the start.
    pub arrival_ms: f64,
    /// Prompt tokens.
    pub input_length: usize,
    /// Tokens to generate.
    pub output_length: usize,
    /// Prefix-chained ids of the prompt's trace blocks.
    pub hash_ids: Vec<u64>,
}

/// Requests sorted by arrival, with the block size their hash ids use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Tokens each hash id stands for (512 for Mooncake traces).
    pub trace_block_size: usize,
    /// The requests, sorted by `arrival_ms`.
    pub requests: Vec<RequestSpec>,
}

impl Workload {
    /// A workload from requests in any order (sorted stably by arrival).
    pub fn new(trace_block_size: usize, mut requests: Vec<RequestSpec>) -> Self {
        requests.sort_by(|a, b| a.arrival_ms.total_cmp(&b.arrival_ms));
        Workload {
            trace_block_size,
            requests,
        }
    }

    /// Keeps the first `n` requests.
    pub fn truncate(mut self, n: usize) -> Self {
        self.requests.truncate(n);
        self
    }

    /// Divides arrival times by `speedup` (2.0 = twice the request rate).
    pub fn speed_up(mut self, speedup: f64) -> Self {
        assert!(speedup > 0.0, "speedup must be positive");
        for r in &mut self.requests {
            r.arrival_ms /= speedup;
        }
        self
    }

    /// Total prompt tokens.
    pub fn input_tokens(&self) -> u64 {
        self.requests.iter().map(|r| r.input_length as u64).sum()
    }

    /// Total tokens to generate (at least one per request).
    pub fn output_tokens(&self) -> u64 {
        self.requests
            .iter()
            .map(|r| r.output_length.max(1) as u64)
            .sum()
    }
}
