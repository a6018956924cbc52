//! Requests through their stages: routing, prefill (pull or push), KV arrival and
//! verification, decoding, failures and retries.

use super::metrics::RequestRecord;
use super::{Frontend, Mode};
use crate::proto::{FrontMsg, KvSource, PushTarget, RequestInfo, WorkerMsg};
use router::SequenceHash;
use router::sched::{RequestId, RequestView};
use router::trace_hashing::TraceHasher;
use sim::workload::{RequestSpec, Workload};
use std::collections::HashMap;

/// Most attempts per request before it is failed.
const MAX_ATTEMPTS: u32 = 3;

/// Where a request stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Not arrived, or waiting to be routed.
    Queued,
    /// Push mode: waiting for the decode worker's slots.
    Allocating,
    /// On its prefill worker.
    Prefilling,
    /// KV on its way to the decode worker (or being prefilled there).
    Receiving,
    /// Streaming tokens.
    Decoding,
    /// Finished.
    Done,
    /// Failed for good.
    Failed,
}

/// One request of the workload.
#[derive(Debug, Clone)]
pub struct Req {
    /// Its spec.
    pub spec: RequestSpec,
    /// Arrival, seconds from the start.
    pub arrival_s: f64,
    /// Sequence hashes of its full prompt blocks.
    pub seq: Vec<SequenceHash>,
    /// Stage.
    pub stage: Stage,
    /// Id of the current attempt on the wire.
    pub wire: Option<u64>,
    /// Prefill worker of the current attempt.
    pub prefill: Option<u64>,
    /// Decode worker of the current attempt.
    pub decode: Option<u64>,
    /// Time of the last token, s.
    pub last_token: Option<f64>,
    /// Time of the first token, s.
    pub first_token: Option<f64>,
    /// Tokens streamed.
    pub tokens: usize,
    /// Attempts so far.
    pub attempts: u32,
}

impl Req {
    /// What the report keeps of this request.
    pub fn record(&self) -> RequestRecord {
        let served = self.stage == Stage::Done;
        RequestRecord {
            arrival_s: self.arrival_s,
            input_tokens: self.spec.input_length,
            output_tokens: self.tokens,
            outcome: match self.stage {
                Stage::Done => "served",
                Stage::Failed => "failed",
                _ => "unfinished",
            },
            ttft_ms: self.first_token.map(|t| (t - self.arrival_s) * 1000.0),
            e2e_ms: self
                .last_token
                .filter(|_| served)
                .map(|t| (t - self.arrival_s) * 1000.0),
            attempts: self.attempts,
        }
    }
}

/// The request table of a workload, with router hashes.
pub fn table(w: &Workload, block_tokens: usize) -> Vec<Req> {
    let mut hasher = TraceHasher::new(block_tokens, w.trace_block_size);
    w.requests
        .iter()
        .map(|spec| Req {
            seq: hasher
                .hashes(&spec.hash_ids, spec.input_length)
                .seq
                .into_iter()
                .map(SequenceHash)
                .collect(),
            arrival_s: spec.arrival_ms / 1000.0,
            spec: spec.clone(),
            stage: Stage::Queued,
            wire: None,
            prefill: None,
            decode: None,
            last_token: None,
            first_token: None,
            tokens: 0,
            attempts: 0,
        })
        .collect()
}

/// Failure text with numbers masked, to group failures by kind.
fn kind(error: &str) -> String {
    let mut out = String::with_capacity(error.len());
    let mut in_num = false;
    for c in error.chars() {
        if c.is_ascii_digit() {
            if !in_num {
                out.push('N');
            }
            in_num = true;
        } else {
            in_num = false;
            out.push(c);
        }
    }
    out
}

impl Frontend {
    fn info(&self, idx: usize, wire: u64) -> RequestInfo {
        let s = &self.reqs[idx].spec;
        RequestInfo {
            id: wire,
            isl: s.input_length,
            osl: s.output_length.max(1),
            hash_ids: s.hash_ids.clone(),
            trace_block: self.cfg.workload.trace_block_size,
        }
    }

