//! Sets of worker slots stored out of line, for index nodes shared by more than two
//! workers. Small sets are sorted lists; large ones are bitmaps so that intersecting
//! them with a query's candidate set costs `workers / 64` word operations.

/// A list longer than this becomes a bitmap (4 bytes per slot vs. 1 bit per possible slot).
const LIST_LIMIT: usize = 24;

/// An out-of-line worker-slot set.
#[derive(Debug, Clone)]
pub(crate) enum SpillSet {
    /// Sorted, duplicate-free slot ids.
    List(Vec<u32>),
    /// One bit per slot, plus the number of bits set.
    Bits { words: Vec<u64>, count: u32 },
}

impl SpillSet {
    pub(crate) fn from_slots(slots: &[u32]) -> Self {
        let mut list = slots.to_vec();
        list.sort_unstable();
        list.dedup();
        SpillSet::List(list)
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            SpillSet::List(list) => list.len(),
            SpillSet::Bits { count, .. } => *count as usize,
        }
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, slot: u32) -> bool {
        match self {
            SpillSet::List(list) => list.binary_search(&slot).is_ok(),
            SpillSet::Bits { words, .. } => bit(words, slot),
        }
    }

    /// Adds `slot`; returns whether it was new.
    pub(crate) fn insert(&mut self, slot: u32) -> bool {
        match self {
            SpillSet::List(list) => match list.binary_search(&slot) {
                Ok(_) => false,
                Err(at) => {
                    list.insert(at, slot);
                    if list.len() > LIST_LIMIT {
                        *self = Self::bits_from(list);
                    }
                    true
                }
            },
            SpillSet::Bits { words, count } => {
                let (word, mask) = locate(slot);
                if word >= words.len() {
                    words.resize(word + 1, 0);
                }
                let fresh = words[word] & mask == 0;
                words[word] |= mask;
                *count += u32::from(fresh);
                fresh
            }
        }
    }

    /// Removes `slot`; returns whether it was present.
    pub(crate) fn remove(&mut self, slot: u32) -> bool {
        match self {
            SpillSet::List(list) => match list.binary_search(&slot) {
                Ok(at) => {
                    list.remove(at);
                    true
                }
                Err(_) => false,
            },
            SpillSet::Bits { words, count } => {
                let (word, mask) = locate(slot);
                let present = words.get(word).is_some_and(|w| w & mask != 0);
                if present {
                    words[word] &= !mask;
                    *count -= 1;
                }
                present
            }
        }
    }

    /// All slots, in increasing order.
    pub(crate) fn slots(&self) -> Vec<u32> {
        match self {
            SpillSet::List(list) => list.clone(),
            SpillSet::Bits { words, .. } => {
                let mut out = Vec::new();
                for_each_bit(words, |slot| out.push(slot));
                out
            }
        }
    }

    /// Heap bytes owned by this set.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            SpillSet::List(list) => list.capacity() * 4,
            SpillSet::Bits { words, .. } => words.capacity() * 8,
        }
    }

    fn bits_from(list: &[u32]) -> Self {
        let mut words = Vec::new();
        for &slot in list {
            let (word, mask) = locate(slot);
            if word >= words.len() {
                words.resize(word + 1, 0);
            }
            words[word] |= mask;
        }
        SpillSet::Bits {
            words,
            count: list.len() as u32,
        }
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
    fn list_grows_into_bitmap_and_keeps_membership() {
        let mut set = SpillSet::from_slots(&[5, 1, 5]);
        assert_eq!(set.len(), 2);
        for slot in 0..100u32 {
            set.insert(slot * 3);
        }
        assert!(matches!(set, SpillSet::Bits { .. }));
        assert!(set.contains(297) && set.contains(1) && !set.contains(2));
        assert!(set.remove(297) && !set.remove(297));
        assert_eq!(set.len(), 101);
        assert_eq!(set.slots().len(), 101);
    }
}
