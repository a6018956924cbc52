//! Replica lifecycle: adding replicas (ready after the start-up delay),
//! draining and removing them.

use super::events::Event;
use super::{Simulation, Worker, WorkerState};
use crate::engine::{Engine, Role};
use crate::kv_event::{KvEvent, KvEventData, StorageTier, WorkerId};
use crate::report::ReplicaSample;

/// Which ready replica to drain when a pool shrinks (starting replicas are
/// always cancelled first: they hold no work).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum DrainChoice {
    /// The most recently created ready replica.
    #[default]
    Newest,
    /// The ready replica with the least outstanding work (pending prefill
    /// tokens plus decode KV tokens, then fewest requests; ties to the
    /// newest), so it drains soonest and the fewest requests see a
    /// draining replica.
    LeastLoaded,
}

impl Simulation {
    /// Replicas of `role` that are starting or ready (the count a planner
    /// sets; draining ones are on their way out).
    pub fn replicas(&self, role: Role) -> usize {
        self.workers
            .iter()
            .filter(|w| {
                w.role == role && matches!(w.state, WorkerState::Starting | WorkerState::Ready)
            })
            .count()
    }

    /// Sets the number of replicas of `role`. New replicas become ready
    /// after `startup_delay_ms`; removed ones (starting ones first, then the
    /// newest ready ones) stop taking requests, finish what they hold, then
    /// disappear. Ignored for a role this simulation has no pool for.
    pub fn set_replicas(&mut self, role: Role, n: usize) {
        self.set_replicas_with(role, n, DrainChoice::Newest);
    }

    /// [`Simulation::set_replicas`], choosing the ready replicas to drain by
    /// `choice`.
    pub fn set_replicas_with(&mut self, role: Role, n: usize, choice: DrainChoice) {
        if !self.pools().contains(&role) {
            return;
        }
        let current = self.replicas(role);
        if n > current {
            self.add_workers(role, n - current, false);
        } else {
            for _ in n..current {
                self.retire_one(role, choice);
            }
        }
        self.sample_timeline(role);
    }

    pub(crate) fn add_workers(&mut self, role: Role, n: usize, ready_now: bool) {
        let engine_cfg = match role {
            Role::Decode => self
                .cfg
                .decode_engine
                .clone()
                .unwrap_or_else(|| self.cfg.engine.clone()),
            _ => self.cfg.engine.clone(),
        };
        let wants_events = self.cfg.emit_kv_events && self.policy_for(role).wants_kv_events();
        for _ in 0..n {
            let id = self.workers.len() as WorkerId;
            self.workers.push(Worker {
                id,
                role,
                engine: Engine::new(engine_cfg.clone(), role, wants_events),
                state: if ready_now {
                    WorkerState::Ready
                } else {
                    WorkerState::Starting
                },
                busy: false,
                next_event_id: 0,
                requests: 0,
                prompt_tokens: 0,
                cached_tokens: 0,
                busy_ms: 0.0,
                born_ms: self.now_ms,
                gone_ms: None,
            });
            if !ready_now {
                self.queue.push(
                    self.now_ms + self.cfg.startup_delay_ms,
                    Event::WorkerReady(id),
                );
            }
        }
        self.sample_timeline(role);
    }

    fn retire_one(&mut self, role: Role, choice: DrainChoice) {
        let pick = |state: WorkerState, ws: &[Worker]| {
            ws.iter().rposition(|w| w.role == role && w.state == state)
        };
        if let Some(i) = pick(WorkerState::Starting, &self.workers) {
            self.remove_worker(i);
            return;
        }
        let victim = match choice {
            DrainChoice::Newest => pick(WorkerState::Ready, &self.workers),
            DrainChoice::LeastLoaded => self.least_loaded_ready(role),
        };
        if let Some(i) = victim {
            self.drain_worker(i);
        }
    }

    /// Index of the ready worker of `role` with the least outstanding work;
    /// ties go to the newest.
    fn least_loaded_ready(&self, role: Role) -> Option<usize> {
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.role == role && w.state == WorkerState::Ready)
            .min_by_key(|(i, w)| {
                let l = w.engine.load();
                let work = l.pending_prefill_tokens + l.decode_kv_tokens;
                (work, l.waiting + l.running, std::cmp::Reverse(*i))
            })
            .map(|(i, _)| i)
    }

    /// Stops routing to ready worker `worker`; it is removed once idle.
    /// Returns false (and does nothing) if it is not a ready worker.
    pub fn drain(&mut self, worker: WorkerId) -> bool {
        let i = worker as usize;
        match self.workers.get(i) {
            Some(w) if w.state == WorkerState::Ready => {
                let role = w.role;
                self.drain_worker(i);
                self.sample_timeline(role);
                true
            }
            _ => false,
        }
    }

    fn drain_worker(&mut self, i: usize) {
        self.workers[i].state = WorkerState::Draining;
        if self.workers[i].engine.is_idle() && !self.workers[i].busy {
            self.remove_worker(i);
        }
    }

    pub(crate) fn remove_worker(&mut self, i: usize) {
        let w = &mut self.workers[i];
        w.state = WorkerState::Removed;
        w.gone_ms = Some(self.now_ms);
        let (id, role) = (w.id, w.role);
        let policy = self.policy_for_mut(role);
        if policy.wants_kv_events() {
            let tiers: &[StorageTier] = if self.workers[i].engine.host_tier().capacity() > 0 {
                &[StorageTier::Device, StorageTier::Host]
            } else {
                &[StorageTier::Device]
            };
            for &tier in tiers {
                let event_id = self.workers[i].next_event_id;
                self.workers[i].next_event_id += 1;
                let ev = KvEvent {
                    event_id,
                    data: KvEventData::Cleared,
                    tier,
                };
                self.policy_for_mut(role).on_kv_event(id, &ev);
            }
        }
        self.policy_for_mut(role).on_worker_removed(id);
        self.sample_timeline(role);
    }

    pub(crate) fn sample_timeline(&mut self, role: Role) {
        let p = self.pool_observation(role);
        self.timeline.push(ReplicaSample {
            at_ms: self.now_ms,
            role,
            ready: p.ready,
            starting: p.starting,
            draining: p.draining,
        });
    }
}
