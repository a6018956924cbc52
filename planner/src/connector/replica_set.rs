//! The replica bookkeeping shared by every connector: which replicas exist in which state,
//! and what to do to move toward a target — reuse draining replicas before starting new
//! ones, cancel cold starts before draining ready ones, and drain the least busy first.

use crate::replicas::{ReplicaCounts, ReplicaTarget, Role};

use super::{Replica, ReplicaEvent, ReplicaId, ReplicaState, StopReason};

/// One step a connector must carry out after [`ReplicaSet::reconcile`] (the set's own state
/// is already updated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Bring up a new replica.
    Start {
        /// The new replica.
        id: ReplicaId,
        /// Its role.
        role: Role,
        /// Its slot: the lowest index free among live replicas of the role (for ports).
        slot: u32,
    },
    /// Tear down a replica that never became ready.
    Cancel {
        /// The replica.
        id: ReplicaId,
    },
    /// Stop routing new requests to a replica; stop it once idle.
    Drain {
        /// The replica.
        id: ReplicaId,
    },
    /// Put a draining replica back in service.
    Undrain {
        /// The replica.
        id: ReplicaId,
    },
}

/// Live replicas and their states, plus the events produced since last taken.
#[derive(Debug, Default)]
pub struct ReplicaSet {
    replicas: Vec<Replica>,
    next_id: ReplicaId,
    events: Vec<ReplicaEvent>,
}

impl ReplicaSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Live replicas (starting, ready or draining), oldest first.
    pub fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// The replica `id`, if live.
    pub fn get(&self, id: ReplicaId) -> Option<&Replica> {
        self.replicas.iter().find(|r| r.id == id)
    }

    /// Counts by role and state.
    pub fn counts(&self) -> ReplicaCounts {
        let mut counts = ReplicaCounts::default();
        for r in &self.replicas {
            let c = counts.get_mut(r.role);
            match r.state {
                ReplicaState::Starting => c.starting += 1,
                ReplicaState::Ready => c.ready += 1,
                ReplicaState::Draining { .. } => c.draining += 1,
            }
        }
        counts
    }

    /// Whether the set holds exactly `target` ready replicas and nothing in transition.
    pub fn settled_at(&self, target: ReplicaTarget) -> bool {
        let counts = self.counts();
        !counts.in_transition()
            && counts.prefill.ready == target.prefill
            && counts.decode.ready == target.decode
    }

    /// Takes the events produced since the last call.
    pub fn take_events(&mut self) -> Vec<ReplicaEvent> {
        std::mem::take(&mut self.events)
    }

    /// Updates states toward `target` and returns what the connector must do.
    /// `in_flight` reports the requests a replica still holds.
    pub fn reconcile(
        &mut self,
        now: f64,
        target: ReplicaTarget,
        in_flight: &dyn Fn(ReplicaId) -> usize,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        for role in Role::ALL {
            let want = target.get(role);
            let committed = self.counts().get(role).committed();
            if want > committed {
                self.grow(now, role, want - committed, &mut actions);
            } else if want < committed {
                self.shrink(now, role, committed - want, in_flight, &mut actions);
            }
        }
        actions
    }

    fn grow(&mut self, now: f64, role: Role, mut missing: u32, actions: &mut Vec<Action>) {
        // A draining replica is warm: putting it back costs no start-up time. Latest drained
        // first, as it has the most of its cache left.
        while missing > 0 {
            let Some(r) = self
                .replicas
                .iter_mut()
                .filter(|r| r.role == role && matches!(r.state, ReplicaState::Draining { .. }))
                .max_by(|a, b| {
                    drain_since(a)
                        .total_cmp(&drain_since(b))
                        .then(a.id.cmp(&b.id))
                })
            else {
                break;
            };
            r.state = ReplicaState::Ready;
            self.events.push(ReplicaEvent::Undrained { id: r.id, role });
            actions.push(Action::Undrain { id: r.id });
            missing -= 1;
        }
        for _ in 0..missing {
            let id = self.next_id;
            self.next_id += 1;
            let slot = self.free_slot(role);
            self.replicas.push(Replica {
                id,
                role,
                slot,
                state: ReplicaState::Starting,
                requested_at: now,
            });
            self.events.push(ReplicaEvent::Starting { id, role, slot });
            actions.push(Action::Start { id, role, slot });
        }
    }

    fn shrink(
        &mut self,
        now: f64,
        role: Role,
        mut excess: u32,
        in_flight: &dyn Fn(ReplicaId) -> usize,
        actions: &mut Vec<Action>,
    ) {
        // Cold starts are cancelled first (newest first): they serve nobody yet.
        while excess > 0 {
            let Some(id) = self
                .replicas
                .iter()
                .filter(|r| r.role == role && r.state == ReplicaState::Starting)
                .map(|r| r.id)
                .max()
            else {
                break;
            };
            self.stop(id, StopReason::Cancelled);
            actions.push(Action::Cancel { id });
            excess -= 1;
        }
        // Then drain the least busy ready replicas (ties: newest first).
        while excess > 0 {
            let Some(r) = self
                .replicas
                .iter_mut()
                .filter(|r| r.role == role && r.state == ReplicaState::Ready)
                .min_by(|a, b| in_flight(a.id).cmp(&in_flight(b.id)).then(b.id.cmp(&a.id)))
            else {
                break;
            };
            r.state = ReplicaState::Draining { since: now };
            self.events.push(ReplicaEvent::Draining { id: r.id, role });
            actions.push(Action::Drain { id: r.id });
            excess -= 1;
        }
    }

    /// Marks a starting replica ready. Returns false if it is not starting.
    pub fn mark_ready(&mut self, id: ReplicaId) -> bool {
        match self.replicas.iter_mut().find(|r| r.id == id) {
            Some(r) if r.state == ReplicaState::Starting => {
                r.state = ReplicaState::Ready;
                self.events.push(ReplicaEvent::Ready { id, role: r.role });
                true
            }
            _ => false,
        }
    }

    /// Removes a replica for `reason`. Returns false if it is not live.
    pub fn stop(&mut self, id: ReplicaId, reason: StopReason) -> bool {
        let Some(pos) = self.replicas.iter().position(|r| r.id == id) else {
            return false;
        };
        let r = self.replicas.remove(pos);
        self.events.push(ReplicaEvent::Stopped {
            id,
            role: r.role,
            reason,
        });
        true
    }

    /// Draining replicas that are idle (`in_flight == 0`) or have drained longer than
    /// `drain_timeout` seconds, with the reason to stop each.
    pub fn finished_drains(
        &self,
        now: f64,
        drain_timeout: f64,
        in_flight: &dyn Fn(ReplicaId) -> usize,
    ) -> Vec<(ReplicaId, StopReason)> {
        self.replicas
            .iter()
            .filter_map(|r| match r.state {
                ReplicaState::Draining { .. } if in_flight(r.id) == 0 => {
                    Some((r.id, StopReason::Drained))
                }
                ReplicaState::Draining { since } if now - since >= drain_timeout => {
                    Some((r.id, StopReason::DrainTimeout))
                }
                _ => None,
            })
            .collect()
    }

    fn free_slot(&self, role: Role) -> u32 {
        (0..)
            .find(|s| !self.replicas.iter().any(|r| r.role == role && r.slot == *s))
            .expect("u32 slots never run out")
    }
}

