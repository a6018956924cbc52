//! The agent's own registrations: per backend, per memory type, a sorted region table.

use std::sync::Arc;

use crate::desc::{Desc, RegDesc};
use crate::registry::{Region, RegionTable};
use crate::types::MemType;

/// One region table per memory type.
#[derive(Clone, Debug)]
pub(crate) struct MemTables([RegionTable; 5]);

impl Default for MemTables {
    fn default() -> Self {
        MemTables(MemType::ALL.map(|m| RegionTable::new(m.zero_len_is_unbounded())))
    }
}

impl MemTables {
    pub(crate) fn get(&self, mem: MemType) -> &RegionTable {
        &self.0[mem.index()]
    }

    pub(crate) fn get_mut(&mut self, mem: MemType) -> &mut RegionTable {
        &mut self.0[mem.index()]
    }
}

/// Makes unguessable per-registration keys: a random per-agent secret run through
/// SplitMix64 with a counter, so keys never repeat and cannot be predicted by a peer.
pub(crate) struct KeyMaker {
    secret: u64,
    counter: std::sync::atomic::AtomicU64,
}

impl KeyMaker {
    pub(crate) fn new() -> Self {
        KeyMaker {
            secret: crate::util::random_u64(),
            counter: std::sync::atomic::AtomicU64::new(1),
        }
    }

    pub(crate) fn next(&self) -> u64 {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        splitmix64(self.secret ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Builds a region for a new registration.
pub(crate) fn new_region(desc: &RegDesc, key: u64) -> Region {
    Region {
        desc: desc.desc,
        key,
        meta: Arc::from(desc.meta.as_slice()),
        public: Arc::from(&[][..]),
    }
}

/// Positions in `table` of regions exactly matching `descs`, or `None` if any is missing.
/// Duplicate descriptors in the request take distinct duplicate registrations.
pub(crate) fn exact_positions(table: &RegionTable, descs: &[Desc]) -> Option<Vec<usize>> {
    let mut positions: Vec<usize> = Vec::with_capacity(descs.len());
    let mut taken = std::collections::HashSet::with_capacity(descs.len());
    for desc in descs {
        let first = table.find_exact(desc)?;
        // find_exact may land on any of several equal registrations; walk to an unused one.
        let regions = table.regions();
        let mut lo = first;
        while lo > 0 && regions[lo - 1].desc == *desc {
            lo -= 1;
        }
        let pos = (lo..regions.len())
            .take_while(|&i| regions[i].desc == *desc)
            .find(|i| !taken.contains(i))?;
        taken.insert(pos);
        positions.push(pos);
    }
    Some(positions)
}
