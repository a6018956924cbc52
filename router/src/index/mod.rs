//! The KV index: which worker holds which cached blocks, fed by KV events.
//!
//! Layout (chosen for lookup latency, ingest rate and bytes per entry, see the crate
//! benches):
//! * `segments::Segments`: paths of blocks (by *sequence hash*, which identifies the
//!   whole prefix) stored as arrays so a query compares them sequentially, with ranges of
//!   blocks held by the same interned worker set; blocks never move, and only the first
//!   block of each segment is in a hash table;
//! * per worker, a map from the engine's external block hash to the block's stable
//!   location, so `Removed` events and parent lookups cost one probe.

mod approx;
mod events;
mod matching;
mod segments;
mod u64_map;
mod worker_set;

pub use approx::{ApproxConfig, ApproxIndexer};
pub use events::{ApplyOutcome, ApplyReport, KvEvent, KvEventData, StorageTier, StoredBlock};
pub use matching::OverlapScores;

use crate::hashing::{SequenceHash, chain};
use crate::worker::WorkerId;
use segments::{Loc, Segments};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use u64_map::U64Map;

/// How many blocks ahead an event's table slots are prefetched.
const PREFETCH_AHEAD: usize = 12;

/// Hasher for keys that are already 64-bit hashes (or small ids): one multiply-mix.
#[derive(Default, Clone, Copy)]
pub(crate) struct U64Mix(u64);

impl Hasher for U64Mix {
    fn finish(&self) -> u64 {
        let x = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^ (x >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8)) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
    fn write_u32(&mut self, value: u32) {
        self.0 = self.0.rotate_left(32) ^ u64::from(value);
    }
}

pub(crate) type MixMap<K, V> = HashMap<K, V, BuildHasherDefault<U64Mix>>;

/// Per-worker state: its blocks and the last event id seen.
#[derive(Debug, Clone)]
struct WorkerBlocks {
    id: WorkerId,
    /// External (engine) hash (or, in approximate mode, sequence hash) → packed [`Loc`].
    blocks: U64Map,
    last_event_id: Option<u64>,
}

/// Worker → cached blocks, answering prefix-overlap queries.
#[derive(Debug, Clone, Default)]
pub struct Indexer {
    segments: Segments,
    slot_of: MixMap<WorkerId, u32>,
    slots: Vec<Option<WorkerBlocks>>,
    free_slots: Vec<u32>,
}

