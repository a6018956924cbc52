//! The mock engine: a vLLM-like scheduler over a paged KV block manager.
//!
//! One *pass* is planned at its start ([`Engine::start_pass`]: token budget
//! spent on running sequences first — decode tokens and prefill chunks —
//! then on admitting waiting ones, preempting under memory pressure) and
//! takes effect at its end ([`Engine::finish_pass`]: every sequence whose
//! tokens are all computed emits one token; finished ones free their blocks).
//!
//! With a [`host_tier`], blocks the device evicts go to host memory and a prompt hit there
//! is onboarded instead of recomputed; a sequence may also arrive with a prefix pulled
//! from another worker ([`Sequence::prefetched`]). Both moves are priced by the
//! engine's [`router::TransferCost`] and added to the pass that admits the sequence
//! (as a synchronous load: the pass waits for it).

pub mod block_manager;
pub mod host_tier;
pub mod sequence;

use crate::config::{EngineConfig, PreemptionMode};
use crate::kv_event::KvEventData;
use block_manager::BlockManager;
use host_tier::HostTier;
use rustc_hash::FxHashMap;
pub use sequence::{PrefillPasses, RequestId, Sequence};
use std::collections::VecDeque;

/// What a worker does with requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Prefills and decodes.
    Aggregated,
    /// Prefills, emits the first token, hands the KV cache over.
    Prefill,
    /// Decodes requests prefilled elsewhere (prompt KV costs no compute time).
    Decode,
}

/// What happened to a request at the end of a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// One token was generated (`first` for the first one).
    Token {
        /// The request.
        request: RequestId,
        /// Whether this is the request's first token.
        first: bool,
    },
    /// The request generated its last token and left the engine.
    Finished {
        /// The request.
        request: RequestId,
        /// Prompt tokens found in the prefix cache at first admission.
        cached_tokens: usize,
    },
    /// A prefill worker finished the prompt; the request moves to decode.
    HandedOff {
        /// The request.
        request: RequestId,
        /// Prompt tokens found in the prefix cache at first admission.
        cached_tokens: usize,
    },
    /// The request can never fit in this engine's KV cache.
    Rejected {
        /// The request.
        request: RequestId,
    },
}

/// Shape of one planned pass (what the step-time model saw).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PassStats {
    /// Predicted duration, ms.
    pub duration_ms: f64,
    /// Prompt (or recomputed) tokens computed.
    pub prefill_tokens: usize,
    /// Sequences emitting a token at the end of the pass.
    pub decode_batch: usize,
    /// KV tokens of those sequences.
    pub decode_kv_tokens: usize,
}

/// Load figures a router or planner can read.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct EngineLoad {
    /// Requests waiting for admission.
    pub waiting: usize,
    /// Requests admitted.
    pub running: usize,
    /// Blocks referenced by running requests.
    pub active_blocks: usize,
    /// Total blocks.
    pub capacity_blocks: usize,
    /// Prompt tokens not yet computed, waiting and running.
    pub pending_prefill_tokens: usize,
    /// KV tokens held by decoding requests.
    pub decode_kv_tokens: usize,
}

/// Where the reused part of a prompt came from at its first admission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdmissionHits {
    /// The request.
    pub request: RequestId,
    /// Prompt tokens onboarded from the host tier.
    pub host_tokens: usize,
    /// Prompt tokens pulled from another worker.
    pub fetched_tokens: usize,
}

/// KV moves of one engine so far, in blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MoveStats {
    /// The host tier's counts.
    pub host: host_tier::TierStats,
    /// Cached blocks the device evicted.
    pub device_evictions: u64,
    /// Pulled blocks used at admission.
    pub fetched_blocks: u64,
}

/// One engine replica.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    role: Role,
    blocks: BlockManager,
    host: HostTier,
    /// Tokens onboarded / pulled for sequences admitted in the pass being planned.
    pass_onboard_tokens: usize,
    pass_fetched_tokens: usize,
    fetched_blocks: u64,
    admissions: Vec<AdmissionHits>,
    /// Requests that emitted their first token, with what their passes were made of.
    first_tokens: Vec<(RequestId, PrefillPasses)>,
    waiting: VecDeque<Sequence>,
    running: Vec<Sequence>,
    preemptions: u64,
    in_pass: bool,
}