    pub(super) fn route_queued(&mut self, now: f64) {
        while let Some(&idx) = self.queue.front() {
            if !self.dispatch(idx, now) {
                return; // No worker to route to yet.
            }
            self.queue.pop_front();
        }
    }

    /// Routes one attempt of request `idx`; false when no pool can take it now.
    fn dispatch(&mut self, idx: usize, now: f64) -> bool {
        if self.router.decode.workers().is_empty()
            || (self.router.prefill.workers().is_empty() && !self.cfg.local_prefill)
        {
            return false;
        }
        let wire = self.next_wire;
        let r = &self.reqs[idx];
        let view = RequestView {
            id: RequestId(wire),
            prompt_tokens: r.spec.input_length as u32,
            sequence: &r.seq,
            expected_output_tokens: Some(r.spec.output_length as u32),
        };
        let began = std::time::Instant::now();
        let Some(d) = self.router.route(&view, now) else {
            return false;
        };
        if let Some(p) = self.prom() {
            p.routed(d.prefill.is_none(), began.elapsed().as_secs_f64() * 1e3);
        }
        self.next_wire += 1;
        self.wire.insert(wire, idx);
        let info = self.info(idx, wire);
        let decode = d.decode.worker.id;
        let r = &mut self.reqs[idx];
        r.wire = Some(wire);
        r.attempts += 1;
        r.decode = Some(decode);
        r.prefill = d.prefill.map(|p| p.worker.id);
        let sent = match (d.prefill, self.cfg.mode) {
            (None, _) => {
                r.stage = Stage::Receiving;
                self.fleet.send(
                    decode,
                    &FrontMsg::Decode {
                        req: info,
                        source: KvSource::Local,
                    },
                )
            }
            (Some(p), Mode::Pull) => {
                r.stage = Stage::Prefilling;
                let fetch = self.fetch_hint(idx, p.worker.id);
                self.fleet.send(
                    p.worker.id,
                    &FrontMsg::Prefill {
                        req: info,
                        push: None,
                        fetch,
                    },
                )
            }
            (Some(_), Mode::Push) => {
                r.stage = Stage::Allocating;
                self.fleet.send(decode, &FrontMsg::Allocate { req: info })
            }
        };
        if !sent {
            self.fail_attempt(idx, "worker connection lost while routing", true);
        }
        true
    }

    fn idx_of(&self, wire: u64) -> Option<usize> {
        self.wire.get(&wire).copied()
    }

