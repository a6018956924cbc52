//! Scale-down hysteresis: up at once, down only to the largest need of a window of recent
//! decisions, and only once the whole window allowed fewer replicas. Optionally, a need whose
//! forecast the arrivals since have refuted no longer holds the pools (see
//! [`DownHysteresis::observe`]).

use std::collections::VecDeque;

use crate::replicas::{ReplicaTarget, Role};

/// A need of the window, with the rate it was sized for and the forecast behind it.
#[derive(Debug, Clone)]
struct Entry {
    need: ReplicaTarget,
    rate: f64,
    /// Rates forecast for the intervals after the decision, next first.
    path: Vec<f64>,
    /// Arrivals expected by `path` and arrivals seen, over the intervals observed since.
    expected: f64,
    arrived: f64,
    seen: usize,
}

/// Needs computed by recent decisions (and emergency re-plans), newest last.
#[derive(Debug, Clone, Default)]
pub(super) struct DownHysteresis {
    recent: VecDeque<Entry>,
}

impl DownHysteresis {
    /// Records a need sized for `rate` without deciding (an emergency re-plan between
    /// decisions): it then holds the pools up for the next `patience` decisions like any
    /// other need. `path`: the rates forecast for the next intervals, next first; a need
    /// with an empty path is never refuted.
    pub fn remember(&mut self, need: ReplicaTarget, rate: f64, path: Vec<f64>) {
        self.recent.push_back(Entry {
            need,
            rate,
            path,
            expected: 0.0,
            arrived: 0.0,
            seen: 0,
        });
    }

    /// Counts the interval just ended (`arrivals` in `secs`) against each need's forecast
    /// for it (intervals past the end of a forecast path count at its last rate).
    pub fn observe(&mut self, arrivals: f64, secs: f64) {
        for e in &mut self.recent {
            let forecast = e
                .path
                .get(e.seen)
                .or(e.path.last())
                .copied()
                .unwrap_or(e.rate);
            e.expected += forecast.max(0.0) * secs.max(0.0);
            e.arrived += arrivals;
            e.seen += 1;
        }
    }

