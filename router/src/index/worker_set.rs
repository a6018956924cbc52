//! Worker sets shared between ranges of blocks: a range's set of worker slots is a
//! [`SetId`], either a single slot encoded inline (the common case: a conversation's
//! blocks live on one worker) or an index into a pool of interned sets, so that the many
//! ranges held by the same workers share one copy. Interned sets are sorted slot lists;
//! large ones also carry a bitmap so that intersecting them with a query's candidates
//! costs `workers / 64` word operations.
//!
//! Sets are found by a content hash that is a sum of per-slot hashes, so adding or
//! removing a slot updates it in O(1) instead of rehashing the whole list (a block shared
//! by a thousand workers gains its holders one by one).

use super::u64_map::U64Map;

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

/// Ends a chain of entries with the same content hash.
const NO_NEXT: u32 = u32::MAX;

#[derive(Debug, Clone, Default)]
struct Entry {
    slots: Vec<u32>,
    bits: Vec<u64>,
    refs: u32,
    /// [`content_hash`] of `slots`.
    hash: u64,
    /// The next entry with the same hash (collisions are chained, never merged).
    next: u32,
}

/// Interned worker sets with reference counts (one reference per range using the set).
#[derive(Debug, Clone, Default)]
pub(crate) struct SetPool {
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Content hash → first entry of its chain.
    by_hash: U64Map,
}

/// The hash of one slot; a set's content hash is the wrapping sum over its slots.
#[inline]
fn slot_hash(slot: u32) -> u64 {
    // splitmix64's finalizer: consecutive slots get unrelated hashes.
    let mut x = u64::from(slot).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The content hash of a set of slots (independent of their order).
#[cfg(test)]
fn content_hash(slots: &[u32]) -> u64 {
    slots
        .iter()
        .fold(0u64, |h, &s| h.wrapping_add(slot_hash(s)))
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

    /// The set's content hash.
    #[inline]
    fn hash_of(&self, id: SetId) -> u64 {
        match self.view(id) {
            SetView::Single(s) => slot_hash(s),
            _ => self.entries[id.0 as usize].hash,
        }
    }

    /// The set plus `slot`, with a new reference taken on the result.
    pub(crate) fn with(&mut self, id: SetId, slot: u32) -> SetId {
        if self.contains(id, slot) {
            self.retain(id);
            return id;
        }
        let hash = self.hash_of(id).wrapping_add(slot_hash(slot));
        let mut slots = self.slots(id);
        let at = slots.binary_search(&slot).unwrap_err();
        slots.insert(at, slot);
        self.intern(slots, hash)
    }

    /// The set minus `slot` (which must leave it non-empty), with a new reference
    /// taken on the result.
    pub(crate) fn without(&mut self, id: SetId, slot: u32) -> SetId {
        if !self.contains(id, slot) {
            self.retain(id);
            return id;
        }
        let hash = self.hash_of(id).wrapping_sub(slot_hash(slot));
        let mut slots = self.slots(id);
        let at = slots.binary_search(&slot).expect("contained");
        slots.remove(at);
        assert!(!slots.is_empty(), "a worker set never becomes empty");
        self.intern(slots, hash)
    }

    /// The interned set with content `slots` (sorted) and content hash `hash`, with a
    /// new reference taken on it.
    fn intern(&mut self, slots: Vec<u32>, hash: u64) -> SetId {
        if let [single] = slots[..] {
            return SetId::single(single);
        }
        let head = self.by_hash.get(hash).map(|i| i as u32);
        let mut at = head.unwrap_or(NO_NEXT);
        while at != NO_NEXT {
            let entry = &mut self.entries[at as usize];
            if entry.slots == slots {
                entry.refs += 1;
                return SetId(at);
            }
            at = entry.next;
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
            slots,
            bits,
            refs: 1,
            hash,
            next: head.unwrap_or(NO_NEXT),
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
        self.by_hash.insert(hash, u64::from(index));
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
            self.unlink(id.0, entry.hash, entry.next);
            self.free.push(id.0);
        }
    }

    /// Takes entry `index` (content hash `hash`, followed by `next`) out of its chain.
    fn unlink(&mut self, index: u32, hash: u64, next: u32) {
        let head = self.by_hash.get(hash).expect("interned") as u32;
        if head == index {
            if next == NO_NEXT {
                self.by_hash.remove(hash);
            } else {
                self.by_hash.insert(hash, u64::from(next));
            }
            return;
        }
        let mut at = head;
        while self.entries[at as usize].next != index {
            at = self.entries[at as usize].next;
        }
        self.entries[at as usize].next = next;
    }

    /// Number of interned (multi-worker) sets alive.
    #[cfg(test)]
    pub(crate) fn interned(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// Heap bytes owned by the pool.
    pub(crate) fn heap_bytes(&self) -> usize {
        let sets: usize = self
            .entries
            .iter()
            .map(|e| e.slots.capacity() * 8 + e.bits.capacity() * 8)
            .sum();
        sets + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.by_hash.heap_bytes()
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
    fn colliding_content_hashes_are_chained_and_unlinked() {
        let mut pool = SetPool::default();
        // Force one hash for three different sets.
        let a = pool.intern(vec![1, 2], 42);
        let b = pool.intern(vec![3, 4], 42);
        let c = pool.intern(vec![5, 6], 42);
        assert!(a != b && b != c && a != c);
        assert_eq!(
            pool.intern(vec![3, 4], 42),
            b,
            "found behind the chain head"
        );
        pool.release(b);
        pool.release(b);
        // Unlinking from the middle keeps both neighbours reachable.
        assert_eq!(pool.intern(vec![1, 2], 42), a);
        assert_eq!(pool.intern(vec![5, 6], 42), c);
        assert_eq!(pool.interned(), 2);
        for id in [a, a, c, c] {
            pool.release(id);
        }
        assert_eq!((pool.interned(), pool.by_hash.len()), (0, 0));
    }

    #[test]
    fn sets_built_in_any_order_are_one_entry_with_the_right_hash() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut pool = SetPool::default();
        let mut held: Vec<SetId> = Vec::new();
        for _ in 0..5_000 {
            let slot = rng.random_range(0..40u32);
            let next = match held.len() {
                0 => SetId::single(slot),
                n => {
                    let id = held[rng.random_range(0..n)];
                    if rng.random_bool(0.6) || pool.slots(id) == [slot] {
                        pool.with(id, slot)
                    } else {
                        pool.without(id, slot)
                    }
                }
            };
            held.push(next);
            if held.len() > 200 {
                let gone = held.swap_remove(rng.random_range(0..held.len()));
                pool.release(gone);
            }
        }
        let mut by_content = std::collections::HashMap::new();
        for &id in &held {
            let slots = pool.slots(id);
            assert_eq!(pool.hash_of(id), content_hash(&slots));
            assert_eq!(
                *by_content.entry(slots).or_insert(id),
                id,
                "one entry per set"
            );
        }
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