impl Engine {
    /// An idle engine; `record_events` buffers KV events for a router.
    pub fn new(cfg: EngineConfig, role: Role, record_events: bool) -> Self {
        assert!(cfg.block_size > 0 && cfg.max_num_seqs > 0 && cfg.max_num_batched_tokens > 0);
        let mut blocks = BlockManager::new(cfg.num_gpu_blocks, record_events);
        if cfg.host_blocks > 0 {
            blocks.log_evictions();
        }
        Engine {
            host: HostTier::new(cfg.host_blocks, record_events),
            pass_onboard_tokens: 0,
            pass_fetched_tokens: 0,
            fetched_blocks: 0,
            admissions: Vec::new(),
            first_tokens: Vec::new(),
            cfg,
            role,
            blocks,
            waiting: VecDeque::new(),
            running: Vec::new(),
            preemptions: 0,
            in_pass: false,
        }
    }

    /// Engine configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The block manager (read-only).
    pub fn blocks(&self) -> &BlockManager {
        &self.blocks
    }

    /// The host-memory tier (read-only; capacity 0 when there is none).
    pub fn host_tier(&self) -> &HostTier {
        &self.host
    }

    /// KV moves so far.
    pub fn move_stats(&self) -> MoveStats {
        MoveStats {
            host: self.host.stats(),
            device_evictions: self.blocks.evictions(),
            fetched_blocks: self.fetched_blocks,
        }
    }

    /// Drains the tier hits of sequences admitted for the first time.
    pub fn take_admission_hits(&mut self) -> Vec<AdmissionHits> {
        std::mem::take(&mut self.admissions)
    }

    /// Drains the requests that emitted their first token since the last call, with the
    /// make-up of the passes that computed their prompt.
    pub fn take_first_tokens(&mut self) -> Vec<(RequestId, PrefillPasses)> {
        std::mem::take(&mut self.first_tokens)
    }

    /// Queues a request.
    pub fn enqueue(&mut self, seq: Sequence) {
        self.waiting.push_back(seq);
    }

    /// True when no request is waiting or running.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }

    /// Preemptions so far.
    pub fn preemptions(&self) -> u64 {
        self.preemptions
    }

    /// Leading prompt blocks of `seq_hashes` in this engine's prefix cache.
    pub fn cached_prefix_blocks(&self, seq_hashes: &[u64]) -> usize {
        if self.cfg.enable_prefix_caching {
            self.blocks.match_prefix(seq_hashes)
        } else {
            0
        }
    }

    /// Leading blocks of `seq_hashes` this engine holds in any tier (device or host):
    /// what a peer could pull from it.
    pub fn local_prefix_blocks(&self, seq_hashes: &[u64]) -> usize {
        if !self.cfg.enable_prefix_caching {
            return 0;
        }
        seq_hashes
            .iter()
            .take_while(|&&h| self.blocks.ref_count(h).is_some() || self.host.contains(h))
            .count()
    }

    /// Drains buffered KV events of the device tier.
    pub fn take_kv_events(&mut self) -> Vec<KvEventData> {
        self.blocks.take_events()
    }

    /// Drains buffered KV events of the host tier.
    pub fn take_host_kv_events(&mut self) -> Vec<KvEventData> {
        self.host.take_events()
    }

    /// Current load.
    pub fn load(&self) -> EngineLoad {
        let pending_running: usize = self
            .running
            .iter()
            .filter(|s| !s.is_decoding())
            .map(|s| s.remaining())
            .sum();
        let pending_waiting: usize = self.waiting.iter().map(|s| s.remaining()).sum();
        EngineLoad {
            waiting: self.waiting.len(),
            running: self.running.len(),
            active_blocks: self.blocks.active(),
            capacity_blocks: self.blocks.capacity(),
            pending_prefill_tokens: pending_running + pending_waiting,
            decode_kv_tokens: self
                .running
                .iter()
                .filter(|s| s.is_decoding())
                .map(|s| s.len())
                .sum(),
        }
    }

