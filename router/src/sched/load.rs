//! Router-side predicted load, updated on routing edges instead of engine metrics:
//! a request adds its uncached prompt tokens (prefill load) and its blocks (decode load)
//! when routed, drops the prefill part at its first token, and frees its blocks at the
//! end. Blocks shared by concurrent requests on one worker count once.

use super::RequestId;
use crate::hashing::SequenceHash;
use crate::index::{Indexer, OverlapScores};
use crate::worker::WorkerId;
use std::collections::HashMap;

/// Predicted load of one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerLoad {
    /// Prompt tokens still to prefill.
    pub prefill_tokens: u64,
    /// Distinct KV blocks of in-flight requests.
    pub blocks: u64,
    /// In-flight requests.
    pub requests: u32,
}

#[derive(Debug, Clone)]
struct Tracked {
    worker: WorkerId,
    prefill_tokens: u64,
    sequence: Vec<SequenceHash>,
    prefilling: bool,
}

/// Predicted per-worker load from routing decisions.
#[derive(Debug, Clone, Default)]
pub struct LoadTracker {
    loads: HashMap<WorkerId, WorkerLoad>,
    requests: HashMap<RequestId, Tracked>,
    refcounts: HashMap<(WorkerId, SequenceHash), u32>,
    /// The blocks of in-flight requests, as an index, for active-overlap queries.
    active: Indexer,
}

impl LoadTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `request` (with these prompt blocks) was sent to `worker`, which must
    /// still compute `prefill_tokens` of it. Routing an in-flight id again replaces it.
    pub fn on_route(
        &mut self,
        request: RequestId,
        worker: WorkerId,
        sequence: &[SequenceHash],
        prefill_tokens: u64,
    ) {
        self.on_finish(request);
        let load = self.loads.entry(worker).or_default();
        load.prefill_tokens += prefill_tokens;
        load.requests += 1;
        let mut fresh = Vec::new();
        for &seq in sequence {
            let count = self.refcounts.entry((worker, seq)).or_insert(0);
            *count += 1;
            if *count == 1 {
                fresh.push(seq);
            }
        }
        load.blocks += fresh.len() as u64;
        self.active.insert_sequence(worker, &fresh);
        let tracked = Tracked {
            worker,
            prefill_tokens,
            sequence: sequence.to_vec(),
            prefilling: true,
        };
        self.requests.insert(request, tracked);
    }

    /// The request produced its first token: its prefill load is gone.
    pub fn on_first_token(&mut self, request: RequestId) {
        let Some(t) = self.requests.get_mut(&request) else {
            return;
        };
        if std::mem::take(&mut t.prefilling)
            && let Some(load) = self.loads.get_mut(&t.worker)
        {
            load.prefill_tokens -= t.prefill_tokens;
        }
    }

    /// The request finished (or was cancelled): all its load is gone.
    pub fn on_finish(&mut self, request: RequestId) {
        self.on_first_token(request);
        let Some(t) = self.requests.remove(&request) else {
            return;
        };
        let load = self.loads.entry(t.worker).or_default();
        load.requests -= 1;
        for seq in t.sequence {
            let key = (t.worker, seq);
            if let Some(count) = self.refcounts.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    self.refcounts.remove(&key);
                    load.blocks -= 1;
                    self.active.remove_sequence_block(t.worker, seq);
                }
            }
        }
    }

    /// The predicted load of `worker`.
    pub fn load(&self, worker: WorkerId) -> WorkerLoad {
        self.loads.get(&worker).copied().unwrap_or_default()
    }

    /// Leading prompt blocks each worker shares with its in-flight requests.
    pub fn active_overlaps(&self, sequence: &[SequenceHash]) -> OverlapScores {
        self.active.find_matches(sequence)
    }

    /// Number of requests in flight.
    pub fn in_flight(&self) -> usize {
        self.requests.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::hash_prompt;

    #[test]
    fn shared_blocks_count_once_and_edges_release_load() {
        let mut loads = LoadTracker::new();
        let w = WorkerId::new(3);
        let a = hash_prompt(&(0..32).collect::<Vec<u32>>(), 8, None).sequence;
        let b = hash_prompt(&(0..24).chain(100..108).collect::<Vec<u32>>(), 8, None).sequence;
        loads.on_route(RequestId(1), w, &a, 32);
        loads.on_route(RequestId(2), w, &b, 8);
        assert_eq!(
            loads.load(w),
            WorkerLoad {
                prefill_tokens: 40,
                blocks: 5,
                requests: 2
            }
        );
        assert_eq!(loads.active_overlaps(&b).get(w), 4);
        loads.on_first_token(RequestId(1));
        loads.on_first_token(RequestId(1));
        assert_eq!(loads.load(w).prefill_tokens, 8);
        loads.on_finish(RequestId(1));
        assert_eq!(
            loads.load(w),
            WorkerLoad {
                prefill_tokens: 8,
                blocks: 4,
                requests: 1
            }
        );
        assert_eq!(loads.active_overlaps(&a).get(w), 3);
        loads.on_finish(RequestId(2));
        loads.on_finish(RequestId(2));
        assert_eq!(loads.load(w), WorkerLoad::default());
        assert_eq!(loads.in_flight(), 0);
    }
}
