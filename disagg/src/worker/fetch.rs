//! Cross-worker prefix fetch. The frontend tells a prefill worker that a peer caches a longer
//! prefix of the prompt ([`FetchHint`]); the worker (the fetcher) allocates slots and asks the
//! holder by notification (`fetch:<id>:<hashes>`); the holder pins what it still caches of
//! that prefix and answers with its slots (`lend:<id>:<slots>`, a notification from the
//! holder); the fetcher READs them with the notification `unlend:<id>` that unpins them. Every
//! fetched block is verified against its contents before it is used: a block the holder no
//! longer had, or whose bytes do not match (evicted and reused meanwhile), is recomputed
//! instead. A holder that dies, a transfer that fails or a fetch that outlasts
//! `--fetch-timeout` falls back to recomputing; the request never waits on a dead peer.

use super::{PromptBlocks, Worker};
use crate::kv::SlotId;
use crate::kv::content::BlockKey;
use crate::proto::FetchHint;
use crate::transfer::{Op, Segment, XferId, XferState};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// One fetch of a prefix from a holder.
#[derive(Debug)]
struct Fetch {
    holder: String,
    /// Prompt position of the first wanted block (the blocks before it are cached here).
    first: usize,
    /// The wanted blocks' contents, in prompt order.
    keys: Vec<BlockKey>,
    /// Our slot for each wanted block (referenced by the fetch).
    slots: Vec<SlotId>,
    xfer: Option<XferId>,
    deadline: Instant,
    /// Resolved: `keys`/`slots` now list only the verified, published blocks.
    done: bool,
}

/// Blocks pinned for a fetching peer.
#[derive(Debug)]
struct Lent {
    slots: Vec<SlotId>,
    deadline: Instant,
}

/// Fetch bookkeeping, both as fetcher and as holder.
#[derive(Debug, Default)]
pub(crate) struct FetchState {
    fetching: HashMap<u64, Fetch>,
    xfers: HashMap<XferId, u64>,
    /// As holder: (peer agent, request) → pinned blocks.
    lent: HashMap<(String, u64), Lent>,
    /// READs abandoned in flight: our slots stay held until the READ ends, so a late
    /// arrival cannot land in a reused slot.
    orphans: HashMap<XferId, (String, Vec<SlotId>)>,
    /// A fetch resolved since the prefill side last looked.
    changed: bool,
}

impl FetchState {
    pub(crate) fn busy(&self) -> bool {
        !self.xfers.is_empty() || !self.orphans.is_empty() || !self.lent.is_empty()
    }

    /// True while request `id` waits for its fetch.
    pub(crate) fn waiting(&self, id: u64) -> bool {
        self.fetching.get(&id).is_some_and(|f| !f.done)
    }

    /// Hashes of the blocks fetched (verified) for `id`.
    pub(crate) fn fetched(&self, id: u64) -> HashSet<u64> {
        self.fetching
            .get(&id)
            .filter(|f| f.done)
            .map(|f| f.keys.iter().map(|k| k.hash).collect())
            .unwrap_or_default()
    }

    /// Prompt positions of the fetched blocks usable as a prefix (verified, contiguous
    /// from the first wanted block) once `id`'s fetch has resolved; empty otherwise.
    pub(crate) fn fetched_range(&self, id: u64) -> std::ops::Range<usize> {
        let Some(f) = self.fetching.get(&id).filter(|f| f.done) else {
            return 0..0;
        };
        let n = f
            .keys
            .iter()
            .enumerate()
            .take_while(|&(i, k)| k.position as usize == f.first + i)
            .count();
        f.first..f.first + n
    }

    /// Whether a fetch resolved since the last call.
    pub(crate) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }
}

fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_list<T: std::str::FromStr>(s: &str) -> Option<Vec<T>> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().ok())
        .collect()
}

