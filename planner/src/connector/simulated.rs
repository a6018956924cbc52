//! A connector for simulations: replicas become ready a fixed start-up delay after they are
//! asked for; draining ones stop when idle (or after a timeout).

use crate::replicas::{ReplicaCounts, ReplicaTarget};

use super::{
    Action, Connector, ConnectorError, DecisionId, DecisionLog, InFlight, Replica, ReplicaEvent,
    ReplicaSet,
};

/// Simulated replicas with a start-up delay.
#[derive(Debug)]
pub struct SimulatedConnector {
    startup_delay: f64,
    drain_timeout: f64,
    set: ReplicaSet,
    ready_at: Vec<(u64, f64)>,
    decisions: DecisionLog,
}

impl SimulatedConnector {
    /// Replicas take `startup_delay` seconds to become ready; a drain is cut off after
    /// `drain_timeout` seconds.
    pub fn new(startup_delay: f64, drain_timeout: f64) -> Self {
        Self {
            startup_delay: startup_delay.max(0.0),
            drain_timeout,
            set: ReplicaSet::new(),
            ready_at: Vec::new(),
            decisions: DecisionLog::default(),
        }
    }

    /// The earliest time a starting replica becomes ready, if any is starting (lets an event
    /// loop schedule its next wake-up).
    pub fn next_ready_time(&self) -> Option<f64> {
        self.ready_at.iter().map(|&(_, t)| t).min_by(f64::total_cmp)
    }
}

impl Connector for SimulatedConnector {
    fn set_target(
        &mut self,
        now: f64,
        target: ReplicaTarget,
        in_flight: InFlight<'_>,
    ) -> Result<DecisionId, ConnectorError> {
        let id = self.decisions.record(target);
        for action in self.set.reconcile(now, target, in_flight) {
            match action {
                Action::Start { id, .. } => self.ready_at.push((id, now + self.startup_delay)),
                Action::Cancel { id } => self.ready_at.retain(|&(r, _)| r != id),
                Action::Drain { .. } | Action::Undrain { .. } => {}
            }
        }
        // A zero delay, or a pure scale-down of idle replicas, completes at once.
        self.poll(now, in_flight)?;
        Ok(id)
    }

    fn poll(&mut self, now: f64, in_flight: InFlight<'_>) -> Result<(), ConnectorError> {
        let mut due: Vec<(u64, f64)> = Vec::new();
        self.ready_at.retain(|&(id, t)| {
            if t <= now {
                due.push((id, t));
                false
            } else {
                true
            }
        });
        due.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        for (id, _) in due {
            self.set.mark_ready(id);
        }
        for (id, reason) in self.set.finished_drains(now, self.drain_timeout, in_flight) {
            self.set.stop(id, reason);
        }
        self.decisions.check(&self.set);
        Ok(())
    }

    fn take_events(&mut self) -> Vec<ReplicaEvent> {
        self.set.take_events()
    }

    fn replicas(&self) -> Vec<Replica> {
        self.set.replicas().to_vec()
    }

    fn counts(&self) -> ReplicaCounts {
        self.set.counts()
    }

    fn completed_decision(&self) -> Option<DecisionId> {
        self.decisions.completed()
    }
}

#[cfg(test)]
mod tests {
    use super::super::StopReason;
    use super::*;
    use crate::replicas::Role;

    #[test]
    fn replicas_become_ready_after_the_delay() {
        let mut c = SimulatedConnector::new(30.0, 120.0);
        let idle = |_| 0;
        let d = c.set_target(0.0, ReplicaTarget::new(2, 1), &idle).unwrap();
        assert_eq!(c.counts().prefill.starting, 2);
        assert_eq!(c.completed_decision(), None);
        assert_eq!(c.next_ready_time(), Some(30.0));
        c.poll(29.9, &idle).unwrap();
        assert_eq!(c.counts().prefill.ready, 0);
        c.poll(30.0, &idle).unwrap();
        assert_eq!(c.counts().prefill.ready, 2);
        assert_eq!(c.counts().decode.ready, 1);
        assert_eq!(c.completed_decision(), Some(d));
        let ready = c
            .take_events()
            .iter()
            .filter(|e| matches!(e, ReplicaEvent::Ready { .. }))
            .count();
        assert_eq!(ready, 3);
    }

    #[test]
    fn removal_waits_for_the_drain() {
        let mut c = SimulatedConnector::new(0.0, 100.0);
        c.set_target(0.0, ReplicaTarget::new(2, 1), &|_| 0).unwrap();
        assert_eq!(c.counts().prefill.ready, 2);
        c.take_events();
        // Replica 0 holds 3 requests, replica 1 holds 1: replica 1 drains.
        let load = std::cell::Cell::new([3usize, 1, 0]);
        let in_flight = |id: u64| load.get()[id as usize];
        let d = c
            .set_target(10.0, ReplicaTarget::new(1, 1), &in_flight)
            .unwrap();
        assert_eq!(
            c.take_events(),
            vec![ReplicaEvent::Draining {
                id: 1,
                role: Role::Prefill
            }]
        );
        c.poll(20.0, &in_flight).unwrap();
        assert_eq!(c.counts().prefill.draining, 1);
        assert_ne!(c.completed_decision(), Some(d));
        load.set([3, 0, 0]);
        c.poll(21.0, &in_flight).unwrap();
        assert_eq!(c.counts().prefill.draining, 0);
        assert_eq!(c.completed_decision(), Some(d));
        assert_eq!(
            c.take_events(),
            vec![ReplicaEvent::Stopped {
                id: 1,
                role: Role::Prefill,
                reason: StopReason::Drained
            }]
        );
    }

    #[test]
    fn drain_timeout_cuts_off() {
        let mut c = SimulatedConnector::new(0.0, 5.0);
        let busy = |_| 1;
        c.set_target(0.0, ReplicaTarget::new(1, 1), &busy).unwrap();
        c.set_target(1.0, ReplicaTarget::new(1, 0), &busy).unwrap();
        c.poll(5.9, &busy).unwrap();
        assert_eq!(c.counts().decode.draining, 1);
        c.poll(6.0, &busy).unwrap();
        assert_eq!(c.counts().decode.draining, 0);
        assert!(c.take_events().contains(&ReplicaEvent::Stopped {
            id: 1,
            role: Role::Decode,
            reason: StopReason::DrainTimeout
        }));
    }
}
