//! Adding and removing one worker's blocks: the forest's two edits. Both work on
//! *groups* — stretches of the event's blocks that are consecutive inside one run — so a
//! long stored or evicted range costs at most two splits, not one per block.

use super::{Forest, SetId};

impl Forest {
    /// Records that worker `slot` holds `hashes`, a path of blocks following `parent`
    /// (each block the parent of the next). Blocks it already holds are left alone.
    pub(crate) fn store(&mut self, slot: u32, parent: Option<u64>, hashes: &[u64]) {
        let single = SetId::single(slot);
        let mut prev = parent;
        let mut i = 0;
        while i < hashes.len() {
            let Some((run, idx)) = self.locate(hashes[i]) else {
                // New blocks: extend the parent's run when it ends there and is ours alone.
                let target = prev
                    .and_then(|p| self.locate(p))
                    .filter(|&(r, idx)| {
                        idx + 1 == self.live_len(r) && self.runs[r as usize].set == Some(single)
                    })
                    .map(|(r, _)| r);
                let run = target.unwrap_or_else(|| self.new_run(single, prev, Vec::new(), 0));
                // Size the array for this event's blocks exactly: runs grow by whole
                // events, and doubling would leave a third of the array unused on average.
                self.runs[run as usize]
                    .hashes
                    .reserve_exact(hashes.len() - i);
                while i < hashes.len() && self.try_push(run, hashes[i]) {
                    i += 1;
                }
                prev = Some(hashes[i - 1]);
                continue;
            };
            let set = self.set_of(run);
            if self.sets.contains(set, slot) {
                prev = Some(hashes[i]);
                i += 1;
                continue;
            }
            let n = self.live(run)[idx..]
                .iter()
                .zip(&hashes[i..])
                .take_while(|(a, b)| a == b)
                .count();
            let grown = self.sets.with(set, slot);
            let group = self.isolate(run, idx, idx + n);
            self.replace_set(group, grown);
            let group = self.merge_with_neighbours(group);
            i += n;
            prev = Some(hashes[i - 1]);
            if let Some(&next) = hashes.get(i)
                && let Some((next_run, 0)) = self.locate(next)
            {
                self.merge_with_next(group, next_run);
            }
        }
    }

    /// Records that worker `slot` no longer holds `hashes` (any order; blocks it does not
    /// hold are ignored). Blocks nobody holds any more leave the forest.
    pub(crate) fn remove(&mut self, slot: u32, hashes: &[u64]) {
        let single = SetId::single(slot);
        let mut last_group = None;
        let mut i = 0;
        while i < hashes.len() {
            let Some((run, idx)) = self.locate(hashes[i]) else {
                i += 1;
                continue;
            };
            let set = self.set_of(run);
            if !self.sets.contains(set, slot) {
                i += 1;
                continue;
            }
            // Extend the group while the next hashes continue it in either direction
            // (engines usually evict a request's blocks tail first).
            let live = self.live(run);
            let (mut lo, mut hi) = (idx, idx + 1);
            i += 1;
            while let Some(&key) = hashes.get(i) {
                if lo > 0 && live[lo - 1] == key {
                    lo -= 1;
                } else if hi < live.len() && live[hi] == key {
                    hi += 1;
                } else {
                    break;
                }
                i += 1;
            }
            if set == single {
                self.delete_range(run, lo, hi);
                last_group = None;
                continue;
            }
            let shrunk = self.sets.without(set, slot);
            let group = self.isolate(run, lo, hi);
            self.replace_set(group, shrunk);
            let mut group = self.merge_with_neighbours(group);
            if let Some(next) = last_group {
                group = self.merge_with_next(group, next);
            }
            last_group = Some(group);
        }
    }

    /// Removes every block in `hashes` from worker `slot`, grouping them by run first so
    /// that a whole cache (in hash-map order) goes in few range edits.
    pub(crate) fn remove_all(&mut self, slot: u32, hashes: &[u64]) {
        let mut placed: Vec<(u32, usize, u64)> = hashes
            .iter()
            .filter_map(|&key| self.locate(key).map(|(run, idx)| (run, idx, key)))
            .collect();
        placed.sort_unstable();
        let sorted: Vec<u64> = placed.into_iter().map(|(_, _, key)| key).collect();
        self.remove(slot, &sorted);
    }
}
