//! Slot bookkeeping for the KV pool: free slots, reference counts, and a prefix cache of
//! full blocks keyed by sequence hash with LRU eviction of unreferenced blocks. The same
//! table keeps the GPU pool and the host tier.

use super::content::BlockKey;
use std::collections::{BTreeMap, HashMap};

/// Index of a block slot in the pool.
pub type SlotId = u32;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    refs: u32,
    /// Contents (sequence hash and position) when the slot is in the prefix cache.
    cached: Option<BlockKey>,
    /// LRU tick while unreferenced and cached.
    lru: Option<u64>,
}

/// Which slots hold what.
#[derive(Debug)]
pub struct SlotTable {
    slots: Vec<Slot>,
    free: Vec<SlotId>,
    by_hash: HashMap<u64, SlotId>,
    lru: BTreeMap<u64, SlotId>,
    tick: u64,
    evictions: u64,
}

impl SlotTable {
    /// `n` free slots.
    pub fn new(n: usize) -> Self {
        SlotTable {
            slots: vec![Slot::default(); n],
            free: (0..n as SlotId).rev().collect(),
            by_hash: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            evictions: 0,
        }
    }

    /// Total slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Slots that could be handed out now (free or evictable).
    pub fn available(&self) -> usize {
        self.free.len() + self.lru.len()
    }

    /// Cached blocks evicted so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The cached slot holding `hash`, referenced once more; `None` on a miss.
    pub fn acquire_cached(&mut self, hash: u64) -> Option<SlotId> {
        let id = *self.by_hash.get(&hash)?;
        let slot = &mut self.slots[id as usize];
        if let Some(t) = slot.lru.take() {
            self.lru.remove(&t);
        }
        slot.refs += 1;
        Some(id)
    }

    /// True when `hash` is cached.
    pub fn contains(&self, hash: u64) -> bool {
        self.by_hash.contains_key(&hash)
    }

    /// A fresh slot referenced once, evicting the least recently used unreferenced cached
    /// block if needed; `None` when every slot is referenced.
    pub fn allocate(&mut self) -> Option<SlotId> {
        self.allocate_evicting().map(|(id, _)| id)
    }

    /// Like [`SlotTable::allocate`], also naming the cached block evicted to make room (its
    /// bytes are still in the slot until the caller overwrites them).
    pub fn allocate_evicting(&mut self) -> Option<(SlotId, Option<BlockKey>)> {
        let (id, evicted) = match self.free.pop() {
            Some(id) => (id, None),
            None => {
                let (_, id) = self.lru.pop_first()?;
                let slot = &mut self.slots[id as usize];
                let evicted = slot.cached.take();
                if let Some(k) = evicted {
                    self.by_hash.remove(&k.hash);
                }
                slot.lru = None;
                self.evictions += 1;
                (id, evicted)
            }
        };
        self.slots[id as usize].refs = 1;
        Some((id, evicted))
    }

    /// Puts a filled, referenced slot into the prefix cache under `key.hash` (no-op when
    /// another slot already caches it: this one then stays private and is freed on release).
    pub fn publish(&mut self, id: SlotId, key: BlockKey) {
        if self.by_hash.contains_key(&key.hash) || self.slots[id as usize].cached.is_some() {
            return;
        }
        self.by_hash.insert(key.hash, id);
        self.slots[id as usize].cached = Some(key);
    }

    /// Takes `hash` out of the prefix cache (its contents can no longer be trusted): a
    /// referenced slot is freed on its last release, an unreferenced one at once.
    pub fn forget(&mut self, hash: u64) {
        let Some(id) = self.by_hash.remove(&hash) else {
            return;
        };
        let slot = &mut self.slots[id as usize];
        slot.cached = None;
        if let Some(t) = slot.lru.take() {
            self.lru.remove(&t);
            self.free.push(id);
        }
    }

    /// Drops one reference; an unreferenced slot becomes evictable (cached) or free.
    pub fn release(&mut self, id: SlotId) {
        let slot = &mut self.slots[id as usize];
        assert!(slot.refs > 0, "release of unreferenced slot {id}");
        slot.refs -= 1;
        if slot.refs > 0 {
            return;
        }
        if slot.cached.is_some() {
            self.tick += 1;
            slot.lru = Some(self.tick);
            self.lru.insert(self.tick, id);
        } else {
            self.free.push(id);
        }
    }

    /// Releases every slot in `ids`.
    pub fn release_all(&mut self, ids: &[SlotId]) {
        for &id in ids {
            self.release(id);
        }
    }

    /// Slots referenced by someone.
    pub fn referenced(&self) -> usize {
        self.slots.iter().filter(|s| s.refs > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hash: u64) -> BlockKey {
        BlockKey { hash, position: 0 }
    }

    #[test]
    fn cache_hit_release_and_lru_eviction() {
        let mut t = SlotTable::new(2);
        let a = t.allocate().unwrap();
        t.publish(a, key(100));
        let b = t.allocate().unwrap();
        assert!(t.allocate().is_none(), "both referenced");
        t.release(a);
        t.release(b); // private: back to the free list
        assert_eq!(t.available(), 2);
        assert_eq!(t.acquire_cached(100), Some(a));
        t.release(a);
        let c = t.allocate().unwrap();
        assert_eq!(c, b, "free slots first");
        let (d, evicted) = t.allocate_evicting().unwrap();
        assert_eq!(d, a, "then evict the cached one");
        assert_eq!(evicted, Some(key(100)), "naming what it evicted");
        assert!(!t.contains(100));
        assert_eq!(t.evictions(), 1);
        assert_eq!(t.referenced(), 2);
    }

    #[test]
    fn forgotten_blocks_are_not_served_and_their_slots_come_back() {
        let mut t = SlotTable::new(2);
        let a = t.allocate().unwrap();
        t.publish(a, key(7));
        t.release(a);
        t.forget(7);
        assert!(t.acquire_cached(7).is_none());
        assert_eq!(t.available(), 2);
        let b = t.allocate().unwrap();
        t.publish(b, key(8));
        t.forget(8); // while referenced: freed on release, not cached
        t.release(b);
        assert!(!t.contains(8));
        assert_eq!(t.available(), 2);
    }
}
