//! Segments: the index's blocks laid out as paths of the prefix tree, each an array of
//! sequence hashes that a query compares sequentially (no pointer chasing).
//!
//! A block never moves once placed, so its [`Loc`] (segment, label) is a stable handle:
//! the per-worker maps store it, and `Removed` events reach the block without any
//! global table. Which workers hold which blocks is kept per segment as *ranges* of
//! consecutive blocks with one worker set each (see `ranges`).
//!
//! Invariants (checked by the tests):
//! * every block (sequence hash) sits in at most one segment, once;
//! * a segment's block at index `i > 0` is the child of its block at `i - 1`, so a block
//!   that exists is either right after its parent or the first block of a segment —
//!   hence the only table is `heads` (first block → segment), small and filtered;
//! * a segment's first and last blocks are held by someone (dead ends are trimmed);
//!   dead blocks in the middle stay as tombstones until the segment dies or they are
//!   stored again.

mod heads;
mod ranges;
#[cfg(test)]
mod tests;

use super::worker_set::{SetId, SetPool};
use heads::Heads;

/// Where a block lives: its segment and its label (index plus the segment's `base`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Loc {
    pub(crate) seg: u32,
    pub(crate) label: u32,
}

impl Loc {
    /// The location as one `u64` (for the per-worker maps).
    #[inline]
    pub(crate) fn pack(self) -> u64 {
        u64::from(self.seg) << 32 | u64::from(self.label)
    }

    /// The inverse of [`Loc::pack`].
    #[inline]
    pub(crate) fn unpack(value: u64) -> Self {
        Loc {
            seg: (value >> 32) as u32,
            label: value as u32,
        }
    }
}

/// Consecutive blocks held by the same workers: from `start` (a label) up to the next
/// range's start or the segment's end. `None`: nobody holds them (tombstones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) start: u32,
    pub(crate) set: Option<SetId>,
}

/// One path of blocks.
#[derive(Debug, Clone, Default)]
pub(crate) struct Segment {
    /// `hashes[i]` has label `base + i`; labels below `front` are reclaimed garbage.
    hashes: Vec<u64>,
    base: u32,
    front: u32,
    /// Cover `front..end()` in order; empty iff the segment is free.
    ranges: Vec<Range>,
}

impl Segment {
    #[inline]
    fn end(&self) -> u32 {
        self.base + self.hashes.len() as u32
    }

    #[inline]
    fn hash(&self, label: u32) -> u64 {
        self.hashes[(label - self.base) as usize]
    }

    /// The blocks from the first one on.
    #[inline]
    pub(crate) fn blocks(&self) -> &[u64] {
        &self.hashes[(self.front - self.base) as usize..]
    }

    /// The ranges, with starts as offsets from the first block.
    #[inline]
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (usize, Option<SetId>)> + '_ {
        self.ranges
            .iter()
            .map(|r| ((r.start - self.front) as usize, r.set))
    }

    /// The set of the first range (a segment's first block is always held).
    #[inline]
    pub(crate) fn first_set(&self) -> SetId {
        self.ranges[0].set.expect("a segment's first block is held")
    }
}

/// All segments, the heads table and the interned worker sets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Segments {
    segs: Vec<Segment>,
    free: Vec<u32>,
    /// First block of each live segment → segment.
    heads: Heads,
    sets: SetPool,
    /// Blocks held by at least one worker.
    live: usize,
}

impl Segments {
    /// Number of distinct blocks held by at least one worker.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// The interned worker sets.
    #[inline]
    pub(crate) fn sets(&self) -> &SetPool {
        &self.sets
    }

    /// The segment starting with `key`, if any.
    #[inline]
    pub(crate) fn head(&self, key: u64) -> Option<&Segment> {
        self.heads.get(key).map(|seg| &self.segs[seg as usize])
    }

    /// The sequence hash at `loc`.
    #[inline]
    pub(crate) fn hash_at(&self, loc: Loc) -> u64 {
        self.segs[loc.seg as usize].hash(loc.label)
    }

    /// Where `key`, a child of the block at `parent` (a root if `None`), is placed, if
    /// it is: right after its parent, or else at the head of a segment.
    #[inline]
    fn child(&self, parent: Option<Loc>, key: u64) -> Option<Loc> {
        if let Some(p) = parent {
            let s = &self.segs[p.seg as usize];
            if p.label + 1 < s.end() && s.hash(p.label + 1) == key {
                return Some(Loc {
                    seg: p.seg,
                    label: p.label + 1,
                });
            }
        }
        let seg = self.heads.get(key)? as u32;
        Some(Loc {
            seg,
            label: self.segs[seg as usize].front,
        })
    }

