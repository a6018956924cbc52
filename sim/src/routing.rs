//! The simulator's routing interface and its built-in policies.
//!
//! A policy picks a worker for each request from the workers accepting work.
//! It may subscribe to the engines' KV events (the router's format) and to
//! request lifecycle edges, which is all a real router sees.

use crate::engine::{EngineLoad, RequestId};
use crate::kv_event::{KvEvent, WorkerId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a policy knows about the request being routed.
#[derive(Clone, Copy, Debug)]
pub struct RouteRequest<'a> {
    /// The request.
    pub id: RequestId,
    /// Prompt tokens.
    pub input_length: usize,
    /// Tokens to generate (a hint; real routers may not know it).
    pub output_length: usize,
    /// Local (token) hashes of the prompt's full engine blocks.
    pub local_hashes: &'a [u64],
    /// Sequence hashes of the same blocks.
    pub seq_hashes: &'a [u64],
    /// Engine block size in tokens.
    pub block_size: usize,
    /// Simulation time, ms.
    pub now_ms: f64,
}

/// One candidate worker as seen at routing time.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    /// The worker.
    pub worker: WorkerId,
    /// Its engine's current load (ground truth, no delay).
    pub load: EngineLoad,
    /// Leading prompt blocks in its prefix cache (ground truth), filled
    /// only when [`RoutingPolicy::needs_cache_overlap`] is true.
    pub cached_blocks: usize,
}

/// Chooses a worker per request.
pub trait RoutingPolicy {
    /// Short name for tables and plots.
    fn name(&self) -> String;

    /// Picks one of `candidates` (never empty); returns its index.
    fn choose(&mut self, request: &RouteRequest<'_>, candidates: &[Candidate]) -> usize;

    /// Whether [`Candidate::cached_blocks`] should be computed.
    fn needs_cache_overlap(&self) -> bool {
        false
    }

    /// Whether the engines should publish KV events to this policy.
    fn wants_kv_events(&self) -> bool {
        false
    }

    /// A KV event from `worker`, delivered when the engine publishes it.
    fn on_kv_event(&mut self, _worker: WorkerId, _event: &KvEvent) {}

    /// The request produced its first token on `worker`.
    fn on_first_token(&mut self, _request: RequestId, _worker: WorkerId) {}

    /// The request left `worker` (finished, handed off or rejected).
    fn on_request_done(&mut self, _request: RequestId, _worker: WorkerId) {}

    /// The worker left the pool.
    fn on_worker_removed(&mut self, _worker: WorkerId) {}
}

/// Cycles through the candidates by worker id.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: u64,
}

impl RoutingPolicy for RoundRobin {
    fn name(&self) -> String {
        "round-robin".into()
    }

    fn choose(&mut self, _request: &RouteRequest<'_>, candidates: &[Candidate]) -> usize {
        // The first worker at or after the cursor, wrapping: stable when the
        // pool grows or shrinks.
        let pick = candidates
            .iter()
            .position(|c| c.worker >= self.next)
            .unwrap_or(0);
        self.next = candidates[pick].worker + 1;
        pick
    }
}

/// Uniformly random, seeded.
#[derive(Debug)]
pub struct Random {
    rng: ChaCha8Rng,
}

