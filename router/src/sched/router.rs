//! [`KvRouter`]: one worker pool's index, predicted load and policy behind one call.
//!
//! Drive it from a simulator or frontend: feed engine events with [`KvRouter::apply_event`]
//! (or run it in approximate mode), call [`KvRouter::route`] per request, then report
//! [`KvRouter::on_first_token`] and [`KvRouter::on_finish`]. Time is always passed in.

use super::{Decision, LoadTracker, Policy, RequestId, RequestView, TierIndex, WorkerState};
use crate::index::{ApplyReport, ApproxConfig, ApproxIndexer, Indexer, KvEvent, OverlapScores};
use crate::worker::WorkerId;

/// Index + load tracker + policy for one pool of workers.
#[derive(Debug, Clone)]
pub struct KvRouter<P> {
    /// Cached blocks per worker, from engine events.
    pub index: Indexer,
    /// Used instead of `index` when engines publish no events.
    pub approx: Option<ApproxIndexer>,
    /// Predicted load per worker.
    pub loads: LoadTracker,
    /// The routing policy.
    pub policy: P,
    /// Blocks in every tier, for engines with a host-memory tier or peer fetch.
    pub tiers: Option<TierIndex>,
    block_size: u32,
    workers: Vec<WorkerId>,
}

impl<P: Policy> KvRouter<P> {
    /// A router fed by KV events.
    pub fn new(policy: P, block_size: u32) -> Self {
        KvRouter {
            index: Indexer::new(),
            approx: None,
            loads: LoadTracker::new(),
            policy,
            tiers: None,
            block_size: block_size.max(1),
            workers: Vec::new(),
        }
    }

    /// A router without KV events: it assumes each routed prompt stays cached for a TTL.
    pub fn approximate(policy: P, block_size: u32, config: ApproxConfig) -> Self {
        KvRouter {
            approx: Some(ApproxIndexer::new(config)),
            ..Self::new(policy, block_size)
        }
    }

    /// Also tracks host-memory tiers and (with `fetch`) prefixes on other workers, so
    /// candidates see [`WorkerState::host_blocks`] and [`WorkerState::remote_blocks`].
    pub fn with_tiers(mut self, fetch: bool) -> Self {
        self.tiers = Some(TierIndex::new(fetch));
        self
    }

    /// KV block size in tokens.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Adds a routable worker.
    pub fn add_worker(&mut self, worker: WorkerId) {
        if !self.workers.contains(&worker) {
            self.workers.push(worker);
            self.index.add_worker(worker);
        }
    }

    /// Removes a worker and everything cached on it.
    pub fn remove_worker(&mut self, worker: WorkerId) {
        self.workers.retain(|w| *w != worker);
        self.index.remove_worker(worker);
        if let Some(tiers) = &mut self.tiers {
            tiers.remove_worker(worker);
        }
        if let Some(approx) = &mut self.approx {
            approx.remove_worker(worker);
        }
    }

    /// The routable workers.
    pub fn workers(&self) -> &[WorkerId] {
        &self.workers
    }

    /// Applies a KV event from `worker` to the index (and the tier index, if any).
    pub fn apply_event(&mut self, worker: WorkerId, event: &KvEvent) -> ApplyReport {
        if let Some(tiers) = &mut self.tiers {
            tiers.apply(worker, event);
        }
        self.index.apply(worker, event)
    }

    fn overlaps(&mut self, request: &RequestView<'_>, now: f64) -> OverlapScores {
        match &mut self.approx {
            Some(approx) => {
                approx.expire(now);
                approx.find_matches(request.sequence)
            }
            None => self.index.find_matches(request.sequence),
        }
    }

    /// The state of each candidate for `request`, as a policy would see it.
    pub fn worker_states(
        &mut self,
        request: &RequestView<'_>,
        candidates: &[WorkerId],
        now: f64,
    ) -> Vec<WorkerState> {
        let cached = self.overlaps(request, now);
        let active = self.loads.active_overlaps(request.sequence);
        let tree_index = self.approx.as_ref().map_or(&self.index, |a| a.index());
        let tiers = match &mut self.tiers {
            Some(t) => {
                t.settle();
                t.overlaps(request.sequence, &cached, candidates)
            }
            None => vec![Default::default(); candidates.len()],
        };
        candidates
            .iter()
            .zip(tiers)
            .map(|(&worker, tier)| {
                let load = self.loads.load(worker);
                WorkerState {
                    worker,
                    cached_blocks: cached.get(worker),
                    host_blocks: tier.host_blocks,
                    remote_blocks: tier.remote_blocks,
                    tree_size: tree_index.tree_size(worker),
                    active_prefill_tokens: load.prefill_tokens,
                    active_blocks: load.blocks,
                    active_requests: load.requests,
                    active_overlap_blocks: active.get(worker),
                    transfer_s: 0.0,
                }
            })
            .collect()
    }