fn drain_since(r: &Replica) -> f64 {
    match r.state {
        ReplicaState::Draining { since } => since,
        _ => f64::NEG_INFINITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(_: ReplicaId) -> usize {
        0
    }

    #[test]
    fn grows_with_fresh_slots_and_shrinks_cold_starts_first() {
        let mut set = ReplicaSet::new();
        let actions = set.reconcile(0.0, ReplicaTarget::new(2, 1), &idle);
        assert_eq!(actions.len(), 3);
        assert_eq!(set.counts().prefill.starting, 2);
        let slots: Vec<u32> = set.replicas().iter().map(|r| r.slot).collect();
        assert_eq!(slots, vec![0, 1, 0]);
        assert!(set.mark_ready(0));
        assert!(!set.mark_ready(0));
        // Down to 1 prefill: the still-starting replica 1 is cancelled, not the ready one.
        let actions = set.reconcile(1.0, ReplicaTarget::new(1, 1), &idle);
        assert_eq!(actions, vec![Action::Cancel { id: 1 }]);
        assert_eq!(set.counts().prefill.ready, 1);
    }

    #[test]
    fn drains_least_busy_and_reuses_draining_before_starting() {
        let mut set = ReplicaSet::new();
        set.reconcile(0.0, ReplicaTarget::new(3, 0), &idle);
        for id in 0..3 {
            set.mark_ready(id);
        }
        let busy = |id: ReplicaId| [5, 1, 3][id as usize];
        let actions = set.reconcile(10.0, ReplicaTarget::new(2, 0), &busy);
        assert_eq!(actions, vec![Action::Drain { id: 1 }]);
        // Need 3 again: replica 1 comes back instead of a cold start.
        let actions = set.reconcile(11.0, ReplicaTarget::new(3, 0), &busy);
        assert_eq!(actions, vec![Action::Undrain { id: 1 }]);
        assert!(set.settled_at(ReplicaTarget::new(3, 0)));
        // Need 4: a new replica takes slot 3.
        let actions = set.reconcile(12.0, ReplicaTarget::new(4, 0), &busy);
        assert_eq!(
            actions,
            vec![Action::Start {
                id: 3,
                role: Role::Prefill,
                slot: 3
            }]
        );
    }

    #[test]
    fn finished_drains_by_idleness_or_timeout() {
        let mut set = ReplicaSet::new();
        set.reconcile(0.0, ReplicaTarget::new(2, 0), &idle);
        set.mark_ready(0);
        set.mark_ready(1);
        set.reconcile(5.0, ReplicaTarget::new(0, 0), &|id| id as usize);
        let load = |id: ReplicaId| if id == 0 { 0 } else { 2 };
        assert_eq!(
            set.finished_drains(6.0, 60.0, &load),
            vec![(0, StopReason::Drained)]
        );
        assert_eq!(
            set.finished_drains(65.0, 60.0, &load),
            vec![(0, StopReason::Drained), (1, StopReason::DrainTimeout)]
        );
        assert!(set.stop(0, StopReason::Drained));
        assert!(!set.stop(0, StopReason::Drained));
        let events = set.take_events();
        assert!(events.contains(&ReplicaEvent::Stopped {
            id: 0,
            role: Role::Prefill,
            reason: StopReason::Drained
        }));
        assert!(set.take_events().is_empty());
    }
}