    pub(super) fn on_msg(&mut self, replica: u64, msg: WorkerMsg) {
        let now = self.now();
        match msg {
            WorkerMsg::Load(load) => {
                if let Some(c) = self.fleet.conns.get_mut(&replica) {
                    c.load = load;
                    if let Some(p) = self.endpoints.as_ref().map(|e| &e.prom) {
                        p.worker_load(
                            replica,
                            c.role == crate::proto::WorkerRole::Prefill,
                            load.slots_in_use,
                            load.pending_prefill_tokens,
                            self.cfg.blocks,
                        );
                    }
                }
                self.metrics
                    .freed
                    .insert(replica, (load.freed_by_notif, load.freed_by_timeout));
                self.metrics.tiers.insert(replica, load.tiers);
            }
            WorkerMsg::Prefilled {
                id,
                slots,
                cached_tokens,
                computed_blocks,
            } => {
                let Some(idx) = self.idx_of(id) else {
                    return;
                };
                self.count_prefill(idx, cached_tokens, computed_blocks);
                let agent = self.fleet.conns.get(&replica).map(|c| c.agent.clone());
                let decode = self.reqs[idx].decode;
                self.reqs[idx].stage = Stage::Receiving;
                let sent = match (agent, decode) {
                    (Some(agent), Some(d)) => {
                        let req = self.info(idx, id);
                        self.fleet.send(
                            d,
                            &FrontMsg::Decode {
                                req,
                                source: KvSource::Pull { agent, slots },
                            },
                        )
                    }
                    _ => false,
                };
                if !sent {
                    self.fail_attempt(idx, "decode worker gone before the KV read", true);
                }
            }
            WorkerMsg::Allocated { id, slots } => {
                let Some(idx) = self.idx_of(id) else {
                    return;
                };
                let agent = self.fleet.conns.get(&replica).map(|c| c.agent.clone());
                let prefill = self.reqs[idx].prefill;
                self.reqs[idx].stage = Stage::Prefilling;
                let sent = match (agent, prefill) {
                    (Some(agent), Some(p)) => {
                        let req = self.info(idx, id);
                        let push = Some(PushTarget { agent, slots });
                        let fetch = self.fetch_hint(idx, p);
                        self.fleet.send(p, &FrontMsg::Prefill { req, push, fetch })
                    }
                    _ => false,
                };
                if !sent {
                    self.fail_attempt(idx, "prefill worker gone before the push", true);
                }
            }
            WorkerMsg::Pushed {
                id,
                cached_tokens,
                computed_blocks,
                bytes,
                transfer_s,
            } => {
                let Some(idx) = self.idx_of(id) else {
                    return;
                };
                self.count_prefill(idx, cached_tokens, computed_blocks);
                if bytes > 0 {
                    self.metrics.kv_bytes += bytes;
                    self.metrics.transfer_s += transfer_s;
                    self.metrics.transfers += 1;
                    if let Some(p) = self.prom() {
                        p.kv_moved(bytes);
                    }
                }
                if self.reqs[idx].stage == Stage::Prefilling {
                    self.reqs[idx].stage = Stage::Receiving;
                }
            }
            WorkerMsg::KvReady {
                id,
                received_blocks,
                cached_blocks,
                bytes,
                transfer_s,
                verified,
                corrupt,
                local,
            } => {
                let Some(idx) = self.idx_of(id) else {
                    return;
                };
                self.metrics.verified += verified as u64;
                self.metrics.corrupt += corrupt as u64;
                self.metrics.decode_cached_blocks += cached_blocks as u64;
                if local {
                    self.metrics.local_prefills += 1;
                } else if self.cfg.mode == Mode::Pull && received_blocks > 0 {
                    self.metrics.kv_bytes += bytes;
                    self.metrics.transfer_s += transfer_s;
                    self.metrics.transfers += 1;
                    if let Some(p) = self.prom() {
                        p.kv_moved(bytes);
                    }
                }
                if corrupt > 0 {
                    return; // The worker follows with `Failed`.
                }
                let r = &mut self.reqs[idx];
                r.stage = Stage::Decoding;
                r.first_token = Some(now);
                r.last_token = Some(now);
                r.tokens = 1;
                let ttft = now - r.arrival_s;
                self.metrics.ttft.push((r.arrival_s, ttft));
                self.obs.first_token(ttft);
                if let Some(p) = self.prom() {
                    p.first_token(ttft, super::SLO.ttft);
                }
                self.router.on_first_token(RequestId(id), now);
            }
            WorkerMsg::Tokens { ids } => {
                for id in ids {
                    let Some(idx) = self.idx_of(id) else { continue };
                    let r = &mut self.reqs[idx];
                    if let Some(last) = r.last_token {
                        self.metrics.itl.push(now - last);
                        if let Some(p) = self.endpoints.as_ref().map(|e| &e.prom) {
                            p.token_gap(now - last);
                        }
                    }
                    r.last_token = Some(now);
                    r.tokens += 1;
                }
            }
            WorkerMsg::Finished { id } => {
                let Some(idx) = self.wire.remove(&id) else {
                    return;
                };
                let r = &mut self.reqs[idx];
                r.stage = Stage::Done;
                self.served += 1;
                let first = r.first_token.unwrap_or(now);
                let itl = if r.tokens > 1 {
                    (now - first) / (r.tokens - 1) as f64
                } else {
                    0.0
                };
                self.obs
                    .finish(r.spec.output_length as f64, itl, now - r.arrival_s);
                if let Some(p) = self.prom() {
                    p.request_ended(true);
                    if itl > 0.0 {
                        p.finished_itl(itl, super::SLO.itl);
                    }
                }
                self.router.on_finish(RequestId(id), now);
            }
            WorkerMsg::Failed { id, error } => {
                if let Some(idx) = self.idx_of(id) {
                    let retry =
                        self.reqs[idx].first_token.is_none() && !error.contains("verification");
                    self.fail_attempt(idx, &error, retry);
                }
            }
            WorkerMsg::Hello { .. } => {}
        }
    }