    /// Records `need`, sized for `rate` on the forecast `path`, and returns the target from
    /// `current`: each role goes up to its need at once; it goes down only when the last
    /// `patience` needs were all below `current`, and then to the largest of them. With
    /// `refute_z`, a need sized for more than `rate` whose forecast the arrivals since have
    /// refuted (more than `refute_z` Poisson standard deviations fewer arrivals than it
    /// forecast for the intervals observed since) counts as below `current` and is left out
    /// of the largest: the window guards against the noise of the arrivals, and a forecast
    /// that they have refuted is no such noise.
    pub fn apply(
        &mut self,
        need: ReplicaTarget,
        rate: f64,
        path: Vec<f64>,
        current: ReplicaTarget,
        patience: usize,
        refute_z: Option<f64>,
    ) -> ReplicaTarget {
        let patience = patience.max(1);
        self.remember(need, rate, path);
        while self.recent.len() > patience {
            self.recent.pop_front();
        }
        let refuted = |e: &Entry| {
            refute_z.is_some_and(|z| {
                // The difference of two Poisson counts has their sum as variance.
                e.seen > 0
                    && !e.path.is_empty()
                    && e.rate > rate
                    && e.expected - e.arrived > z * (e.expected + e.arrived).sqrt()
            })
        };
        let mut target = current;
        for role in Role::ALL {
            let (want, have) = (need.get(role), current.get(role));
            if want >= have {
                target.set(role, want);
            } else if self.recent.len() == patience {
                let keep = self
                    .recent
                    .iter()
                    .filter(|e| !refuted(e))
                    .map(|e| e.need.get(role))
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
        assert_eq!(
            h.apply(ReplicaTarget::new(3, 4), 0.0, Vec::new(), cur, 3, None),
            cur
        );
        assert_eq!(
            h.apply(ReplicaTarget::new(4, 2), 0.0, Vec::new(), cur, 3, None),
            cur
        );
        // Third low need: down to the window's largest need per role.
        assert_eq!(
            h.apply(ReplicaTarget::new(2, 2), 0.0, Vec::new(), cur, 3, None),
            ReplicaTarget::new(4, 4)
        );
        // Up is immediate; decode, still low for the whole window, goes to its largest
        // need in it.
        let cur = ReplicaTarget::new(4, 4);
        assert_eq!(
            h.apply(ReplicaTarget::new(8, 1), 0.0, Vec::new(), cur, 3, None),
            ReplicaTarget::new(8, 2)
        );
    }

    #[test]
    fn a_remembered_emergency_need_holds_the_pools() {
        let mut h = DownHysteresis::default();
        let cur = ReplicaTarget::new(5, 3);
        h.remember(ReplicaTarget::new(5, 3), 0.0, Vec::new());
        // Patience 2: the window holds the emergency need and this one.
        assert_eq!(
            h.apply(ReplicaTarget::new(3, 2), 0.0, Vec::new(), cur, 2, None),
            cur
        );
        assert_eq!(
            h.apply(ReplicaTarget::new(3, 2), 0.0, Vec::new(), cur, 2, None),
            ReplicaTarget::new(3, 2)
        );
    }

    /// A window of `patience` 3 whose first need was sized for 20 req/s on a forecast of
    /// 20 req/s per interval, then `arrivals` per 10-s interval for two decisions whose
    /// needs (sized for 8 req/s) are low; returns the target of the third decision.
    fn after_falls(arrivals: [f64; 2], refute_z: Option<f64>, path: Vec<f64>) -> ReplicaTarget {
        let mut h = DownHysteresis::default();
        let cur = ReplicaTarget::new(6, 4);
        let low = ReplicaTarget::new(3, 2);
        h.apply(cur, 20.0, path, cur, 3, refute_z);
        let mut target = cur;
        for n in arrivals {
            h.observe(n, 10.0);
            target = h.apply(low, 8.0, vec![8.0; 3], cur, 3, refute_z);
        }
        target
    }

    #[test]
    fn a_refuted_need_no_longer_holds_the_pools() {
        let (cur, low) = (ReplicaTarget::new(6, 4), ReplicaTarget::new(3, 2));
        let forecast = vec![20.0; 3];
        // 400 arrivals forecast over the two intervals, 340 came: z = 60 / √740 ≈ 2.2,
        // within 3σ of noise, so the need holds; 240: z = 160 / √640 ≈ 6.3, refuted: it
        // holds no longer once the window has seen only lower needs.
        assert_eq!(
            after_falls([170.0, 170.0], Some(3.0), forecast.clone()),
            cur
        );
        assert_eq!(
            after_falls([120.0, 120.0], Some(3.0), forecast.clone()),
            low
        );
        // The arrivals count against the forecast of each interval, summed: a forecast that
        // rises to 20 req/s only in its second interval (260 arrivals) is not refuted by two
        // intervals at 12 req/s, and is by two at 6 (z = 140 / √380 ≈ 7.2).
        assert_eq!(
            after_falls([120.0, 120.0], Some(3.0), vec![6.0, 20.0, 20.0]),
            cur
        );
        assert_eq!(
            after_falls([60.0, 60.0], Some(3.0), vec![6.0, 20.0, 20.0]),
            low
        );
        // Without the option, or for a need without a forecast (an emergency's), the
        // window holds whatever came.
        assert_eq!(after_falls([0.0, 0.0], None, forecast), cur);
        assert_eq!(after_falls([0.0, 0.0], Some(3.0), Vec::new()), cur);
    }

    #[test]
    fn a_need_sized_below_the_present_plan_is_never_released() {
        // Refuted, but the rate planned now is higher than the one it was sized for: the
        // present plan, not the refuted forecast, is what holds the pools.
        let mut h = DownHysteresis::default();
        let cur = ReplicaTarget::new(6, 4);
        h.apply(cur, 20.0, vec![20.0; 3], cur, 3, Some(3.0));
        h.observe(0.0, 10.0);
        h.apply(
            ReplicaTarget::new(3, 2),
            25.0,
            vec![25.0; 3],
            cur,
            3,
            Some(3.0),
        );
        h.observe(0.0, 10.0);
        assert_eq!(
            h.apply(
                ReplicaTarget::new(3, 2),
                25.0,
                vec![25.0; 3],
                cur,
                3,
                Some(3.0)
            ),
            cur
        );
    }
}
