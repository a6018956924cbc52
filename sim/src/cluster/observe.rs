//! Per-interval observations: what a planner reads every adjustment interval.

use crate::engine::Role;
use serde::Serialize;

/// State of one pool (aggregated, prefill or decode) at the end of an interval.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PoolObservation {
    /// Which pool.
    pub role: Option<Role>,
    /// Replicas accepting requests.
    pub ready: usize,
    /// Replicas still starting up.
    pub starting: usize,
    /// Replicas draining before removal.
    pub draining: usize,
    /// Requests queued: in the engines' waiting queues plus those held
    /// because no replica was ready.
    pub queue_depth: usize,
    /// Requests admitted in the engines.
    pub running: usize,
    /// KV blocks held by running requests, summed over the pool.
    pub active_kv_blocks: usize,
    /// KV blocks of the pool's ready and draining replicas.
    pub capacity_kv_blocks: usize,
    /// Prompt tokens not yet prefilled, summed over the pool.
    pub pending_prefill_tokens: usize,
    /// KV tokens of decoding requests, summed over the pool.
    pub decode_kv_tokens: usize,
    /// Replica-seconds spent in the interval (starting, ready and draining
    /// replicas all count: they hold a GPU).
    pub gpu_seconds: f64,
}

/// Everything observed over `[start_ms, end_ms)`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Observation {
    /// Interval start, ms.
    pub start_ms: f64,
    /// Interval end, ms.
    pub end_ms: f64,
    /// Requests that arrived.
    pub arrivals: usize,
    /// Mean prompt length of the arrivals (0 if none).
    pub avg_isl: f64,
    /// Mean requested output length of the arrivals (0 if none).
    pub avg_osl: f64,
    /// Requests that finished.
    pub completed: usize,
    /// Tokens generated.
    pub output_tokens: u64,
    /// TTFT of each request whose first token came in the interval, ms.
    pub ttft_ms: Vec<f64>,
    /// Mean inter-token latency of each request that finished in the
    /// interval with at least two tokens, ms.
    pub itl_ms: Vec<f64>,
    /// Prompt tokens of requests that finished prefill in the interval.
    pub prefilled_prompt_tokens: u64,
    /// Of those, tokens served from the prefix cache.
    pub prefix_hit_tokens: u64,
    /// Per pool, at the end of the interval.
    pub pools: Vec<PoolObservation>,
}

impl Observation {
    /// Prefix-cache hit rate over the interval (0 if nothing was prefilled).
    pub fn kv_hit_rate(&self) -> f64 {
        if self.prefilled_prompt_tokens == 0 {
            0.0
        } else {
            self.prefix_hit_tokens as f64 / self.prefilled_prompt_tokens as f64
        }
    }

    /// Arrival rate, requests per second.
    pub fn request_rate(&self) -> f64 {
        let secs = (self.end_ms - self.start_ms) / 1000.0;
        if secs > 0.0 {
            self.arrivals as f64 / secs
        } else {
            0.0
        }
    }

    /// The pool with this role, if the simulation has it.
    pub fn pool(&self, role: Role) -> Option<&PoolObservation> {
        self.pools.iter().find(|p| p.role == Some(role))
    }
}

/// Running sums behind the next [`Observation`].
#[derive(Debug, Default)]
pub(crate) struct ObservationAccumulator {
    pub(crate) start_ms: f64,
    pub(crate) arrivals: usize,
    pub(crate) isl_sum: u64,
    pub(crate) osl_sum: u64,
    pub(crate) completed: usize,
    pub(crate) output_tokens: u64,
    pub(crate) ttft_ms: Vec<f64>,
    pub(crate) itl_ms: Vec<f64>,
    pub(crate) prefilled_prompt_tokens: u64,
    pub(crate) prefix_hit_tokens: u64,
    /// Replica-ms per role index, since `start_ms`.
    pub(crate) replica_ms: [f64; 3],
}

impl ObservationAccumulator {
    /// Closes the interval at `end_ms` with the given pool snapshots and
    /// starts a new one.
    pub(crate) fn close(&mut self, end_ms: f64, mut pools: Vec<PoolObservation>) -> Observation {
        let acc = std::mem::take(self);
        self.start_ms = end_ms;
        for p in &mut pools {
            if let Some(role) = p.role {
                p.gpu_seconds = acc.replica_ms[role_index(role)] / 1000.0;
            }
        }
        let mean = |sum: u64| {
            if acc.arrivals == 0 {
                0.0
            } else {
                sum as f64 / acc.arrivals as f64
            }
        };
        Observation {
            start_ms: acc.start_ms,
            end_ms,
            arrivals: acc.arrivals,
            avg_isl: mean(acc.isl_sum),
            avg_osl: mean(acc.osl_sum),
            completed: acc.completed,
            output_tokens: acc.output_tokens,
            ttft_ms: acc.ttft_ms,
            itl_ms: acc.itl_ms,
            prefilled_prompt_tokens: acc.prefilled_prompt_tokens,
            prefix_hit_tokens: acc.prefix_hit_tokens,
            pools,
        }
    }
}

/// Dense index of a role, for per-role arrays.
pub(crate) fn role_index(role: Role) -> usize {
    match role {
        Role::Aggregated => 0,
        Role::Prefill => 1,
        Role::Decode => 2,
    }
}
