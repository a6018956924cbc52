use super::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap};

impl Segments {
    /// Panics unless the invariants in the module docs hold and the counts agree.
    fn check(&self) {
        let mut seen: HashMap<u64, Loc> = HashMap::new();
        let (mut live, mut segments) = (0, 0);
        for (id, s) in self.segs.iter().enumerate() {
            if s.ranges.is_empty() {
                assert!(s.hashes.is_empty() && self.free.contains(&(id as u32)));
                continue;
            }
            segments += 1;
            assert_eq!(
                s.ranges[0].start, s.front,
                "segment {id} ranges start at its front"
            );
            assert!(
                s.ranges.first().unwrap().set.is_some(),
                "dead front in {id}"
            );
            assert!(s.ranges.last().unwrap().set.is_some(), "dead end in {id}");
            for pair in s.ranges.windows(2) {
                assert!(pair[0].start < pair[1].start && pair[1].start < s.end());
                assert_ne!(pair[0].set, pair[1].set, "equal neighbours in {id}");
            }
            assert_eq!(self.heads.get(s.blocks()[0]), Some(id as u64));
            for (i, &key) in s.blocks().iter().enumerate() {
                let loc = Loc {
                    seg: id as u32,
                    label: s.front + i as u32,
                };
                assert!(seen.insert(key, loc).is_none(), "block {key} placed twice");
            }
            for (k, (offset, set)) in s.ranges().enumerate() {
                let end = s.ranges().nth(k + 1).map_or(s.blocks().len(), |r| r.0);
                if set.is_some() {
                    live += end - offset;
                }
            }
        }
        assert_eq!(self.heads.len(), segments);
        assert_eq!(self.live, live);
    }

    /// The workers holding `key` (scanning every segment).
    fn holders(&self, key: u64) -> BTreeSet<u32> {
        for s in &self.segs {
            if let Some(i) = s.blocks().iter().position(|&k| k == key) {
                let set = s.ranges().take_while(|&(o, _)| o <= i).last().unwrap().1;
                return set.map_or_else(BTreeSet::new, |set| {
                    self.sets.slots(set).into_iter().collect()
                });
            }
        }
        BTreeSet::new()
    }
}

/// Paths of a small random tree: every path starts at a root and branches often.
fn paths(rng: &mut impl Rng, count: usize) -> Vec<Vec<u64>> {
    let mut out: Vec<Vec<u64>> = Vec::new();
    let mut next_key = 1u64;
    for _ in 0..count {
        let mut path = match out.len() {
            0 => Vec::new(),
            n => {
                let base = &out[rng.random_range(0..n)];
                base[..rng.random_range(0..=base.len())].to_vec()
            }
        };
        for _ in 0..rng.random_range(1..12) {
            path.push(next_key);
            next_key += 1;
        }
        out.push(path);
    }
    out
}

#[test]
fn random_edits_keep_holders_exact_and_segments_consistent() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let tree = paths(&mut rng, 60);
    let mut segments = Segments::default();
    // Per worker slot: block → location (what the index's worker maps hold).
    let mut held: Vec<HashMap<u64, Loc>> = vec![HashMap::new(); 6];
    let mut out = Vec::new();
    for step in 0..30_000 {
        let slot = rng.random_range(0..6u32);
        let mine = &mut held[slot as usize];
        let path = &tree[rng.random_range(0..tree.len())];
        let mut lo = rng.random_range(0..path.len());
        let hi = rng.random_range(lo + 1..=path.len());
        match rng.random_range(0..10) {
            0..5 => {
                // A stored path follows a parent the worker holds.
                if lo > 0 && !mine.contains_key(&path[lo - 1]) {
                    lo = 0;
                }
                let parent = lo.checked_sub(1).map(|p| mine[&path[p]]);
                out.clear();
                segments.store(slot, parent, &path[lo..hi], &mut out);
                for (&key, &loc) in path[lo..hi].iter().zip(&out) {
                    assert_eq!(segments.hash_at(loc), key);
                    if let Some(old) = mine.insert(key, loc) {
                        assert_eq!(old, loc, "a held block does not move");
                    }
                }
            }
            5..8 => {
                // Tail first, like an engine freeing a request; sometimes shuffled.
                let mut locs: Vec<Loc> = path[lo..hi]
                    .iter()
                    .rev()
                    .filter_map(|key| mine.remove(key))
                    .collect();
                if step % 3 == 0 {
                    locs.shuffle(&mut rng);
                }
                segments.remove(slot, &locs);
            }
            _ => {
                let mut locs: Vec<Loc> = mine.drain().map(|(_, loc)| loc).collect();
                locs.sort_unstable();
                segments.remove(slot, &locs);
            }
        }
        if step % 50 == 0 {
            segments.check();
            for key in tree.iter().flatten() {
                let truth: BTreeSet<u32> = (0..6u32)
                    .filter(|&w| held[w as usize].contains_key(key))
                    .collect();
                assert_eq!(segments.holders(*key), truth, "step {step} key {key}");
            }
        }
    }
    segments.check();
    let distinct: BTreeSet<u64> = held.iter().flat_map(|m| m.keys().copied()).collect();
    assert_eq!(segments.len(), distinct.len());
}

