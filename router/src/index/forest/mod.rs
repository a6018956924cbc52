//! The run forest: the index's blocks grouped into *runs*, each a list of consecutive
//! sequence hashes (a path through the prefix tree) held by exactly the same set of
//! workers. A query walks a run by comparing its own hashes against the run's array
//! one after another — memory-sequential and branch-predictable — and touches the
//! [`BlockTable`] (one random access) only where it leaves a run.
//!
//! Invariants (checked by the tests through [`Forest::check`]):
//! * every block in the table sits in exactly one run, at the position it records;
//! * a run's worker set is exactly the set of workers holding each of its blocks.
//!
//! Runs are split where worker sets diverge (a worker adds or evicts part of a run) and
//! merged back with their parent run when the sets become equal again. Path adjacency
//! inside a run (each block the parent of the next) is what makes queries fast, but
//! exactness does not depend on it: a query only follows a run while the hashes are equal.
//!
//! Positions are `u32` labels, not indices: a run stores the label of its first live
//! block, so that a split relabels only the side that moves (the smaller one).

mod edit;
#[cfg(test)]
mod tests;

use super::block_table::{BlockRef, BlockTable};
use super::worker_set::{SetId, SetPool};

/// A run of blocks held by the same workers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Run {
    /// Sequence hashes; the live ones are `hashes[head..]` (a dropped prefix is
    /// reclaimed lazily so that evicting from the front stays O(1)).
    hashes: Vec<u64>,
    head: u32,
    /// Position label of the first live block.
    first: u32,
    set: Option<SetId>,
    /// The hash preceding the first live block on its path (merge hint only).
    parent: Option<u64>,
    /// The hash that followed the last live block on its path when the run was last
    /// split or merged (merge hint only: it may be stale).
    child: Option<u64>,
}

impl Run {
    #[inline]
    fn live(&self) -> &[u64] {
        &self.hashes[self.head as usize..]
    }
}

/// Blocks grouped into runs, with the table locating each block.
#[derive(Debug, Clone, Default)]
pub(crate) struct Forest {
    table: BlockTable,
    runs: Vec<Run>,
    free_runs: Vec<u32>,
    sets: SetPool,
}

impl Forest {
    /// An empty forest with room for about `blocks` blocks before its table grows.
    pub(crate) fn with_capacity(blocks: usize) -> Self {
        Forest {
            table: BlockTable::with_capacity(blocks),
            ..Self::default()
        }
    }

    /// Number of distinct blocks.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Number of live runs.
    #[cfg(test)]
    pub(crate) fn run_count(&self) -> usize {
        self.runs.len() - self.free_runs.len()
    }

    /// The run holding `key` and the block's index among the run's live blocks.
    #[inline]
    pub(crate) fn locate(&self, key: u64) -> Option<(u32, usize)> {
        let place = self.table.get(key)?;
        let run = &self.runs[place.run as usize];
        Some((place.run, place.pos.wrapping_sub(run.first) as usize))
    }

    /// The live hashes of `run`.
    #[inline]
    pub(crate) fn live(&self, run: u32) -> &[u64] {
        self.runs[run as usize].live()
    }

    /// The workers holding `run`.
    #[inline]
    pub(crate) fn set_of(&self, run: u32) -> SetId {
        self.runs[run as usize].set.expect("live run")
    }

    /// The interned worker sets.
    #[inline]
    pub(crate) fn sets(&self) -> &SetPool {
        &self.sets
    }

    fn live_len(&self, run: u32) -> usize {
        self.runs[run as usize].live().len()
    }

    /// A new run owning one reference on `set`; the caller records its blocks in the table.
    fn new_run(&mut self, set: SetId, parent: Option<u64>, hashes: Vec<u64>, first: u32) -> u32 {
        let run = Run {
            hashes,
            head: 0,
            first,
            set: Some(set),
            parent,
            child: None,
        };
        match self.free_runs.pop() {
            Some(id) => {
                self.runs[id as usize] = run;
                id
            }
            None => {
                self.runs.push(run);
                (self.runs.len() - 1) as u32
            }
        }
    }

