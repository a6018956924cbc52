//! Editing who holds a segment's blocks: a worker joins or leaves the holders of a
//! stretch of consecutive blocks. The stretch's ranges are split at its ends, their
//! sets replaced, and equal neighbours merged again, so a stored or evicted stretch
//! costs a few range edits however long it is. Dead ends are then trimmed.

use super::{Range, Segments};
use crate::index::worker_set::{SetId, SetPool};

impl Segments {
    /// Adds worker `slot` to the holders of labels `lo..hi` of segment `seg`.
    pub(super) fn add_holder(&mut self, slot: u32, seg: u32, lo: u32, hi: u32) {
        self.update(seg, lo, hi, |pool, old| match old {
            None => Some(SetId::single(slot)),
            Some(set) if pool.contains(set, slot) => {
                pool.retain(set);
                Some(set)
            }
            Some(set) => Some(pool.with(set, slot)),
        });
    }

    /// Removes worker `slot` from the holders of labels `lo..hi` of segment `seg`, then
    /// trims the segment's dead ends.
    pub(super) fn drop_holder(&mut self, slot: u32, seg: u32, lo: u32, hi: u32) {
        let single = SetId::single(slot);
        self.update(seg, lo, hi, |pool, old| match old {
            Some(set) if set == single => None,
            Some(set) if pool.contains(set, slot) => Some(pool.without(set, slot)),
            Some(set) => {
                pool.retain(set);
                Some(set)
            }
            None => None,
        });
        self.trim(seg);
    }

    /// Replaces the set of every range in `lo..hi` by `f(pool, set)`, which returns the
    /// new set with a reference taken on it; keeps the live-block count.
    fn update(
        &mut self,
        seg: u32,
        lo: u32,
        hi: u32,
        mut f: impl FnMut(&mut SetPool, Option<SetId>) -> Option<SetId>,
    ) {
        let s = &mut self.segs[seg as usize];
        let end = s.end();
        debug_assert!(s.front <= lo && lo < hi && hi <= end);
        let first = split_at(&mut s.ranges, &mut self.sets, lo);
        if hi < end {
            split_at(&mut s.ranges, &mut self.sets, hi);
        }
        let mut k = first;
        while k < s.ranges.len() && s.ranges[k].start < hi {
            let old = s.ranges[k].set;
            let new = f(&mut self.sets, old);
            if let Some(old) = old {
                self.sets.release(old);
            }
            let len = s.ranges.get(k + 1).map_or(end, |r| r.start) - s.ranges[k].start;
            match (old.is_some(), new.is_some()) {
                (false, true) => self.live += len as usize,
                (true, false) => self.live -= len as usize,
                _ => {}
            }
            s.ranges[k].set = new;
            k += 1;
        }
        coalesce(
            &mut s.ranges,
            &mut self.sets,
            first.saturating_sub(1),
            k + 1,
        );
    }

    /// Drops the segment's dead first and last ranges, keeping `heads` pointing at its
    /// first block; frees the segment once nothing in it is held.
    fn trim(&mut self, seg: u32) {
        let s = &mut self.segs[seg as usize];
        let old_front = s.front;
        let mut dead_front = 0;
        while s.ranges.get(dead_front).is_some_and(|r| r.set.is_none()) {
            dead_front += 1;
        }
        if dead_front == s.ranges.len() {
            // Nothing held: free the segment.
            let head = s.hash(old_front);
            *s = Default::default();
            self.heads.remove(head);
            self.free.push(seg);
            return;
        }
        if dead_front > 0 {
            s.ranges.drain(..dead_front);
            s.front = s.ranges[0].start;
        }
        while s.ranges.last().is_some_and(|r| r.set.is_none()) {
            let last = s.ranges.pop().expect("checked");
            s.hashes.truncate((last.start - s.base) as usize);
            shrink(&mut s.hashes);
        }
        if s.front != old_front {
            let (old_head, new_head) = (s.hash(old_front), s.hash(s.front));
            // Reclaim the dropped prefix once it is half the array.
            let dropped = (s.front - s.base) as usize;
            if dropped * 2 >= s.hashes.len() {
                s.hashes.drain(..dropped);
                s.base = s.front;
                shrink(&mut s.hashes);
            }
            self.heads.remove(old_head);
            self.heads.insert(new_head, u64::from(seg));
        }
    }
}

/// Makes a range start at `label` (inside the covered span); returns its index.
fn split_at(ranges: &mut Vec<Range>, pool: &mut SetPool, label: u32) -> usize {
    let k = ranges.partition_point(|r| r.start <= label) - 1;
    if ranges[k].start == label {
        return k;
    }
    let set = ranges[k].set;
    if let Some(set) = set {
        pool.retain(set);
    }
    ranges.insert(k + 1, Range { start: label, set });
    k + 1
}

/// Merges equal neighbours among `ranges[from..to]` (clamped).
fn coalesce(ranges: &mut Vec<Range>, pool: &mut SetPool, from: usize, to: usize) {
    let to = to.min(ranges.len());
    let mut k = from + 1;
    let mut end = to;
    while k < end {
        if ranges[k].set == ranges[k - 1].set {
            if let Some(set) = ranges[k].set {
                pool.release(set);
            }
            ranges.remove(k);
            end -= 1;
        } else {
            k += 1;
        }
    }
}

/// Gives back an array's spare capacity once it is mostly unused.
fn shrink(hashes: &mut Vec<u64>) {
    if hashes.capacity() > 2 * hashes.len() + 8 {
        hashes.shrink_to_fit();
    }
}
