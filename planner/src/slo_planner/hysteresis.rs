//! Scale-down hysteresis: up at once, down only to the largest need of a window of recent
//! decisions, and only once the whole window allowed fewer replicas.

use std::collections::VecDeque;

use crate::replicas::{ReplicaTarget, Role};

/// Needs computed by recent decisions (and emergency re-plans), newest last.
#[derive(Debug, Clone, Default)]
pub(super) struct DownHysteresis {
    recent: VecDeque<ReplicaTarget>,
}

impl DownHysteresis {
    /// Records a need without deciding (an emergency re-plan between decisions): it then
    /// holds the pools up for the next `patience` decisions like any other need.
    pub fn remember(&mut self, need: ReplicaTarget) {
        self.recent.push_back(need);
    }

    /// Records `need` and returns the target from `current`: each role goes up to its need
    /// at once; it goes down only when the last `patience` needs were all below `current`,
    /// and then to the largest of them.
    pub fn apply(
        &mut self,
        need: ReplicaTarget,
        current: ReplicaTarget,
        patience: usize,
    ) -> ReplicaTarget {
        let patience = patience.max(1);
        self.recent.push_back(need);
        while self.recent.len() > patience {
            self.recent.pop_front();
        }
        let mut target = current;
        for role in Role::ALL {
            let (want, have) = (need.get(role), current.get(role));
            if want >= have {
                target.set(role, want);
            } else if self.recent.len() == patience {
                let keep = self
                    .recent
                    .iter()
                    .map(|n| n.get(role))
                    .max()
                    .unwrap_or(have);
                target.set(role, keep.min(have));
            }
        }
        target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_waits_for_the_window_and_keeps_its_peak() {
        let mut h = DownHysteresis::default();
        let cur = ReplicaTarget::new(6, 4);
        assert_eq!(h.apply(ReplicaTarget::new(3, 4), cur, 3), cur);
        assert_eq!(h.apply(ReplicaTarget::new(4, 2), cur, 3), cur);
        // Third low need: down to the window's largest need per role.
        assert_eq!(
            h.apply(ReplicaTarget::new(2, 2), cur, 3),
            ReplicaTarget::new(4, 4)
        );
        // Up is immediate; decode, still low for the whole window, goes to its largest
        // need in it.
        let cur = ReplicaTarget::new(4, 4);
        assert_eq!(
            h.apply(ReplicaTarget::new(8, 1), cur, 3),
            ReplicaTarget::new(8, 2)
        );
    }

    #[test]
    fn a_remembered_emergency_need_holds_the_pools() {
        let mut h = DownHysteresis::default();
        let cur = ReplicaTarget::new(5, 3);
        h.remember(ReplicaTarget::new(5, 3));
        // Patience 2: the window holds the emergency need and this one.
        assert_eq!(h.apply(ReplicaTarget::new(3, 2), cur, 2), cur);
        assert_eq!(
            h.apply(ReplicaTarget::new(3, 2), cur, 2),
            ReplicaTarget::new(3, 2)
        );
    }
}
