//! Approximate mode, for engines that publish no KV events: the router records its own
//! routing decisions as if the chosen worker cached the whole prompt, and forgets them
//! after a TTL. Expiry and the size cap remove the deepest blocks first among equal
//! deadlines, mirroring engines that evict a sequence's tail before its shared prefix.

use super::{Indexer, MixMap, OverlapScores};
use crate::hashing::SequenceHash;
use crate::worker::WorkerId;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Settings of the approximate mode (defaults are Dynamo's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApproxConfig {
    /// Seconds a recorded block is assumed to stay cached after its last use.
    pub ttl_s: f64,
    /// Total (block, worker) entries above which the index is pruned.
    pub max_entries: usize,
    /// Pruning goes down to `max_entries * prune_target_ratio`.
    pub prune_target_ratio: f64,
}

impl Default for ApproxConfig {
    fn default() -> Self {
        ApproxConfig {
            ttl_s: 120.0,
            max_entries: 1 << 20,
            prune_target_ratio: 0.8,
        }
    }
}

/// A scheduled expiry; the heap pops the earliest deadline, deepest block first.
#[derive(Debug, Clone, Copy)]
struct Expiry {
    deadline: f64,
    depth: u32,
    worker: WorkerId,
    seq: SequenceHash,
}

impl PartialEq for Expiry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Expiry {}
impl PartialOrd for Expiry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Expiry {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: "greater" means "expires first".
        other
            .deadline
            .total_cmp(&self.deadline)
            .then(self.depth.cmp(&other.depth))
            .then(other.worker.cmp(&self.worker))
            .then(other.seq.cmp(&self.seq))
    }
}

/// An [`Indexer`] driven by routing decisions instead of engine events.
#[derive(Debug, Clone, Default)]
pub struct ApproxIndexer {
    index: Indexer,
    config: ApproxConfig,
    deadlines: MixMap<(WorkerId, u64), f64>,
    heap: BinaryHeap<Expiry>,
}

impl ApproxIndexer {
    /// An empty approximate index.
    pub fn new(config: ApproxConfig) -> Self {
        ApproxIndexer {
            config,
            ..Self::default()
        }
    }

    /// Records that `worker` was sent a prompt with these sequence hashes at `now`
    /// (seconds): its blocks are assumed cached until `now + ttl`.
    pub fn record_route(&mut self, worker: WorkerId, sequence: &[SequenceHash], now: f64) {
        self.expire(now);
        self.index.insert_sequence(worker, sequence);
        let deadline = now + self.config.ttl_s;
        for (depth, &seq) in sequence.iter().enumerate() {
            self.deadlines.insert((worker, seq.0), deadline);
            self.heap.push(Expiry {
                deadline,
                depth: depth as u32,
                worker,
                seq,
            });
        }
        if self.deadlines.len() > self.config.max_entries {
            let target = (self.config.max_entries as f64 * self.config.prune_target_ratio) as usize;
            while self.deadlines.len() > target && self.pop_one(f64::INFINITY) {}
        }
        if self.heap.len() > 2 * self.deadlines.len() + 1024 {
            self.compact_heap();
        }
    }

    /// Forgets every block whose deadline is at or before `now`.
    pub fn expire(&mut self, now: f64) {
        while self.pop_one(now) {}
    }

    /// Pops the next live expiry due by `limit`; returns false when there is none.
    fn pop_one(&mut self, limit: f64) -> bool {
        while let Some(top) = self.heap.peek().copied() {
            if top.deadline > limit {
                return false;
            }
            self.heap.pop();
            let key = (top.worker, top.seq.0);
            if self.deadlines.get(&key) == Some(&top.deadline) {
                self.deadlines.remove(&key);
                self.index.remove_sequence_block(top.worker, top.seq);
                return true;
            }
        }
        false
    }

    /// Drops stale heap entries left behind by renewed deadlines.
    fn compact_heap(&mut self) {
        let live: Vec<Expiry> = self
            .heap
            .drain()
            .filter(|e| self.deadlines.get(&(e.worker, e.seq.0)) == Some(&e.deadline))
            .collect();
        self.heap = live.into();
    }

    /// Overlap of a prompt with what was recently routed to each worker.
    pub fn find_matches(&self, sequence: &[SequenceHash]) -> OverlapScores {
        self.index.find_matches(sequence)
    }

    /// Forgets a worker.
    pub fn remove_worker(&mut self, worker: WorkerId) {
        self.index.remove_worker(worker);
        self.deadlines.retain(|(w, _), _| *w != worker);
    }

    /// Entries currently assumed cached.
    pub fn entries(&self) -> usize {
        self.deadlines.len()
    }

    /// The underlying index (for tree sizes and statistics).
    pub fn index(&self) -> &Indexer {
        &self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::{SequenceHash, hash_prompt};

    fn prompt(first: u32, blocks: usize) -> Vec<SequenceHash> {
        let tokens: Vec<u32> = (0..blocks as u32 * 4).map(|t| first + t).collect();
        hash_prompt(&tokens, 4, None).sequence
    }

    #[test]
    fn blocks_expire_after_ttl_and_renew_on_touch() {
        let mut approx = ApproxIndexer::new(ApproxConfig {
            ttl_s: 10.0,
            ..Default::default()
        });
        let w = WorkerId::new(1);
        let p = prompt(0, 3);
        approx.record_route(w, &p, 0.0);
        assert_eq!(approx.find_matches(&p).get(w), 3);
        approx.record_route(w, &p[..1], 5.0);
        approx.expire(12.0);
        assert_eq!(
            approx.find_matches(&p).get(w),
            1,
            "only the renewed prefix survives"
        );
        approx.expire(15.0);
        assert_eq!(approx.find_matches(&p).get(w), 0);
        assert_eq!(approx.entries(), 0);
    }

    #[test]
    fn size_cap_prunes_tails_before_prefixes() {
        let config = ApproxConfig {
            ttl_s: 100.0,
            max_entries: 10,
            prune_target_ratio: 0.5,
        };
        let mut approx = ApproxIndexer::new(config);
        let w = WorkerId::new(1);
        let p = prompt(0, 11);
        approx.record_route(w, &p, 0.0);
        assert_eq!(approx.entries(), 5);
        assert_eq!(
            approx.find_matches(&p).get(w),
            5,
            "the first five blocks remain"
        );
    }
}