    /// Routes `request` among all workers and books its load; `None` without workers.
    pub fn route(&mut self, request: &RequestView<'_>, now: f64) -> Option<Decision> {
        let candidates = self.workers.clone();
        self.route_among(request, &candidates, now)
    }

    /// Routes `request` among `candidates` and books its load.
    pub fn route_among(
        &mut self,
        request: &RequestView<'_>,
        candidates: &[WorkerId],
        now: f64,
    ) -> Option<Decision> {
        if candidates.is_empty() {
            return None;
        }
        let states = self.worker_states(request, candidates, now);
        let decision = self.policy.select(request, &states, now);
        self.book(request, &decision, now);
        Some(decision)
    }

    /// Records a routing decision made elsewhere (e.g. by the disaggregation logic).
    pub fn book(&mut self, request: &RequestView<'_>, decision: &Decision, now: f64) {
        let cached_tokens = u64::from(decision.cached_blocks) * u64::from(self.block_size);
        let prefill = u64::from(request.prompt_tokens).saturating_sub(cached_tokens);
        self.loads
            .on_route(request.id, decision.worker, request.sequence, prefill);
        if let Some(approx) = &mut self.approx {
            approx.record_route(decision.worker, request.sequence, now);
        }
    }

    /// The request's first token was produced at `now`.
    pub fn on_first_token(&mut self, request: RequestId, _now: f64) {
        self.loads.on_first_token(request);
    }

    /// The request finished at `now`.
    pub fn on_finish(&mut self, request: RequestId, _now: f64) {
        self.loads.on_finish(request);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::ExternalHash;
    use crate::hashing::hash_prompt;
    use crate::index::{KvEventData, StoredBlock};
    use crate::sched::DynamoCost;

    #[test]
    fn routes_to_the_cached_worker_then_balances_by_predicted_load() {
        let mut router = KvRouter::new(DynamoCost::new(4, 3), 4);
        let (a, b) = (WorkerId::new(1), WorkerId::new(2));
        router.add_worker(a);
        router.add_worker(b);
        let tokens: Vec<u32> = (0..64).collect();
        let prompt = hash_prompt(&tokens, 4, None);
        let blocks = prompt
            .blocks
            .iter()
            .zip(&prompt.sequence)
            .map(|(t, s)| StoredBlock {
                external: ExternalHash(s.0),
                tokens: *t,
            })
            .collect();
        router.apply_event(
            b,
            &KvEvent {
                tier: crate::StorageTier::Device,
                event_id: 0,
                data: KvEventData::Stored {
                    parent: None,
                    blocks,
                },
            },
        );
        let view = |id| RequestView {
            id: RequestId(id),
            prompt_tokens: 64,
            sequence: &prompt.sequence,
            expected_output_tokens: None,
        };
        let first = router.route(&view(1), 0.0).unwrap();
        assert_eq!((first.worker, first.cached_blocks), (b, 16));
        // Uncached prompts then spread by predicted load.
        let others: Vec<_> = (2..8u32)
            .map(|i| hash_prompt(&(i * 1000..i * 1000 + 64).collect::<Vec<u32>>(), 4, None))
            .collect();
        let picks: Vec<WorkerId> = (2..8u64)
            .map(|id| {
                let seq = &others[id as usize - 2].sequence;
                let v = RequestView {
                    id: RequestId(id),
                    prompt_tokens: 64,
                    sequence: seq,
                    expected_output_tokens: None,
                };
                router.route(&v, 0.0).unwrap().worker
            })
            .collect();
        // a: 16 prefill + 16 decode blocks = 32 < b: 48; then each booking tips the balance.
        assert_eq!(picks, vec![a, b, a, b, a, b]);
        for id in 1..8 {
            router.on_first_token(RequestId(id), 1.0);
            router.on_finish(RequestId(id), 2.0);
        }
        assert_eq!(router.loads.in_flight(), 0);
    }

    #[test]
    fn approximate_mode_learns_from_its_own_routing() {
        let mut router = KvRouter::approximate(DynamoCost::new(4, 3), 4, ApproxConfig::default());
        router.add_worker(WorkerId::new(1));
        router.add_worker(WorkerId::new(2));
        let prompt = hash_prompt(&(0..64).collect::<Vec<u32>>(), 4, None);
        let view = RequestView {
            id: RequestId(1),
            prompt_tokens: 64,
            sequence: &prompt.sequence,
            expected_output_tokens: None,
        };
        let first = router.route(&view, 0.0).unwrap();
        router.on_finish(RequestId(1), 1.0);
        let again = router
            .route(
                &RequestView {
                    id: RequestId(2),
                    ..view
                },
                2.0,
            )
            .unwrap();
        assert_eq!((again.worker, again.cached_blocks), (first.worker, 16));
        router.on_finish(RequestId(2), 3.0);
        let later = router.worker_states(&view, &[first.worker], 500.0);
        assert_eq!(later[0].cached_blocks, 0, "expired after the TTL");
    }
}