impl Indexer {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    fn slot_for(&mut self, worker: WorkerId) -> u32 {
        if let Some(&slot) = self.slot_of.get(&worker) {
            return slot;
        }
        let state = Some(WorkerBlocks {
            id: worker,
            blocks: U64Map::default(),
            last_event_id: None,
        });
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot as usize] = state;
                slot
            }
            None => {
                self.slots.push(state);
                (self.slots.len() - 1) as u32
            }
        };
        assert!(slot < 1 << 31, "too many workers");
        self.slot_of.insert(worker, slot);
        slot
    }

    /// Registers a worker with no blocks (optional: [`Indexer::apply`] registers on demand).
    pub fn add_worker(&mut self, worker: WorkerId) {
        self.slot_for(worker);
    }

    /// Applies one event from `worker`, checking its event id for gaps and duplicates.
    /// The index holds device-resident blocks: an event about another tier only advances
    /// the worker's event id (see `sched::TierIndex` for the other tiers).
    pub fn apply(&mut self, worker: WorkerId, event: &KvEvent) -> ApplyReport {
        let slot = self.slot_for(worker);
        let state = self.slots[slot as usize].as_mut().expect("live slot");
        let expected = state.last_event_id.map_or(0, |last| last + 1);
        if state.last_event_id.is_some() && event.event_id < expected {
            return ApplyReport {
                outcome: ApplyOutcome::Duplicate,
                gap: None,
            };
        }
        state.last_event_id = Some(event.event_id);
        let gap = (event.event_id > expected).then_some(expected..event.event_id);
        if event.tier != StorageTier::Device {
            return ApplyReport {
                outcome: ApplyOutcome::Applied,
                gap,
            };
        }
        let outcome = self.apply_data(slot, &event.data);
        ApplyReport { outcome, gap }
    }

    fn apply_data(&mut self, slot: u32, data: &KvEventData) -> ApplyOutcome {
        let state = self.slots[slot as usize].as_mut().expect("live slot");
        match data {
            KvEventData::Stored { parent, blocks } => {
                let parent_loc = match parent {
                    None => None,
                    Some(p) => match state.blocks.get(p.0) {
                        Some(loc) => Some(Loc::unpack(loc)),
                        None => return ApplyOutcome::ParentMissing,
                    },
                };
                for block in blocks.iter().take(PREFETCH_AHEAD) {
                    state.blocks.prefetch(block.external.0);
                }
                // Hash the chain (no memory traffic) while the prefetches run.
                let mut keys = Vec::with_capacity(blocks.len());
                let mut chain_key = parent_loc.map(|p| SequenceHash(self.segments.hash_at(p)));
                for block in blocks {
                    let key = chain(chain_key, block.tokens);
                    keys.push(key.0);
                    chain_key = Some(key);
                }
                let mut locs = Vec::with_capacity(blocks.len());
                self.segments.store(slot, parent_loc, &keys, &mut locs);
                state.blocks.reserve(blocks.len());
                let mut reused = Vec::new();
                for (i, (block, loc)) in blocks.iter().zip(&locs).enumerate() {
                    if let Some(ahead) = blocks.get(i + PREFETCH_AHEAD) {
                        state.blocks.prefetch(ahead.external.0);
                    }
                    let previous = state.blocks.insert(block.external.0, loc.pack());
                    if let Some(old) = previous.filter(|&old| old != loc.pack()) {
                        // The engine reused an external hash for other content.
                        reused.push(Loc::unpack(old));
                    }
                }
                if !reused.is_empty() {
                    // Unless this event stored the old block again under another hash.
                    reused.retain(|old| !locs.contains(old));
                    self.segments.remove(slot, &reused);
                }
            }
            KvEventData::Removed { blocks } => {
                for block in blocks.iter().take(PREFETCH_AHEAD) {
                    state.blocks.prefetch(block.0);
                }
                let mut locs = Vec::with_capacity(blocks.len());
                for (i, block) in blocks.iter().enumerate() {
                    if let Some(ahead) = blocks.get(i + PREFETCH_AHEAD) {
                        state.blocks.prefetch(ahead.0);
                    }
                    if let Some(loc) = state.blocks.remove(block.0) {
                        locs.push(Loc::unpack(loc));
                    }
                }
                self.segments.remove(slot, &locs);
            }
            KvEventData::Cleared => self.clear_slot(slot),
        }
        ApplyOutcome::Applied
    }

    fn clear_slot(&mut self, slot: u32) {
        let state = self.slots[slot as usize].as_mut().expect("live slot");
        let blocks = std::mem::take(&mut state.blocks);
        let mut locs = Vec::with_capacity(blocks.len());
        blocks.for_each(|_, loc| locs.push(Loc::unpack(loc)));
        // In segment order, so that the whole cache goes in a few stretch edits.
        locs.sort_unstable();
        self.segments.remove(slot, &locs);
    }

    /// Inserts a chain of sequence hashes for `worker` directly (no engine hashes): used
    /// by the approximate mode, where the router records its own routing decisions.
    /// Blocks already held are left as they are. Returns how many blocks were new.
    pub(crate) fn insert_sequence(&mut self, worker: WorkerId, sequence: &[SequenceHash]) -> usize {
        let slot = self.slot_for(worker);
        let state = self.slots[slot as usize].as_mut().expect("live slot");
        // Store each stretch of blocks the worker lacks after its real parent (which
        // it holds: either it already did or it was just stored).
        let mut fresh = 0;
        let mut locs = Vec::new();
        let mut i = 0;
        while i < sequence.len() {
            if state.blocks.get(sequence[i].0).is_some() {
                i += 1;
                continue;
            }
            let parent = i
                .checked_sub(1)
                .map(|p| Loc::unpack(state.blocks.get(sequence[p].0).expect("parent held")));
            let end = (i..sequence.len())
                .find(|&j| state.blocks.get(sequence[j].0).is_some())
                .unwrap_or(sequence.len());
            let keys: Vec<u64> = sequence[i..end].iter().map(|s| s.0).collect();
            locs.clear();
            self.segments.store(slot, parent, &keys, &mut locs);
            for (key, loc) in keys.iter().zip(&locs) {
                state.blocks.insert(*key, loc.pack());
            }
            fresh += end - i;
            i = end;
        }
        fresh
    }

    /// Drops one block inserted with [`Indexer::insert_sequence`]; returns whether it was held.
    pub(crate) fn remove_sequence_block(&mut self, worker: WorkerId, seq: SequenceHash) -> bool {
        let Some(&slot) = self.slot_of.get(&worker) else {
            return false;
        };
        let state = self.slots[slot as usize].as_mut().expect("live slot");
        match state.blocks.remove(seq.0) {
            Some(loc) => {
                self.segments.remove(slot, &[Loc::unpack(loc)]);
                true
            }
            None => false,
        }
    }

    /// Replaces everything known about `worker` with a full dump of its cache (stored
    /// events in parent-before-child order), as after a detected gap that cannot be
    /// replayed. Returns how many dump events were dropped for a missing parent.
    pub fn resync<'a>(
        &mut self,
        worker: WorkerId,
        last_event_id: u64,
        dump: impl IntoIterator<Item = &'a KvEventData>,
    ) -> usize {
        let slot = self.slot_for(worker);
        self.clear_slot(slot);
        let dropped = dump
            .into_iter()
            .filter(|data| self.apply_data(slot, data) == ApplyOutcome::ParentMissing)
            .count();
        self.slots[slot as usize]
            .as_mut()
            .expect("live slot")
            .last_event_id = Some(last_event_id);
        dropped
    }

    /// Forgets a worker and all its blocks (it left the pool).
    pub fn remove_worker(&mut self, worker: WorkerId) {
        if let Some(slot) = self.slot_of.remove(&worker) {
            self.clear_slot(slot);
            self.slots[slot as usize] = None;
            self.free_slots.push(slot);
        }
    }

    /// Number of blocks `worker` holds (its "tree size"); 0 for an unknown worker.
    pub fn tree_size(&self, worker: WorkerId) -> usize {
        self.slot_of
            .get(&worker)
            .and_then(|&slot| self.slots[slot as usize].as_ref())
            .map_or(0, |state| state.blocks.len())
    }

    /// The last event id applied for `worker`.
    pub fn last_event_id(&self, worker: WorkerId) -> Option<u64> {
        let slot = *self.slot_of.get(&worker)?;
        self.slots[slot as usize].as_ref()?.last_event_id
    }

    /// All known workers, in no particular order.
    pub fn workers(&self) -> impl Iterator<Item = WorkerId> + '_ {
        self.slots.iter().flatten().map(|state| state.id)
    }

    /// Number of distinct cached blocks (held by at least one worker).
    pub fn distinct_blocks(&self) -> usize {
        self.segments.len()
    }

    /// Number of (block, worker) entries.
    pub fn entries(&self) -> usize {
        self.slots.iter().flatten().map(|s| s.blocks.len()).sum()
    }

    /// Heap bytes owned by the index (tables sized by capacity, not by use).
    pub fn heap_bytes(&self) -> usize {
        self.segments.heap_bytes()
            + self
                .slots
                .iter()
                .flatten()
                .map(|s| s.blocks.heap_bytes())
                .sum::<usize>()
            + self.slots.capacity() * std::mem::size_of::<Option<WorkerBlocks>>()
    }
}

#[cfg(test)]
mod tests;