    /// Plans one pass. Returns `None` when there is nothing to do. Requests
    /// that cannot fit even alone are returned as [`Output::Rejected`].
    pub fn start_pass(&mut self, out: &mut Vec<Output>) -> Option<PassStats> {
        assert!(!self.in_pass, "start_pass while a pass is in flight");
        loop {
            let stats = self.plan();
            if stats.decode_batch > 0 || stats.prefill_tokens > 0 || self.any_scheduled() {
                self.in_pass = true;
                return Some(stats);
            }
            // Nothing could run: only an oversized head of the queue on an
            // empty engine can cause this; drop it rather than spin.
            if self.running.is_empty() {
                let seq = self.waiting.pop_front()?;
                out.push(Output::Rejected {
                    request: seq.request,
                });
                continue;
            }
            return None;
        }
    }

    fn any_scheduled(&self) -> bool {
        self.running.iter().any(|s| s.scheduled > 0)
    }

    fn plan(&mut self) -> PassStats {
        let bs = self.cfg.block_size;
        let mut budget = self.cfg.max_num_batched_tokens;
        self.pass_onboard_tokens = 0;
        self.pass_fetched_tokens = 0;
        for s in &mut self.running {
            s.scheduled = 0;
            s.scheduled_prefill = 0;
            s.ready = false;
        }
        let mut prefill_tokens = 0usize;
        let mut i = 0;
        while i < self.running.len() && budget > 0 {
            let need = self.running[i].remaining();
            let tokens = need.min(budget);
            let is_prefill = !self.running[i].is_decoding();
            if is_prefill && tokens < need && !self.cfg.enable_chunked_prefill {
                i += 1;
                continue;
            }
            let target_blocks = (self.running[i].computed + tokens).div_ceil(bs);
            if !self.reserve_blocks(i, target_blocks, &mut budget, &mut prefill_tokens) {
                // The sequence itself was preempted; it was the last one.
                break;
            }
            let s = &mut self.running[i];
            s.computed += tokens;
            s.scheduled = tokens;
            s.scheduled_prefill = if is_prefill { tokens } else { 0 };
            prefill_tokens += s.scheduled_prefill;
            budget -= tokens;
            self.commit_full_blocks(i);
            i += 1;
        }
        while budget > 0 && self.running.len() < self.cfg.max_num_seqs {
            let Some(tokens) = self.try_admit(budget) else {
                break;
            };
            prefill_tokens += tokens;
            budget -= tokens;
        }
        let mut stats = PassStats {
            prefill_tokens,
            ..PassStats::default()
        };
        for s in &mut self.running {
            if s.scheduled > 0 && s.computed == s.len() {
                s.ready = true;
                stats.decode_batch += 1;
                stats.decode_kv_tokens += s.len();
            }
        }
        let perf = &self.cfg.perf_model;
        let prefill_ms = if self.role == Role::Decode {
            0.0
        } else {
            perf.prefill_ms(prefill_tokens)
        };
        let decode_ms = if self.role == Role::Prefill {
            0.0
        } else {
            let cap = self.cfg.num_gpu_blocks * bs;
            perf.decode_ms(stats.decode_batch, stats.decode_kv_tokens, cap)
                / self.cfg.decode_speedup_ratio
        };
        // Blocks evicted while planning go to the host tier now (after this pass's
        // admissions looked for hits), unless the device holds them again.
        for b in self.blocks.take_evicted() {
            if self.blocks.ref_count(b.seq_hash).is_none() {
                self.host.offer(b);
            }
        }
        let load_ms = if self.role == Role::Decode {
            0.0 // Decode workers receive the prompt's KV with the hand-off.
        } else {
            let t = &self.cfg.transfer;
            (t.onboard_s(self.pass_onboard_tokens as f64)
                + t.fetch_s(self.pass_fetched_tokens as f64))
                * 1e3
        };
        let speedup = self.cfg.speedup_ratio;
        stats.duration_ms = (prefill_ms + decode_ms) / speedup + load_ms;
        for s in &mut self.running {
            if s.scheduled_prefill > 0 && s.generated == 0 {
                let p = &mut s.prefill_passes;
                p.passes += 1;
                p.pass_ms += stats.duration_ms;
                p.prefill_ms += prefill_ms / speedup;
                p.decode_ms += decode_ms / speedup;
                p.load_ms += load_ms;
                p.own_tokens += s.scheduled_prefill as u64;
            }
        }
        stats
    }

