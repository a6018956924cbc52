//! Per-request bookkeeping and the end-of-run [`Report`].

use super::{Simulation, WorkerState};
use crate::engine::{PrefillPasses, Role};
use crate::kv_event::WorkerId;
use crate::report::{Balance, Percentiles, Report, WorkerReport};
use crate::workload::RequestSpec;
use router::trace_hashing::BlockHashes;
use std::rc::Rc;

/// What happened to one request.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestRecord {
    pub(crate) arrival_ms: f64,
    /// Block hashes while the request is in flight.
    pub(crate) hashes: Option<Rc<BlockHashes>>,
    /// Aggregated or prefill worker.
    pub(crate) worker: Option<WorkerId>,
    pub(crate) first_token_ms: Option<f64>,
    pub(crate) last_token_ms: Option<f64>,
    pub(crate) finish_ms: Option<f64>,
    pub(crate) tokens: usize,
    pub(crate) cached_tokens: u64,
    /// Prompt tokens onboarded from the host tier / pulled from a peer (first admission).
    pub(crate) host_tokens: u64,
    pub(crate) fetched_tokens: u64,
    /// What the passes that computed its prompt were made of.
    pub(crate) prefill_passes: PrefillPasses,
    pub(crate) rejected: bool,
}

impl RequestRecord {
    pub(crate) fn new(spec: &RequestSpec) -> Self {
        RequestRecord {
            arrival_ms: spec.arrival_ms,
            ..RequestRecord::default()
        }
    }

    pub(crate) fn ttft_ms(&self) -> Option<f64> {
        self.first_token_ms.map(|t| t - self.arrival_ms)
    }

    /// Mean gap between tokens after the first (needs two tokens).
    pub(crate) fn mean_itl_ms(&self) -> Option<f64> {
        match (self.first_token_ms, self.last_token_ms) {
            (Some(a), Some(b)) if self.tokens >= 2 => Some((b - a) / (self.tokens - 1) as f64),
            _ => None,
        }
    }
}

/// One finished request's outcome, for callers that analyse runs.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RequestOutcome {
    /// Index in the workload.
    pub index: usize,
    /// Arrival, ms.
    pub arrival_ms: f64,
    /// Time to first token, ms (`None` if rejected or unfinished).
    pub ttft_ms: Option<f64>,
    /// Mean inter-token latency, ms.
    pub itl_ms: Option<f64>,
    /// End-to-end latency, ms.
    pub e2e_ms: Option<f64>,
    /// Tokens generated.
    pub tokens: usize,
    /// Prompt tokens served from cache.
    pub cached_tokens: u64,
    /// Prompt tokens onboarded from the host tier at first admission.
    pub host_tokens: u64,
    /// Prompt tokens pulled from a peer at first admission.
    pub fetched_tokens: u64,
    /// What the passes that computed its prompt (until its first token) were made of.
    pub prefill_passes: PrefillPasses,
    /// Aggregated or prefill worker it ran on.
    pub worker: Option<WorkerId>,
    /// Rejected as too large for a worker's cache.
    pub rejected: bool,
}

impl Simulation {
    /// Per-request outcomes, in workload order.
    pub fn outcomes(&self) -> Vec<RequestOutcome> {
        self.records
            .iter()
            .enumerate()
            .map(|(index, r)| RequestOutcome {
                index,
                arrival_ms: r.arrival_ms,
                ttft_ms: r.ttft_ms(),
                itl_ms: r.mean_itl_ms(),
                e2e_ms: r.finish_ms.map(|f| f - r.arrival_ms),
                tokens: r.tokens,
                cached_tokens: r.cached_tokens,
                host_tokens: r.host_tokens,
                fetched_tokens: r.fetched_tokens,
                prefill_passes: r.prefill_passes,
                worker: r.worker,
                rejected: r.rejected,
            })
            .collect()
    }

