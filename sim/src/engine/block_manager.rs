//! Paged KV block manager with a prefix cache.
//!
//! A physical block is *free* (no content), *active* (ref-counted by running
//! sequences) or *inactive* (ref count 0 but its full, hashed content kept as
//! prefix cache). Inactive blocks are evicted least-recently-released first;
//! among blocks released together the deepest goes first, so a sequence's
//! tail is evicted before the prefix it shares with others. Evicted cached blocks can be
//! logged ([`BlockManager::log_evictions`]) for a host-memory tier to take in.

use crate::kv_event::{KvEventData, StoredBlock};
use router::{BlockHash, ExternalHash};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;

/// Index of a physical block.
pub type BlockId = u32;

#[derive(Clone, Debug, Default)]
struct Block {
    refs: u32,
    /// Sequence hash once the block is full and cached.
    hash: Option<u64>,
    /// Hash of its tokens alone, and its parent's sequence hash (for a tier's events).
    tokens: u64,
    parent: Option<u64>,
    depth: u32,
    /// Key in the evictor while inactive.
    evict_key: Option<(u64, u32)>,
}

/// A cached block's identity, as it leaves the device for a host tier and comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedBlock {
    /// Sequence hash (the whole prefix).
    pub seq_hash: u64,
    /// Hash of the block's tokens alone.
    pub tokens_hash: u64,
    /// Sequence hash of the block before it (`None` at a sequence's start).
    pub parent: Option<u64>,
    /// Index of the block in its sequence.
    pub depth: u32,
}

/// Ref-counted blocks, prefix-cache lookup, LRU tail-first eviction.
#[derive(Debug)]
pub struct BlockManager {
    blocks: Vec<Block>,
    free: Vec<BlockId>,
    by_hash: FxHashMap<u64, BlockId>,
    /// (release tick, u32::MAX - depth, block): smallest is evicted first.
    evictor: BTreeSet<(u64, u32, BlockId)>,
    tick: u64,
    events: Option<Vec<KvEventData>>,
    /// Cached blocks evicted since the last [`BlockManager::take_evicted`], if logged.
    evicted: Option<Vec<CachedBlock>>,
    evictions: u64,
}

impl BlockManager {
    /// A manager of `capacity` blocks; `record_events` buffers KV events.
    pub fn new(capacity: usize, record_events: bool) -> Self {
        BlockManager {
            blocks: vec![Block::default(); capacity],
            free: (0..capacity as BlockId).rev().collect(),
            by_hash: FxHashMap::default(),
            evictor: BTreeSet::new(),
            tick: 0,
            events: record_events.then(Vec::new),
            evicted: None,
            evictions: 0,
        }
    }

    /// Keeps every evicted cached block for [`BlockManager::take_evicted`].
    pub fn log_evictions(&mut self) {
        self.evicted.get_or_insert_with(Vec::new);
    }

