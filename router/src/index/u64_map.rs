//! `U64Map`: a compact hash map from `u64` keys (already well mixed: hashes or ids) to
//! `u64` values, the index's workhorse table.
//!
//! Open addressing with linear probing over 16-byte slots; key 0 marks an empty slot
//! (a real key 0 is kept aside). The table may have any length — the home slot is
//! `mix(key) × len >> 64` — and grows by half at 80 % load, so its load stays between
//! about 53 % and 80 % (hashbrown's power-of-two sizes swing between 44 % and 88 %,
//! with a control byte per slot on top). Deletion shifts later entries back instead of
//! leaving tombstones. Slots can be prefetched, so that an event's many lookups overlap
//! their cache misses.

/// Largest load before growing, as `MAX_LOAD_NUM / MAX_LOAD_DEN`.
const MAX_LOAD_NUM: usize = 4;
const MAX_LOAD_DEN: usize = 5;
const MIN_SLOTS: usize = 8;

/// `u64` → `u64` hash map (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct U64Map {
    /// `(key, value)`; key 0 = empty.
    slots: Vec<(u64, u64)>,
    /// Entries in `slots` (not counting `zero`).
    len: usize,
    /// The value of key 0, which cannot live in `slots`.
    zero: Option<u64>,
}

#[inline]
fn home(key: u64, size: usize) -> usize {
    // Multiply-mix so that small or patterned keys spread too, then map onto `0..size`.
    let mixed = (key ^ (key >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((u128::from(mixed) * size as u128) >> 64) as usize
}

impl U64Map {
    /// A map with room for `capacity` entries before it grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut map = U64Map::default();
        map.reserve(capacity);
        map
    }

    /// Number of entries.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len + usize::from(self.zero.is_some())
    }

    #[inline]
    fn next(&self, at: usize) -> usize {
        if at + 1 == self.slots.len() { 0 } else { at + 1 }
    }

    /// The slot holding `key` (non-zero), or the empty slot ending its probe sequence.
    #[inline]
    fn probe(&self, key: u64) -> (usize, bool) {
        let mut at = home(key, self.slots.len());
        loop {
            let k = self.slots[at].0;
            if k == key {
                return (at, true);
            }
            if k == 0 {
                return (at, false);
            }
            at = self.next(at);
        }
    }

    /// Hints the CPU to start loading the home slot of `key`.
    #[inline]
    pub(crate) fn prefetch(&self, key: u64) {
        if self.slots.is_empty() {
            return;
        }
        let at = home(key, self.slots.len());
        #[cfg(target_arch = "x86_64")]
        {
            let ptr = self.slots.as_ptr().wrapping_add(at).cast::<i8>();
            // SAFETY: a prefetch is only a hint; it never faults and `ptr` is in bounds.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = at;
    }

    /// The value of `key`.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<u64> {
        if key == 0 {
            return self.zero;
        }
        if self.slots.is_empty() {
            return None;
        }
        match self.probe(key) {
            (at, true) => Some(self.slots[at].1),
            _ => None,
        }
    }

    /// Makes room for `additional` more entries without growing on the way.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let needed = self.len + additional;
        if needed * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            let mut size = self.slots.len().max(MIN_SLOTS);
            while needed * MAX_LOAD_DEN > size * MAX_LOAD_NUM {
                size += size / 2;
            }
            self.resize(size);
        }
    }

    /// Sets `key` to `value`; returns the previous value.
    #[inline]
    pub(crate) fn insert(&mut self, key: u64, value: u64) -> Option<u64> {
        if key == 0 {
            return self.zero.replace(value);
        }
        self.reserve(1);
        match self.probe(key) {
            (at, true) => Some(std::mem::replace(&mut self.slots[at].1, value)),
            (at, false) => {
                self.slots[at] = (key, value);
                self.len += 1;
                None
            }
        }
    }

    /// Inserts `key` unless it is present; returns whether it was inserted.
    #[inline]
    pub(crate) fn insert_if_absent(&mut self, key: u64, value: u64) -> bool {
        if key == 0 {
            if self.zero.is_some() {
                return false;
            }
            self.zero = Some(value);
            return true;
        }
        self.reserve(1);
        match self.probe(key) {
            (_, true) => false,
            (at, false) => {
                self.slots[at] = (key, value);
                self.len += 1;
                true
            }
        }
    }

    /// Sets the value of a `key` that is present; returns false if it is not.
    #[inline]
    pub(crate) fn update(&mut self, key: u64, value: u64) -> bool {
        if key == 0 {
            return self.zero.as_mut().map(|v| *v = value).is_some();
        }
        if self.slots.is_empty() {
            return false;
        }
        match self.probe(key) {
            (at, true) => {
                self.slots[at].1 = value;
                true
            }
            _ => false,
        }
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove(&mut self, key: u64) -> Option<u64> {
        if key == 0 {
            return self.zero.take();
        }
        if self.slots.is_empty() {
            return None;
        }
        let (mut hole, found) = self.probe(key);
        if !found {
            return None;
        }
        let value = self.slots[hole].1;
        self.len -= 1;
        let size = self.slots.len();
        let mut at = self.next(hole);
        loop {
            let slot = self.slots[at];
            if slot.0 == 0 {
                break;
            }
            // Move `slot` into the hole if its home lies cyclically outside (hole, at].
            let want = home(slot.0, size);
            let to_hole = if at >= hole { at - hole } else { at + size - hole };
            let to_home = if at >= want { at - want } else { at + size - want };
            if to_home >= to_hole {
                self.slots[hole] = slot;
                hole = at;
            }
            at = self.next(at);
        }
        self.slots[hole] = (0, 0);
        Some(value)
    }

    /// Calls `f` on every `(key, value)`, in no particular order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        if let Some(value) = self.zero {
            f(0, value);
        }
        for &(key, value) in &self.slots {
            if key != 0 {
                f(key, value);
            }
        }
    }

    fn resize(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.slots, vec![(0, 0); size]);
        for (key, value) in old.into_iter().filter(|s| s.0 != 0) {
            let mut at = home(key, size);
            while self.slots[at].0 != 0 {
                at = self.next(at);
            }
            self.slots[at] = (key, value);
        }
    }

    /// Heap bytes owned by the map.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<(u64, u64)>()
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
        let mut map = U64Map::default();
        let mut reference: HashMap<u64, u64> = HashMap::new();
        for step in 0..80_000u64 {
            // Small key space (including 0) forces collisions, wrap-around, growth and
            // backward shifts.
            let key = rng.random_range(0..3_000u64);
            match rng.random_range(0..4) {
                0 | 1 => assert_eq!(map.insert(key, step), reference.insert(key, step)),
                2 => assert_eq!(map.update(key, step), {
                    let present = reference.contains_key(&key);
                    if present {
                        reference.insert(key, step);
                    }
                    present
                }),
                _ => assert_eq!(map.remove(key), reference.remove(&key)),
            }
        }
        assert_eq!(map.len(), reference.len());
        for key in 0..3_000u64 {
            assert_eq!(map.get(key), reference.get(&key).copied(), "key {key}");
        }
        let mut seen = 0;
        map.for_each(|k, v| {
            assert_eq!(reference.get(&k), Some(&v));
            seen += 1;
        });
        assert_eq!(seen, reference.len());
    }
}