    fn count_prefill(&mut self, idx: usize, cached_tokens: usize, computed: usize) {
        let isl = self.reqs[idx].spec.input_length;
        self.metrics.prefill_tokens += isl as u64;
        self.metrics.prefill_cached_tokens += cached_tokens.min(isl) as u64;
        self.metrics.computed_blocks += computed as u64;
        self.obs.prefill(cached_tokens.min(isl) as f64, isl as f64);
        if let Some(p) = self.prom() {
            p.prefill(cached_tokens.min(isl) as u64, isl as u64);
        }
    }

    /// Ends the current attempt of `idx`: frees what workers hold, then re-routes it
    /// (`retry` and attempts left) or fails it for good.
    pub(super) fn fail_attempt(&mut self, idx: usize, error: &str, retry: bool) {
        let r = &mut self.reqs[idx];
        if matches!(r.stage, Stage::Done | Stage::Failed) {
            return;
        }
        let wire = r.wire.take();
        let workers = [r.prefill.take(), r.decode.take()];
        if let Some(w) = wire {
            self.wire.remove(&w);
            self.router
                .on_finish(RequestId(w), self.t0.elapsed().as_secs_f64());
            for id in workers.into_iter().flatten() {
                self.fleet.send(id, &FrontMsg::Abort { id: w });
            }
        }
        let r = &mut self.reqs[idx];
        if retry && r.attempts < MAX_ATTEMPTS {
            r.stage = Stage::Queued;
            self.metrics.retries += 1;
            self.queue.push_front(idx);
        } else {
            r.stage = Stage::Failed;
            if let Some(p) = self.prom() {
                p.request_ended(false);
            }
            self.failures
                .entry(kind(error))
                .or_insert_with(|| (error.to_owned(), 0))
                .1 += 1;
        }
    }

    /// Fails requests older than the request timeout, so nothing hangs.
    pub(super) fn expire(&mut self, now: f64) {
        let limit = self.cfg.request_timeout_s;
        let old: Vec<usize> = (0..self.next_arrival)
            .filter(|&i| {
                let r = &self.reqs[i];
                !matches!(r.stage, Stage::Done | Stage::Failed) && now - r.arrival_s > limit
            })
            .collect();
        for idx in old {
            self.queue.retain(|&q| q != idx);
            self.fail_attempt(idx, &format!("timed out after {limit} s"), false);
        }
    }

    /// Requests each worker still holds (for draining).
    pub(super) fn in_flight(&self) -> HashMap<u64, usize> {
        let mut m: HashMap<u64, usize> = HashMap::new();
        for r in &self.reqs {
            let prefill_busy = matches!(
                r.stage,
                Stage::Allocating | Stage::Prefilling | Stage::Receiving
            );
            if let (Some(p), true) = (r.prefill, prefill_busy) {
                *m.entry(p).or_default() += 1;
            }
            let decode_busy = prefill_busy || r.stage == Stage::Decoding;
            if let (Some(d), true) = (r.decode, decode_busy) {
                *m.entry(d).or_default() += 1;
            }
        }
        m
    }

    /// Requests touching `replica` that are not finished.
    pub(super) fn requests_on(&self, replica: u64) -> Vec<usize> {
        self.wire
            .values()
            .copied()
            .filter(|&i| {
                let r = &self.reqs[i];
                r.prefill == Some(replica) || r.decode == Some(replica)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn failure_kinds_mask_numbers() {
        assert_eq!(
            super::kind("prefill worker prefill-3-991 left"),
            "prefill worker prefill-N-N left"
        );
    }
}
