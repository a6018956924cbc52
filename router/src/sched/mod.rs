//! Scheduling: predicted load per worker, routing policies and the disaggregation decision.
//!
//! A policy sees a [`RequestView`] and one [`WorkerState`] per candidate (cache overlap
//! from the index, predicted load from the [`LoadTracker`]) and returns a [`Decision`].
//! [`KvRouter`] wires index, load tracker and policy together for a simulator or frontend.

mod disagg;
mod dynamo;
mod load;
mod router;
mod simple;
mod tiered;
mod ttft;

pub use disagg::{DisaggDecision, DisaggRouter, LocalPrefillRule};
pub use dynamo::DynamoCost;
pub use load::{LoadTracker, WorkerLoad};
pub use router::KvRouter;
pub use simple::{RandomPolicy, RoundRobin};
pub use tiered::{TierIndex, TierOverlap};
pub use ttft::{PredictedTtft, TtftBreakdown};

use crate::hashing::SequenceHash;
use crate::worker::WorkerId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Caller-chosen request identifier, unique among in-flight requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What a policy knows about the request being routed.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The request.
    pub id: RequestId,
    /// Prompt length in tokens (ISL).
    pub prompt_tokens: u32,
    /// Sequence hashes of the prompt's full blocks.
    pub sequence: &'a [SequenceHash],
    /// Expected output length, when the client hinted it.
    pub expected_output_tokens: Option<u32>,
}

/// One candidate worker as a policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WorkerState {
    /// The worker.
    pub worker: WorkerId,
    /// Leading prompt blocks already in its KV cache (from the index).
    pub cached_blocks: u32,
    /// Further leading prompt blocks in its host-memory tier (0 without a [`TierIndex`]).
    pub host_blocks: u32,
    /// Further leading prompt blocks it could pull from another worker (0 unless the
    /// [`TierIndex`] allows fetching).
    pub remote_blocks: u32,
    /// Blocks in its cache overall (the index's tree size), used to break ties.
    pub tree_size: usize,
    /// Predicted load: prompt tokens routed to it whose prefill has not finished.
    pub active_prefill_tokens: u64,
    /// Predicted load: distinct KV blocks of its in-flight requests.
    pub active_blocks: u64,
    /// Predicted load: in-flight requests.
    pub active_requests: u32,
    /// Leading prompt blocks shared with its in-flight requests.
    pub active_overlap_blocks: u32,
    /// Extra seconds to get this worker's KV to where it is needed (disaggregation).
    pub transfer_s: f64,
}

/// A policy's choice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// The chosen worker.
    pub worker: WorkerId,
    /// Leading prompt blocks it already caches.
    pub cached_blocks: u32,
    /// The policy's cost for it (lower is better; units depend on the policy).
    pub cost: f64,
    /// The predicted time to first token, for policies that model it.
    pub predicted_ttft_s: Option<f64>,
}

/// A routing policy. `select` is only called with at least one candidate.
pub trait Policy {
    /// Picks a worker among `workers` for `request` at time `now` (seconds).
    fn select(&mut self, request: &RequestView<'_>, workers: &[WorkerState], now: f64) -> Decision;
}

/// Index of the lowest cost; ties go to the smaller tree, then to a seeded random pick.
pub(crate) fn argmin_with_ties(
    costs: &[f64],
    workers: &[WorkerState],
    rng: &mut ChaCha8Rng,
) -> usize {
    let best = costs.iter().copied().fold(f64::INFINITY, f64::min);
    let tied: Vec<usize> = (0..costs.len()).filter(|&i| costs[i] <= best).collect();
    let smallest = tied
        .iter()
        .map(|&i| workers[i].tree_size)
        .min()
        .unwrap_or(0);
    let tied: Vec<usize> = tied
        .into_iter()
        .filter(|&i| workers[i].tree_size == smallest)
        .collect();
    match tied.len() {
        0 => 0,
        1 => tied[0],
        n => tied[rng.random_range(0..n)],
    }
}
