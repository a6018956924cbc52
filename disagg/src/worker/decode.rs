//! The decode side: get a request's KV (READ from the prefill worker with a notification that
//! frees its blocks, receive pushed chunks, or prefill locally), verify every block, then
//! decode on the engine and stream tokens.

use super::{PeerError, PromptBlocks, Worker, WorkerError, prompt_blocks};
use crate::kv::SlotId;
use crate::proto::{KvSource, RequestInfo, WorkerMsg};
use crate::transfer::{Op, Segment, XferId, XferState};
use sim::engine::Sequence;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How a request's KV is arriving.
#[derive(Debug)]
enum Arrival {
    /// A READ from this prefill agent.
    Pull { agent: String },
    /// Pushed chunks: `got` of `expected` notifications so far.
    Push { got: usize, expected: Option<usize> },
    /// Local prefill, done at `ready`.
    Local { ready: Instant },
}

/// A request whose KV is on its way.
#[derive(Debug)]
struct Receiving {
    req: RequestInfo,
    blocks: PromptBlocks,
    slots: Vec<SlotId>,
    /// Blocks that arrive over the network (or are computed locally).
    incoming: Vec<usize>,
    started: Instant,
    arrival: Arrival,
}

/// Decode-side bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct DecodeState {
    receiving: HashMap<u64, Receiving>,
    xfers: HashMap<XferId, u64>,
    /// Requests waiting for free slots, with when they came.
    waiting: VecDeque<(RequestInfo, Option<KvSource>, Instant)>,
    running: HashMap<u64, Vec<SlotId>>,
    local_free_at: Option<Instant>,
}

impl DecodeState {
    pub(crate) fn busy(&self) -> bool {
        !self.receiving.is_empty() || !self.waiting.is_empty()
    }

    pub(crate) fn pending_len(&self) -> usize {
        self.waiting.len() + self.receiving.len()
    }

    pub(crate) fn next_local_deadline(&self) -> Option<Instant> {
        self.receiving
            .values()
            .filter_map(|r| match r.arrival {
                Arrival::Local { ready } => Some(ready),
                _ => None,
            })
            .min()
    }

    pub(crate) fn forget(&mut self, id: u64) -> Option<Vec<SlotId>> {
        self.running.remove(&id)
    }
}

impl Worker {
    fn blocks_of(&mut self, req: &RequestInfo) -> PromptBlocks {
        if req.trace_block != 512 {
            self.hasher = router::trace_hashing::TraceHasher::new(
                self.pool.layout().block_tokens,
                req.trace_block,
            );
        }
        let blocks = prompt_blocks(&mut self.hasher, self.pool.layout().block_tokens, req);
        self.remember_tokens(req, &blocks);
        blocks
    }

    /// A slot per block: cached full blocks are reused (from the GPU pool, or onboarded from
    /// the host tier), the others allocated and listed as incoming. `None` (nothing held)
    /// when the pool is full.
    fn reserve(&mut self, blocks: &PromptBlocks) -> Option<(Vec<SlotId>, Vec<usize>)> {
        let mut slots = Vec::with_capacity(blocks.len());
        let mut incoming = Vec::new();
        let mut gpu = 0;
        for i in 0..blocks.len() {
            let hash = blocks.cache_hash(i);
            if let Some(s) = hash.and_then(|h| self.slots.acquire_cached(h)) {
                gpu += 1;
                slots.push(s);
                continue;
            }
            if let Some(s) = hash.and_then(|_| self.onboard(blocks.keys[i])) {
                slots.push(s);
                continue;
            }
            match self.alloc_slot() {
                Some(s) => {
                    slots.push(s);
                    incoming.push(i);
                }
                None => {
                    self.slots.release_all(&slots);
                    return None;
                }
            }
        }
        self.load.tiers.from_gpu += gpu;
        Some((slots, incoming))
    }

    pub(crate) fn on_allocate(&mut self, req: RequestInfo) -> Result<(), WorkerError> {
        self.try_start(req, None, Instant::now())
    }

    pub(crate) fn on_decode(
        &mut self,
        req: RequestInfo,
        source: KvSource,
    ) -> Result<(), WorkerError> {
        self.try_start(req, Some(source), Instant::now())
    }

