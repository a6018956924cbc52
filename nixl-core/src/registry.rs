//! Registered regions of one memory type, kept sorted so that "which region covers this
//! descriptor" is a binary search.

use std::sync::Arc;

use crate::desc::Desc;

/// One registered region, local or remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// The registered range.
    pub desc: Desc,
    /// The per-registration access key a peer must present to touch the region.
    pub key: u64,
    /// Registration metadata (`metaInfo`, e.g. a file path); empty for remote regions.
    pub meta: Arc<[u8]>,
    /// Backend-published data: what the owner exported (remote regions), empty locally.
    pub public: Arc<[u8]>,
}

impl Region {
    /// One past the last byte; `u64::MAX` for unbounded (storage, len 0) or wrapping ranges.
    fn end(&self, zero_is_unbounded: bool) -> u64 {
        if zero_is_unbounded && self.desc.len == 0 {
            return u64::MAX;
        }
        self.desc.end().unwrap_or(u64::MAX)
    }
}

/// Regions of one memory type sorted by `(dev_id, addr, len)` ([`order`]): the covering search
/// is a binary search on `(dev_id, addr)`, so every device's regions sit together.
///
/// Overlapping registrations are allowed (NIXL trusts the user), so besides the sorted list the
/// table keeps, per position, the furthest end reached by any earlier region of the same
/// device: a backward scan for a covering region stops as soon as no earlier region can reach.
#[derive(Clone, Debug, Default)]
pub struct RegionTable {
    regions: Vec<Region>,
    max_end: Vec<u64>,
    zero_is_unbounded: bool,
}

impl RegionTable {
    /// An empty table; `zero_is_unbounded` makes a registered length of 0 cover everything
    /// from its address on (NIXL's rule for BLK, OBJ and FILE).
    pub fn new(zero_is_unbounded: bool) -> Self {
        RegionTable {
            regions: Vec::new(),
            max_end: Vec::new(),
            zero_is_unbounded,
        }
    }

    /// Number of regions.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.regions.len()
    }

    /// All regions in sorted order.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Adds regions (kept sorted); duplicates are kept as separate registrations.
    pub fn insert_all(&mut self, new: impl IntoIterator<Item = Region>) {
        self.regions.extend(new);
        self.regions.sort_by_key(|r| order(&r.desc));
        self.rebuild_max_end();
    }

    /// The position of a region with exactly this range, if any.
    pub fn find_exact(&self, desc: &Desc) -> Option<usize> {
        self.regions
            .binary_search_by_key(&order(desc), |r| order(&r.desc))
            .ok()
    }

    /// Removes the regions at `positions` (any order, no duplicates) and returns them.
    pub fn remove_positions(&mut self, mut positions: Vec<usize>) -> Vec<Region> {
        positions.sort_unstable();
        let mut removed = Vec::with_capacity(positions.len());
        for pos in positions.into_iter().rev() {
            removed.push(self.regions.remove(pos));
        }
        self.rebuild_max_end();
        removed
    }

    /// Replaces the key of the region with exactly this range, or inserts it.
    /// Returns true if anything changed.
    pub fn upsert(&mut self, region: Region) -> bool {
        match self.find_exact(&region.desc) {
            Some(pos)
                if self.regions[pos].key == region.key
                    && self.regions[pos].public == region.public =>
            {
                false
            }
            Some(pos) => {
                self.regions[pos].key = region.key;
                self.regions[pos].public = region.public;
                true
            }
            None => {
                self.insert_all([region]);
                true
            }
        }
    }

    /// The region that fully covers `desc` (same device, `[addr, addr+len)` inside), if any.
    /// A descriptor straddling two adjacent registrations is not covered.
    pub fn covering(&self, desc: &Desc) -> Option<&Region> {
        self.covering_position(desc).map(|i| &self.regions[i])
    }

    /// Finds the region covering each descriptor, exactly as [`covering`](Self::covering)
    /// does, a stretch at a time: calls `run(end, region)` for consecutive stretches
    /// `descs[start..end]` that one region covers, in order. A list built in address order
    /// resolves with a few comparisons per descriptor instead of a binary search each.
    /// `Err(i)`: no region covers `descs[i]` (the stretches before it were reported).
    pub fn covering_runs<'a>(
        &'a self,
        descs: &[Desc],
        mut run: impl FnMut(usize, &'a Region),
    ) -> Result<(), usize> {
        let mut i = 0;
        while i < descs.len() {
            let pos = self.covering_position(&descs[i]).ok_or(i)?;
            let span = self.span(pos);
            i += 1 + descs[i + 1..].iter().take_while(|d| span.holds(d)).count();
            run(i, &self.regions[pos]);
        }
        Ok(())
    }

    fn covering_position(&self, desc: &Desc) -> Option<usize> {
        let want_end = desc.end()?;
        let key = (desc.dev_id, desc.addr);
        let upto = self
            .regions
            .partition_point(|r| (r.desc.dev_id, r.desc.addr) <= key);
        for i in (0..upto).rev() {
            let region = &self.regions[i];
            if region.desc.dev_id != desc.dev_id || self.max_end[i] < want_end {
                return None;
            }
            if region.end(self.zero_is_unbounded) >= want_end {
                return Some(i);
            }
        }
        None
    }

    /// The descriptors for which [`covering_position`](Self::covering_position) is `pos`
    /// without searching: inside the region, and before the next region of the device starts
    /// (from there on the search would look at that one first).
    fn span(&self, pos: usize) -> Span {
        let region = &self.regions[pos];
        let next = self
            .regions
            .get(pos + 1)
            .filter(|n| n.desc.dev_id == region.desc.dev_id)
            .map_or(u64::MAX, |n| n.desc.addr);
        Span {
            dev_id: region.desc.dev_id,
            start: region.desc.addr,
            next,
            end: region.end(self.zero_is_unbounded),
        }
    }

    fn rebuild_max_end(&mut self) {
        self.max_end.clear();
        let mut running = 0u64;
        let mut dev = None;
        for region in &self.regions {
            if dev != Some(region.desc.dev_id) {
                dev = Some(region.desc.dev_id);
                running = 0;
            }
            running = running.max(region.end(self.zero_is_unbounded));
            self.max_end.push(running);
        }
    }
}

