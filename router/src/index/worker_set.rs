//! Worker sets shared between runs: a run's set of worker slots is a [`SetId`], either a
//! single slot encoded inline (the common case: a conversation's blocks live on one
//! worker) or an index into a pool of interned sets, so that the many runs held by the
//! same workers share one copy. Interned sets are sorted slot lists; large ones also
//! carry a bitmap so that intersecting them with a query's candidates costs
//! `workers / 64` word operations.

use std::collections::HashMap;

/// Marks a [`SetId`] that is a single inline slot.
const SINGLE: u32 = 1 << 31;
/// Interned sets larger than this also keep a bitmap.
const BITMAP_FROM: usize = 16;

/// A set of worker slots (never empty): a single slot or an interned set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SetId(u32);

impl SetId {
    /// The set holding only `slot`.
    #[inline]
    pub(crate) fn single(slot: u32) -> Self {
        debug_assert!(slot < SINGLE);
        SetId(slot | SINGLE)
    }
}

/// Read-only view of a set, in the form cheapest to intersect.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SetView<'a> {
    /// One slot.
    Single(u32),
    /// A small sorted list.
    List(&'a [u32]),
    /// A bitmap over slots.
    Bits(&'a [u64]),
}

#[derive(Debug, Clone, Default)]
struct Entry {
    slots: Vec<u32>,
    bits: Vec<u64>,
    refs: u32,
}

/// Interned worker sets with reference counts (one reference per run using the set).
#[derive(Debug, Clone, Default)]
pub(crate) struct SetPool {
    entries: Vec<Entry>,
    free: Vec<u32>,
    by_content: HashMap<Vec<u32>, u32, std::hash::BuildHasherDefault<SlotsHasher>>,
}

/// FNV-style hasher for slot lists (interning keys).
#[derive(Default)]
pub(crate) struct SlotsHasher(u64);

impl std::hash::Hasher for SlotsHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
    }
    fn write_u32(&mut self, value: u32) {
        self.0 = (self.0 ^ u64::from(value)).wrapping_mul(0x100_0000_01B3);
    }
    fn write_usize(&mut self, value: usize) {
        self.0 = (self.0 ^ value as u64).wrapping_mul(0x100_0000_01B3);
    }
}

