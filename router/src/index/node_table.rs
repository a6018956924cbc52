//! The global node table: sequence hash → set of worker slots holding that block.
//!
//! An open-addressing, linear-probing table of 16-byte slots. A node held by one or two
//! workers stores them inline, so the common case costs one cache line per lookup and
//! no pointer chase; larger sets live in a side slab ([`SpillSet`]). Keys are sequence
//! hashes (already uniformly distributed), mixed once more so that small test keys
//! spread as well.

use super::worker_set::SpillSet;

/// Marks an unused inline position (and an empty table slot when in `first`).
const NONE: u32 = u32::MAX;
/// In `first`, marks that `second` indexes the spill slab.
const SPILLED: u32 = u32::MAX - 1;
/// Largest worker slot id the inline encoding can hold.
pub(crate) const MAX_SLOT: u32 = u32::MAX - 2;

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: u64,
    first: u32,
    second: u32,
}

const EMPTY: Slot = Slot {
    key: 0,
    first: NONE,
    second: NONE,
};

/// Read-only view of one node's worker set.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NodeWorkers<'a> {
    /// One or two inline slots (`second` may be absent).
    Inline(u32, Option<u32>),
    /// An out-of-line set.
    Spilled(&'a SpillSet),
}

/// Sequence hash → worker-slot set.
#[derive(Debug, Clone)]
pub(crate) struct NodeTable {
    slots: Vec<Slot>,
    mask: usize,
    len: usize,
    spill: Vec<SpillSet>,
    free_spill: Vec<u32>,
}

