//! `Heads`: first block of each segment → segment, with a one-bit-per-slot filter in
//! front. Most lookups are for blocks that head nothing (every new block is checked),
//! and the filter — 16 to 32 bits per head, a few kilobytes that stay in L1 — answers
//! those without touching the table.
//!
//! The filter is a Bloom filter with one hash: bits are set on insert and never cleared
//! on remove (another head may share the bit); it is rebuilt from the table when it
//! gets too full or too stale, so it has no false negatives and few false positives.

use crate::index::u64_map::U64Map;

/// Bits per head right after a rebuild (halves as the heads double, then rebuilds).
const BITS_PER_HEAD: usize = 32;
const MIN_BITS: usize = 1024;

/// Segment heads with a filter for absent keys (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct Heads {
    map: U64Map,
    bits: Vec<u64>,
    /// `log2(bits)`, for the bit index.
    shift: u32,
    /// Removals since the last rebuild (their bits may still be set).
    stale: usize,
}

impl Heads {
    /// Number of heads.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether `key` may head a segment (false: it certainly does not).
    #[inline]
    pub(crate) fn may_contain(&self, key: u64) -> bool {
        if self.bits.is_empty() {
            return false;
        }
        let (word, mask) = bit(key, self.shift);
        self.bits[word] & mask != 0
    }

    /// The segment headed by `key`.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<u64> {
        if !self.may_contain(key) {
            return None;
        }
        self.map.get(key)
    }

    /// Records that `key` heads `seg`.
    pub(crate) fn insert(&mut self, key: u64, seg: u64) {
        self.map.insert(key, seg);
        if self.map.len() * BITS_PER_HEAD / 2 > self.bits.len() * 64 {
            self.rebuild();
        } else {
            let (word, mask) = bit(key, self.shift);
            self.bits[word] |= mask;
        }
    }

    /// Forgets `key` as a head.
    pub(crate) fn remove(&mut self, key: u64) {
        if self.map.remove(key).is_some() {
            self.stale += 1;
            if self.stale > self.map.len() + MIN_BITS / BITS_PER_HEAD {
                self.rebuild();
            }
        }
    }

    /// Resizes the filter for the current heads and sets exactly their bits.
    #[cold]
    fn rebuild(&mut self) {
        let bits = (self.map.len() * BITS_PER_HEAD)
            .max(MIN_BITS)
            .next_power_of_two();
        let shift = bits.trailing_zeros();
        let mut words = vec![0u64; bits / 64];
        self.map.for_each(|key, _| {
            let (word, mask) = bit(key, shift);
            words[word] |= mask;
        });
        (self.bits, self.shift, self.stale) = (words, shift, 0);
    }

    /// Heap bytes owned by the table and the filter.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.map.heap_bytes() + self.bits.capacity() * 8
    }
}

/// The filter bit of `key` in a filter of `1 << shift` bits: (word, mask).
#[inline]
fn bit(key: u64, shift: u32) -> (usize, u64) {
    // A different multiplier from the table's, so filter and table collide independently.
    let index = (key.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> (64 - shift)) as usize;
    (index / 64, 1 << (index % 64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;

    #[test]
    fn no_false_negatives_and_few_false_positives_under_churn() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut heads = Heads::default();
        let mut reference: HashMap<u64, u64> = HashMap::new();
        let keys: Vec<u64> = (0..20_000).map(|_| rng.random()).collect();
        for step in 0..200_000u64 {
            // The live set grows to about 10,000 heads, then shrinks to a few hundred,
            // so the filter both fills up and goes stale.
            let grow = step < 100_000;
            let key = keys[rng.random_range(0..keys.len())];
            if rng.random_bool(if grow { 0.7 } else { 0.3 }) {
                heads.insert(key, step);
                reference.insert(key, step);
            } else {
                heads.remove(key);
                reference.remove(&key);
            }
            if step % 10_000 == 0 {
                for (&k, &v) in &reference {
                    assert_eq!(heads.get(k), Some(v), "step {step}");
                }
                let absent = (0..2_000)
                    .map(|_| rng.random::<u64>())
                    .filter(|&k| heads.may_contain(k))
                    .count();
                assert!(absent < 2_000 / 5, "{absent} of 2000 absent keys pass");
            }
        }
        assert_eq!(heads.len(), reference.len());
    }
}
