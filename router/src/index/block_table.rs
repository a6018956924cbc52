//! The block table: sequence hash → where the block lives (its run and position).
//!
//! Open addressing with linear probing over 16-byte slots, sized by any length (not
//! just powers of two: the home slot is `hash × len >> 64`), grown by half when it
//! passes 80 % load, so its load stays between about 53 % and 80 %. Deletion shifts
//! later entries back instead of leaving tombstones.

/// Marks an empty slot (in `run`).
const EMPTY_RUN: u32 = u32::MAX;
/// Largest load before growing, as a fraction `NUM / DEN`.
const MAX_LOAD_NUM: usize = 4;
const MAX_LOAD_DEN: usize = 5;

/// Where a block lives: run id and position label (see `forest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockRef {
    pub(crate) run: u32,
    pub(crate) pos: u32,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: u64,
    run: u32,
    pos: u32,
}

const EMPTY: Slot = Slot {
    key: 0,
    run: EMPTY_RUN,
    pos: 0,
};

/// Sequence hash → [`BlockRef`].
#[derive(Debug, Clone)]
pub(crate) struct BlockTable {
    slots: Vec<Slot>,
    len: usize,
}

#[inline]
fn home(key: u64, size: usize) -> usize {
    // Multiply-mix so that small test keys spread too, then map onto `0..size`.
    let mixed = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (key >> 29);
    ((u128::from(mixed) * size as u128) >> 64) as usize
}

impl Default for BlockTable {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl BlockTable {
    /// A table with room for `capacity` blocks before it grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let size = (capacity * MAX_LOAD_DEN / MAX_LOAD_NUM + 1).max(16);
        BlockTable {
            slots: vec![EMPTY; size],
            len: 0,
        }
    }

    /// Number of blocks.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn next(&self, at: usize) -> usize {
        if at + 1 == self.slots.len() {
            0
        } else {
            at + 1
        }
    }

    #[inline]
    fn find(&self, key: u64) -> Option<usize> {
        let mut at = home(key, self.slots.len());
        loop {
            let slot = &self.slots[at];
            if slot.run == EMPTY_RUN {
                return None;
            }
            if slot.key == key {
                return Some(at);
            }
            at = self.next(at);
        }
    }

    /// Where `key` lives, if anywhere.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<BlockRef> {
        let slot = &self.slots[self.find(key)?];
        Some(BlockRef {
            run: slot.run,
            pos: slot.pos,
        })
    }

    /// Records a block that is not in the table yet.
    pub(crate) fn insert_new(&mut self, key: u64, place: BlockRef) {
        debug_assert!(place.run != EMPTY_RUN);
        if (self.len + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            self.grow();
        }
        let mut at = home(key, self.slots.len());
        while self.slots[at].run != EMPTY_RUN {
            debug_assert!(self.slots[at].key != key, "block already present");
            at = self.next(at);
        }
        self.slots[at] = Slot {
            key,
            run: place.run,
            pos: place.pos,
        };
        self.len += 1;
    }

    /// Moves a block that is in the table to `place`.
    #[inline]
    pub(crate) fn relocate(&mut self, key: u64, place: BlockRef) {
        let at = self.find(key).expect("relocated block is present");
        self.slots[at].run = place.run;
        self.slots[at].pos = place.pos;
    }

    /// Removes `key`; returns whether it was there.
    pub(crate) fn remove(&mut self, key: u64) -> bool {
        let Some(mut hole) = self.find(key) else {
            return false;
        };
        self.len -= 1;
        let size = self.slots.len();
        let mut at = self.next(hole);
        loop {
            let slot = self.slots[at];
            if slot.run == EMPTY_RUN {
                break;
            }
            let want = home(slot.key, size);
            // Move `slot` into the hole if its home lies cyclically outside (hole, at].
            let to_hole = (at + size - hole) % size;
            let to_home = (at + size - want) % size;
            if to_home >= to_hole {
                self.slots[hole] = slot;
                hole = at;
            }
            at = self.next(at);
        }
        self.slots[hole] = EMPTY;
        true
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 3 / 2;
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        for slot in old.into_iter().filter(|s| s.run != EMPTY_RUN) {
            let mut at = home(slot.key, size);
            while self.slots[at].run != EMPTY_RUN {
                at = self.next(at);
            }
            self.slots[at] = slot;
        }
    }

    /// Heap bytes owned by the table.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;

    #[test]
    fn matches_a_reference_map_under_random_churn() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut table = BlockTable::with_capacity(4);
        let mut reference: HashMap<u64, BlockRef> = HashMap::new();
        for step in 0..60_000u32 {
            // Small key space forces collisions, wrap-around, growth and backward shifts.
            let key = rng.random_range(0..3_000u64);
            let place = BlockRef {
                run: step,
                pos: step / 2,
            };
            match rng.random_range(0..3) {
                0 | 1 => {
                    if let std::collections::hash_map::Entry::Vacant(e) = reference.entry(key) {
                        e.insert(place);
                        table.insert_new(key, place);
                    } else {
                        reference.insert(key, place);
                        table.relocate(key, place);
                    }
                }
                _ => assert_eq!(table.remove(key), reference.remove(&key).is_some()),
            }
        }
        assert_eq!(table.len(), reference.len());
        for key in 0..3_000u64 {
            assert_eq!(table.get(key), reference.get(&key).copied(), "key {key}");
        }
    }
}
