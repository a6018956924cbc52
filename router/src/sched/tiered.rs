//! Overlap per tier and per holder, for engines with a host-memory KV tier and for pools
//! whose workers can pull a cached prefix from each other.
//!
//! The router's [`crate::Indexer`] holds device-resident blocks. [`TierIndex`] adds a
//! second index of the blocks a worker holds in *any* tier (device or host memory), fed
//! from the same events: a block enters it when its first tier stores it and leaves when
//! its last tier drops it, so moving between tiers (`Removed` on one, `Stored` on the
//! other, in either order) does not disturb it. Per candidate the router then knows:
//!
//! * device hit: leading blocks on its GPU (free);
//! * host hit: the further leading blocks in its host memory (onboarded over PCIe);
//! * remote fetch: the further blocks the best other holder has (pulled over the network,
//!   only when fetching is enabled);
//! * recompute: the rest.

use crate::hashing::{SequenceHash, chain};
use crate::index::{Indexer, KvEvent, KvEventData, OverlapScores, StorageTier};
use crate::worker::WorkerId;
use rustc_hash::FxHashMap;

/// Bit of each tier in a block's holder mask.
fn tier_bit(tier: StorageTier) -> u8 {
    match tier {
        StorageTier::Device => 1,
        StorageTier::Host => 2,
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The block's sequence hash (its whole prefix), computed from the events' chain.
    seq: SequenceHash,
    /// Tiers holding the block (bit mask; 0 = in limbo, see [`TierIndex::settle`]).
    /// A block has an entry exactly while it is in the any-tier index.
    tiers: u8,
}

#[derive(Debug, Clone, Default)]
struct WorkerTiers {
    /// External hash → entry.
    blocks: FxHashMap<u64, Entry>,
    /// Blocks that left their last tier since the last settle.
    limbo: Vec<u64>,
}

/// Where the prompt blocks beyond a candidate's device hit would come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TierOverlap {
    /// Leading blocks after the device hit that the candidate holds in host memory.
    pub host_blocks: u32,
    /// Further leading blocks another worker holds (in any tier) that it could pull.
    pub remote_blocks: u32,
}

/// Blocks held in any tier, per worker; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct TierIndex {
    /// Keyed by sequence hash (chained from the events' tokens hashes, as the device
    /// index does), filled with `insert_sequence`.
    any: Indexer,
    workers: FxHashMap<WorkerId, WorkerTiers>,
    /// Whether candidates may pull a prefix held by another worker.
    pub fetch: bool,
}

impl TierIndex {
    /// An empty index; `fetch` enables pricing remote prefixes.
    pub fn new(fetch: bool) -> Self {
        TierIndex {
            fetch,
            ..Self::default()
        }
    }

    /// Applies one event (of any tier) from `worker`. A `Stored` event whose parent this
    /// worker does not hold in any tier is dropped (as the device index does).
    pub fn apply(&mut self, worker: WorkerId, event: &KvEvent) {
        let bit = tier_bit(event.tier);
        let any = &mut self.any;
        let state = self.workers.entry(worker).or_default();
        match &event.data {
            KvEventData::Stored { parent, blocks } => {
                // The chain from the parent: blocks already held are skipped by
                // `insert_sequence`, new ones placed after their real parent.
                let mut chain_hashes = Vec::with_capacity(blocks.len() + 1);
                let mut prev = match parent {
                    None => None,
                    Some(p) => match state.blocks.get(&p.0) {
                        Some(e) => Some(e.seq),
                        None => return,
                    },
                };
                chain_hashes.extend(prev);
                for block in blocks {
                    let seq = chain(prev, block.tokens);
                    let e = state
                        .blocks
                        .entry(block.external.0)
                        .or_insert(Entry { seq, tiers: 0 });
                    if e.seq != seq {
                        // The engine reused an external hash for other content.
                        any.remove_sequence_block(worker, e.seq);
                        *e = Entry { seq, tiers: 0 };
                    }
                    e.tiers |= bit;
                    chain_hashes.push(seq);
                    prev = Some(seq);
                }
                any.insert_sequence(worker, &chain_hashes);
            }
            KvEventData::Removed { blocks } => {
                for b in blocks {
                    drop_tier(state, b.0, bit);
                }
            }
            KvEventData::Cleared => {
                let all: Vec<u64> = state.blocks.keys().copied().collect();
                for b in all {
                    drop_tier(state, b, bit);
                }
            }
        }
    }

    /// Removes the blocks that left their last tier before now. Until then they stay
    /// indexed, so a move announced remove-first (`Removed` on the old tier, then
    /// `Stored` on the new one, children before parents as an LRU evicts) never takes a
    /// block out. Call between event batches: a move split across this call is seen as a
    /// loss and a new store.
    pub fn settle(&mut self) {
        for (&worker, state) in &mut self.workers {
            for b in std::mem::take(&mut state.limbo) {
                if let Some(e) = state.blocks.get(&b).filter(|e| e.tiers == 0) {
                    self.any.remove_sequence_block(worker, e.seq);
                    state.blocks.remove(&b);
                }
            }
        }
    }

    /// Forgets a worker and all its blocks.
    pub fn remove_worker(&mut self, worker: WorkerId) {
        self.workers.remove(&worker);
        self.any.remove_worker(worker);
    }

    /// Leading blocks of `sequence` each worker holds in any tier.
    pub fn find_matches(&self, sequence: &[SequenceHash]) -> OverlapScores {
        self.any.find_matches(sequence)
    }

