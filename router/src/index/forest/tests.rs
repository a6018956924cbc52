use super::*;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap};

impl Forest {
    /// Panics unless the table and the runs agree and worker-set references balance.
    fn check(&self) {
        let mut blocks = 0;
        for (id, run) in self.runs.iter().enumerate() {
            let Some(_) = run.set else {
                assert!(run.hashes.is_empty(), "free run {id} keeps blocks");
                continue;
            };
            assert!(!run.live().is_empty(), "live run {id} is empty");
            for (i, &key) in run.live().iter().enumerate() {
                let place = self.table.get(key).expect("run block is in the table");
                assert_eq!(place.run, id as u32, "block {key} of run {id}");
                assert_eq!(place.pos, run.first.wrapping_add(i as u32));
            }
            blocks += run.live().len();
        }
        assert_eq!(blocks, self.table.len());
        assert_eq!(self.free_runs.len() + self.run_count(), self.runs.len());
    }

    fn holders(&self, key: u64) -> BTreeSet<u32> {
        match self.locate(key) {
            Some((run, _)) => self.sets.slots(self.set_of(run)).into_iter().collect(),
            None => BTreeSet::new(),
        }
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
fn random_edits_keep_sets_exact_and_runs_consistent() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let tree = paths(&mut rng, 60);
    let mut forest = Forest::default();
    let mut held: HashMap<u64, BTreeSet<u32>> = HashMap::new();
    for step in 0..30_000 {
        let slot = rng.random_range(0..6u32);
        let path = &tree[rng.random_range(0..tree.len())];
        let lo = rng.random_range(0..path.len());
        let hi = rng.random_range(lo + 1..=path.len());
        let range = &path[lo..hi];
        match rng.random_range(0..10) {
            0..5 => {
                forest.store(slot, lo.checked_sub(1).map(|p| path[p]), range);
                for &key in range {
                    held.entry(key).or_default().insert(slot);
                }
            }
            5..8 => {
                // Tail first, like an engine freeing a request; sometimes shuffled.
                let mut keys: Vec<u64> = range.iter().rev().copied().collect();
                if step % 3 == 0 {
                    let middle = keys.len() / 2;
                    keys.swap(0, middle);
                }
                forest.remove(slot, &keys);
                for key in &keys {
                    if let Some(set) = held.get_mut(key) {
                        set.remove(&slot);
                    }
                }
            }
            _ => {
                let keys: Vec<u64> = held
                    .iter()
                    .filter(|(_, set)| set.contains(&slot))
                    .map(|(&k, _)| k)
                    .collect();
                forest.remove_all(slot, &keys);
                for set in held.values_mut() {
                    set.remove(&slot);
                }
            }
        }
        held.retain(|_, set| !set.is_empty());
        if step % 50 == 0 {
            forest.check();
            for path in &tree {
                for key in path {
                    assert_eq!(
                        forest.holders(*key),
                        held.get(key).cloned().unwrap_or_default(),
                        "step {step} key {key}"
                    );
                }
            }
        }
    }
    forest.check();
    assert_eq!(forest.len(), held.len());
}

#[test]
fn a_stored_path_is_one_run_and_splits_merge_back() {
    let mut forest = Forest::default();
    let path: Vec<u64> = (1..=100).collect();
    forest.store(0, None, &path[..60]);
    forest.store(0, Some(60), &path[60..]);
    assert_eq!(forest.run_count(), 1);
    // A second worker on a prefix splits the run; leaving again merges it back.
    forest.store(1, None, &path[..30]);
    assert_eq!(forest.run_count(), 2);
    forest.remove(1, &path[..30].iter().rev().copied().collect::<Vec<_>>());
    assert_eq!(forest.run_count(), 1);
    // A hole in the middle of a single-worker run cuts it in two.
    forest.remove(0, &[50]);
    assert_eq!(forest.run_count(), 2);
    assert_eq!(forest.len(), 99);
    forest.check();
    // Tail-first eviction of everything frees all runs.
    forest.remove(0, &path.iter().rev().copied().collect::<Vec<_>>());
    assert_eq!((forest.run_count(), forest.len()), (0, 0));
    forest.check();
}
