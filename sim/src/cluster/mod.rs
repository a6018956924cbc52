//! The discrete-event cluster simulation and its public driving API.
//!
//! A [`Simulation`] owns the workers (one [`Engine`] each), the routing
//! policies and a clock. Events are arrivals (from the workload, in order),
//! pass ends, KV hand-offs between pools and replicas becoming ready. Nothing
//! depends on wall-clock time or hash-map order, so a seed fixes the run.

mod events;
mod observe;
mod records;
mod scaling;

pub use observe::{Observation, PoolObservation, ReplicaLoad};
pub use records::RequestOutcome;
pub use scaling::DrainChoice;

use crate::config::{ServingMode, SimConfig};
use crate::engine::{Engine, Output, Role, Sequence};
use crate::kv_event::{KvEvent, StorageTier, WorkerId};
use crate::report::ReplicaSample;
use crate::routing::{Candidate, RouteRequest, RoutingPolicy};
use crate::workload::Workload;
use events::{Event, EventQueue};
use observe::{ObservationAccumulator, role_index};
use records::RequestRecord;
use router::trace_hashing::TraceHasher;
use rustc_hash::FxHashSet;
use std::collections::VecDeque;
use std::rc::Rc;

/// Lifecycle of a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum WorkerState {
    /// Asked for; becomes ready after the start-up delay.
    Starting,
    /// Accepting requests.
    Ready,
    /// Takes no new requests, finishes what it has, then is removed.
    Draining,
    /// Gone.
    Removed,
}

pub(crate) struct Worker {
    pub(crate) id: WorkerId,
    pub(crate) role: Role,
    pub(crate) engine: Engine,
    pub(crate) state: WorkerState,
    busy: bool,
    next_event_id: u64,
    pub(crate) requests: u64,
    pub(crate) prompt_tokens: u64,
    pub(crate) cached_tokens: u64,
    pub(crate) busy_ms: f64,
    pub(crate) born_ms: f64,
    pub(crate) gone_ms: Option<f64>,
}

/// A cluster of mock engines replaying a workload.
pub struct Simulation {
    cfg: SimConfig,
    workload: Workload,
    hasher: TraceHasher,
    pub(crate) records: Vec<RequestRecord>,
    pub(crate) workers: Vec<Worker>,
    policies: Vec<(Role, Box<dyn RoutingPolicy>)>,
    queue: EventQueue,
    now_ms: f64,
    next_arrival: usize,
    /// Requests waiting for a ready replica, per role index.
    held: [VecDeque<usize>; 3],
    obs: ObservationAccumulator,
    pub(crate) timeline: Vec<ReplicaSample>,
    pub(crate) ideal_seen: FxHashSet<u64>,
    pub(crate) ideal_hit_tokens: u64,
    outputs: Vec<Output>,
    unfinished: usize,
    /// Prefix pulls from peers issued at routing time, and their blocks.
    pub(crate) pulls: u64,
    pub(crate) pulled_blocks: u64,
}

