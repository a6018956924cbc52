//! The end-of-run report: latency percentiles, throughput, goodput, cache
//! hit rates, load balance, preemptions.

use crate::config::Sla;
use crate::engine::Role;
use serde::Serialize;

/// Summary of a latency distribution, ms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (all zero when empty).
    pub fn of(samples: &[f64]) -> Self {
        if samples.is_empty() {
            return Percentiles::default();
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Percentiles {
            count: v.len(),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: v[v.len() - 1],
        }
    }
}

/// Work done by one worker over the run.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerReport {
    /// Worker id.
    pub id: u64,
    /// Its pool.
    pub role: Role,
    /// Requests routed to it.
    pub requests: u64,
    /// Prompt tokens routed to it.
    pub prompt_tokens: u64,
    /// Prompt tokens it served from its prefix cache.
    pub cached_tokens: u64,
    /// Fraction of its lifetime spent running passes.
    pub busy_fraction: f64,
    /// Preemptions on it.
    pub preemptions: u64,
}

/// Spread of work over the workers of one pool.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Balance {
    /// Coefficient of variation of requests per worker.
    pub requests_cv: f64,
    /// Max over mean of requests per worker.
    pub requests_max_over_mean: f64,
    /// Coefficient of variation of uncached prompt tokens per worker.
    pub prefill_tokens_cv: f64,
}

impl Balance {
    /// Balance of the given workers (empty → zeros).
    pub fn of(workers: &[&WorkerReport]) -> Self {
        let reqs: Vec<f64> = workers.iter().map(|w| w.requests as f64).collect();
        let toks: Vec<f64> = workers
            .iter()
            .map(|w| (w.prompt_tokens - w.cached_tokens) as f64)
            .collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let cv = |v: &[f64]| {
            let m = mean(v);
            if m == 0.0 {
                return 0.0;
            }
            (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt() / m
        };
        let m = mean(&reqs);
        Balance {
            requests_cv: cv(&reqs),
            requests_max_over_mean: if m > 0.0 {
                reqs.iter().cloned().fold(0.0, f64::max) / m
            } else {
                0.0
            },
            prefill_tokens_cv: cv(&toks),
        }
    }
}

/// Replica counts of every pool at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct ReplicaSample {
    /// Time, ms.
    pub at_ms: f64,
    /// Pool.
    pub role: Role,
    /// Ready replicas.
    pub ready: usize,
    /// Starting replicas.
    pub starting: usize,
    /// Draining replicas.
    pub draining: usize,
}

/// KV block moves over all workers of a run.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct KvMoves {
    /// Device and host tier counts summed over workers.
    pub engines: crate::engine::MoveStats,
    /// Requests that pulled a prefix from another worker at routing time.
    pub pulls: u64,
    /// Blocks pulled (the pulled blocks used at admission are `engines.fetched_blocks`).
    pub pulled_blocks: u64,
}

impl Report {
    /// Prompt tokens not recomputed (device, host tier or pulled) / all prompt tokens.
    pub fn total_hit_rate(&self) -> f64 {
        self.prefix_hit_rate + self.host_hit_rate + self.fetched_hit_rate
    }
}

/// Everything measured in one run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Routing policy of the first pool.
    pub policy: String,
    /// Requests in the workload.
    pub requests: usize,
    /// Requests that finished.
    pub completed: usize,
    /// Requests rejected (larger than a worker's KV cache).
    pub rejected: usize,
    /// Time of the last completion, ms.
    pub duration_ms: f64,
    /// Time to first token, ms.
    pub ttft: Percentiles,
    /// Mean inter-token latency per request (requests with ≥ 2 tokens), ms.
    pub itl: Percentiles,
    /// End-to-end latency, ms.
    pub e2e: Percentiles,
    /// Completed requests per second.
    pub requests_per_s: f64,
    /// Generated tokens per second.
    pub output_tokens_per_s: f64,
    /// Prompt tokens per second.
    pub input_tokens_per_s: f64,
    /// The SLA used for goodput.
    pub sla: Sla,
    /// Completed requests meeting both SLA targets.
    pub good_requests: usize,
    /// Good requests per second.
    pub goodput_per_s: f64,
    /// Prompt tokens generated in total.
    pub input_tokens: u64,
    /// Tokens generated in total.
    pub output_tokens: u64,
    /// Prompt tokens served from the workers' prefix caches / all prompt tokens.
    pub prefix_hit_rate: f64,
    /// Prompt tokens onboarded from the workers' host-memory tiers / all prompt tokens.
    pub host_hit_rate: f64,
    /// Prompt tokens pulled from other workers / all prompt tokens.
    pub fetched_hit_rate: f64,
    /// The same for one infinite cache shared by all requests.
    pub ideal_hit_rate: f64,
    /// KV block moves between tiers and workers.
    pub kv_moves: KvMoves,
    /// Preemptions over all workers.
    pub preemptions: u64,
    /// Replica-seconds per pool (starting, ready and draining).
    pub gpu_seconds: Vec<(Role, f64)>,
    /// Per-worker work.
    pub workers: Vec<WorkerReport>,
    /// Load balance of the first pool (aggregated or prefill).
    pub balance: Balance,
    /// Load balance of the decode pool (disaggregated mode).
    pub decode_balance: Option<Balance>,
    /// Replica counts after every change.
    pub replica_timeline: Vec<ReplicaSample>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&v);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert!((p.mean - 50.5).abs() < 1e-12);
        assert_eq!(Percentiles::of(&[]).count, 0);
    }
}
