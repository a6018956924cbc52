//! Workers joining and leaving: metadata exchange on arrival, routing pools following the
//! connector's replica events, and clean-up when a worker drains or dies.

use super::fleet::planner_role;
use super::requests::Stage;
use super::{Discovery, Frontend, RunError};
use crate::proto::{FrontMsg, WorkerMsg, WorkerRole};
use planner::{ReplicaEvent, Role};
use router::WorkerId;
use router::wire::{EngineBatch, EngineStream};
use std::net::TcpStream;

impl Frontend {
    /// A worker said hello: introduce it to the other pool's workers and vice versa.
    pub(super) fn on_hello(&mut self, stream: TcpStream, hello: WorkerMsg) -> Result<(), RunError> {
        let mut metrics_port = None;
        if let WorkerMsg::Hello {
            library,
            metrics,
            role,
            replica,
            ..
        } = &hello
        {
            self.library.clone_from(library);
            metrics_port =
                metrics.map(|port| (port, format!("{} worker {replica}", role.as_str())));
        }
        let Some(id) = self.fleet.on_hello(stream, hello) else {
            return Ok(());
        };
        if let (Some(e), Some((port, who))) = (self.endpoints.as_mut(), metrics_port) {
            let url = e.url(port);
            e.add_worker(id, port, who.clone())?;
            println!("metrics: {who} {url}");
        }
        self.streams.insert(id, EngineStream::new(id));
        let me = &self.fleet.conns[&id];
        let my_role = me.role;
        let mine = self.peer_msg(id);
        // Prefill workers also meet each other when they may fetch prefixes from each other.
        let fetch = self.cfg.fetch;
        let others: Vec<u64> = self
            .fleet
            .conns
            .iter()
            .filter(|&(&o, c)| {
                o != id && (c.role != my_role || (fetch && my_role == WorkerRole::Prefill))
            })
            .map(|(&o, _)| o)
            .collect();
        for other in others {
            let theirs = self.peer_msg(other);
            self.fleet.send(id, &theirs);
            self.fleet.send(other, &mine);
        }
        Ok(())
    }

    fn peer_msg(&self, id: u64) -> FrontMsg {
        let c = &self.fleet.conns[&id];
        let (md, listener) = match self.cfg.discovery {
            Discovery::Channel => (c.md.clone(), None),
            Discovery::Listener => (Vec::new(), c.listener.clone()),
            Discovery::Etcd => (Vec::new(), None),
        };
        FrontMsg::Peer {
            agent: c.agent.clone(),
            md,
            listener,
            layout: c.layout,
            base_addr: c.base,
        }
    }

    /// Follows the connector: ready workers join their routing pool, draining ones leave it.
    pub(super) fn connector_events(&mut self) {
        let events = planner::Connector::take_events(self.fleet.connector());
        for ev in events {
            match ev {
                ReplicaEvent::Ready { id, role } | ReplicaEvent::Undrained { id, role } => {
                    self.draining.remove(&id);
                    match role {
                        Role::Prefill => self.router.prefill.add_worker(WorkerId::new(id)),
                        Role::Decode => self.router.decode.add_worker(WorkerId::new(id)),
                    }
                }
                ReplicaEvent::Draining { id, role } => {
                    self.draining.insert(id);
                    self.leave_pool(id, role);
                }
                ReplicaEvent::Stopped { id, reason, .. } => {
                    use planner::connector::StopReason;
                    match reason {
                        StopReason::Drained => self.metrics.drained += 1,
                        StopReason::DrainTimeout => self.metrics.drain_timeouts += 1,
                        _ => {}
                    }
                    let died = reason == planner::connector::StopReason::Exited
                        && !self.draining.contains(&id);
                    self.worker_gone(id, died);
                }
                ReplicaEvent::Starting { .. } => {}
            }
        }
    }

    fn leave_pool(&mut self, id: u64, role: Role) {
        match role {
            Role::Prefill => self.router.prefill.remove_worker(WorkerId::new(id)),
            Role::Decode => self.router.decode.remove_worker(WorkerId::new(id)),
        }
    }

    /// A worker is gone (drained and stopped, or died): tell its peers, and re-route or fail
    /// what it held. Idempotent.
    pub(super) fn worker_gone(&mut self, id: u64, died: bool) {
        let Some(conn) = self.fleet.forget(id) else {
            return;
        };
        self.leave_pool(id, planner_role(conn.role));
        if let Some(p) = self.prom() {
            p.worker_gone(id, conn.role == WorkerRole::Prefill);
        }
        if let Some(Err(e)) = self.endpoints.as_mut().map(|e| e.remove_worker(id)) {
            self.progress.note(&format!(
                "worker {id} stays in the metrics targets file: {e}"
            ));
        }
        self.streams.remove(&id);
        self.draining.remove(&id);
        if died {
            self.metrics.worker_deaths += 1;
            self.progress.note(&format!(
                "worker {id} ({}) died; re-routing its requests",
                conn.role.as_str()
            ));
        }
        let others: Vec<u64> = self.fleet.conns.keys().copied().collect();
        for o in others {
            self.fleet.send(
                o,
                &FrontMsg::PeerGone {
                    agent: conn.agent.clone(),
                },
            );
        }
        for idx in self.requests_on(id) {
            let r = &self.reqs[idx];
            if r.decode != Some(id) && r.first_token.is_some() {
                // Its prefill worker, past the hand-off: the request needs nothing of it (run
                // again, it would stream, and count, a second first token).
                continue;
            }
            let streaming = r.decode == Some(id) && r.stage == Stage::Decoding;
            if streaming {
                self.fail_attempt(idx, "decode worker died after the first token", false);
            } else {
                let what = match conn.role {
                    WorkerRole::Prefill => "prefill worker died before the hand-off",
                    WorkerRole::Decode => "decode worker died before the first token",
                };
                self.fail_attempt(idx, what, true);
            }
        }
    }

    /// Applies a KV-event batch to the worker's pool index.
    pub(super) fn on_kv(&mut self, replica: u64, sequence: u64, batch: EngineBatch) {
        let Some(role) = self.fleet.conns.get(&replica).map(|c| c.role) else {
            return;
        };
        let Some(stream) = self.streams.get_mut(&replica) else {
            return;
        };
        let index = match role {
            WorkerRole::Prefill => &mut self.router.prefill.index,
            WorkerRole::Decode => &mut self.router.decode.index,
        };
        let report = stream.ingest(index, sequence, batch);
        self.metrics.kv_batches += 1;
        let lost = report.lost_batches.map_or(0, |l| l.end - l.start);
        self.metrics.kv_batches_lost += lost;
        if let Some(p) = self.prom() {
            p.kv_events(lost);
        }
    }
}
