//! `find_matches`: for a prompt's sequence hashes, how many *leading* blocks each worker
//! holds. Exact even when a worker's cache has holes (a block evicted before its
//! descendants): a worker's score is the depth of its first missing block.
//!
//! The walk keeps the surviving candidates as a bitmap over worker slots. Per depth it
//! only counts how many candidates the node still holds (O(1) for inline nodes,
//! O(workers/64) for bitmap nodes) and rebuilds the bitmap only when the count drops, so
//! the cost is dominated by one table probe per depth. Probes are prefetched a few
//! depths ahead so their cache misses overlap.

use super::Indexer;
use super::node_table::NodeWorkers;
use super::worker_set::{SpillSet, bit, for_each_bit, locate};
use crate::hashing::SequenceHash;
use crate::worker::WorkerId;

/// How many depths ahead to prefetch table slots.
const PREFETCH_DISTANCE: usize = 16;

/// Result of [`Indexer::find_matches`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverlapScores {
    /// `(worker, leading blocks held)` for every worker holding at least the first block.
    pub scores: Vec<(WorkerId, u32)>,
}

impl OverlapScores {
    /// Leading blocks `worker` holds (0 if it holds none).
    pub fn get(&self, worker: WorkerId) -> u32 {
        self.scores
            .iter()
            .find(|(w, _)| *w == worker)
            .map_or(0, |&(_, score)| score)
    }

    /// The largest overlap over all workers.
    pub fn best(&self) -> u32 {
        self.scores.iter().map(|&(_, s)| s).max().unwrap_or(0)
    }
}

/// The candidates still matching, as a bitmap over worker slots.
struct Candidates {
    words: Vec<u64>,
    count: u32,
}

impl Candidates {
    fn from_node(node: NodeWorkers<'_>, slots: usize) -> Self {
        let mut words = vec![0u64; slots.div_ceil(64)];
        let mut count = 0;
        let mut add = |slot: u32| {
            let (w, mask) = locate(slot);
            words[w] |= mask;
            count += 1;
        };
        match node {
            NodeWorkers::Inline(a, b) => {
                add(a);
                if let Some(b) = b {
                    add(b);
                }
            }
            NodeWorkers::Spilled(SpillSet::List(list)) => list.iter().copied().for_each(add),
            NodeWorkers::Spilled(SpillSet::Bits { words: bits, .. }) => for_each_bit(bits, add),
        }
        Candidates { words, count }
    }

    /// How many candidates the node also holds.
    #[inline]
    fn surviving(&self, node: NodeWorkers<'_>) -> u32 {
        match node {
            NodeWorkers::Inline(a, b) => {
                u32::from(bit(&self.words, a)) + b.map_or(0, |b| u32::from(bit(&self.words, b)))
            }
            NodeWorkers::Spilled(SpillSet::List(list)) => {
                list.iter().map(|&s| u32::from(bit(&self.words, s))).sum()
            }
            NodeWorkers::Spilled(SpillSet::Bits { words, .. }) => self
                .words
                .iter()
                .zip(words)
                .map(|(a, b)| (a & b).count_ones())
                .sum(),
        }
    }

    /// Keeps only candidates the node holds; calls `dropped` for each one removed.
    fn retain(&mut self, node: NodeWorkers<'_>, mut dropped: impl FnMut(u32)) {
        let mut kept = vec![0u64; self.words.len()];
        let mut keep = |slot: u32| {
            let (w, mask) = locate(slot);
            if let Some(word) = kept.get_mut(w) {
                *word |= mask;
            }
        };
        match node {
            NodeWorkers::Inline(a, b) => {
                keep(a);
                if let Some(b) = b {
                    keep(b);
                }
            }
            NodeWorkers::Spilled(SpillSet::List(list)) => list.iter().copied().for_each(keep),
            NodeWorkers::Spilled(SpillSet::Bits { words, .. }) => {
                for (k, w) in kept.iter_mut().zip(words) {
                    *k = *w;
                }
            }
        }
        let mut count = 0;
        for (index, (old, keep)) in self.words.iter_mut().zip(&kept).enumerate() {
            let new = *old & keep;
            let base = index as u32 * 64;
            for_each_bit(&[*old & !new], |bit| dropped(base + bit));
            *old = new;
            count += new.count_ones();
        }
        self.count = count;
    }
}

impl Indexer {
    /// For each worker holding the prompt's first block, the number of consecutive
    /// blocks from the start of the prompt it holds.
    pub fn find_matches(&self, sequence: &[SequenceHash]) -> OverlapScores {
        let mut scores = Vec::new();
        let Some(first) = sequence.first().and_then(|s| self.nodes.get(s.0)) else {
            return OverlapScores { scores };
        };
        for seq in sequence.iter().skip(1).take(PREFETCH_DISTANCE) {
            self.nodes.prefetch(seq.0);
        }
        let mut candidates = Candidates::from_node(first, self.slots.len());
        let mut record = |slot: u32, depth: usize| {
            if let Some(state) = &self.slots[slot as usize] {
                scores.push((state.id, depth as u32));
            }
        };
        let mut depth = 1;
        while depth < sequence.len() && candidates.count > 0 {
            if let Some(ahead) = sequence.get(depth + PREFETCH_DISTANCE) {
                self.nodes.prefetch(ahead.0);
            }
            match self.nodes.get(sequence[depth].0) {
                Some(node) => {
                    if candidates.surviving(node) != candidates.count {
                        candidates.retain(node, |slot| record(slot, depth));
                    }
                }
                None => {
                    for_each_bit(&candidates.words, |slot| record(slot, depth));
                    candidates.count = 0;
                }
            }
            depth += 1;
        }
        if candidates.count > 0 {
            for_each_bit(&candidates.words, |slot| record(slot, depth));
        }
        OverlapScores { scores }
    }
}