    fn free_run(&mut self, id: u32) {
        let run = std::mem::take(&mut self.runs[id as usize]);
        if let Some(set) = run.set {
            self.sets.release(set);
        }
        self.free_runs.push(id);
    }

    /// Replaces `run`'s set by `set` (whose reference the run takes over).
    fn replace_set(&mut self, run: u32, set: SetId) {
        let old = self.runs[run as usize].set.replace(set);
        if let Some(old) = old {
            self.sets.release(old);
        }
    }

    /// Points the table at `run` for its live blocks from index `from` on.
    fn relabel(&mut self, run: u32, from: usize) {
        let r = &self.runs[run as usize];
        for (i, &key) in r.live().iter().enumerate().skip(from) {
            let pos = r.first.wrapping_add(i as u32);
            self.table.relocate(key, BlockRef { run, pos });
        }
    }

    /// Appends `key` to the end of `run` if it is not in the forest yet; returns whether
    /// it was appended.
    #[inline]
    fn try_push(&mut self, run: u32, key: u64) -> bool {
        let r = &mut self.runs[run as usize];
        let pos = r.first.wrapping_add(r.live().len() as u32);
        let fresh = self.table.insert_if_absent(key, BlockRef { run, pos });
        if fresh {
            r.hashes.push(key);
        }
        fresh
    }

    /// Hints the CPU to load the table slot of `key` (callers issue these for a whole
    /// event ahead of the edit so that the cache misses overlap).
    #[inline]
    pub(crate) fn prefetch(&self, key: u64) {
        self.table.prefetch(key);
    }

    /// Drops `run`'s first `count` live blocks from its array (already out of the table
    /// or moved elsewhere), reclaiming the space once it is half the array.
    fn drop_front(&mut self, run: u32, count: usize) {
        let r = &mut self.runs[run as usize];
        r.parent = Some(r.live()[count - 1]);
        r.head += count as u32;
        r.first = r.first.wrapping_add(count as u32);
        if r.head as usize * 2 >= r.hashes.len() {
            r.hashes.drain(..r.head as usize);
            r.head = 0;
            shrink(&mut r.hashes);
        }
    }

    /// Splits `run` before live index `k` (`0 < k < len`); returns `(prefix, suffix)`.
    /// The smaller side moves to a new run.
    fn split(&mut self, run: u32, k: usize) -> (u32, u32) {
        let (len, set, first, parent, child, cut) = {
            let r = &self.runs[run as usize];
            let cut = r.live()[k];
            (
                r.live().len(),
                r.set.expect("live run"),
                r.first,
                r.parent,
                r.child,
                cut,
            )
        };
        debug_assert!(0 < k && k < len);
        self.sets.retain(set);
        if k <= len - k {
            let prefix = self.runs[run as usize].live()[..k].to_vec();
            self.drop_front(run, k);
            let moved = self.new_run(set, parent, prefix, first);
            self.runs[moved as usize].child = Some(cut);
            self.relabel(moved, 0);
            (moved, run)
        } else {
            let r = &mut self.runs[run as usize];
            let suffix = r.hashes.split_off(r.head as usize + k);
            let suffix_parent = r.hashes.last().copied();
            r.child = Some(cut);
            shrink(&mut r.hashes);
            let moved = self.new_run(set, suffix_parent, suffix, first.wrapping_add(k as u32));
            self.runs[moved as usize].child = child;
            self.relabel(moved, 0);
            (run, moved)
        }
    }

    /// Splits so that live blocks `lo..hi` of `run` form a run of their own; returns it.
    fn isolate(&mut self, run: u32, lo: usize, hi: usize) -> u32 {
        let mut run = run;
        if hi < self.live_len(run) {
            run = self.split(run, hi).0;
        }
        if lo > 0 {
            run = self.split(run, lo).1;
        }
        run
    }