    /// The report of the run so far (call after [`Simulation::run_to_completion`]).
    pub fn report(&self) -> Report {
        let done: Vec<&RequestRecord> = self
            .records
            .iter()
            .filter(|r| r.finish_ms.is_some())
            .collect();
        let ttft: Vec<f64> = done.iter().filter_map(|r| r.ttft_ms()).collect();
        let itl: Vec<f64> = done.iter().filter_map(|r| r.mean_itl_ms()).collect();
        let e2e: Vec<f64> = done
            .iter()
            .map(|r| r.finish_ms.unwrap_or(0.0) - r.arrival_ms)
            .collect();
        let duration_ms = done.iter().filter_map(|r| r.finish_ms).fold(0.0, f64::max);
        let secs = (duration_ms / 1000.0).max(f64::MIN_POSITIVE);
        let sla = self.cfg.sla;
        let good = done
            .iter()
            .filter(|r| {
                r.ttft_ms().is_some_and(|t| t <= sla.ttft_ms)
                    && r.mean_itl_ms().is_none_or(|i| i <= sla.itl_ms)
            })
            .count();
        let input_tokens = self.workload.input_tokens();
        let output_tokens: u64 = self.records.iter().map(|r| r.tokens as u64).sum();
        let cached: u64 = self.records.iter().map(|r| r.cached_tokens).sum();
        let host: u64 = self.records.iter().map(|r| r.host_tokens).sum();
        let fetched: u64 = self.records.iter().map(|r| r.fetched_tokens).sum();
        let mut kv_moves = crate::report::KvMoves {
            pulls: self.pulls,
            pulled_blocks: self.pulled_blocks,
            ..Default::default()
        };
        for w in &self.workers {
            let m = w.engine.move_stats();
            kv_moves.engines.host.add(&m.host);
            kv_moves.engines.device_evictions += m.device_evictions;
            kv_moves.engines.fetched_blocks += m.fetched_blocks;
        }
        let workers: Vec<WorkerReport> = self
            .workers
            .iter()
            .map(|w| {
                let life = w.gone_ms.unwrap_or(self.now_ms) - w.born_ms;
                WorkerReport {
                    id: w.id,
                    role: w.role,
                    requests: w.requests,
                    prompt_tokens: w.prompt_tokens,
                    cached_tokens: w.cached_tokens,
                    busy_fraction: if life > 0.0 {
                        (w.busy_ms / life).min(1.0)
                    } else {
                        0.0
                    },
                    preemptions: w.engine.preemptions(),
                }
            })
            .collect();
        let first_role = self.pools()[0];
        let pool = |role: Role| -> Vec<&WorkerReport> {
            workers
                .iter()
                .zip(&self.workers)
                .filter(|(_, w)| w.role == role && w.state != WorkerState::Starting)
                .map(|(r, _)| r)
                .collect()
        };
        let balance = Balance::of(&pool(first_role));
        let decode_balance = self
            .pools()
            .contains(&Role::Decode)
            .then(|| Balance::of(&pool(Role::Decode)));
        let gpu_seconds = self
            .pools()
            .into_iter()
            .map(|role| {
                let ms: f64 = self
                    .workers
                    .iter()
                    .filter(|w| w.role == role)
                    .map(|w| w.gone_ms.unwrap_or(self.now_ms) - w.born_ms)
                    .sum();
                (role, ms / 1000.0)
            })
            .collect();
        let ratio = |a: u64| {
            if input_tokens == 0 {
                0.0
            } else {
                a as f64 / input_tokens as f64
            }
        };
        Report {
            policy: self.policies[0].1.name(),
            requests: self.records.len(),
            completed: done.len(),
            rejected: self.records.iter().filter(|r| r.rejected).count(),
            duration_ms,
            ttft: Percentiles::of(&ttft),
            itl: Percentiles::of(&itl),
            e2e: Percentiles::of(&e2e),
            requests_per_s: done.len() as f64 / secs,
            output_tokens_per_s: output_tokens as f64 / secs,
            input_tokens_per_s: input_tokens as f64 / secs,
            sla,
            good_requests: good,
            goodput_per_s: good as f64 / secs,
            input_tokens,
            output_tokens,
            prefix_hit_rate: ratio(cached),
            host_hit_rate: ratio(host),
            fetched_hit_rate: ratio(fetched),
            ideal_hit_rate: ratio(self.ideal_hit_tokens),
            kv_moves,
            preemptions: self.workers.iter().map(|w| w.engine.preemptions()).sum(),
            gpu_seconds,
            workers,
            balance,
            decode_balance,
            replica_timeline: self.timeline.clone(),
        }
    }
}