    /// For each candidate, where the blocks beyond its device hit (`device`, from the
    /// device index) would come from.
    pub fn overlaps(
        &self,
        sequence: &[SequenceHash],
        device: &OverlapScores,
        candidates: &[WorkerId],
    ) -> Vec<TierOverlap> {
        let any = self.find_matches(sequence);
        let best = if self.fetch { any.best() } else { 0 };
        candidates
            .iter()
            .map(|&w| {
                let on_device = device.get(w);
                let local = any.get(w).max(on_device);
                TierOverlap {
                    host_blocks: local - on_device,
                    remote_blocks: best.saturating_sub(local),
                }
            })
            .collect()
    }
}

/// Clears `bit` for block `external`; a block no tier holds waits in limbo for
/// [`TierIndex::settle`].
fn drop_tier(state: &mut WorkerTiers, external: u64, bit: u8) {
    if let Some(e) = state.blocks.get_mut(&external)
        && e.tiers & bit != 0
    {
        e.tiers &= !bit;
        if e.tiers == 0 {
            state.limbo.push(external);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::{BlockHash, ExternalHash};
    use crate::index::StoredBlock;

    /// Stored event for blocks `ids` (external hash = id, tokens hash = id) after `parent`.
    fn stored(id: u64, tier: StorageTier, parent: Option<u64>, ids: &[u64]) -> KvEvent {
        KvEvent {
            event_id: id,
            tier,
            data: KvEventData::Stored {
                parent: parent.map(ExternalHash),
                blocks: ids
                    .iter()
                    .map(|&i| StoredBlock {
                        external: ExternalHash(i),
                        tokens: BlockHash(i),
                    })
                    .collect(),
            },
        }
    }

    fn removed(id: u64, tier: StorageTier, ids: &[u64]) -> KvEvent {
        KvEvent {
            event_id: id,
            tier,
            data: KvEventData::Removed {
                blocks: ids.iter().copied().map(ExternalHash).collect(),
            },
        }
    }

    fn sequence(ids: &[u64]) -> Vec<SequenceHash> {
        let mut parent = None;
        ids.iter()
            .map(|&i| {
                let s = chain(parent, BlockHash(i));
                parent = Some(s);
                s
            })
            .collect()
    }

    #[test]
    fn offloaded_tail_counts_as_host_hit_and_others_can_fetch_it() {
        use StorageTier::{Device, Host};
        let (a, b) = (WorkerId::new(1), WorkerId::new(2));
        let mut device = Indexer::new();
        let mut tiers = TierIndex::new(true);
        let events = [
            stored(0, Device, None, &[1, 2, 3, 4]),
            // The GPU evicts tail first: 4 then 3 go to host memory (child before parent),
            // announced remove-first.
            removed(1, Device, &[4, 3]),
            stored(2, Host, Some(3), &[4]),
            stored(3, Host, Some(2), &[3]),
        ];
        for ev in &events {
            device.apply(a, ev);
            tiers.apply(a, ev);
        }
        let seq = sequence(&[1, 2, 3, 4, 5]);
        let on_device = device.find_matches(&seq);
        assert_eq!(
            on_device.get(a),
            2,
            "host events do not touch the device index"
        );
        assert_eq!(tiers.find_matches(&seq).get(a), 4);
        let o = tiers.overlaps(&seq, &on_device, &[a, b]);
        assert_eq!(
            o,
            vec![
                TierOverlap {
                    host_blocks: 2,
                    remote_blocks: 0
                },
                TierOverlap {
                    host_blocks: 0,
                    remote_blocks: 4
                },
            ]
        );
        // Onboarding block 3 (host → device) keeps it in the any-tier index.
        tiers.settle();
        for ev in [stored(4, Device, Some(2), &[3]), removed(5, Host, &[3])] {
            device.apply(a, &ev);
            tiers.apply(a, &ev);
        }
        assert_eq!(tiers.find_matches(&seq).get(a), 4);
        assert_eq!(device.find_matches(&seq).get(a), 3);
        // Dropped from the host tier: gone for good, even after the limbo is settled.
        tiers.apply(a, &removed(6, Host, &[4]));
        tiers.settle();
        assert_eq!(tiers.find_matches(&seq).get(a), 3);
        tiers.apply(a, &stored(7, Host, Some(3), &[4]));
        assert_eq!(
            tiers.find_matches(&seq).get(a),
            4,
            "parent 3 is still known"
        );
        let without_fetch = TierIndex {
            fetch: false,
            ..tiers.clone()
        };
        assert_eq!(
            without_fetch.overlaps(&seq, &device.find_matches(&seq), &[b])[0],
            TierOverlap::default()
        );
        tiers.remove_worker(a);
        assert_eq!(tiers.find_matches(&seq).get(a), 0);
    }

    #[test]
    fn cleared_device_keeps_host_blocks() {
        let a = WorkerId::new(1);
        let mut tiers = TierIndex::new(false);
        tiers.apply(a, &stored(0, StorageTier::Device, None, &[1, 2]));
        tiers.apply(a, &stored(1, StorageTier::Host, None, &[7]));
        tiers.apply(
            a,
            &KvEvent {
                event_id: 2,
                tier: StorageTier::Device,
                data: KvEventData::Cleared,
            },
        );
        assert_eq!(
            tiers.find_matches(&sequence(&[1, 2])).get(a),
            2,
            "indexed until settled"
        );
        tiers.settle();
        assert_eq!(tiers.find_matches(&sequence(&[1, 2])).get(a), 0);
        assert_eq!(tiers.find_matches(&sequence(&[7])).get(a), 1);
    }
}