/// The sort key of regions: device first, so that a device's regions are contiguous.
fn order(d: &Desc) -> (u64, u64, u64) {
    (d.dev_id, d.addr, d.len)
}

/// See [`RegionTable::span`].
struct Span {
    dev_id: u64,
    start: u64,
    /// Where the device's next region starts (`u64::MAX`: none follows).
    next: u64,
    end: u64,
}

impl Span {
    #[inline]
    fn holds(&self, d: &Desc) -> bool {
        // `&` rather than `&&`: four cheap comparisons without branches between them.
        (d.dev_id == self.dev_id)
            & (d.addr >= self.start)
            & (d.addr < self.next)
            & d.end().is_some_and(|e| e <= self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(addr: u64, len: u64, dev_id: u64) -> Region {
        Region {
            desc: Desc::new(addr, len, dev_id),
            key: addr ^ len,
            meta: Arc::from(&b""[..]),
            public: Arc::from(&b""[..]),
        }
    }

    #[test]
    fn covering_finds_enclosing_region_and_refuses_straddles() {
        let mut table = RegionTable::new(false);
        table.insert_all([region(1000, 100, 0), region(1100, 100, 0), region(0, 50, 1)]);
        assert_eq!(
            table.covering(&Desc::new(1010, 10, 0)).unwrap().desc.addr,
            1000
        );
        assert_eq!(
            table.covering(&Desc::new(1100, 100, 0)).unwrap().desc.addr,
            1100
        );
        assert!(
            table.covering(&Desc::new(1090, 20, 0)).is_none(),
            "straddles"
        );
        assert!(
            table.covering(&Desc::new(1010, 10, 1)).is_none(),
            "wrong device"
        );
        assert!(table.covering(&Desc::new(999, 2, 0)).is_none());
        assert!(table.covering(&Desc::new(1199, 2, 0)).is_none());
        assert!(
            table.covering(&Desc::new(u64::MAX, 2, 0)).is_none(),
            "wraps"
        );
    }

    #[test]
    fn covering_sees_an_outer_region_behind_a_nested_one() {
        let mut table = RegionTable::new(false);
        table.insert_all([region(0, 1000, 0), region(10, 10, 0)]);
        assert_eq!(
            table.covering(&Desc::new(500, 10, 0)).unwrap().desc.len,
            1000
        );
    }

    #[test]
    fn zero_length_storage_regions_are_unbounded() {
        let mut table = RegionTable::new(true);
        table.insert_all([region(0, 0, 7)]);
        assert!(table.covering(&Desc::new(1 << 40, 4096, 7)).is_some());
        let mut dram = RegionTable::new(false);
        dram.insert_all([region(0, 0, 0)]);
        assert!(dram.covering(&Desc::new(0, 1, 0)).is_none());
    }

    #[test]
    fn exact_find_and_remove() {
        let mut table = RegionTable::new(false);
        table.insert_all([region(0, 10, 0), region(10, 10, 0)]);
        let pos = table.find_exact(&Desc::new(10, 10, 0)).unwrap();
        assert!(table.find_exact(&Desc::new(10, 9, 0)).is_none());
        table.remove_positions(vec![pos]);
        assert_eq!(table.len(), 1);
        assert!(table.covering(&Desc::new(12, 1, 0)).is_none());
    }

    #[test]
    fn devices_sort_apart_so_every_device_is_searchable() {
        // By address alone, fd 5's region would sort before fd 3's and hide from the search.
        let mut table = RegionTable::new(true);
        table.insert_all([region(0, 100, 5), region(50, 100, 3)]);
        assert_eq!(table.covering(&Desc::new(10, 5, 5)).unwrap().desc.dev_id, 5);
        assert_eq!(table.covering(&Desc::new(60, 5, 3)).unwrap().desc.dev_id, 3);
        assert!(table.find_exact(&Desc::new(0, 100, 5)).is_some());
        assert!(table.find_exact(&Desc::new(50, 100, 3)).is_some());
    }

    /// `covering_runs` must give, descriptor by descriptor, what `covering` gives, on tables
    /// with nested, duplicate, adjacent and multi-device regions and lists in any order.
    #[test]
    fn covering_runs_agrees_with_covering() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..200 {
            let mut table = RegionTable::new(round % 4 == 0);
            let regions: Vec<Region> = (0..1 + next(6))
                .map(|_| region(next(400), next(200), next(2)))
                .collect();
            table.insert_all(regions);
            let mut descs: Vec<Desc> = (0..next(300))
                .map(|_| Desc::new(next(600), next(40), next(2)))
                .collect();
            if round % 2 == 0 {
                descs.sort();
            }
            let mut got = Vec::new();
            let mut start = 0;
            let outcome = table.covering_runs(&descs, |end, r| {
                got.extend((start..end).map(|_| Some(r.desc)));
                start = end;
            });
            let want: Vec<Option<Desc>> = descs
                .iter()
                .map(|d| table.covering(d).map(|r| r.desc))
                .collect();
            match outcome {
                Ok(()) => assert_eq!(got, want, "round {round}"),
                Err(i) => {
                    assert_eq!(got.len(), i, "round {round}");
                    assert_eq!(got[..], want[..i], "round {round}");
                    assert_eq!(want[i], None, "round {round}");
                }
            }
        }
    }
}
