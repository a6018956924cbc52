//! The block table: sequence hash → where the block lives (its run and position label),
//! a [`U64Map`] with the place packed into the value.

use super::u64_map::U64Map;

/// Where a block lives: run id and position label (see `forest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockRef {
    pub(crate) run: u32,
    pub(crate) pos: u32,
}

impl BlockRef {
    #[inline]
    fn pack(self) -> u64 {
        u64::from(self.run) << 32 | u64::from(self.pos)
    }

    #[inline]
    fn unpack(value: u64) -> Self {
        BlockRef {
            run: (value >> 32) as u32,
            pos: value as u32,
        }
    }
}

/// Sequence hash → [`BlockRef`].
#[derive(Debug, Clone, Default)]
pub(crate) struct BlockTable {
    map: U64Map,
}

impl BlockTable {
    /// A table with room for `capacity` blocks before it grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        BlockTable {
            map: U64Map::with_capacity(capacity),
        }
    }

    /// Number of blocks.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Hints the CPU to start loading the slot of `key`.
    #[inline]
    pub(crate) fn prefetch(&self, key: u64) {
        self.map.prefetch(key);
    }

    /// Where `key` lives, if anywhere.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<BlockRef> {
        self.map.get(key).map(BlockRef::unpack)
    }

    /// Records `key` at `place` unless it is already present; returns whether it was new.
    #[inline]
    pub(crate) fn insert_if_absent(&mut self, key: u64, place: BlockRef) -> bool {
        self.map.insert_if_absent(key, place.pack())
    }

    /// Moves a block that is in the table to `place`.
    #[inline]
    pub(crate) fn relocate(&mut self, key: u64, place: BlockRef) {
        let present = self.map.update(key, place.pack());
        debug_assert!(present, "relocated block is present");
    }

    /// Removes `key`; returns whether it was there.
    #[inline]
    pub(crate) fn remove(&mut self, key: u64) -> bool {
        self.map.remove(key).is_some()
    }

    /// Heap bytes owned by the table.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.map.heap_bytes()
    }
}
