//! The prefill side: queue the prompt on the engine; when the engine hands it off, write the
//! uncached blocks, then either pin them for the decode worker's READ (pull) or WRITE them
//! into the decode worker's slots, one notification per chunk (push).

use super::{PeerError, PromptBlocks, Worker, WorkerError, prompt_blocks};
use crate::kv::SlotId;
use crate::proto::{FetchHint, PushTarget, RequestInfo, WorkerMsg};
use crate::transfer::{Op, Segment, XferId, XferState};
use sim::engine::Sequence;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A request between arrival and hand-off.
#[derive(Debug)]
struct Pending {
    blocks: PromptBlocks,
    push: Option<PushTarget>,
    cached_tokens: usize,
}

/// Blocks pinned for a decode worker's READ.
#[derive(Debug)]
struct Pinned {
    slots: Vec<SlotId>,
    deadline: Instant,
}

/// A push in flight.
#[derive(Debug)]
struct Pushing {
    slots: Vec<SlotId>,
    agent: String,
    started: Instant,
    chunks_left: usize,
    bytes: u64,
    cached_tokens: usize,
    computed: usize,
    /// The first failure, sent to the frontend when the push ends.
    error: Option<PeerError>,
}

/// Prefill-side bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct PrefillState {
    pending: HashMap<u64, Pending>,
    /// Sequences kept out of the engine while their prefix fetch is in flight: the engine
    /// admits them once it knows which blocks arrived.
    held: HashMap<u64, Sequence>,
    /// Handed off by the engine, waiting for free slots.
    stalled: VecDeque<u64>,
    pinned: HashMap<u64, Pinned>,
    pushing: HashMap<u64, Pushing>,
    xfers: HashMap<XferId, u64>,
}

impl PrefillState {
    pub(crate) fn busy(&self) -> bool {
        !self.xfers.is_empty() || !self.stalled.is_empty()
    }

    /// Requests waiting outside the engine: for their fetch, or for free slots.
    pub(crate) fn stalled_len(&self) -> usize {
        self.stalled.len() + self.held.len()
    }

    pub(crate) fn forget(&mut self, id: u64) {
        self.pending.remove(&id);
        self.held.remove(&id);
    }
}

impl Worker {
    pub(crate) fn on_prefill(
        &mut self,
        req: RequestInfo,
        push: Option<PushTarget>,
        fetch: Option<FetchHint>,
    ) {
        if req.trace_block != 512 {
            self.hasher = router::trace_hashing::TraceHasher::new(
                self.pool.layout().block_tokens,
                req.trace_block,
            );
        }
        let blocks = prompt_blocks(&mut self.hasher, self.pool.layout().block_tokens, &req);
        self.remember_tokens(&req, &blocks);
        // The prefill engine emits one token and hands off.
        let seq = Sequence::new(req.id as usize, req.id, req.isl, 1, blocks.hashes.clone());
        if fetch.is_some_and(|hint| self.start_fetch(req.id, &blocks, &hint)) {
            // The engine gets it when the fetch resolves (or times out), so its timing
            // takes the fetched blocks as loaded rather than computed.
            self.prefill.held.insert(req.id, seq);
        } else {
            self.driver.engine_mut().enqueue(seq);
        }
        self.prefill.pending.insert(
            req.id,
            Pending {
                blocks,
                push,
                cached_tokens: 0,
            },
        );
    }

    pub(crate) fn prefill_handed_off(
        &mut self,
        id: u64,
        cached_tokens: usize,
    ) -> Result<(), WorkerError> {
        if let Some(p) = self.prefill.pending.get_mut(&id) {
            p.cached_tokens = cached_tokens;
            self.prefill.stalled.push_back(id);
        }
        self.retry_stalled()
    }

    /// Gives slots to handed-off requests in order, as long as the pool has room.
    fn retry_stalled(&mut self) -> Result<(), WorkerError> {
        while let Some(&id) = self.prefill.stalled.front() {
            let Some(p) = self.prefill.pending.get(&id) else {
                self.prefill.stalled.pop_front();
                continue;
            };
            if self.fetch.waiting(id) {
                return Ok(()); // Its prefix is on the way (or the fetch times out).
            }
            let Some((slots, computed)) = self.compute_blocks(id, &p.blocks.clone()) else {
                return Ok(()); // Pool full: wait for pinned blocks to be freed.
            };
            self.fetch_finish(id);
            self.prefill.stalled.pop_front();
            let p = self.prefill.pending.remove(&id).expect("checked above");
            match p.push {
                None => {
                    let deadline =
                        Instant::now() + Duration::from_secs_f64(self.args.pin_timeout_s);
                    self.prefill.pinned.insert(
                        id,
                        super::prefill::Pinned {
                            slots: slots.clone(),
                            deadline,
                        },
                    );
                    self.send(&WorkerMsg::Prefilled {
                        id,
                        slots,
                        cached_tokens: p.cached_tokens,
                        computed_blocks: computed,
                    })?;
                }
                Some(target) => self.start_push(id, slots, target, p.cached_tokens, computed)?,
            }
        }
        Ok(())
    }

