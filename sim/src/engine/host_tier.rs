//! A worker's host-memory KV tier: a victim cache behind the device's prefix cache.
//!
//! It takes in the cached blocks the device evicts (offload) and hands one back when a
//! prompt hits it (onboard). A block lives in exactly one tier of a worker: onboarding
//! moves it to the device, and a block the device computes again is discarded here. When
//! full it drops the least recently offloaded block first; the device evicts a sequence's
//! tail before its prefix, so this tier does too.

use super::block_manager::CachedBlock;
use crate::kv_event::{KvEventData, StoredBlock};
use router::{BlockHash, ExternalHash};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Block counts of one tier, for conservation checks and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TierStats {
    /// Blocks taken in from the device.
    pub offloaded: u64,
    /// Blocks handed back to the device on a hit.
    pub onboarded: u64,
    /// Blocks dropped to make room.
    pub dropped: u64,
    /// Blocks discarded because the device computed them again.
    pub discarded: u64,
}

impl TierStats {
    /// Adds another tier's counts.
    pub fn add(&mut self, o: &TierStats) {
        self.offloaded += o.offloaded;
        self.onboarded += o.onboarded;
        self.dropped += o.dropped;
        self.discarded += o.discarded;
    }
}

/// The host tier of one worker.
#[derive(Debug)]
pub struct HostTier {
    capacity: usize,
    /// Sequence hash → (arrival order, block).
    blocks: FxHashMap<u64, (u64, CachedBlock)>,
    /// Arrival order → sequence hash; the first entry is dropped first.
    order: BTreeMap<u64, u64>,
    next_order: u64,
    events: Option<Vec<KvEventData>>,
    stats: TierStats,
}

impl HostTier {
    /// A tier of `capacity` blocks (0 = no tier); `record_events` buffers KV events.
    pub fn new(capacity: usize, record_events: bool) -> Self {
        HostTier {
            capacity,
            blocks: FxHashMap::default(),
            order: BTreeMap::new(),
            next_order: 0,
            events: record_events.then(Vec::new),
            stats: TierStats::default(),
        }
    }

    /// Blocks it can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Blocks it holds.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Whether it holds the block with this sequence hash.
    pub fn contains(&self, seq_hash: u64) -> bool {
        self.blocks.contains_key(&seq_hash)
    }