impl SetPool {
    /// The set's slots in the cheapest form for intersection.
    #[inline]
    pub(crate) fn view(&self, id: SetId) -> SetView<'_> {
        if id.0 & SINGLE != 0 {
            return SetView::Single(id.0 & !SINGLE);
        }
        let entry = &self.entries[id.0 as usize];
        if entry.bits.is_empty() {
            SetView::List(&entry.slots)
        } else {
            SetView::Bits(&entry.bits)
        }
    }

    /// Whether `slot` is in the set.
    #[inline]
    pub(crate) fn contains(&self, id: SetId, slot: u32) -> bool {
        match self.view(id) {
            SetView::Single(s) => s == slot,
            SetView::List(list) => list.binary_search(&slot).is_ok(),
            SetView::Bits(words) => bit(words, slot),
        }
    }

    /// Number of slots in the set.
    #[cfg(test)]
    pub(crate) fn len(&self, id: SetId) -> usize {
        match self.view(id) {
            SetView::Single(_) => 1,
            SetView::List(list) => list.len(),
            SetView::Bits(_) => self.entries[id.0 as usize].slots.len(),
        }
    }

    /// The set's slots, sorted.
    pub(crate) fn slots(&self, id: SetId) -> Vec<u32> {
        match self.view(id) {
            SetView::Single(s) => vec![s],
            _ => self.entries[id.0 as usize].slots.clone(),
        }
    }

    /// The set plus `slot`, with a new reference taken on the result.
    pub(crate) fn with(&mut self, id: SetId, slot: u32) -> SetId {
        let mut slots = self.slots(id);
        if let Err(at) = slots.binary_search(&slot) {
            slots.insert(at, slot);
        }
        self.intern(slots)
    }

    /// The set minus `slot` (which must leave it non-empty), with a new reference
    /// taken on the result.
    pub(crate) fn without(&mut self, id: SetId, slot: u32) -> SetId {
        let mut slots = self.slots(id);
        if let Ok(at) = slots.binary_search(&slot) {
            slots.remove(at);
        }
        assert!(!slots.is_empty(), "a worker set never becomes empty");
        self.intern(slots)
    }

    fn intern(&mut self, slots: Vec<u32>) -> SetId {
        if let [single] = slots[..] {
            return SetId::single(single);
        }
        if let Some(&index) = self.by_content.get(&slots) {
            self.entries[index as usize].refs += 1;
            return SetId(index);
        }
        let bits = if slots.len() > BITMAP_FROM {
            let mut words = vec![0u64; (*slots.last().expect("non-empty") / 64 + 1) as usize];
            for &s in &slots {
                let (w, mask) = locate(s);
                words[w] |= mask;
            }
            words
        } else {
            Vec::new()
        };
        let entry = Entry {
            slots: slots.clone(),
            bits,
            refs: 1,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.entries[index as usize] = entry;
                index
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        assert!(index < SINGLE, "too many worker sets");
        self.by_content.insert(slots, index);
        SetId(index)
    }

    /// Takes another reference on `id`.
    #[inline]
    pub(crate) fn retain(&mut self, id: SetId) {
        if id.0 & SINGLE == 0 {
            self.entries[id.0 as usize].refs += 1;
        }
    }

    /// Drops a reference on `id`, freeing the set with its last one.
    pub(crate) fn release(&mut self, id: SetId) {
        if id.0 & SINGLE != 0 {
            return;
        }
        let entry = &mut self.entries[id.0 as usize];
        entry.refs -= 1;
        if entry.refs == 0 {
            let entry = std::mem::take(entry);
            self.by_content.remove(&entry.slots);
            self.free.push(id.0);
        }
    }

    /// Number of interned (multi-worker) sets alive.
    #[cfg(test)]
    pub(crate) fn interned(&self) -> usize {
        self.by_content.len()
    }

    /// Heap bytes owned by the pool.
    pub(crate) fn heap_bytes(&self) -> usize {
        let sets: usize = self
            .entries
            .iter()
            .map(|e| e.slots.capacity() * 8 + e.bits.capacity() * 8)
            .sum();
        sets + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.by_content.capacity() * (std::mem::size_of::<(Vec<u32>, u32)>() + 1)
            + self.free.capacity() * 4
    }
}

#[inline]
pub(crate) fn locate(slot: u32) -> (usize, u64) {
    ((slot / 64) as usize, 1u64 << (slot % 64))
}

#[inline]
pub(crate) fn bit(words: &[u64], slot: u32) -> bool {
    let (word, mask) = locate(slot);
    words.get(word).is_some_and(|w| w & mask != 0)
}

/// Calls `f` with every set bit's index, in increasing order.
#[inline]
pub(crate) fn for_each_bit(words: &[u64], mut f: impl FnMut(u32)) {
    for (index, &word) in words.iter().enumerate() {
        let mut rest = word;
        while rest != 0 {
            f(index as u32 * 64 + rest.trailing_zeros());
            rest &= rest - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_shares_sets_and_frees_them_with_the_last_reference() {
        let mut pool = SetPool::default();
        let a = SetId::single(3);
        let ab = pool.with(a, 7);
        let ab2 = pool.with(SetId::single(7), 3);
        assert_eq!(ab, ab2);
        assert_eq!(pool.slots(ab), vec![3, 7]);
        assert_eq!(pool.without(ab, 7), a);
        pool.release(ab);
        assert_eq!(pool.interned(), 1);
        pool.release(ab2);
        assert_eq!(pool.interned(), 0);
        assert!(pool.contains(a, 3) && !pool.contains(a, 4));
    }

    #[test]
    fn large_sets_carry_a_bitmap() {
        let mut pool = SetPool::default();
        let mut id = SetId::single(0);
        for slot in 1..100u32 {
            let next = pool.with(id, slot * 3);
            pool.release(id);
            id = next;
        }
        assert_eq!(pool.len(id), 100);
        assert!(matches!(pool.view(id), SetView::Bits(_)));
        assert!(pool.contains(id, 297) && pool.contains(id, 0) && !pool.contains(id, 298));
        assert_eq!(pool.interned(), 1);
    }
}