    /// Grows running sequence `i` to `target` blocks, preempting others
    /// under memory pressure. False if `i` itself had to be preempted.
    fn reserve_blocks(
        &mut self,
        i: usize,
        target: usize,
        budget: &mut usize,
        prefill_tokens: &mut usize,
    ) -> bool {
        while self.running[i].blocks.len() < target {
            if let Some(id) = self.blocks.allocate() {
                self.running[i].blocks.push(id);
                continue;
            }
            let victim = match self.cfg.preemption_mode {
                PreemptionMode::Lifo => self.running.len() - 1,
                PreemptionMode::Fifo => 0,
            };
            let victim_is_self = victim == i;
            let seq = self.running.remove(victim);
            *budget += seq.scheduled;
            *prefill_tokens -= seq.scheduled_prefill;
            self.preempt(seq);
            if victim_is_self {
                return false;
            }
            if victim < i {
                // FIFO removed an earlier sequence: `i` shifted left by one.
                return self.reserve_blocks(i - 1, target, budget, prefill_tokens);
            }
        }
        true
    }

    fn preempt(&mut self, mut seq: Sequence) {
        self.preemptions += 1;
        self.blocks.release_all(&seq.blocks);
        seq.blocks.clear();
        seq.committed = 0;
        seq.computed = 0;
        seq.scheduled = 0;
        seq.scheduled_prefill = 0;
        seq.ready = false;
        self.waiting.push_front(seq);
    }

    /// Commits the blocks of running sequence `i` that became full.
    fn commit_full_blocks(&mut self, i: usize) {
        let bs = self.cfg.block_size;
        let caching = self.cfg.enable_prefix_caching;
        let s = &mut self.running[i];
        let full = s.computed / bs;
        while s.committed < full {
            let b = s.committed;
            if caching {
                let (seq_hash, local) = s.block_hash(b);
                let parent = if b == 0 {
                    None
                } else {
                    s.known_seq_hash(b - 1)
                };
                s.blocks[b] =
                    self.blocks
                        .commit_full(s.blocks[b], seq_hash, local, parent, b as u32);
                // One tier per block: the device copy makes a host copy redundant.
                self.host.discard(seq_hash);
            }
            s.committed += 1;
        }
    }

    /// Admits the head of the waiting queue with up to `budget` tokens.
    /// Returns the tokens scheduled, or `None` if it does not fit now.
    fn try_admit(&mut self, budget: usize) -> Option<usize> {
        let bs = self.cfg.block_size;
        let head = self.waiting.front_mut()?;
        // Hash generated blocks of a preempted sequence so they can hit too.
        let max_hit = (head.len() - 1) / bs;
        for b in 0..max_hit.min(head.computed_hashable_blocks(bs)) {
            head.block_hash(b);
        }
        let (hit, inactive_hits) = if self.cfg.enable_prefix_caching {
            self.prefix_hit(self.waiting.front()?, max_hit)
        } else {
            (0, 0)
        };
        let head = self.waiting.front()?;
        let (host_hits, fetched) = self.tier_hits(head, hit, max_hit);
        let reused = hit + host_hits + fetched;
        let need = head.len() - reused * bs;
        let tokens = need.min(budget);
        if tokens < need && !self.cfg.enable_chunked_prefill {
            return None;
        }
        // Onboarded and pulled blocks need device blocks like computed ones.
        let new_blocks = (reused * bs + tokens).div_ceil(bs) - hit;
        if self.blocks.available() < inactive_hits + new_blocks {
            return None;
        }
        let mut seq = self.waiting.pop_front()?;
        for b in 0..hit {
            let h = seq.known_seq_hash(b).expect("hashed above");
            let id = self.blocks.acquire_cached(h).expect("matched above");
            seq.blocks.push(id);
        }
        for b in hit..hit + host_hits {
            let h = seq.known_seq_hash(b).expect("hashed above");
            self.host.take(h).expect("matched above");
        }
        for _ in 0..new_blocks {
            seq.blocks
                .push(self.blocks.allocate().expect("availability checked"));
        }
        seq.prefetched = 0..0; // The staging buffer is consumed (or dropped) now.
        self.pass_onboard_tokens += host_hits * bs;
        self.pass_fetched_tokens += fetched * bs;
        self.fetched_blocks += fetched as u64;
        if seq.cached_tokens.is_none() && host_hits + fetched > 0 {
            let prompt = seq.prompt_len;
            let upto = |blocks: usize| (blocks * bs).min(prompt);
            self.admissions.push(AdmissionHits {
                request: seq.request,
                host_tokens: upto(hit + host_hits) - upto(hit),
                fetched_tokens: upto(reused) - upto(hit + host_hits),
            });
        }
        seq.committed = hit;
        seq.cached_tokens
            .get_or_insert((hit * bs).min(seq.prompt_len));
        seq.computed = reused * bs + tokens;
        seq.scheduled = tokens;
        seq.scheduled_prefill = tokens;
        self.running.push(seq);
        let i = self.running.len() - 1;
        self.commit_full_blocks(i);
        Some(tokens)
    }