impl Worker {
    /// Starts fetching the part of `hint`'s prefix this worker caches in neither tier;
    /// false when no fetch was started.
    pub(crate) fn start_fetch(&mut self, id: u64, blocks: &PromptBlocks, hint: &FetchHint) -> bool {
        if !self.peers.contains_key(&hint.agent) || self.fetch.fetching.contains_key(&id) {
            return false;
        }
        let end = hint.blocks.min(blocks.full());
        let have = (0..end)
            .take_while(|&i| {
                let h = blocks.cache_hash(i).expect("full block");
                self.slots.contains(h) || self.host_has(h)
            })
            .count();
        if have >= end {
            return false;
        }
        let keys: Vec<BlockKey> = blocks.keys[have..end].to_vec();
        let mut slots = Vec::with_capacity(keys.len());
        for _ in &keys {
            match self.alloc_slot() {
                Some(s) => slots.push(s),
                None => {
                    self.slots.release_all(&slots);
                    return false; // No room to fetch into: the prompt is computed as usual.
                }
            }
        }
        let msg = format!("fetch:{id}:{}", list(keys.iter().map(|k| k.hash)));
        if let Err(e) = self.transport.notify(&hint.agent, msg.as_bytes()) {
            eprintln!("disagg worker: fetch request to {}: {e}", hint.agent);
            self.slots.release_all(&slots);
            self.load.tiers.fetch_fallbacks += 1;
            return false;
        }
        self.load.tiers.fetches += 1;
        let deadline = Instant::now() + Duration::from_secs_f64(self.args.fetch_timeout_s);
        self.fetch.fetching.insert(
            id,
            Fetch {
                holder: hint.agent.clone(),
                first: have,
                keys,
                slots,
                xfer: None,
                deadline,
                done: false,
            },
        );
        true
    }

    /// Handles a fetch notification (`fetch:`, `lend:`, `unlend:`); false for other ones.
    pub(crate) fn on_fetch_notif(&mut self, peer: &str, text: &str) -> bool {
        let mut parts = text.splitn(3, ':');
        let (kind, id, rest) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
        let Some(id) = id.and_then(|s| s.parse::<u64>().ok()) else {
            return false;
        };
        match kind {
            Some("fetch") => self.lend(peer, id, rest),
            Some("lend") => self.on_lend(peer, id, rest),
            Some("unlend") => {
                if let Some(l) = self.fetch.lent.remove(&(peer.to_string(), id)) {
                    self.slots.release_all(&l.slots);
                }
            }
            _ => return false,
        }
        true
    }

    /// As holder: pins the leading requested blocks still cached and answers with their slots.
    fn lend(&mut self, peer: &str, id: u64, hashes: &str) {
        let hashes: Vec<u64> = parse_list(hashes).unwrap_or_default();
        let mut slots = Vec::new();
        for h in hashes {
            match self.slots.acquire_cached(h) {
                Some(s) => slots.push(s),
                None => break, // Evicted since the frontend heard of it: lend the prefix.
            }
        }
        let mut told = slots.clone();
        if self.args.stale_lend
            && let Some(first) = told.first_mut()
        {
            // Test hook: name a slot that holds something else, as if the block had been
            // evicted and its slot reused after the answer.
            *first = (*first + 1) % self.slots.capacity() as SlotId;
        }
        let msg = format!("lend:{id}:{}", list(&told));
        if let Err(e) = self.transport.notify(peer, msg.as_bytes()) {
            eprintln!("disagg worker: answer to {peer}'s fetch: {e}");
            self.slots.release_all(&slots);
            return;
        }
        if !slots.is_empty() {
            let deadline = Instant::now() + Duration::from_secs_f64(self.args.pin_timeout_s);
            self.fetch
                .lent
                .insert((peer.to_string(), id), Lent { slots, deadline });
            self.die_if_asked();
        }
    }