    /// Sequence hashes of the blocks it holds, in no particular order.
    pub fn hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.blocks.keys().copied()
    }

    /// Counts so far.
    pub fn stats(&self) -> TierStats {
        self.stats
    }

    /// Takes in a block the device evicted, dropping the oldest one when full.
    pub fn offer(&mut self, block: CachedBlock) {
        if self.capacity == 0 || self.contains(block.seq_hash) {
            return;
        }
        if self.blocks.len() == self.capacity {
            let (_, oldest) = self.order.pop_first().expect("full, so not empty");
            self.blocks.remove(&oldest);
            self.stats.dropped += 1;
            self.emit_removed(oldest);
        }
        let order = self.next_order;
        self.next_order += 1;
        self.order.insert(order, block.seq_hash);
        self.blocks.insert(block.seq_hash, (order, block));
        self.stats.offloaded += 1;
        self.emit_stored(&block);
    }

    /// Hands the block back to the device (onboarding); `None` if not held.
    pub fn take(&mut self, seq_hash: u64) -> Option<CachedBlock> {
        let block = self.remove(seq_hash)?;
        self.stats.onboarded += 1;
        Some(block)
    }

    /// Forgets the block because the device holds it again (no-op if not held).
    pub fn discard(&mut self, seq_hash: u64) {
        if self.remove(seq_hash).is_some() {
            self.stats.discarded += 1;
        }
    }

    fn remove(&mut self, seq_hash: u64) -> Option<CachedBlock> {
        let (order, block) = self.blocks.remove(&seq_hash)?;
        self.order.remove(&order);
        self.emit_removed(seq_hash);
        Some(block)
    }

    /// Drains buffered KV events (all about [`crate::kv_event::StorageTier::Host`]).
    pub fn take_events(&mut self) -> Vec<KvEventData> {
        self.events.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn emit_stored(&mut self, block: &CachedBlock) {
        let Some(events) = self.events.as_mut() else {
            return;
        };
        let stored = StoredBlock {
            external: ExternalHash(block.seq_hash),
            tokens: BlockHash(block.tokens_hash),
        };
        if let Some(KvEventData::Stored { blocks, .. }) = events.last_mut()
            && block.parent.is_some()
            && blocks.last().map(|b| b.external.0) == block.parent
        {
            blocks.push(stored);
            return;
        }
        events.push(KvEventData::Stored {
            parent: block.parent.map(ExternalHash),
            blocks: vec![stored],
        });
    }

    fn emit_removed(&mut self, seq_hash: u64) {
        let Some(events) = self.events.as_mut() else {
            return;
        };
        if let Some(KvEventData::Removed { blocks }) = events.last_mut() {
            blocks.push(ExternalHash(seq_hash));
            return;
        }
        events.push(KvEventData::Removed {
            blocks: vec![ExternalHash(seq_hash)],
        });
    }

    /// Checks capacity, index consistency and block conservation
    /// (offloaded = onboarded + dropped + discarded + held). Panics with the broken rule.
    pub fn check_invariants(&self) {
        assert!(
            self.blocks.len() <= self.capacity,
            "host tier over capacity"
        );
        assert_eq!(self.blocks.len(), self.order.len(), "host tier order index");
        for (order, hash) in &self.order {
            assert_eq!(
                self.blocks.get(hash).map(|(o, _)| o),
                Some(order),
                "host tier entry {hash}"
            );
        }
        let s = self.stats;
        assert_eq!(
            s.offloaded,
            s.onboarded + s.dropped + s.discarded + self.blocks.len() as u64,
            "host tier blocks not conserved: {s:?}, {} held",
            self.blocks.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(h: u64, parent: Option<u64>) -> CachedBlock {
        CachedBlock {
            seq_hash: h,
            tokens_hash: h + 1000,
            parent,
            depth: 0,
        }
    }

    #[test]
    fn offload_onboard_and_drop_oldest_are_conserved_and_announced() {
        let mut t = HostTier::new(2, true);
        t.offer(block(3, Some(2)));
        t.offer(block(2, Some(1)));
        t.offer(block(3, Some(2))); // already held: ignored
        assert_eq!(t.len(), 2);
        t.offer(block(9, None)); // full: drops 3, the oldest
        assert!(!t.contains(3) && t.contains(2) && t.contains(9));
        assert_eq!(t.take(2).map(|b| b.tokens_hash), Some(1002));
        assert_eq!(t.take(2), None);
        t.discard(9);
        t.discard(9);
        assert!(t.is_empty());
        assert_eq!(
            t.stats(),
            TierStats {
                offloaded: 3,
                onboarded: 1,
                dropped: 1,
                discarded: 1
            }
        );
        t.check_invariants();
        let events = t.take_events();
        let stored: usize = events
            .iter()
            .map(|e| match e {
                KvEventData::Stored { blocks, .. } => blocks.len(),
                _ => 0,
            })
            .sum();
        let removed: usize = events
            .iter()
            .map(|e| match e {
                KvEventData::Removed { blocks } => blocks.len(),
                _ => 0,
            })
            .sum();
        assert_eq!((stored, removed), (3, 3), "{events:?}");
    }

    #[test]
    fn zero_capacity_holds_nothing() {
        let mut t = HostTier::new(0, true);
        t.offer(block(1, None));
        assert!(t.is_empty() && t.take_events().is_empty());
        assert_eq!(t.stats(), TierStats::default());
        t.check_invariants();
    }
}