    /// Blocks after the device hit `hit` (up to `max`) that `seq` can onboard from the
    /// host tier, then the further ones it pulled from a peer.
    fn tier_hits(&self, seq: &Sequence, hit: usize, max: usize) -> (usize, usize) {
        if !self.cfg.enable_prefix_caching {
            return (0, 0);
        }
        let mut n = hit;
        while n < max && seq.known_seq_hash(n).is_some_and(|h| self.host.contains(h)) {
            n += 1;
        }
        // The pulled blocks are usable if they continue the local prefix.
        let fetched = if seq.prefetched.start <= n {
            seq.prefetched.end.min(max).saturating_sub(n)
        } else {
            0
        };
        (n - hit, fetched)
    }

    /// Leading cached blocks of `seq` (at most `max`) and how many of them
    /// are inactive (admitting takes them out of the evictable pool).
    fn prefix_hit(&self, seq: &Sequence, max: usize) -> (usize, usize) {
        let mut inactive = 0;
        let mut n = 0;
        while n < max {
            let Some(h) = seq.known_seq_hash(n) else {
                break;
            };
            match self.blocks.ref_count(h) {
                Some(0) => inactive += 1,
                Some(_) => {}
                None => break,
            }
            n += 1;
        }
        (n, inactive)
    }

    /// Applies the end of the planned pass.
    pub fn finish_pass(&mut self, out: &mut Vec<Output>) {
        assert!(self.in_pass, "finish_pass without start_pass");
        self.in_pass = false;
        let role = self.role;
        let blocks = &mut self.blocks;
        let first_tokens = &mut self.first_tokens;
        self.running.retain_mut(|s| {
            if !s.ready {
                return true;
            }
            s.ready = false;
            s.generated += 1;
            let first = s.generated == 1;
            if first {
                first_tokens.push((s.request, s.prefill_passes));
            }
            out.push(Output::Token {
                request: s.request,
                first,
            });
            let cached_tokens = s.cached_tokens.unwrap_or(0);
            let leaves = if role == Role::Prefill && first {
                out.push(Output::HandedOff {
                    request: s.request,
                    cached_tokens,
                });
                true
            } else if s.generated >= s.output_len {
                out.push(Output::Finished {
                    request: s.request,
                    cached_tokens,
                });
                true
            } else {
                false
            };
            if leaves {
                blocks.release_all(&s.blocks);
                s.blocks.clear();
            }
            !leaves
        });
    }

    /// Block holders as the sequences see them, for invariant checks.
    pub fn check_invariants(&self) {
        let mut refs: FxHashMap<u32, u32> = FxHashMap::default();
        for s in self.running.iter().chain(self.waiting.iter()) {
            for &b in &s.blocks {
                *refs.entry(b).or_default() += 1;
            }
            assert!(s.computed <= s.len(), "computed past the sequence");
            assert!(
                s.blocks.len() * self.cfg.block_size >= s.computed,
                "KV without blocks"
            );
        }
        assert!(
            self.running.len() <= self.cfg.max_num_seqs,
            "max_num_seqs exceeded"
        );
        self.blocks.check_invariants(&refs);
        self.host.check_invariants();
        for h in self.host.hashes() {
            assert!(
                self.blocks.ref_count(h).is_none(),
                "block {h} in both the device and the host tier"
            );
        }
        if self.host.capacity() > 0 {
            // Every block the device evicted went to the host tier, unless the device
            // held it again by the end of the pass.
            let s = self.host.stats();
            assert!(
                s.offloaded <= self.blocks.evictions(),
                "host tier took in more blocks than the device evicted"
            );
        }
    }
}

impl Sequence {
    /// Full blocks whose hash can be known (all of the sequence's tokens
    /// exist, generated ones included).
    fn computed_hashable_blocks(&self, bs: usize) -> usize {
        self.len() / bs
    }
}