    /// Test hook: the first worker to lend (the one creating the marker file) is killed now,
    /// with the fetcher's READ about to start.
    fn die_if_asked(&self) {
        let Some(marker) = &self.args.die_on_lend else {
            return;
        };
        let first = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(marker)
            .is_ok();
        if first {
            eprintln!("disagg worker: test hook: killed mid-fetch");
            // SAFETY: plain syscalls on our own process.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    }

    /// As fetcher: the holder's answer; READs what it lent.
    fn on_lend(&mut self, peer: &str, id: u64, slots: &str) {
        let lent: Vec<SlotId> = parse_list(slots).unwrap_or_default();
        let ours = self
            .fetch
            .fetching
            .get(&id)
            .is_some_and(|f| f.holder == peer && f.xfer.is_none() && !f.done);
        if !ours {
            // Too late (timed out or abandoned): let the holder unpin at once.
            if !lent.is_empty() {
                let _ = self
                    .transport
                    .notify(peer, format!("unlend:{id}").as_bytes());
            }
            return;
        }
        let f = self.fetch.fetching.get_mut(&id).expect("checked");
        let n = lent.len().min(f.slots.len());
        // Blocks the holder no longer had: stale in the frontend's view, recomputed.
        self.load.tiers.peer_evicted += (f.slots.len() - n) as u64;
        self.slots.release_all(&f.slots[n..]);
        f.slots.truncate(n);
        f.keys.truncate(n);
        if n == 0 {
            f.done = true;
            self.fetch.changed = true;
            return;
        }
        let Some(peer_pool) = self.peers.get(peer).copied() else {
            self.fetch_failed(id, "holder unknown");
            return;
        };
        let layout = *self.pool.layout();
        let mut local = Vec::with_capacity(n * layout.layers);
        let mut remote = Vec::with_capacity(n * layout.layers);
        for layer in 0..layout.layers {
            for (i, &s) in f.slots.iter().enumerate() {
                local.push(Segment {
                    addr: self.pool.addr(layer, s as usize),
                    len: layout.layer_block_bytes(),
                });
                remote.push(Segment {
                    addr: peer_pool.base + peer_pool.layout.offset(layer, lent[i] as usize) as u64,
                    len: peer_pool.layout.layer_block_bytes(),
                });
            }
        }
        let notif = format!("unlend:{id}");
        match self
            .transport
            .post(Op::Read, peer, &local, &remote, Some(notif.as_bytes()))
        {
            Ok(x) => {
                f.xfer = Some(x);
                self.fetch.xfers.insert(x, id);
            }
            Err(e) => {
                let _ = self.transport.notify(peer, notif.as_bytes());
                self.fetch_failed(id, &format!("read: {e}"));
            }
        }
    }

    /// Gives a fetch up: its slots are released and the prompt is computed.
    fn fetch_failed(&mut self, id: u64, why: &str) {
        let Some(f) = self.fetch.fetching.get_mut(&id) else {
            return;
        };
        eprintln!(
            "disagg worker: fetch of request {id} from {} fell back to recompute: {why}",
            f.holder
        );
        self.slots.release_all(&f.slots);
        f.slots.clear();
        f.keys.clear();
        f.done = true;
        self.load.tiers.fetch_fallbacks += 1;
        self.fetch.changed = true;
    }

    /// Polls fetch READs, abandoned READs and deadlines (fetches and lent pins).
    pub(crate) fn fetch_poll(&mut self, now: Instant) {
        let xs: Vec<XferId> = self.fetch.xfers.keys().copied().collect();
        for x in xs {
            let state = self.transport.poll(x);
            if matches!(state, Ok(XferState::InProgress)) {
                continue;
            }
            self.transport.release(x);
            let id = self.fetch.xfers.remove(&x).expect("listed");
            if let Some(f) = self.fetch.fetching.get_mut(&id) {
                f.xfer = None;
            }
            match state {
                Ok(_) => self.fetch_arrived(id),
                Err(e) => self.fetch_failed(id, &format!("read failed: {e}")),
            }
        }
        let late: Vec<u64> = self
            .fetch
            .fetching
            .iter()
            .filter(|(_, f)| !f.done && f.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in late {
            self.orphan_read(id);
            let holder = self.fetch.fetching[&id].holder.clone();
            let _ = self
                .transport
                .notify(&holder, format!("unlend:{id}").as_bytes());
            self.fetch_failed(id, "timed out");
        }
        let orphans: Vec<XferId> = self.fetch.orphans.keys().copied().collect();
        for x in orphans {
            if !matches!(self.transport.poll(x), Ok(XferState::InProgress)) {
                self.transport.release(x);
                let (_, slots) = self.fetch.orphans.remove(&x).expect("listed");
                self.slots.release_all(&slots);
            }
        }
        let expired: Vec<(String, u64)> = self
            .fetch
            .lent
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            let l = self.fetch.lent.remove(&k).expect("listed");
            self.slots.release_all(&l.slots);
        }
    }

    /// Moves a fetch's READ in flight, with its slots, to the orphans.
    fn orphan_read(&mut self, id: u64) {
        let Some(f) = self.fetch.fetching.get_mut(&id) else {
            return;
        };
        if let Some(x) = f.xfer.take() {
            self.fetch.xfers.remove(&x);
            let slots = std::mem::take(&mut f.slots);
            f.keys.clear();
            self.fetch.orphans.insert(x, (f.holder.clone(), slots));
        }
    }

    /// The READ completed: keep the blocks whose bytes match, recompute the others.
    fn fetch_arrived(&mut self, id: u64) {
        let Some(f) = self.fetch.fetching.get_mut(&id) else {
            return;
        };
        let mut keys = Vec::with_capacity(f.keys.len());
        let mut slots = Vec::with_capacity(f.slots.len());
        for (&key, &slot) in f.keys.iter().zip(&f.slots) {
            self.load.tiers.verified += 1;
            if self.pool.verify(slot as usize, key) {
                self.slots.publish(slot, key);
                keys.push(key);
                slots.push(slot);
            } else {
                self.load.tiers.peer_rejected += 1;
                self.slots.release(slot);
            }
        }
        f.keys = keys;
        f.slots = slots;
        f.done = true;
        self.fetch.changed = true;
    }

    /// Request `id` has its slots (or is gone): drop the fetch's references.
    pub(crate) fn fetch_finish(&mut self, id: u64) {
        if let Some(f) = self.fetch.fetching.remove(&id) {
            self.slots.release_all(&f.slots);
        }
    }

    /// Request `id` is gone: end its fetch, keeping a READ in flight's slots until it ends.
    pub(crate) fn fetch_abandon(&mut self, id: u64) {
        self.orphan_read(id);
        if let Some(f) = self.fetch.fetching.get(&id)
            && !f.done
        {
            let _ = self
                .transport
                .notify(&f.holder.clone(), format!("unlend:{id}").as_bytes());
        }
        self.fetch_finish(id);
    }

    /// A peer left: fetches from it fall back, blocks lent to it are unpinned.
    pub(crate) fn fetch_peer_gone(&mut self, agent: &str) {
        let ids: Vec<u64> = self
            .fetch
            .fetching
            .iter()
            .filter(|(_, f)| f.holder == agent && !f.done)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            if let Some(x) = self.fetch.fetching.get_mut(&id).and_then(|f| f.xfer.take()) {
                self.fetch.xfers.remove(&x);
                self.transport.release(x);
            }
            self.fetch_failed(id, &format!("holder {agent} left"));
        }
        let orphans: Vec<XferId> = self
            .fetch
            .orphans
            .iter()
            .filter(|(_, (a, _))| a == agent)
            .map(|(&x, _)| x)
            .collect();
        for x in orphans {
            self.transport.release(x);
            let (_, slots) = self.fetch.orphans.remove(&x).expect("listed");
            self.slots.release_all(&slots);
        }
        let lent: Vec<(String, u64)> = self
            .fetch
            .lent
            .keys()
            .filter(|(a, _)| a == agent)
            .cloned()
            .collect();
        for k in lent {
            let l = self.fetch.lent.remove(&k).expect("listed");
            self.slots.release_all(&l.slots);
        }
    }
}
