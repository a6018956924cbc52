//! The target side's check of every remote access against its own live registrations.

use std::collections::HashMap;

use crate::backend::ResolvedDesc;
use crate::desc::Desc;
use crate::status::{Result, err};

/// Registered DRAM regions by access key.
#[derive(Default)]
pub struct AccessTable {
    by_key: HashMap<u64, Desc>,
}

impl AccessTable {
    /// Adds a registration.
    pub fn insert(&mut self, key: u64, desc: Desc) {
        self.by_key.insert(key, desc);
    }

    /// Removes a registration.
    pub fn remove(&mut self, key: u64) {
        self.by_key.remove(&key);
    }

    /// Every registered key.
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.by_key.keys().copied()
    }

    /// Forgets everything (the agent is going away).
    pub fn clear(&mut self) {
        self.by_key.clear();
    }

    /// Checks that each descriptor lies inside the registration its key names. A forged or
    /// stale descriptor is NOT_ALLOWED and nothing may be touched.
    pub fn check(&self, descs: &[ResolvedDesc]) -> Result<()> {
        for d in descs {
            let Some(region) = self.by_key.get(&d.key) else {
                return Err(err!(
                    NotAllowed,
                    "no registration with the presented key (deregistered or forged)"
                ));
            };
            let inside = region.dev_id == d.dev_id
                && d.addr >= region.addr
                && d.addr
                    .checked_add(d.len)
                    .zip(region.end())
                    .is_some_and(|(end, region_end)| end <= region_end);
            if !inside {
                return Err(err!(
                    NotAllowed,
                    "descriptor {:#x}+{} lies outside the registration its key names",
                    d.addr,
                    d.len
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unknown_keys_and_out_of_range() {
        let mut t = AccessTable::default();
        t.insert(7, Desc::new(1000, 100, 0));
        let d = |addr, len, key| ResolvedDesc {
            addr,
            len,
            dev_id: 0,
            key,
        };
        assert!(t.check(&[d(1000, 100, 7), d(1050, 10, 7)]).is_ok());
        assert!(t.check(&[d(1000, 101, 7)]).is_err());
        assert!(t.check(&[d(999, 1, 7)]).is_err());
        assert!(t.check(&[d(1000, 1, 8)]).is_err());
        assert!(t.check(&[d(u64::MAX, 2, 7)]).is_err());
        t.remove(7);
        assert!(t.check(&[d(1000, 1, 7)]).is_err());
    }
}
