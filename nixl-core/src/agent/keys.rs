//! Which registration key each descriptor of a prepped list carries, kept as runs: a list
//! built in address order over a few registrations needs a handful of runs rather than a key
//! per entry, so prepping writes almost nothing.

use crate::desc::Desc;
use crate::registry::RegionTable;

/// Per-descriptor registration keys as runs of equal keys. Memory: 16 bytes per run; a list
/// of more than [`DENSE_ABOVE`] runs also keeps one key per descriptor (8 bytes each), so that
/// looking a key up stays one load rather than a search.
pub(super) struct KeyRuns {
    /// One past the last descriptor of each run, increasing; the last is the list's length.
    ends: Vec<usize>,
    keys: Vec<u64>,
    dense: Option<Vec<u64>>,
}

/// Runs above which keys are also kept per descriptor.
const DENSE_ABOVE: usize = 8;

impl KeyRuns {
    /// The keys of the regions in `table` covering `descs`, or `Err(i)` if none covers
    /// `descs[i]`.
    pub(super) fn resolve(table: &RegionTable, descs: &[Desc]) -> Result<KeyRuns, usize> {
        let mut runs = KeyRuns {
            ends: Vec::new(),
            keys: Vec::new(),
            dense: None,
        };
        table.covering_runs(descs, |end, region| {
            if let (Some(last), Some(&key)) = (runs.ends.last_mut(), runs.keys.last())
                && key == region.key
            {
                *last = end;
            } else {
                runs.ends.push(end);
                runs.keys.push(region.key);
            }
        })?;
        if runs.keys.len() > DENSE_ABOVE {
            runs.dense = Some(runs.iter().collect());
        }
        Ok(runs)
    }

    /// The key of every descriptor, if all lie in one registration.
    pub(super) fn single(&self) -> Option<u64> {
        match self.keys.as_slice() {
            [key] => Some(*key),
            _ => None,
        }
    }

    /// The key of descriptor `i`, which must be inside the list.
    #[inline]
    pub(super) fn key(&self, i: usize) -> u64 {
        if let [key] = self.keys.as_slice() {
            return *key;
        }
        if let Some(dense) = &self.dense {
            return dense[i];
        }
        self.keys[self.ends.partition_point(|&end| end <= i)]
    }

    /// The keys one per descriptor, if kept so.
    pub(super) fn dense(&self) -> Option<&[u64]> {
        self.dense.as_deref()
    }

    /// The keys in list order, one per descriptor.
    pub(super) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.ends
            .iter()
            .zip(starts)
            .zip(&self.keys)
            .flat_map(|((&end, start), &key)| std::iter::repeat_n(key, end - start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Region;
    use std::sync::Arc;

    fn table(regions: &[(u64, u64, u64)]) -> RegionTable {
        let mut t = RegionTable::new(false);
        t.insert_all(regions.iter().map(|&(addr, len, key)| Region {
            desc: Desc::new(addr, len, 0),
            key,
            meta: Arc::from(&b""[..]),
            public: Arc::from(&b""[..]),
        }));
        t
    }

    #[test]
    fn runs_give_each_descriptor_its_region_key() {
        let t = table(&[(0, 100, 7), (100, 100, 9)]);
        let descs: Vec<Desc> = [0, 50, 150, 160, 10, 190]
            .iter()
            .map(|&a| Desc::new(a, 10, 0))
            .collect();
        let runs = KeyRuns::resolve(&t, &descs).unwrap();
        let want = [7, 7, 9, 9, 7, 9];
        assert_eq!(runs.iter().collect::<Vec<_>>(), want);
        assert_eq!((0..6).map(|i| runs.key(i)).collect::<Vec<_>>(), want);
        assert_eq!(runs.keys.len(), 4, "equal neighbours share a run");
    }

    #[test]
    fn an_uncovered_descriptor_is_reported_by_position() {
        let t = table(&[(0, 100, 7)]);
        let descs = [Desc::new(0, 10, 0), Desc::new(95, 10, 0)];
        assert_eq!(KeyRuns::resolve(&t, &descs).err(), Some(1));
        assert_eq!(KeyRuns::resolve(&t, &[]).unwrap().iter().count(), 0);
    }

    #[test]
    fn many_runs_keep_a_key_per_descriptor_that_agrees() {
        let t = table(&[(0, 100, 7), (100, 100, 9)]);
        let descs: Vec<Desc> = (0..40)
            .map(|i| Desc::new((i % 2) * 100 + i, 1, 0))
            .collect();
        let runs = KeyRuns::resolve(&t, &descs).unwrap();
        assert!(runs.dense().is_some(), "40 alternating runs");
        let by_search: Vec<u64> = runs.iter().collect();
        assert_eq!((0..40).map(|i| runs.key(i)).collect::<Vec<_>>(), by_search);
        assert_eq!(by_search[..4], [7, 9, 7, 9]);
    }
}
