//! Descriptor vectors of released requests, kept for the next requests. A request of tens of
//! thousands of descriptors fills megabytes; released, they go back to the kernel, and the
//! next request faults them in again page by page, which costs more than building it.

use parking_lot::{Mutex, MutexGuard};

use crate::backend::ResolvedDesc;

/// The most bytes of spare vectors an agent keeps.
const MAX_BYTES: usize = 32 << 20;
/// Smaller vectors are left to the allocator, which reuses them well.
const MIN_BYTES: usize = 128 << 10;

fn bytes(v: &Vec<ResolvedDesc>) -> usize {
    v.capacity() * size_of::<ResolvedDesc>()
}

/// Spare, empty descriptor vectors.
#[derive(Default)]
pub(crate) struct DescPool {
    spare: Mutex<Vec<Vec<ResolvedDesc>>>,
}

impl DescPool {
    fn spare(&self) -> MutexGuard<'_, Vec<Vec<ResolvedDesc>>> {
        self.spare.lock()
    }

    /// An empty vector with room for `n` descriptors, a kept one if one is big enough.
    pub(crate) fn take(&self, n: usize) -> Vec<ResolvedDesc> {
        if n * size_of::<ResolvedDesc>() >= MIN_BYTES {
            let mut spare = self.spare();
            let fit = spare
                .iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= n)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i);
            if let Some(i) = fit {
                return spare.swap_remove(i);
            }
        }
        Vec::with_capacity(n)
    }

    /// Keeps `v` for later requests if it is worth it and there is room.
    pub(crate) fn give(&self, mut v: Vec<ResolvedDesc>) {
        if bytes(&v) < MIN_BYTES {
            return;
        }
        v.clear();
        let mut spare = self.spare();
        if spare.iter().map(bytes).sum::<usize>() + bytes(&v) <= MAX_BYTES {
            spare.push(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_vectors_come_back_empty_and_small_ones_are_not_kept() {
        let pool = DescPool::default();
        let n = 2 * MIN_BYTES / size_of::<ResolvedDesc>();
        let mut v = pool.take(n);
        v.push(ResolvedDesc::default());
        let ptr = v.as_ptr();
        pool.give(v);
        let again = pool.take(n / 2 + n / 4);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr, "the kept vector is reused");
        pool.give(Vec::with_capacity(4));
        assert!(pool.spare().is_empty());
        for _ in 0..(2 * MAX_BYTES / MIN_BYTES) {
            pool.give(Vec::with_capacity(n));
        }
        assert!(pool.spare().iter().map(bytes).sum::<usize>() <= MAX_BYTES);
    }
}