    /// Records that worker `slot` holds `keys`, a path of blocks following the block at
    /// `parent` (or starting at a root), and appends each block's location to `out`.
    pub(crate) fn store(
        &mut self,
        slot: u32,
        parent: Option<Loc>,
        keys: &[u64],
        out: &mut Vec<Loc>,
    ) {
        let mut prev = parent;
        let mut i = 0;
        while i < keys.len() {
            let first = i;
            let at = match self.child(prev, keys[i]) {
                Some(at) => {
                    // Existing blocks: take the whole stretch that follows the segment.
                    let s = &self.segs[at.seg as usize];
                    let from = (at.label - s.base) as usize;
                    let n = s.hashes[from..]
                        .iter()
                        .zip(&keys[i..])
                        .take_while(|(a, b)| a == b)
                        .count();
                    self.add_holder(slot, at.seg, at.label, at.label + n as u32);
                    i += n;
                    at
                }
                None => {
                    let at = self.place_new(slot, prev, keys, &mut i);
                    self.live += i - first;
                    at
                }
            };
            out.extend((0..(i - first) as u32).map(|k| Loc {
                seg: at.seg,
                label: at.label + k,
            }));
            prev = out.last().copied();
        }
    }

    /// Places new blocks from `keys[*i]` on (advancing `*i` past them): after `parent`
    /// if it ends its segment, else at the head of a new segment. Returns the first one's
    /// location.
    fn place_new(&mut self, slot: u32, parent: Option<Loc>, keys: &[u64], i: &mut usize) -> Loc {
        let single = SetId::single(slot);
        let seg = match parent {
            Some(p) if p.label + 1 == self.segs[p.seg as usize].end() => p.seg,
            _ => self.new_segment(keys[*i]),
        };
        let s = &mut self.segs[seg as usize];
        let start = s.end();
        if s.ranges.last().is_none_or(|r| r.set != Some(single)) {
            s.ranges.push(Range {
                start,
                set: Some(single),
            });
        }
        // Segments grow by whole events: reserve this event's rest, or a quarter more
        // for long paths, so that repeated appends do not copy the array each time.
        let rest = keys.len() - *i;
        s.hashes.reserve_exact(rest.max(s.hashes.len() / 4));
        s.hashes.push(keys[*i]);
        *i += 1;
        // The following blocks are new too, unless one already heads a segment (a block
        // whose parent was dropped while it stayed held).
        while *i < keys.len() && self.heads.get(keys[*i]).is_none() {
            self.segs[seg as usize].hashes.push(keys[*i]);
            *i += 1;
        }
        Loc { seg, label: start }
    }

    fn new_segment(&mut self, head: u64) -> u32 {
        let seg = match self.free.pop() {
            Some(seg) => seg,
            None => {
                self.segs.push(Segment::default());
                (self.segs.len() - 1) as u32
            }
        };
        self.heads.insert(head, u64::from(seg));
        seg
    }

    /// Records that worker `slot` no longer holds the blocks at `locs` (any order; it
    /// must hold them). Blocks nobody holds any more leave the index.
    pub(crate) fn remove(&mut self, slot: u32, locs: &[Loc]) {
        let mut i = 0;
        while i < locs.len() {
            // Group a stretch of consecutive labels (engines free tails first, so the
            // stretch usually grows downwards).
            let seg = locs[i].seg;
            let (mut lo, mut hi) = (locs[i].label, locs[i].label + 1);
            i += 1;
            while let Some(&next) = locs.get(i) {
                if next.seg != seg {
                    break;
                }
                if next.label + 1 == lo {
                    lo -= 1;
                } else if next.label == hi {
                    hi += 1;
                } else {
                    break;
                }
                i += 1;
            }
            self.drop_holder(slot, seg, lo, hi);
        }
    }

    /// Heap bytes owned by the segments, the heads table and the worker sets.
    pub(crate) fn heap_bytes(&self) -> usize {
        let arrays: usize = self
            .segs
            .iter()
            .map(|s| s.hashes.capacity() * 8 + s.ranges.capacity() * size_of::<Range>())
            .sum();
        arrays
            + self.segs.capacity() * size_of::<Segment>()
            + self.free.capacity() * 4
            + self.heads.heap_bytes()
            + self.sets.heap_bytes()
    }
}