#[test]
fn appends_extend_a_segment_and_holes_are_revived_in_place() {
    let mut segments = Segments::default();
    let path: Vec<u64> = (1..=100).collect();
    let mut locs = Vec::new();
    segments.store(0, None, &path[..60], &mut locs);
    let parent = locs[59];
    segments.store(0, Some(parent), &path[60..], &mut locs);
    assert_eq!(
        segments.heads.len(),
        1,
        "a continued path stays one segment"
    );
    assert!(locs.iter().all(|l| l.seg == locs[0].seg));
    // A hole in the middle is a tombstone; storing the block again revives it there.
    segments.remove(0, &[locs[49]]);
    assert_eq!((segments.len(), segments.heads.len()), (99, 1));
    assert!(segments.holders(50).is_empty());
    let mut again = Vec::new();
    segments.store(0, Some(locs[48]), &[50], &mut again);
    assert_eq!(again, vec![locs[49]]);
    assert_eq!(segments.len(), 100);
    segments.check();
    // Evicting tail first frees the segment.
    let tail_first: Vec<Loc> = locs.iter().rev().copied().collect();
    segments.remove(0, &tail_first);
    assert_eq!((segments.len(), segments.heads.len()), (0, 0));
    segments.check();
}

#[test]
fn a_block_whose_parent_was_trimmed_is_found_by_its_head_entry() {
    let mut segments = Segments::default();
    let path: Vec<u64> = (1..=10).collect();
    let mut locs = Vec::new();
    segments.store(0, None, &path, &mut locs);
    // Dropping the first two blocks makes block 3 the segment's head.
    segments.remove(0, &[locs[1], locs[0]]);
    assert_eq!(segments.head(3).map(|s| s.blocks()[0]), Some(3));
    // Another worker stores the whole path from the root: blocks 1 and 2 are new, but
    // 3 and 4 must be found where they are, not placed a second time.
    let mut other = Vec::new();
    segments.store(1, None, &path[..4], &mut other);
    assert_eq!(&other[2..], &locs[2..4]);
    assert_eq!(segments.len(), 10);
    assert_eq!(segments.holders(3), BTreeSet::from([0, 1]));
    assert_eq!(segments.holders(5), BTreeSet::from([0]));
    segments.check();
}

#[test]
fn shared_stretches_split_ranges_and_merge_them_back() {
    let mut segments = Segments::default();
    let path: Vec<u64> = (1..=30).collect();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    segments.store(0, None, &path, &mut a);
    segments.store(1, None, &path[..10], &mut b);
    let seg = &segments.segs[a[0].seg as usize];
    assert_eq!(seg.ranges.len(), 2);
    let interned = segments.sets.interned();
    assert_eq!(interned, 1);
    segments.remove(1, &b);
    assert_eq!(segments.segs[a[0].seg as usize].ranges.len(), 1);
    assert_eq!(segments.sets.interned(), 0, "the shared set is released");
    segments.check();
}