    /// References a slot per prompt block: cached in the GPU pool (or fetched from a peer
    /// for request `id`), else onboarded from the host tier, else written here. Returns the
    /// slots and how many blocks were written; `None` when the pool is full.
    fn compute_blocks(&mut self, id: u64, blocks: &PromptBlocks) -> Option<(Vec<SlotId>, usize)> {
        let fetched = self.fetch.fetched(id);
        let mut slots = Vec::with_capacity(blocks.len());
        let mut computed = 0;
        let (mut gpu, mut peer) = (0, 0);
        for (i, key) in blocks.keys.iter().enumerate() {
            let hash = blocks.cache_hash(i);
            if let Some(s) = hash.and_then(|h| self.slots.acquire_cached(h)) {
                if hash.is_some_and(|h| fetched.contains(&h)) {
                    peer += 1;
                } else {
                    gpu += 1;
                }
                slots.push(s);
                continue;
            }
            if let Some(s) = hash.and_then(|_| self.onboard(*key)) {
                slots.push(s);
                continue;
            }
            let Some(s) = self.alloc_slot() else {
                self.slots.release_all(&slots);
                return None;
            };
            self.pool.fill(s as usize, *key);
            if hash.is_some() {
                self.slots.publish(s, *key);
            }
            computed += 1;
            slots.push(s);
        }
        let t = &mut self.load.tiers;
        t.from_gpu += gpu;
        t.from_peer += peer;
        t.recomputed += computed as u64;
        Some((slots, computed))
    }

