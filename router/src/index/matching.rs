//! `find_matches`: for a prompt's sequence hashes, how many *leading* blocks each worker
//! holds. Exact even when a worker's cache has holes (a block evicted before its
//! descendants): a worker's score is the depth of its first missing block.
//!
//! The walk follows the segments: inside one it compares the prompt's hashes with the
//! segment's array sequentially, intersecting the candidates with each range's worker
//! set as it enters the range, and only where the prompt leaves the segment does it
//! look the next hash up among the segment heads (a block that is not right after its
//! parent heads a segment). Candidates are a bitmap over worker slots; an intersection
//! that drops nobody is only counted, not rebuilt.

use super::Indexer;
use super::worker_set::{SetView, bit, for_each_bit, locate};
use crate::hashing::SequenceHash;
use crate::worker::WorkerId;

/// Result of [`Indexer::find_matches`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverlapScores {
    /// `(worker, leading blocks held)` for every worker holding at least the first block.
    pub scores: Vec<(WorkerId, u32)>,
}

impl OverlapScores {
    /// Leading blocks `worker` holds (0 if it holds none).
    pub fn get(&self, worker: WorkerId) -> u32 {
        self.scores
            .iter()
            .find(|(w, _)| *w == worker)
            .map_or(0, |&(_, score)| score)
    }

    /// The largest overlap over all workers.
    pub fn best(&self) -> u32 {
        self.scores.iter().map(|&(_, s)| s).max().unwrap_or(0)
    }
}

/// The candidates still matching, as a bitmap over worker slots.
struct Candidates {
    words: Vec<u64>,
    count: u32,
}

impl Candidates {
    fn from_set(set: SetView<'_>, slots: usize) -> Self {
        let mut words = vec![0u64; slots.div_ceil(64)];
        let mut count = 0;
        let mut add = |slot: u32| {
            let (w, mask) = locate(slot);
            words[w] |= mask;
            count += 1;
        };
        match set {
            SetView::Single(slot) => add(slot),
            SetView::List(list) => list.iter().copied().for_each(add),
            SetView::Bits(bits) => for_each_bit(bits, add),
        }
        Candidates { words, count }
    }

    /// Keeps only candidates in `set` (none if `None`); calls `dropped` for each one
    /// removed.
    #[inline]
    fn intersect(&mut self, set: Option<SetView<'_>>, mut dropped: impl FnMut(u32)) {
        let Some(set) = set else {
            for_each_bit(&self.words, &mut dropped);
            self.words.iter_mut().for_each(|word| *word = 0);
            self.count = 0;
            return;
        };
        match set {
            SetView::Single(slot) => {
                let kept = bit(&self.words, slot);
                if kept && self.count == 1 {
                    return;
                }
                let (w, mask) = locate(slot);
                if kept {
                    self.words[w] &= !mask;
                }
                for_each_bit(&self.words, &mut dropped);
                self.words.iter_mut().for_each(|word| *word = 0);
                if kept {
                    self.words[w] = mask;
                }
                self.count = u32::from(kept);
            }
            SetView::List(list) => {
                let surviving: u32 = list.iter().map(|&s| u32::from(bit(&self.words, s))).sum();
                if surviving == self.count {
                    return;
                }
                let mut kept = vec![0u64; self.words.len()];
                for &slot in list {
                    let (w, mask) = locate(slot);
                    if let Some(word) = kept.get_mut(w) {
                        *word |= mask;
                    }
                }
                self.retain_words(&kept, dropped);
            }
            SetView::Bits(bits) => {
                let surviving: u32 = self
                    .words
                    .iter()
                    .zip(bits)
                    .map(|(a, b)| (a & b).count_ones())
                    .sum();
                if surviving == self.count {
                    return;
                }
                self.retain_words(bits, dropped);
            }
        }
    }

    fn retain_words(&mut self, keep: &[u64], mut dropped: impl FnMut(u32)) {
        let mut count = 0;
        for (index, old) in self.words.iter_mut().enumerate() {
            let new = *old & keep.get(index).copied().unwrap_or(0);
            let base = index as u32 * 64;
            for_each_bit(&[*old & !new], |bit| dropped(base + bit));
            *old = new;
            count += new.count_ones();
        }
        self.count = count;
    }
}

/// Length of the common prefix of `a` and `b`, comparing eight hashes at a time.
#[inline]
fn common_prefix(a: &[SequenceHash], b: &[u64]) -> usize {
    let limit = a.len().min(b.len());
    let mut n = 0;
    while n + 8 <= limit
        && a[n..n + 8]
            .iter()
            .zip(&b[n..n + 8])
            .fold(true, |eq, (x, y)| eq & (x.0 == *y))
    {
        n += 8;
    }
    while n < limit && a[n].0 == b[n] {
        n += 1;
    }
    n
}

impl Indexer {
    /// For each worker holding the prompt's first block, the number of consecutive
    /// blocks from the start of the prompt it holds.
    pub fn find_matches(&self, sequence: &[SequenceHash]) -> OverlapScores {
        let mut scores = Vec::new();
        let hashes = sequence;
        let segments = &self.segments;
        let Some(mut seg) = hashes.first().and_then(|h| segments.head(h.0)) else {
            return OverlapScores { scores };
        };
        let sets = segments.sets();
        let mut candidates = Candidates::from_set(sets.view(seg.first_set()), self.slots.len());
        let mut record = |slot: u32, depth: usize| {
            if let Some(state) = &self.slots[slot as usize] {
                scores.push((state.id, depth as u32));
            }
        };
        // `depth` prompt blocks matched so far; the current segment starts at `depth`
        // and its first range's set is already applied.
        let mut depth = 0;
        'walk: loop {
            let n = common_prefix(&hashes[depth..], seg.blocks());
            for (offset, set) in seg.ranges().skip(1) {
                if offset >= n {
                    break;
                }
                candidates.intersect(set.map(|s| sets.view(s)), |slot| {
                    record(slot, depth + offset)
                });
                if candidates.count == 0 {
                    break 'walk;
                }
            }
            depth += n;
            let Some(next) = hashes.get(depth).and_then(|h| segments.head(h.0)) else {
                break;
            };
            candidates.intersect(Some(sets.view(next.first_set())), |slot| {
                record(slot, depth)
            });
            if candidates.count == 0 {
                break;
            }
            seg = next;
        }
        if candidates.count > 0 {
            for_each_bit(&candidates.words, |slot| record(slot, depth));
        }
        OverlapScores { scores }
    }
}