impl Simulation {
    /// A simulation of `workload` on the pools of `cfg.mode`. `policy` routes
    /// the aggregated or prefill pool; `decode_policy` routes the decode pool
    /// (disaggregated mode only; round-robin when `None`).
    pub fn new(
        cfg: SimConfig,
        workload: Workload,
        policy: Box<dyn RoutingPolicy>,
        decode_policy: Option<Box<dyn RoutingPolicy>>,
    ) -> Self {
        let hasher = TraceHasher::new(cfg.engine.block_size, workload.trace_block_size);
        let records = workload.requests.iter().map(RequestRecord::new).collect();
        let unfinished = workload.requests.len();
        let mut sim = Simulation {
            hasher,
            records,
            workers: Vec::new(),
            policies: Vec::new(),
            queue: EventQueue::default(),
            now_ms: 0.0,
            next_arrival: 0,
            held: Default::default(),
            obs: ObservationAccumulator::default(),
            timeline: Vec::new(),
            ideal_seen: FxHashSet::default(),
            ideal_hit_tokens: 0,
            outputs: Vec::new(),
            unfinished,
            pulls: 0,
            pulled_blocks: 0,
            workload,
            cfg,
        };
        match sim.cfg.mode.clone() {
            ServingMode::Aggregated { workers } => {
                sim.policies.push((Role::Aggregated, policy));
                sim.add_workers(Role::Aggregated, workers, true);
            }
            ServingMode::Disaggregated {
                prefill_workers,
                decode_workers,
                ..
            } => {
                let decode = decode_policy
                    .unwrap_or_else(|| Box::new(crate::routing::RoundRobin::default()));
                sim.policies.push((Role::Prefill, policy));
                sim.policies.push((Role::Decode, decode));
                sim.add_workers(Role::Prefill, prefill_workers, true);
                sim.add_workers(Role::Decode, decode_workers, true);
            }
        }
        sim
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The workload being replayed.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// Simulated time, ms.
    pub fn now_ms(&self) -> f64 {
        self.now_ms
    }

    /// True when every request has finished or been rejected.
    pub fn is_finished(&self) -> bool {
        self.unfinished == 0
    }

    /// Roles of this simulation's pools (`[Aggregated]` or `[Prefill, Decode]`).
    pub fn pools(&self) -> Vec<Role> {
        self.policies.iter().map(|(r, _)| *r).collect()
    }

    /// Processes the next event. Returns `false` when nothing is left to do.
    pub fn step(&mut self) -> bool {
        let next_event = self.queue.peek_time();
        let next_arrival = self
            .workload
            .requests
            .get(self.next_arrival)
            .map(|r| r.arrival_ms);
        match (next_event, next_arrival) {
            (None, None) => false,
            (Some(te), ta) if ta.is_none_or(|ta| te <= ta) => {
                let (t, ev) = self.queue.pop().expect("peeked");
                self.advance_to(t);
                self.handle(ev);
                true
            }
            (_, Some(ta)) => {
                self.advance_to(ta);
                let idx = self.next_arrival;
                self.next_arrival += 1;
                self.arrive(idx);
                true
            }
            (Some(_), None) => unreachable!("covered by the first arm"),
        }
    }

    /// Runs every event up to and including `t_ms`, then sets the clock to
    /// `t_ms` (so replica time is counted up to it).
    pub fn run_until(&mut self, t_ms: f64) {
        loop {
            let te = self.queue.peek_time().unwrap_or(f64::INFINITY);
            let ta = self
                .workload
                .requests
                .get(self.next_arrival)
                .map_or(f64::INFINITY, |r| r.arrival_ms);
            if te.min(ta) > t_ms || !self.step() {
                break;
            }
        }
        if t_ms > self.now_ms && t_ms.is_finite() {
            self.advance_to(t_ms);
        }
    }

    /// Runs until every request is done (or nothing can progress, e.g. all
    /// pools scaled to zero).
    pub fn run_to_completion(&mut self) {
        while self.step() {}
    }

    /// Closes the current observation interval at the current time and
    /// returns what was seen since the previous call (or the start).
    pub fn take_observation(&mut self) -> Observation {
        let pools = self
            .pools()
            .into_iter()
            .map(|r| self.pool_observation(r))
            .collect();
        self.obs.close(self.now_ms, pools)
    }

    /// Instantaneous state of one pool.
    pub fn pool_observation(&self, role: Role) -> PoolObservation {
        let mut p = PoolObservation {
            role: Some(role),
            ..PoolObservation::default()
        };
        p.held = self.held[role_index(role)].len();
        p.queue_depth = p.held;
        for w in self.workers.iter().filter(|w| w.role == role) {
            match w.state {
                WorkerState::Starting => p.starting += 1,
                WorkerState::Ready => p.ready += 1,
                WorkerState::Draining => p.draining += 1,
                WorkerState::Removed => continue,
            }
            if w.state == WorkerState::Starting {
                continue;
            }
            let l = w.engine.load();
            p.queue_depth += l.waiting;
            p.running += l.running;
            p.active_kv_blocks += l.active_blocks;
            p.capacity_kv_blocks += l.capacity_blocks;
            p.pending_prefill_tokens += l.pending_prefill_tokens;
            p.decode_kv_tokens += l.decode_kv_tokens;
            p.replicas.push(ReplicaLoad {
                worker: w.id,
                draining: w.state == WorkerState::Draining,
                load: l,
            });
        }
        p
    }

    /// The engine of a worker (any state), for inspection.
    pub fn engine(&self, worker: WorkerId) -> Option<&Engine> {
        self.workers.get(worker as usize).map(|w| &w.engine)
    }

    /// State of every worker ever created, by id.
    pub fn worker_states(&self) -> Vec<(WorkerId, Role, WorkerState)> {
        self.workers
            .iter()
            .map(|w| (w.id, w.role, w.state))
            .collect()
    }

    pub(crate) fn policy_for(&self, role: Role) -> &dyn RoutingPolicy {
        self.policies
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, p)| p.as_ref())
            .expect("pool exists")
    }

    pub(crate) fn policy_for_mut(&mut self, role: Role) -> &mut Box<dyn RoutingPolicy> {
        self.policies
            .iter_mut()
            .find(|(r, _)| *r == role)
            .map(|(_, p)| p)
            .expect("pool exists")
    }

    fn advance_to(&mut self, t: f64) {
        debug_assert!(t >= self.now_ms, "time went backwards");
        let dt = t - self.now_ms;
        if dt > 0.0 {
            for w in &self.workers {
                if w.state != WorkerState::Removed {
                    self.obs.replica_ms[role_index(w.role)] += dt;
                }
            }
        }
        self.now_ms = t;
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::PassEnd(w) => self.end_pass(w as usize),
            Event::Handoff(r) => self.handoff_arrives(r),
            Event::WorkerReady(w) => {
                let w = w as usize;
                if self.workers[w].state == WorkerState::Starting {
                    self.workers[w].state = WorkerState::Ready;
                    let role = self.workers[w].role;
                    self.sample_timeline(role);
                    let held = std::mem::take(&mut self.held[role_index(role)]);
                    for r in held {
                        self.dispatch(r, role);
                    }
                }
            }
        }
    }

    fn arrive(&mut self, idx: usize) {
        let spec = &self.workload.requests[idx];
        let hashes = Rc::new(self.hasher.hashes(&spec.hash_ids, spec.input_length));
        // Ideal cache: longest prefix ever seen, under the engine's cap.
        let bs = self.cfg.engine.block_size;
        let cap = spec.input_length.saturating_sub(1) / bs;
        let hit = hashes
            .seq
            .iter()
            .take(cap)
            .take_while(|h| self.ideal_seen.contains(h))
            .count();
        self.ideal_hit_tokens += (hit * bs) as u64;
        self.ideal_seen.extend(hashes.seq.iter().copied());
        self.obs.arrivals += 1;
        self.obs.isl.push(spec.input_length);
        self.obs.osl.push(spec.output_length.max(1));
        self.records[idx].hashes = Some(hashes);
        let first_pool = self.policies[0].0;
        self.dispatch(idx, first_pool);
    }

    /// Routes request `r` to a ready worker of `role`, or holds it.
    fn dispatch(&mut self, r: usize, role: Role) {
        let ready: Vec<usize> = (0..self.workers.len())
            .filter(|&i| {
                self.workers[i].role == role && self.workers[i].state == WorkerState::Ready
            })
            .collect();
        if ready.is_empty() {
            self.held[role_index(role)].push_back(r);
            return;
        }
        let hashes = self.records[r].hashes.clone().expect("hashed at arrival");
        let spec = &self.workload.requests[r];
        let route = RouteRequest {
            id: r,
            input_length: spec.input_length,
            output_length: spec.output_length,
            local_hashes: &hashes.local,
            seq_hashes: &hashes.seq,
            block_size: self.cfg.engine.block_size,
            now_ms: self.now_ms,
        };
        let needs_overlap = self.policy_for(role).needs_cache_overlap();
        let candidates: Vec<Candidate> = ready
            .iter()
            .map(|&i| {
                let e = &self.workers[i].engine;
                Candidate {
                    worker: self.workers[i].id,
                    load: e.load(),
                    cached_blocks: if needs_overlap {
                        e.cached_prefix_blocks(&hashes.seq)
                    } else {
                        0
                    },
                }
            })
            .collect();
        let (input_length, output_length) = (spec.input_length, spec.output_length);
        let pick = self.policy_for_mut(role).choose(&route, &candidates);
        let wi = ready[pick.min(ready.len() - 1)];
        let mut seq = Sequence::new(r, r as u64, input_length, output_length, hashes);
        if role == Role::Decode {
            seq.generated = 1;
        } else {
            self.records[r].worker = Some(self.workers[wi].id);
            if self.workers[wi].engine.config().fetch_from_peers {
                seq.prefetched = self.pull_prefix(wi, &seq.prompt_hashes.seq);
            }
        }
        let w = &mut self.workers[wi];
        w.requests += 1;
        w.prompt_tokens += input_length as u64;
        w.engine.enqueue(seq);
        if !w.busy {
            self.start_pass(wi);
        }
    }

    /// Cross-worker prefix fetch: the blocks of `seq_hashes` past worker `wi`'s own
    /// (device or host) prefix that the best other worker of its pool holds, pulled now.
    fn pull_prefix(&mut self, wi: usize, seq_hashes: &[u64]) -> std::ops::Range<usize> {
        let me = &self.workers[wi];
        let local = me.engine.local_prefix_blocks(seq_hashes);
        let best = self
            .workers
            .iter()
            .filter(|w| {
                w.id != me.id
                    && w.role == me.role
                    && matches!(w.state, WorkerState::Ready | WorkerState::Draining)
            })
            .map(|w| w.engine.local_prefix_blocks(seq_hashes))
            .max()
            .unwrap_or(0);
        if best <= local {
            return 0..0;
        }
        self.pulls += 1;
        self.pulled_blocks += (best - local) as u64;
        local..best
    }

    fn start_pass(&mut self, wi: usize) {
        let mut out = std::mem::take(&mut self.outputs);
        out.clear();
        let stats = self.workers[wi].engine.start_pass(&mut out);
        for hits in self.workers[wi].engine.take_admission_hits() {
            let rec = &mut self.records[hits.request];
            rec.host_tokens = hits.host_tokens as u64;
            rec.fetched_tokens = hits.fetched_tokens as u64;
        }
        self.publish_kv_events(wi);
        for o in out.drain(..) {
            if let Output::Rejected { request } = o {
                self.records[request].rejected = true;
                self.unfinished -= 1;
                let (id, role) = (self.workers[wi].id, self.workers[wi].role);
                self.policy_for_mut(role).on_request_done(request, id);
            }
        }
        self.outputs = out;
        let w = &mut self.workers[wi];
        match stats {
            Some(s) => {
                w.busy = true;
                w.busy_ms += s.duration_ms;
                self.queue
                    .push(self.now_ms + s.duration_ms, Event::PassEnd(w.id));
            }
            None => {
                w.busy = false;
                if w.state == WorkerState::Draining && w.engine.is_idle() {
                    self.remove_worker(wi);
                }
            }
        }
    }

    fn end_pass(&mut self, wi: usize) {
        let mut out = std::mem::take(&mut self.outputs);
        out.clear();
        self.workers[wi].engine.finish_pass(&mut out);
        for (request, passes) in self.workers[wi].engine.take_first_tokens() {
            self.records[request].prefill_passes = passes;
        }
        let (id, role) = (self.workers[wi].id, self.workers[wi].role);
        for o in out.drain(..) {
            self.apply_output(o, id, role);
        }
        self.outputs = out;
        self.publish_kv_events(wi);
        self.start_pass(wi);
    }

    fn apply_output(&mut self, o: Output, worker: WorkerId, role: Role) {
        let now = self.now_ms;
        match o {
            Output::Token { request, first } => {
                if role == Role::Prefill {
                    return; // The first token counts once the KV cache reaches decode.
                }
                self.record_token(request, first);
                if first {
                    self.policy_for_mut(role).on_first_token(request, worker);
                }
            }
            Output::HandedOff {
                request,
                cached_tokens,
            } => {
                self.note_prefilled(request, cached_tokens);
                self.policy_for_mut(role).on_first_token(request, worker);
                self.policy_for_mut(role).on_request_done(request, worker);
                let delay = self.transfer_ms(self.workload.requests[request].input_length);
                self.queue.push(now + delay, Event::Handoff(request));
            }
            Output::Finished {
                request,
                cached_tokens,
            } => {
                if role == Role::Aggregated {
                    self.note_prefilled(request, cached_tokens);
                }
                self.finish(request);
                self.policy_for_mut(role).on_request_done(request, worker);
            }
            Output::Rejected { .. } => unreachable!("rejections come from start_pass"),
        }
    }

    fn note_prefilled(&mut self, request: usize, cached_tokens: usize) {
        let prompt = self.workload.requests[request].input_length as u64;
        self.records[request].cached_tokens = cached_tokens as u64;
        self.obs.prefilled_prompt_tokens += prompt;
        self.obs.prefix_hit_tokens += cached_tokens as u64;
        if let Some(w) = self.records[request].worker {
            self.workers[w as usize].cached_tokens += cached_tokens as u64;
        }
    }

    fn record_token(&mut self, request: usize, first: bool) {
        let now = self.now_ms;
        let rec = &mut self.records[request];
        rec.tokens += 1;
        if first {
            rec.first_token_ms = Some(now);
            self.obs.ttft_ms.push(now - rec.arrival_ms);
        }
        rec.last_token_ms = Some(now);
        self.obs.output_tokens += 1;
    }

    fn finish(&mut self, request: usize) {
        let rec = &mut self.records[request];
        assert!(rec.finish_ms.is_none(), "request {request} finished twice");
        rec.finish_ms = Some(self.now_ms);
        rec.hashes = None;
        if let Some(itl) = rec.mean_itl_ms() {
            self.obs.itl_ms.push(itl);
        }
        self.obs.e2e_ms.push(self.now_ms - rec.arrival_ms);
        self.obs.completed_osl.push(rec.tokens);
        self.obs.completed += 1;
        self.unfinished -= 1;
    }

    fn handoff_arrives(&mut self, request: usize) {
        self.record_token(request, true);
        if self.workload.requests[request].output_length <= 1 {
            self.finish(request);
        } else {
            self.dispatch(request, Role::Decode);
        }
    }

    fn transfer_ms(&self, prompt_tokens: usize) -> f64 {
        match self.cfg.mode {
            ServingMode::Disaggregated {
                kv_bytes_per_token,
                link_gbps,
                ..
            } if link_gbps > 0.0 => {
                prompt_tokens as f64 * kv_bytes_per_token / (link_gbps * 1e9) * 1000.0
            }
            _ => 0.0,
        }
    }

    fn publish_kv_events(&mut self, wi: usize) {
        let role = self.workers[wi].role;
        if !self.policy_for(role).wants_kv_events() {
            return;
        }
        let engine = &mut self.workers[wi].engine;
        let device = engine.take_kv_events().into_iter();
        let host = engine.take_host_kv_events().into_iter();
        let tiered = device
            .map(|d| (StorageTier::Device, d))
            .chain(host.map(|d| (StorageTier::Host, d)));
        for (tier, data) in tiered {
            let w = &mut self.workers[wi];
            let ev = KvEvent {
                event_id: w.next_event_id,
                data,
                tier,
            };
            w.next_event_id += 1;
            let id = w.id;
            self.policy_for_mut(role).on_kv_event(id, &ev);
        }
    }

    /// Checks every engine's block-manager invariants (for tests).
    pub fn check_invariants(&self) {
        for w in &self.workers {
            w.engine.check_invariants();
        }
    }
}
