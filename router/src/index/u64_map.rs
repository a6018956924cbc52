//! `U64Map`: a compact hash map from `u64` keys (already well mixed: hashes or ids) to
//! `u64` values, the index's workhorse table.
//!
//! Open addressing over 16-byte slots; key 0 marks an empty slot (a real key 0 is kept
//! aside). The home slot is `mix(key) × size >> 64`, so homes are monotone in the mixed
//! key and the table may have any size: it grows by half at 80 % load, keeping its load
//! between about 53 % and 80 % (hashbrown's power-of-two sizes swing between 44 % and
//! 88 %, with a control byte per slot on top).
//!
//! Entries are kept *sorted by mixed key*, hence by home (Robin Hood order with linear
//! probing): a lookup stops at the first slot whose entry sorts after it, and insertion and deletion
//! shift the few displaced neighbours with one `memmove`, so no probe walks a whole
//! cluster and no tombstones are left. Instead of wrapping around, the table has
//! `SLACK` overflow slots past its last home; an insert that would run past them grows
//! the table. Slots can be prefetched, so that an event's many lookups overlap their
//! cache misses.

/// Largest load before growing, as `MAX_LOAD_NUM / MAX_LOAD_DEN`.
const MAX_LOAD_NUM: usize = 4;
const MAX_LOAD_DEN: usize = 5;
const MIN_HOMES: usize = 8;
/// Overflow slots past the last home slot.
const SLACK: usize = 64;

/// `u64` → `u64` hash map (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct U64Map {
    /// `(key, value)`; key 0 = empty. `homes + SLACK` slots (or none).
    slots: Vec<(u64, u64)>,
    /// Number of home slots.
    homes: usize,
    /// Entries in `slots` (not counting `zero`).
    len: usize,
    /// The value of key 0, which cannot live in `slots`.
    zero: Option<u64>,
}

/// A bijective mix (xorshift, then an odd multiplier), so that small or patterned keys
/// spread too; entries are kept sorted by it.
#[inline]
fn mix(key: u64) -> u64 {
    (key ^ (key >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The home slot: the mixed key scaled onto `0..homes` (monotone in the mixed key).
#[inline]
fn home(key: u64, homes: usize) -> usize {
    ((u128::from(mix(key)) * homes as u128) >> 64) as usize
}

/// Where a key is, or where it would go.
enum Probe {
    Found(usize),
    /// Not present; it belongs at this slot (occupied entries from here on shift right).
    Vacant(usize),
}

impl U64Map {
    /// Number of entries.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len + usize::from(self.zero.is_some())
    }

    /// Finds `key` (non-zero) in a non-empty table.
    #[inline]
    fn probe(&self, key: u64) -> Probe {
        let mixed = mix(key);
        let mut at = home(key, self.homes);
        loop {
            let k = match self.slots.get(at) {
                Some(slot) => slot.0,
                None => return Probe::Vacant(at),
            };
            if k == key {
                return Probe::Found(at);
            }
            if k == 0 || mix(k) > mixed {
                return Probe::Vacant(at);
            }
            at += 1;
        }
    }

    /// Hints the CPU to start loading the home slot of `key`.
    #[inline]
    pub(crate) fn prefetch(&self, key: u64) {
        if self.slots.is_empty() {
            return;
        }
        let at = home(key, self.homes);
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            // An insert scans on to the next empty slot: load the following line too.
            let ptr = self.slots.as_ptr().wrapping_add(at).cast::<i8>();
            // SAFETY: a prefetch is only a hint; it never faults, whatever the address.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(ptr);
                _mm_prefetch::<_MM_HINT_T0>(ptr.wrapping_add(64));
            }
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
            Probe::Found(at) => Some(self.slots[at].1),
            Probe::Vacant(_) => None,
        }
    }

    /// Makes room for `additional` more entries without growing on the way (unless
    /// the overflow slots run out).
    #[inline]
    pub(crate) fn reserve(&mut self, additional: usize) {
        if (self.len + additional) * MAX_LOAD_DEN > self.homes * MAX_LOAD_NUM {
            self.grow_for(self.len + additional);
        }
    }

    #[cold]
    fn grow_for(&mut self, needed: usize) {
        let mut homes = self.homes.max(MIN_HOMES);
        while needed * MAX_LOAD_DEN > homes * MAX_LOAD_NUM {
            homes *= 2;
        }
        self.resize(homes);
    }

    /// Puts `(key, value)` at `at`, shifting the entries from `at` up to the next empty
    /// slot one place right; false (and no change) if that would run past the overflow
    /// slots.
    #[inline]
    fn place(&mut self, at: usize, key: u64, value: u64) -> bool {
        // Carry the displaced entries one slot right until the carried one lands in an
        // empty slot (usually within a cache line or two).
        let mut carry = (key, value);
        for slot in &mut self.slots[at..] {
            carry = std::mem::replace(slot, carry);
            if carry.0 == 0 {
                self.len += 1;
                return true;
            }
        }
        // Ran past the overflow slots: undo the carries.
        let end = self.slots.len() - 1;
        let mut back = carry;
        for slot in self.slots[at..=end].iter_mut().rev() {
            back = std::mem::replace(slot, back);
        }
        debug_assert_eq!(back.0, key);
        false
    }

    /// Inserts a non-zero key known to be absent.
    fn insert_new(&mut self, key: u64, value: u64) {
        loop {
            if let Probe::Vacant(at) = self.probe(key)
                && at < self.slots.len()
                && self.place(at, key, value)
            {
                return;
            }
            // The overflow slots ran out: grow and retry.
            let homes = self.homes + self.homes / 2;
            self.resize(homes);
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
            Probe::Found(at) => return Some(std::mem::replace(&mut self.slots[at].1, value)),
            Probe::Vacant(at) if at < self.slots.len() && self.place(at, key, value) => {}
            // The overflow slots ran out.
            Probe::Vacant(_) => self.insert_new(key, value),
        }
        None
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove(&mut self, key: u64) -> Option<u64> {
        if key == 0 {
            return self.zero.take();
        }
        if self.slots.is_empty() {
            return None;
        }
        let Probe::Found(at) = self.probe(key) else {
            return None;
        };
        let value = self.slots[at].1;
        self.len -= 1;
        // Shift back the following entries that sit past their home.
        let mut end = at + 1;
        while let Some(&(k, _)) = self.slots.get(end) {
            if k == 0 || home(k, self.homes) >= end {
                break;
            }
            end += 1;
        }
        self.slots.copy_within(at + 1..end, at);
        self.slots[end - 1] = (0, 0);
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

    fn resize(&mut self, homes: usize) {
        let total = homes + SLACK;
        // A zeroed allocation (fresh pages need no clearing), then one scatter pass:
        // old entries come out sorted by mixed key, so each lands at or just after the
        // previous one and the writes stream through the new table.
        let old = std::mem::replace(&mut self.slots, vec![(0, 0); total]);
        self.homes = homes;
        let mut overflow = Vec::new();
        let mut next = 0;
        for &(key, value) in old.iter().filter(|s| s.0 != 0) {
            let at = home(key, homes).max(next);
            if at >= total {
                // Cannot happen at these loads; inserted the general way below.
                overflow.push((key, value));
                continue;
            }
            self.slots[at] = (key, value);
            next = at + 1;
        }
        self.len -= overflow.len();
        for (key, value) in overflow {
            self.insert_new(key, value);
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
                0..3 => assert_eq!(map.insert(key, step), reference.insert(key, step)),
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