#[inline]
fn home(key: u64, mask: usize) -> usize {
    // Fibonacci mixing: keeps consecutive small keys apart; sequence hashes are random anyway.
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

impl Default for NodeTable {
    fn default() -> Self {
        Self::with_capacity(1024)
    }
}

impl NodeTable {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let size = (capacity * 4 / 3).next_power_of_two().max(16);
        NodeTable {
            slots: vec![EMPTY; size],
            mask: size - 1,
            len: 0,
            spill: Vec::new(),
            free_spill: Vec::new(),
        }
    }

    /// Number of distinct nodes (blocks held by at least one worker).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn find(&self, key: u64) -> Option<usize> {
        let mut at = home(key, self.mask);
        loop {
            let slot = &self.slots[at];
            if slot.first == NONE {
                return None;
            }
            if slot.key == key {
                return Some(at);
            }
            at = (at + 1) & self.mask;
        }
    }

    /// Hints the CPU to start loading the home slot of `key`.
    #[inline]
    pub(crate) fn prefetch(&self, key: u64) {
        let at = home(key, self.mask);
        #[cfg(target_arch = "x86_64")]
        {
            let ptr = self.slots.as_ptr().wrapping_add(at).cast::<i8>();
            // SAFETY: a prefetch is only a hint; it never faults and `ptr` is in bounds.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = at;
    }

    /// The workers holding `key`, if any.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<NodeWorkers<'_>> {
        let slot = &self.slots[self.find(key)?];
        Some(if slot.first == SPILLED {
            NodeWorkers::Spilled(&self.spill[slot.second as usize])
        } else {
            NodeWorkers::Inline(slot.first, (slot.second != NONE).then_some(slot.second))
        })
    }

    /// Adds `worker` to node `key`, creating the node; returns whether it was new.
    pub(crate) fn insert(&mut self, key: u64, worker: u32) -> bool {
        debug_assert!(worker <= MAX_SLOT);
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let mut at = home(key, self.mask);
        loop {
            let slot = self.slots[at];
            if slot.first == NONE {
                self.slots[at] = Slot {
                    key,
                    first: worker,
                    second: NONE,
                };
                self.len += 1;
                return true;
            }
            if slot.key == key {
                return self.add_to_slot(at, worker);
            }
            at = (at + 1) & self.mask;
        }
    }

    fn add_to_slot(&mut self, at: usize, worker: u32) -> bool {
        let slot = self.slots[at];
        if slot.first == SPILLED {
            return self.spill[slot.second as usize].insert(worker);
        }
        if slot.first == worker || slot.second == worker {
            return false;
        }
        if slot.second == NONE {
            self.slots[at].second = worker;
            return true;
        }
        let set = SpillSet::from_slots(&[slot.first, slot.second, worker]);
        let index = match self.free_spill.pop() {
            Some(index) => {
                self.spill[index as usize] = set;
                index
            }
            None => {
                self.spill.push(set);
                (self.spill.len() - 1) as u32
            }
        };
        self.slots[at].first = SPILLED;
        self.slots[at].second = index;
        true
    }

    /// Removes `worker` from node `key`, dropping the node when no worker is left;
    /// returns whether the worker was there.
    pub(crate) fn remove(&mut self, key: u64, worker: u32) -> bool {
        let Some(at) = self.find(key) else {
            return false;
        };
        let slot = self.slots[at];
        if slot.first == SPILLED {
            let index = slot.second as usize;
            if !self.spill[index].remove(worker) {
                return false;
            }
            if self.spill[index].len() <= 2 {
                // Shrink back inline so that lookups stay pointer-free.
                let rest = self.spill[index].slots();
                self.spill[index] = SpillSet::List(Vec::new());
                self.free_spill.push(index as u32);
                self.slots[at].first = rest.first().copied().unwrap_or(NONE);
                self.slots[at].second = rest.get(1).copied().unwrap_or(NONE);
                if rest.is_empty() {
                    self.delete_at(at);
                }
            }
            return true;
        }
        if slot.second == worker {
            self.slots[at].second = NONE;
            true
        } else if slot.first == worker {
            if slot.second == NONE {
                self.delete_at(at);
            } else {
                self.slots[at].first = slot.second;
                self.slots[at].second = NONE;
            }
            true
        } else {
            false
        }
    }

    /// Backward-shift deletion keeps probe sequences intact without tombstones.
    fn delete_at(&mut self, mut hole: usize) {
        self.len -= 1;
        let mut at = (hole + 1) & self.mask;
        loop {
            let slot = self.slots[at];
            if slot.first == NONE {
                break;
            }
            let want = home(slot.key, self.mask);
            // Move `slot` into the hole if its home lies cyclically outside (hole, at].
            let distance_to_hole = at.wrapping_sub(hole) & self.mask;
            let distance_to_home = at.wrapping_sub(want) & self.mask;
            if distance_to_home >= distance_to_hole {
                self.slots[hole] = slot;
                hole = at;
            }
            at = (at + 1) & self.mask;
        }
        self.slots[hole] = EMPTY;
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        self.mask = size - 1;
        for slot in old.into_iter().filter(|s| s.first != NONE) {
            let mut at = home(slot.key, self.mask);
            while self.slots[at].first != NONE {
                at = (at + 1) & self.mask;
            }
            self.slots[at] = slot;
        }
    }

    /// Heap bytes owned by the table, including out-of-line sets.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.spill.capacity() * std::mem::size_of::<SpillSet>()
            + self.spill.iter().map(SpillSet::heap_bytes).sum::<usize>()
            + self.free_spill.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers(table: &NodeTable, key: u64) -> Vec<u32> {
        let mut out = match table.get(key) {
            None => Vec::new(),
            Some(NodeWorkers::Inline(a, b)) => [Some(a), b].into_iter().flatten().collect(),
            Some(NodeWorkers::Spilled(set)) => set.slots(),
        };
        out.sort_unstable();
        out
    }

    #[test]
    fn insert_spill_and_shrink_back() {
        let mut table = NodeTable::default();
        for worker in 0..5 {
            assert!(table.insert(7, worker));
        }
        assert!(!table.insert(7, 3));
        assert_eq!(workers(&table, 7), vec![0, 1, 2, 3, 4]);
        for worker in [0, 2, 4] {
            assert!(table.remove(7, worker));
        }
        assert!(matches!(
            table.get(7),
            Some(NodeWorkers::Inline(_, Some(_)))
        ));
        assert_eq!(workers(&table, 7), vec![1, 3]);
        assert!(table.remove(7, 1) && table.remove(7, 3));
        assert!(table.get(7).is_none());
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn matches_a_reference_map_under_random_churn() {
        use rand::{Rng, SeedableRng};
        use std::collections::{BTreeSet, HashMap};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut table = NodeTable::with_capacity(4);
        let mut reference: HashMap<u64, BTreeSet<u32>> = HashMap::new();
        for _ in 0..50_000 {
            // Small key space forces collisions, growth and backward shifts.
            let key = rng.random_range(0..2_000u64);
            let worker = rng.random_range(0..40u32);
            if rng.random_bool(0.6) {
                let fresh = reference.entry(key).or_default().insert(worker);
                assert_eq!(table.insert(key, worker), fresh);
            } else {
                let present = reference
                    .get_mut(&key)
                    .is_some_and(|set| set.remove(&worker));
                reference.retain(|_, set| !set.is_empty());
                assert_eq!(table.remove(key, worker), present);
            }
        }
        assert_eq!(table.len(), reference.len());
        for key in 0..2_000u64 {
            let expected: Vec<u32> = reference
                .get(&key)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            assert_eq!(workers(&table, key), expected, "key {key}");
        }
    }
}