    /// Starts receiving a request, or queues it until slots free up. `source == None` is a
    /// push-mode allocation.
    fn try_start(
        &mut self,
        req: RequestInfo,
        source: Option<KvSource>,
        came: Instant,
    ) -> Result<(), WorkerError> {
        if matches!(source, Some(KvSource::Pull { .. }))
            && came.elapsed().as_secs_f64() > self.args.pin_timeout_s * 0.5
        {
            // The prefill worker may free the pinned blocks any moment now: reading them
            // could race with their reuse. Give the request back instead.
            return self.send(&WorkerMsg::Failed {
                id: req.id,
                error: "decode worker had no free KV slots before the prefill pin expired".into(),
            });
        }
        let blocks = self.blocks_of(&req);
        let Some((slots, incoming)) = self.reserve(&blocks) else {
            self.decode.waiting.push_back((req, source, came));
            return Ok(());
        };
        let id = req.id;
        let now = Instant::now();
        let arrival = match &source {
            None => Arrival::Push {
                got: 0,
                expected: None,
            },
            Some(KvSource::Local) => {
                let tokens = incoming.len() * self.pool.layout().block_tokens;
                let ms = self.driver.engine().config().perf_model.prefill_ms(tokens);
                let start = self.decode.local_free_at.map_or(now, |t| t.max(now));
                let ready = start + Duration::from_secs_f64(ms / 1000.0 / self.args.speedup);
                self.decode.local_free_at = Some(ready);
                Arrival::Local { ready }
            }
            Some(KvSource::Pull { agent, .. }) => Arrival::Pull {
                agent: agent.clone(),
            },
        };
        let mut r = Receiving {
            req,
            blocks,
            slots,
            incoming,
            started: now,
            arrival,
        };
        match source {
            None => {
                let dest = (0..r.blocks.len())
                    .map(|i| r.incoming.contains(&i).then_some(r.slots[i]))
                    .collect();
                self.decode.receiving.insert(id, r);
                self.send(&WorkerMsg::Allocated { id, slots: dest })?;
            }
            Some(KvSource::Local) => {
                self.decode.receiving.insert(id, r);
            }
            Some(KvSource::Pull { agent, slots }) => {
                let posted = self.post_pull(id, &agent, &slots, &r);
                match posted {
                    Ok(Some(x)) => {
                        self.decode.xfers.insert(x, id);
                        self.decode.receiving.insert(id, r);
                    }
                    Ok(None) => {
                        r.arrival = Arrival::Push {
                            got: 0,
                            expected: Some(0),
                        };
                        self.decode.receiving.insert(id, r);
                        self.kv_arrived(id)?;
                    }
                    Err(e) => {
                        self.slots.release_all(&r.slots);
                        let error = e.to_string();
                        self.send(&WorkerMsg::Failed { id, error })?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Posts the READ of the incoming blocks; `Ok(None)` when nothing needs fetching (the
    /// prefill worker is still told it may free its blocks).
    fn post_pull(
        &mut self,
        id: u64,
        agent: &str,
        remote_slots: &[SlotId],
        r: &Receiving,
    ) -> Result<Option<XferId>, PeerError> {
        let notif = format!("free:{id}");
        if r.incoming.is_empty() {
            self.transport
                .notify(agent, notif.as_bytes())
                .map_err(|source| PeerError::Notify {
                    agent: agent.into(),
                    source,
                })?;
            return Ok(None);
        }
        let peer = *self
            .peers
            .get(agent)
            .ok_or_else(|| PeerError::UnknownPrefill(agent.into()))?;
        if remote_slots.len() != r.blocks.len() {
            return Err(PeerError::SlotCount {
                sent: remote_slots.len(),
                blocks: r.blocks.len(),
            });
        }
        let layout = *self.pool.layout();
        let mut local = Vec::with_capacity(r.incoming.len() * layout.layers);
        let mut remote = Vec::with_capacity(r.incoming.len() * layout.layers);
        for layer in 0..layout.layers {
            for &i in &r.incoming {
                local.push(Segment {
                    addr: self.pool.addr(layer, r.slots[i] as usize),
                    len: layout.layer_block_bytes(),
                });
                remote.push(Segment {
                    addr: peer.base + peer.layout.offset(layer, remote_slots[i] as usize) as u64,
                    len: peer.layout.layer_block_bytes(),
                });
            }
        }
        self.transport
            .post(Op::Read, agent, &local, &remote, Some(notif.as_bytes()))
            .map(Some)
            .map_err(|source| PeerError::Read {
                agent: agent.into(),
                source,
            })
    }

    /// The KV of `id` is in place: verify it and start decoding.
    fn kv_arrived(&mut self, id: u64) -> Result<(), WorkerError> {
        let Some(r) = self.decode.receiving.remove(&id) else {
            return Ok(());
        };
        let local = matches!(r.arrival, Arrival::Local { .. });
        if local {
            for &i in &r.incoming {
                self.pool.fill(r.slots[i] as usize, r.blocks.keys[i]);
            }
            self.load.tiers.recomputed += r.incoming.len() as u64;
        }
        if !local && self.args.corrupt_first && !r.incoming.is_empty() {
            self.args.corrupt_first = false;
            self.pool.scrub(r.slots[r.incoming[0]] as usize);
        }
        let corrupt = r
            .incoming
            .iter()
            .filter(|&&i| !self.pool.verify(r.slots[i] as usize, r.blocks.keys[i]))
            .count();
        let block_bytes = self.pool.layout().block_bytes() as u64;
        self.send(&WorkerMsg::KvReady {
            id,
            received_blocks: if local { 0 } else { r.incoming.len() },
            cached_blocks: r.blocks.len() - r.incoming.len(),
            bytes: if local {
                0
            } else {
                r.incoming.len() as u64 * block_bytes
            },
            transfer_s: if local {
                0.0
            } else {
                r.started.elapsed().as_secs_f64()
            },
            verified: r.incoming.len(),
            corrupt,
            local,
        })?;
        if corrupt > 0 {
            self.slots.release_all(&r.slots);
            self.send(&WorkerMsg::Failed {
                id,
                error: format!("{corrupt} KV blocks failed verification"),
            })?;
            return self.retry_waiting();
        }
        for &i in &r.incoming {
            if r.blocks.cache_hash(i).is_some() {
                self.slots.publish(r.slots[i], r.blocks.keys[i]);
            }
        }
        let mut seq = Sequence::new(
            id as usize,
            id,
            r.req.isl,
            r.req.osl,
            r.blocks.hashes.clone(),
        );
        // The first token came with the prefill.
        seq.generated = 1;
        self.driver.engine_mut().enqueue(seq);
        self.decode.running.insert(id, r.slots);
        Ok(())
    }

    fn retry_waiting(&mut self) -> Result<(), WorkerError> {
        let n = self.decode.waiting.len();
        for _ in 0..n {
            let Some((req, source, came)) = self.decode.waiting.pop_front() else {
                break;
            };
            let before = self.decode.waiting.len();
            self.try_start(req, source, came)?;
            if self.decode.waiting.len() > before {
                // Still no room: put it back at the head, keeping arrival order.
                if let Some(back) = self.decode.waiting.pop_back() {
                    self.decode.waiting.push_front(back);
                }
                break;
            }
        }
        Ok(())
    }

    pub(crate) fn decode_poll(&mut self, now: Instant) -> Result<(), WorkerError> {
        let ids: Vec<XferId> = self.decode.xfers.keys().copied().collect();
        for x in ids {
            let state = self.transport.poll(x);
            if matches!(state, Ok(XferState::InProgress)) {
                continue;
            }
            self.transport.release(x);
            let id = self.decode.xfers.remove(&x).expect("listed");
            match state {
                Ok(_) => self.kv_arrived(id)?,
                Err(e) => {
                    if let Some(r) = self.decode.receiving.remove(&id) {
                        self.slots.release_all(&r.slots);
                    }
                    self.send(&WorkerMsg::Failed {
                        id,
                        error: format!("KV read failed: {e}"),
                    })?;
                }
            }
        }
        let notifs = self
            .transport
            .take_notifs()
            .map_err(WorkerError::Notifications)?;
        for (_peer, msg) in notifs {
            let text = String::from_utf8_lossy(&msg).into_owned();
            let mut parts = text.split(':');
            if parts.next() != Some("push") {
                continue;
            }
            let nums: Vec<u64> = parts.filter_map(|p| p.parse().ok()).collect();
            let [id, _chunk, n] = nums[..] else {
                continue;
            };
            let done = match self.decode.receiving.get_mut(&id) {
                Some(Receiving {
                    arrival: Arrival::Push { got, expected },
                    ..
                }) => {
                    *got += 1;
                    *expected = Some(n as usize);
                    *got >= (n as usize).max(1)
                }
                _ => false,
            };
            if done {
                self.kv_arrived(id)?;
            }
        }
        let ready: Vec<u64> = self
            .decode
            .receiving
            .iter()
            .filter(|(_, r)| matches!(r.arrival, Arrival::Local { ready } if ready <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in ready {
            self.kv_arrived(id)?;
        }
        if !self.decode.waiting.is_empty() {
            self.retry_waiting()?;
        }
        Ok(())
    }

    pub(crate) fn decode_finished(&mut self, id: u64) -> Result<(), WorkerError> {
        if let Some(slots) = self.decode.running.remove(&id) {
            self.slots.release_all(&slots);
        }
        self.send(&WorkerMsg::Finished { id })?;
        self.retry_waiting()
    }

    pub(crate) fn decode_peer_gone(&mut self, agent: &str) -> Result<(), WorkerError> {
        let ids: Vec<u64> = self
            .decode
            .receiving
            .iter()
            .filter(|(_, r)| matches!(&r.arrival, Arrival::Pull { agent: a } if a == agent))
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            super::release_xfers_of(&mut self.decode.xfers, id, self.transport.as_mut());
            if let Some(r) = self.decode.receiving.remove(&id) {
                self.slots.release_all(&r.slots);
            }
            self.send(&WorkerMsg::Failed {
                id,
                error: format!("prefill worker {agent} left during the read"),
            })?;
        }
        Ok(())
    }

    /// Drops a request that has not started decoding; returns slots to release.
    pub(crate) fn decode_abort(&mut self, id: u64) -> Option<Vec<SlotId>> {
        self.decode.waiting.retain(|(r, _, _)| r.id != id);
        let r = self.decode.receiving.remove(&id)?;
        super::release_xfers_of(&mut self.decode.xfers, id, self.transport.as_mut());
        Some(r.slots)
    }
}