    /// Drains the evicted cached blocks, in eviction order (empty unless logged).
    pub fn take_evicted(&mut self) -> Vec<CachedBlock> {
        self.evicted
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Cached blocks evicted so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Total blocks.
    pub fn capacity(&self) -> usize {
        self.blocks.len()
    }

    /// Blocks that can be handed out now (free or evictable).
    pub fn available(&self) -> usize {
        self.free.len() + self.evictor.len()
    }

    /// Blocks referenced by running sequences.
    pub fn active(&self) -> usize {
        self.capacity() - self.available()
    }

    /// Cached (hashed) blocks, active or inactive.
    pub fn cached(&self) -> usize {
        self.by_hash.len()
    }

    /// How many leading blocks of `seq_hashes` are cached.
    pub fn match_prefix(&self, seq_hashes: &[u64]) -> usize {
        seq_hashes
            .iter()
            .take_while(|h| self.by_hash.contains_key(h))
            .count()
    }

    /// Reference count of the cached block with this hash, if cached.
    pub fn ref_count(&self, seq_hash: u64) -> Option<u32> {
        self.by_hash
            .get(&seq_hash)
            .map(|&id| self.blocks[id as usize].refs)
    }

    /// Takes a reference on the cached block with this hash, if any.
    pub fn acquire_cached(&mut self, seq_hash: u64) -> Option<BlockId> {
        let id = *self.by_hash.get(&seq_hash)?;
        self.add_ref(id);
        Some(id)
    }

    fn add_ref(&mut self, id: BlockId) {
        let b = &mut self.blocks[id as usize];
        if let Some((tick, d)) = b.evict_key.take() {
            self.evictor.remove(&(tick, d, id));
        }
        b.refs += 1;
    }

    /// A fresh, empty block with one reference, evicting the least recently
    /// released cached block when no free one is left. `None` = out of memory.
    pub fn allocate(&mut self) -> Option<BlockId> {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                let (tick, d, id) = self.evictor.pop_first()?;
                let b = &mut self.blocks[id as usize];
                debug_assert_eq!(b.evict_key, Some((tick, d)));
                b.evict_key = None;
                let hash = b.hash.take().expect("inactive blocks are hashed");
                let gone = CachedBlock {
                    seq_hash: hash,
                    tokens_hash: b.tokens,
                    parent: b.parent,
                    depth: b.depth,
                };
                self.by_hash.remove(&hash);
                self.evictions += 1;
                if let Some(log) = self.evicted.as_mut() {
                    log.push(gone);
                }
                self.emit_removed(hash);
                id
            }
        };
        let b = &mut self.blocks[id as usize];
        debug_assert!(b.refs == 0 && b.hash.is_none());
        b.refs = 1;
        Some(id)
    }

    /// Marks a full block as cached under `seq_hash` (its content is now
    /// computed). If another block already holds that content, the caller's
    /// block is released and the existing one referenced instead; the
    /// returned id is the block the sequence must keep.
    pub fn commit_full(
        &mut self,
        id: BlockId,
        seq_hash: u64,
        tokens_hash: u64,
        parent: Option<u64>,
        depth: u32,
    ) -> BlockId {
        if let Some(&existing) = self.by_hash.get(&seq_hash) {
            if existing != id {
                self.add_ref(existing);
                self.release(id);
            }
            return existing;
        }
        let b = &mut self.blocks[id as usize];
        debug_assert!(b.hash.is_none() && b.refs > 0);
        b.hash = Some(seq_hash);
        b.tokens = tokens_hash;
        b.parent = parent;
        b.depth = depth;
        self.by_hash.insert(seq_hash, id);
        self.emit_stored(
            parent,
            StoredBlock {
                external: ExternalHash(seq_hash),
                tokens: BlockHash(tokens_hash),
            },
        );
        id
    }

    /// Drops one reference; at zero a hashed block becomes prefix cache and
    /// an unhashed one becomes free.
    pub fn release(&mut self, id: BlockId) {
        let tick = self.tick;
        let b = &mut self.blocks[id as usize];
        assert!(b.refs > 0, "double free of block {id}");
        b.refs -= 1;
        if b.refs > 0 {
            return;
        }
        if b.hash.is_some() {
            let key = (tick, u32::MAX - b.depth);
            b.evict_key = Some(key);
            self.evictor.insert((key.0, key.1, id));
        } else {
            self.free.push(id);
        }
    }

    /// Releases a sequence's blocks as one LRU generation, tail first.
    pub fn release_all(&mut self, ids: &[BlockId]) {
        self.tick += 1;
        for &id in ids.iter().rev() {
            self.release(id);
        }
    }

    /// Drains buffered KV events.
    pub fn take_events(&mut self) -> Vec<KvEventData> {
        self.events.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn emit_stored(&mut self, parent: Option<u64>, block: StoredBlock) {
        let Some(events) = self.events.as_mut() else {
            return;
        };
        // Coalesce a chain of stores into one event, like the engine's batches.
        if let Some(KvEventData::Stored { blocks, .. }) = events.last_mut()
            && parent.is_some()
            && blocks.last().map(|b| b.external.0) == parent
        {
            blocks.push(block);
            return;
        }
        events.push(KvEventData::Stored {
            parent: parent.map(ExternalHash),
            blocks: vec![block],
        });
    }

    fn emit_removed(&mut self, hash: u64) {
        let Some(events) = self.events.as_mut() else {
            return;
        };
        if let Some(KvEventData::Removed { blocks }) = events.last_mut() {
            blocks.push(ExternalHash(hash));
            return;
        }
        events.push(KvEventData::Removed {
            blocks: vec![ExternalHash(hash)],
        });
    }

    /// Checks internal consistency; `expected_refs` is each block's count of
    /// holders as seen from the sequences. Panics with the broken rule.
    pub fn check_invariants(&self, expected_refs: &FxHashMap<BlockId, u32>) {
        let mut free_seen = vec![false; self.blocks.len()];
        for &id in &self.free {
            assert!(!free_seen[id as usize], "block {id} twice in free list");
            free_seen[id as usize] = true;
            let b = &self.blocks[id as usize];
            assert!(b.refs == 0 && b.hash.is_none(), "free block {id} in use");
        }
        for (id, b) in self.blocks.iter().enumerate() {
            let id = id as BlockId;
            let want = expected_refs.get(&id).copied().unwrap_or(0);
            assert_eq!(b.refs, want, "block {id} ref count");
            if let Some(h) = b.hash {
                assert_eq!(self.by_hash.get(&h), Some(&id), "hash index of block {id}");
            }
            let inactive = b.refs == 0 && b.hash.is_some();
            assert_eq!(
                inactive,
                b.evict_key.is_some(),
                "evictor membership of block {id}"
            );
            if b.refs == 0 && b.hash.is_none() {
                assert!(free_seen[id as usize], "block {id} leaked");
            }
        }
        assert_eq!(
            self.by_hash.len(),
            self.blocks.iter().filter(|b| b.hash.is_some()).count()
        );
        assert!(self.active() <= self.capacity());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(pairs: &[(BlockId, u32)]) -> FxHashMap<BlockId, u32> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn cached_blocks_survive_release_and_are_reused() {
        let mut m = BlockManager::new(4, true);
        let a = m.allocate().unwrap();
        let a = m.commit_full(a, 100, 1, None, 0);
        let b = m.allocate().unwrap();
        let b = m.commit_full(b, 200, 2, Some(100), 1);
        m.release_all(&[a, b]);
        assert_eq!(m.available(), 4);
        assert_eq!(m.match_prefix(&[100, 200, 300]), 2);
        let again = m.acquire_cached(100).unwrap();
        assert_eq!(again, a);
        m.check_invariants(&refs(&[(a, 1)]));
        let events = m.take_events();
        assert_eq!(
            events.len(),
            1,
            "a parent-linked chain coalesces: {events:?}"
        );
    }

    #[test]
    fn eviction_is_lru_and_tail_first() {
        let mut m = BlockManager::new(3, true);
        let mut chain = vec![];
        let mut parent = None;
        for (depth, h) in [10u64, 11, 12].into_iter().enumerate() {
            let id = m.allocate().unwrap();
            chain.push(m.commit_full(id, h, h, parent, depth as u32));
            parent = Some(h);
        }
        m.release_all(&chain);
        m.take_events();
        // Two new blocks must evict the tail (12) then 11, keeping the prefix 10.
        let x = m.allocate().unwrap();
        let y = m.allocate().unwrap();
        assert_eq!(m.match_prefix(&[10, 11, 12]), 1);
        assert_eq!(
            m.take_events(),
            vec![KvEventData::Removed {
                blocks: vec![ExternalHash(12), ExternalHash(11)]
            }]
        );
        m.check_invariants(&refs(&[(x, 1), (y, 1)]));
        assert_eq!(m.take_evicted(), vec![], "not logged");
        m.log_evictions();
        assert!(m.allocate().is_some(), "last inactive block is evictable");
        assert_eq!(
            m.take_evicted(),
            vec![CachedBlock {
                seq_hash: 10,
                tokens_hash: 10,
                parent: None,
                depth: 0
            }]
        );
        assert_eq!(m.evictions(), 3);
        assert!(m.allocate().is_none(), "capacity is never exceeded");
    }

    #[test]
    fn duplicate_content_is_shared_not_stored_twice() {
        let mut m = BlockManager::new(4, false);
        let a = m.allocate().unwrap();
        let a = m.commit_full(a, 7, 7, None, 0);
        let b = m.allocate().unwrap();
        let kept = m.commit_full(b, 7, 7, None, 0);
        assert_eq!(kept, a);
        m.check_invariants(&refs(&[(a, 2)]));
        assert_eq!(m.active(), 1);
    }

    #[test]
    #[should_panic(expected = "double free")]
    fn double_free_is_caught() {
        let mut m = BlockManager::new(2, false);
        let a = m.allocate().unwrap();
        m.release(a);
        m.release(a);
    }
}