    fn start_push(
        &mut self,
        id: u64,
        slots: Vec<SlotId>,
        target: PushTarget,
        cached_tokens: usize,
        computed: usize,
    ) -> Result<(), WorkerError> {
        let mut state = Pushing {
            slots: slots.clone(),
            agent: target.agent.clone(),
            started: Instant::now(),
            chunks_left: 0,
            bytes: 0,
            cached_tokens,
            computed,
            error: None,
        };
        let Some(peer) = self.peers.get(&target.agent).copied() else {
            self.slots.release_all(&slots);
            return self.send(&WorkerMsg::Failed {
                id,
                error: format!("push target {} is unknown or gone", target.agent),
            });
        };
        let layout = *self.pool.layout();
        let todo: Vec<(usize, SlotId)> = target
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.map(|d| (i, d)))
            .collect();
        let chunk = self.args.push_chunk.max(1);
        let n_chunks = todo.len().div_ceil(chunk);
        let result = if n_chunks == 0 {
            // Everything is cached on the decode side: a data-less notification suffices.
            self.transport
                .notify(&target.agent, format!("push:{id}:0:0").as_bytes())
        } else {
            let mut r = Ok(());
            for (k, part) in todo.chunks(chunk).enumerate() {
                let mut local = Vec::with_capacity(part.len() * layout.layers);
                let mut remote = Vec::with_capacity(part.len() * layout.layers);
                for layer in 0..layout.layers {
                    for &(i, dst) in part {
                        local.push(Segment {
                            addr: self.pool.addr(layer, slots[i] as usize),
                            len: layout.layer_block_bytes(),
                        });
                        remote.push(Segment {
                            addr: peer.base + peer.layout.offset(layer, dst as usize) as u64,
                            len: peer.layout.layer_block_bytes(),
                        });
                    }
                }
                let msg = format!("push:{id}:{k}:{n_chunks}");
                match self.transport.post(
                    Op::Write,
                    &target.agent,
                    &local,
                    &remote,
                    Some(msg.as_bytes()),
                ) {
                    Ok(x) => {
                        self.prefill.xfers.insert(x, id);
                        state.chunks_left += 1;
                        state.bytes += (part.len() * layout.block_bytes()) as u64;
                    }
                    Err(e) => {
                        r = Err(e);
                        break;
                    }
                }
            }
            r
        };
        if let Err(e) = result {
            state.error = Some(PeerError::Push {
                agent: target.agent,
                source: e,
            });
        }
        self.prefill.pushing.insert(id, state);
        self.finish_push_if_done(id)
    }

    fn finish_push_if_done(&mut self, id: u64) -> Result<(), WorkerError> {
        let Some(p) = self.prefill.pushing.get(&id) else {
            return Ok(());
        };
        if p.chunks_left > 0 {
            return Ok(());
        }
        let p = self.prefill.pushing.remove(&id).expect("present");
        self.slots.release_all(&p.slots);
        let msg = match p.error {
            Some(e) => WorkerMsg::Failed {
                id,
                error: e.to_string(),
            },
            None => WorkerMsg::Pushed {
                id,
                cached_tokens: p.cached_tokens,
                computed_blocks: p.computed,
                bytes: p.bytes,
                transfer_s: p.started.elapsed().as_secs_f64(),
            },
        };
        self.send(&msg)?;
        self.retry_stalled()
    }

    pub(crate) fn prefill_poll(&mut self, now: Instant) -> Result<(), WorkerError> {
        let ids: Vec<XferId> = self.prefill.xfers.keys().copied().collect();
        for x in ids {
            let state = self.transport.poll(x);
            if matches!(state, Ok(XferState::InProgress)) {
                continue;
            }
            self.transport.release(x);
            let id = self.prefill.xfers.remove(&x).expect("listed");
            if let Some(p) = self.prefill.pushing.get_mut(&id) {
                p.chunks_left -= 1;
                if let Err(e) = state {
                    p.error.get_or_insert(PeerError::Push {
                        agent: p.agent.clone(),
                        source: e,
                    });
                }
            }
            self.finish_push_if_done(id)?;
        }
        let notifs = self
            .transport
            .take_notifs()
            .map_err(WorkerError::Notifications)?;
        let mut freed = false;
        for (peer, msg) in notifs {
            let text = String::from_utf8_lossy(&msg);
            if self.on_fetch_notif(&peer, &text) {
                continue;
            }
            if let Some(id) = text
                .strip_prefix("free:")
                .and_then(|s| s.parse::<u64>().ok())
                && let Some(p) = self.prefill.pinned.remove(&id)
            {
                self.slots.release_all(&p.slots);
                self.load.freed_by_notif += p.slots.len() as u64;
                freed = true;
            }
        }
        let expired: Vec<u64> = self
            .prefill
            .pinned
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            let p = self.prefill.pinned.remove(&id).expect("listed");
            self.slots.release_all(&p.slots);
            self.load.freed_by_timeout += p.slots.len() as u64;
            freed = true;
        }
        self.fetch_poll(now);
        if self.fetch.take_changed() {
            self.release_held();
            freed = true;
        }
        if freed {
            self.retry_stalled()?;
        }
        Ok(())
    }

    /// Hands the engine the held sequences whose fetch resolved, with the verified fetched
    /// prefix: the engine prices it as a pull from a peer (the simulator's transfer
    /// model) instead of computing it.
    fn release_held(&mut self) {
        let ready: Vec<u64> = self
            .prefill
            .held
            .keys()
            .copied()
            .filter(|&id| !self.fetch.waiting(id))
            .collect();
        for id in ready {
            let mut seq = self.prefill.held.remove(&id).expect("listed");
            seq.prefetched = self.fetch.fetched_range(id);
            self.driver.engine_mut().enqueue(seq);
        }
    }

    pub(crate) fn prefill_peer_gone(&mut self, agent: &str) -> Result<(), WorkerError> {
        // Pushes to a departed decode worker fail; their transfers are abandoned.
        let ids: Vec<u64> = self
            .prefill
            .pushing
            .iter()
            .filter(|(_, p)| p.agent == agent)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            super::release_xfers_of(&mut self.prefill.xfers, id, self.transport.as_mut());
            if let Some(p) = self.prefill.pushing.get_mut(&id) {
                p.chunks_left = 0;
                p.error
                    .get_or_insert(PeerError::LeftDuringPush(agent.into()));
            }
            self.finish_push_if_done(id)?;
        }
        Ok(())
    }

    pub(crate) fn on_abort(&mut self, id: u64) {
        // Not handed off yet: the hand-off will find nothing to do.
        self.prefill.forget(id);
        self.fetch_abandon(id);
        if let Some(p) = self.prefill.pinned.remove(&id) {
            self.slots.release_all(&p.slots);
        }
        if let Some(slots) = self.decode_abort(id) {
            self.slots.release_all(&slots);
        }
    }
}