    /// Joins `next` onto the end of `prev` (the caller checked that `prev`'s last block
    /// is `next`'s parent and that their sets are equal); the smaller side moves.
    fn merge(&mut self, prev: u32, next: u32) -> u32 {
        let (a, b) = (self.live_len(prev), self.live_len(next));
        if b <= a {
            let moved = {
                let r = &mut self.runs[next as usize];
                let head = r.head as usize;
                std::mem::take(&mut r.hashes).split_off(head)
            };
            let child = self.runs[next as usize].child;
            let r = &mut self.runs[prev as usize];
            r.hashes.extend_from_slice(&moved);
            r.child = child;
            self.free_run(next);
            self.relabel(prev, a);
            prev
        } else {
            let (moved, parent) = {
                let r = &mut self.runs[prev as usize];
                let head = r.head as usize;
                (std::mem::take(&mut r.hashes).split_off(head), r.parent)
            };
            let r = &mut self.runs[next as usize];
            let mut joined = Vec::with_capacity(a + b);
            joined.extend_from_slice(&moved);
            joined.extend_from_slice(r.live());
            r.hashes = joined;
            r.head = 0;
            r.first = r.first.wrapping_sub(a as u32);
            r.parent = parent;
            self.free_run(prev);
            let r = &self.runs[next as usize];
            let first = r.first;
            for (i, &key) in moved.iter().enumerate() {
                let pos = first.wrapping_add(i as u32);
                self.table.relocate(key, BlockRef { run: next, pos });
            }
            next
        }
    }

    /// Merges `run` into the run ending with its parent block, if their sets are equal.
    fn merge_with_parent(&mut self, run: u32) -> u32 {
        let Some(parent) = self.runs[run as usize].parent else {
            return run;
        };
        match self.locate(parent) {
            Some((prev, idx))
                if prev != run
                    && idx + 1 == self.live_len(prev)
                    && self.runs[prev as usize].set == self.runs[run as usize].set =>
            {
                self.merge(prev, run)
            }
            _ => run,
        }
    }

    /// Merges `run` with its parent run and with the run continuing its path (found
    /// through the `child` hint), where their sets are equal.
    fn merge_with_neighbours(&mut self, run: u32) -> u32 {
        let run = self.merge_with_parent(run);
        let next = self.runs[run as usize]
            .child
            .and_then(|c| self.locate(c))
            .filter(|&(_, idx)| idx == 0);
        match next {
            Some((next, _)) => self.merge_with_next(run, next),
            None => run,
        }
    }

    /// Merges `next` onto `run` if it is a live run starting right after `run`'s last
    /// block with the same set.
    fn merge_with_next(&mut self, run: u32, next: u32) -> u32 {
        let (r, n) = (&self.runs[run as usize], &self.runs[next as usize]);
        let adjacent = run != next
            && n.set.is_some()
            && n.set == r.set
            && !n.live().is_empty()
            && n.parent.is_some()
            && n.parent == r.live().last().copied();
        if adjacent { self.merge(run, next) } else { run }
    }

    /// Deletes live blocks `lo..hi` of `run` from the forest (their only holder left).
    fn delete_range(&mut self, run: u32, lo: usize, hi: usize) {
        let len = self.live_len(run);
        let run = if hi < len && lo > 0 {
            self.split(run, hi).0
        } else {
            run
        };
        for i in lo..hi {
            let key = self.runs[run as usize].live()[i];
            self.table.remove(key);
        }
        let len = self.live_len(run);
        if lo == 0 && hi == len {
            self.free_run(run);
        } else if lo == 0 {
            self.drop_front(run, hi);
        } else {
            let r = &mut self.runs[run as usize];
            r.hashes.truncate(r.head as usize + lo);
            shrink(&mut r.hashes);
        }
    }

    /// Heap bytes owned by the forest: table, runs and worker sets.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
            + self.runs.capacity() * std::mem::size_of::<Run>()
            + self
                .runs
                .iter()
                .map(|r| r.hashes.capacity() * 8)
                .sum::<usize>()
            + self.free_runs.capacity() * 4
            + self.sets.heap_bytes()
    }
}

/// Gives back an array's spare capacity once it is mostly unused.
fn shrink(hashes: &mut Vec<u64>) {
    if hashes.capacity() > 2 * hashes.len() + 8 {
        hashes.shrink_to_fit();
    }
}
