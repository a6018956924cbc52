//! Runs the `router` crate's policies inside the simulator: each request is
//! routed by a [`router::sched::KvRouter`] whose index is fed only by the
//! engines' KV events (the router's own event type) and whose load is its
//! own prediction, exactly as in a real deployment.

use crate::engine::RequestId;
use crate::kv_event::{KvEvent, WorkerId};
use crate::routing::{Candidate, RouteRequest, RoutingPolicy};
use router::hashing::SequenceHash;
use router::sched::{
    DynamoCost, KvRouter, Policy, PredictedTtft, RequestId as RouterRequestId, RequestView,
};
use router::{PerfModel as RouterPerfModel, WorkerId as RouterWorkerId};

/// A `router` crate policy behind the simulator's [`RoutingPolicy`] trait.
pub struct RouterPolicy<P> {
    name: String,
    router: KvRouter<P>,
    now_s: f64,
    sequence: Vec<SequenceHash>,
}

impl<P: Policy> RouterPolicy<P> {
    /// Wraps `policy` in an event-fed [`KvRouter`] for engines of `block_size`.
    pub fn new(name: &str, policy: P, block_size: usize) -> Self {
        RouterPolicy {
            name: name.into(),
            router: KvRouter::new(policy, block_size as u32),
            now_s: 0.0,
            sequence: Vec::new(),
        }
    }
}

impl<P> RouterPolicy<P> {
    /// The wrapped policy, to adjust its parameters.
    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.router.policy
    }

    /// Sets the name shown in reports.
    pub fn rename(&mut self, name: &str) {
        self.name = name.into();
    }
}

impl<P: Policy> RouterPolicy<P> {
    /// Also indexes host-memory tiers and, with `fetch`, prefixes on other workers.
    pub fn with_tiers(mut self, fetch: bool) -> Self {
        self.router = self.router.with_tiers(fetch);
        self
    }
}

/// Dynamo's cost function (router crate), seeded tie-breaks.
pub fn dynamo(block_size: usize, seed: u64) -> RouterPolicy<DynamoCost> {
    RouterPolicy::new(
        "dynamo",
        DynamoCost::new(block_size as u32, seed),
        block_size,
    )
}

/// The router crate's TTFT-predicting policy with a perf model matching
/// the simulated engine's polynomial defaults and cache size.
pub fn predicted_ttft(
    block_size: usize,
    kv_capacity_tokens: u64,
    max_batched_tokens: u64,
    seed: u64,
) -> RouterPolicy<PredictedTtft> {
    let model = RouterPerfModel {
        kv_capacity_tokens,
        max_batched_tokens,
        ..RouterPerfModel::default()
    };
    RouterPolicy::new(
        "ours",
        PredictedTtft::new(model, block_size as u32, seed),
        block_size,
    )
}

impl<P: Policy> RoutingPolicy for RouterPolicy<P> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn choose(&mut self, request: &RouteRequest<'_>, candidates: &[Candidate]) -> usize {
        self.now_s = request.now_ms / 1000.0;
        let ids: Vec<RouterWorkerId> = candidates
            .iter()
            .map(|c| RouterWorkerId::new(c.worker))
            .collect();
        for &id in &ids {
            self.router.add_worker(id);
        }
        self.sequence.clear();
        self.sequence
            .extend(request.seq_hashes.iter().copied().map(SequenceHash));
        let view = RequestView {
            id: RouterRequestId(request.id as u64),
            prompt_tokens: request.input_length as u32,
            sequence: &self.sequence,
            expected_output_tokens: None,
        };
        let decision = self
            .router
            .route_among(&view, &ids, self.now_s)
            .expect("candidates are never empty");
        ids.iter().position(|&w| w == decision.worker).unwrap_or(0)
    }

    fn wants_kv_events(&self) -> bool {
        true
    }

    fn on_kv_event(&mut self, worker: WorkerId, event: &KvEvent) {
        self.router.apply_event(RouterWorkerId::new(worker), event);
    }

    fn on_first_token(&mut self, request: RequestId, _worker: WorkerId) {
        self.router
            .on_first_token(RouterRequestId(request as u64), self.now_s);
    }

    fn on_request_done(&mut self, request: RequestId, _worker: WorkerId) {
        self.router
            .on_finish(RouterRequestId(request as u64), self.now_s);
    }

    fn on_worker_removed(&mut self, worker: WorkerId) {
        self.router.remove_worker(RouterWorkerId::new(worker));
    }
}