impl Random {
    /// A seeded random policy.
    pub fn new(seed: u64) -> Self {
        Random {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

impl RoutingPolicy for Random {
    fn name(&self) -> String {
        "random".into()
    }

    fn choose(&mut self, _request: &RouteRequest<'_>, candidates: &[Candidate]) -> usize {
        self.rng.random_range(0..candidates.len())
    }
}

/// Dynamo's cost function evaluated on ground-truth engine state:
/// `logit = w · prefill_tokens / block_size + decode_blocks`, lowest wins,
/// ties to the lowest worker id. `prefill_tokens` = the worker's pending
/// prefill plus this prompt's uncached part; `decode_blocks` = its active
/// blocks plus this prompt's uncached blocks.
///
/// This stands in for the router crate's event-fed implementation: it sees
/// exact cache contents and load, so it is an upper bound on what the
/// router's prediction can achieve.
#[derive(Debug)]
pub struct OracleCost {
    /// Weight of prefill load against decode load (Dynamo default 1.0).
    pub overlap_weight: f64,
}

impl Default for OracleCost {
    fn default() -> Self {
        OracleCost {
            overlap_weight: 1.0,
        }
    }
}

impl RoutingPolicy for OracleCost {
    fn name(&self) -> String {
        "oracle-cost".into()
    }

    fn needs_cache_overlap(&self) -> bool {
        true
    }

    fn choose(&mut self, request: &RouteRequest<'_>, candidates: &[Candidate]) -> usize {
        let bs = request.block_size as f64;
        let full_blocks = request.seq_hashes.len();
        let logit = |c: &Candidate| {
            let uncached = request
                .input_length
                .saturating_sub(c.cached_blocks * request.block_size);
            let prefill = (c.load.pending_prefill_tokens + uncached) as f64;
            let decode =
                (c.load.active_blocks + full_blocks - c.cached_blocks.min(full_blocks)) as f64;
            self.overlap_weight * prefill / bs + decode
        };
        let mut best = 0;
        let mut best_logit = f64::INFINITY;
        for (i, c) in candidates.iter().enumerate() {
            let l = logit(c);
            if l < best_logit {
                best = i;
                best_logit = l;
            }
        }
        best
    }
}

/// Builds a policy by name for engines of `engine`: `round-robin`,
/// `random`, `oracle-cost` (built in), `dynamo` and `ours` (router crate,
/// fed by KV events). `ours:itl=W` sets the predicted-TTFT policy's ITL
/// weight (seconds of cost per second of decode step time; default 64);
/// `ours:reserve=S` charges S seconds for sending a one-pass prompt to a worker with
/// nothing in flight (`PredictedTtft::idle_reserve_s`; default 0).
/// `ours+tier` also prices host-tier hits, and `ours+fetch` host-tier hits
/// and prefixes pulled from other workers (with `engine.transfer`).
pub fn policy_by_name(
    name: &str,
    engine: &crate::EngineConfig,
    seed: u64,
) -> Option<Box<dyn RoutingPolicy>> {
    use crate::router_adapter::{dynamo, predicted_ttft};
    let bs = engine.block_size;
    let param = |prefix: &str| -> Option<f64> {
        name.strip_prefix(prefix)?
            .parse()
            .ok()
            .filter(|w: &f64| *w >= 0.0)
    };
    let (itl, reserve) = (param("ours:itl="), param("ours:reserve="));
    if itl.is_some() || reserve.is_some() {
        let mut policy = predicted_ttft(
            bs,
            (engine.num_gpu_blocks * bs) as u64,
            engine.max_num_batched_tokens as u64,
            seed,
        );
        let p = policy.policy_mut();
        p.itl_weight = itl.unwrap_or(p.itl_weight);
        p.idle_reserve_s = reserve.unwrap_or(p.idle_reserve_s);
        policy.rename(name);
        return Some(Box::new(policy));
    }
    Some(match name {
        "round-robin" | "rr" => Box::new(RoundRobin::default()),
        "random" => Box::new(Random::new(seed)),
        "oracle-cost" | "oracle" => Box::new(OracleCost::default()),
        "dynamo" => Box::new(dynamo(bs, seed)),
        "ours+tier" | "ours+fetch" => {
            let mut policy = predicted_ttft(
                bs,
                (engine.num_gpu_blocks * bs) as u64,
                engine.max_num_batched_tokens as u64,
                seed,
            )
            .with_tiers(name == "ours+fetch");
            policy.policy_mut().transfer = engine.transfer;
            policy.rename(name);
            Box::new(policy)
        }
        "ours" | "predicted-ttft" => Box::new(predicted_ttft(
            bs,
            (engine.num_gpu_blocks * bs) as u64,
            engine.max_num_batched_tokens as u64,
            seed,
        )),
        _ => return None,
    })
}
