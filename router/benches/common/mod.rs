//! Shared bench fixtures: the Mooncake conversation trace expanded into engine-style KV
//! events (per-worker caches with LRU-by-request eviction that frees tails before
//! prefixes), in both our event type and Dynamo's, plus 2,000-block queries.

use dynamo_kv_router::protocols::{
    ExternalSequenceBlockHash, KvCacheEvent, KvCacheEventData, KvCacheRemoveData, KvCacheStoreData,
    KvCacheStoredBlockData, LocalBlockHash, RouterEvent,
};
use router::{
    BlockHash, ExternalHash, KvEvent, KvEventData, SequenceHash, StoredBlock, WorkerId, hash_prompt,
};
use std::collections::{HashMap, VecDeque};

/// The Mooncake trace in the project's `shared/` folder, beside the repository (override with
/// `ROUTER_TRACE`).
pub const TRACE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/traces/mooncake_conversation_trace.jsonl"
);
/// Engine block size (Dynamo mocker default); Mooncake's 512-token hash blocks are re-chunked.
pub const BLOCK_SIZE: usize = 64;
/// Per-worker KV capacity in blocks.
pub const CAPACITY_BLOCKS: usize = 65_536;
pub const QUERY_BLOCKS: usize = 2_000;

pub struct Prompt {
    pub blocks: Vec<BlockHash>,
    pub sequence: Vec<SequenceHash>,
    pub affinity: u64,
}

/// Trace requests as token streams: each `hash_id` becomes 512 copies of itself.
pub fn load_trace() -> Option<Vec<Prompt>> {
    let path = std::env::var("ROUTER_TRACE").unwrap_or_else(|_| TRACE.to_owned());
    let text = std::fs::read_to_string(path).ok()?;
    let prompts = text
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("trace line");
            let len = v["input_length"].as_u64().unwrap() as usize;
            let ids: Vec<u64> = v["hash_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h.as_u64().unwrap())
                .collect();
            let mut tokens: Vec<u32> = ids
                .iter()
                .flat_map(|&h| std::iter::repeat_n(h as u32, 512))
                .collect();
            tokens.truncate(len);
            let hashes = hash_prompt(&tokens, BLOCK_SIZE, None);
            // Turns of one conversation share their second hash id: keep them on one worker.
            let affinity = ids.get(1).or(ids.first()).copied().unwrap_or(0);
            Prompt {
                blocks: hashes.blocks,
                sequence: hashes.sequence,
                affinity,
            }
        })
        .collect();
    Some(prompts)
}

pub struct Stream {
    pub ours: Vec<(WorkerId, KvEvent)>,
    pub dynamo: Vec<RouterEvent>,
    /// Blocks named by all events (stored + removed).
    pub blocks: usize,
    /// (block, worker) entries live at the end.
    pub final_entries: usize,
}

struct WorkerCache {
    refs: HashMap<u64, u32>,
    lru: VecDeque<usize>,
    next_event: u64,
}

/// Replays the trace onto `workers` engines and records the KV events they would emit.
pub fn expand(prompts: &[Prompt], workers: u64) -> Stream {
    let mut caches: Vec<WorkerCache> = (0..workers)
        .map(|_| WorkerCache {
            refs: HashMap::new(),
            lru: VecDeque::new(),
            next_event: 0,
        })
        .collect();
    let mut stream = Stream {
        ours: Vec::new(),
        dynamo: Vec::new(),
        blocks: 0,
        final_entries: 0,
    };
    let ext = |s: SequenceHash| s.0 ^ 0x9E37_79B9;
    for (index, prompt) in prompts.iter().enumerate() {
        let w = (prompt.affinity.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) % workers;
        let cache = &mut caches[w as usize];
        let cached = prompt
            .sequence
            .iter()
            .take_while(|s| cache.refs.contains_key(&s.0))
            .count();
        for s in &prompt.sequence {
            *cache.refs.entry(s.0).or_insert(0) += 1;
        }
        cache.lru.push_back(index);
        let mut emit = |cache: &mut WorkerCache, ours: KvEventData, theirs: KvCacheEventData| {
            let id = cache.next_event;
            cache.next_event += 1;
            stream.ours.push((
                WorkerId::new(w),
                KvEvent {
                    tier: router::StorageTier::Device,
                    event_id: id,
                    data: ours,
                },
            ));
            stream.dynamo.push(RouterEvent::new(
                w,
                KvCacheEvent {
                    event_id: id,
                    data: theirs,
                    dp_rank: 0,
                },
            ));
        };
        if cached < prompt.sequence.len() {
            let parent = cached.checked_sub(1).map(|i| ext(prompt.sequence[i]));
            let new: Vec<(u64, u64)> = (cached..prompt.sequence.len())
                .map(|i| (ext(prompt.sequence[i]), prompt.blocks[i].0))
                .collect();
            stream.blocks += new.len();
            let ours = KvEventData::Stored {
                parent: parent.map(ExternalHash),
                blocks: new
                    .iter()
                    .map(|&(e, t)| StoredBlock {
                        external: ExternalHash(e),
                        tokens: BlockHash(t),
                    })
                    .collect(),
            };
            let theirs = KvCacheEventData::Stored(KvCacheStoreData {
                parent_hash: parent.map(ExternalSequenceBlockHash),
                start_position: None,
                blocks: new
                    .iter()
                    .map(|&(e, t)| KvCacheStoredBlockData {
                        block_hash: ExternalSequenceBlockHash(e),
                        tokens_hash: LocalBlockHash(t),
                        mm_extra_info: None,
                    })
                    .collect(),
            });
            emit(cache, ours, theirs);
        }
        // Evict whole least-recent requests; a block goes when no cached request uses it,
        // which frees suffixes before the prefixes they extend.
        while cache.refs.len() > CAPACITY_BLOCKS && cache.lru.len() > 1 {
            let old = cache.lru.pop_front().unwrap();
            let mut gone = Vec::new();
            for s in prompts[old].sequence.iter().rev() {
                let r = cache.refs.get_mut(&s.0).unwrap();
                *r -= 1;
                if *r == 0 {
                    cache.refs.remove(&s.0);
                    gone.push(ext(*s));
                }
            }
            if !gone.is_empty() {
                stream.blocks += gone.len();
                let ours = KvEventData::Removed {
                    blocks: gone.iter().map(|&b| ExternalHash(b)).collect(),
                };
                let theirs = KvCacheEventData::Removed(KvCacheRemoveData {
                    block_hashes: gone.iter().map(|&b| ExternalSequenceBlockHash(b)).collect(),
                });
                emit(cache, ours, theirs);
            }
        }
    }
    stream.final_entries = caches.iter().map(|c| c.refs.len()).sum();
    stream
}

/// 2,000-block queries: the trace's longest prompts (deep cached prefixes on their
/// worker), padded with uncached filler blocks.
pub fn queries(prompts: &[Prompt], count: usize) -> Vec<(Vec<SequenceHash>, Vec<LocalBlockHash>)> {
    let mut by_len: Vec<&Prompt> = prompts.iter().collect();
    by_len.sort_by_key(|p| std::cmp::Reverse(p.blocks.len()));
    by_len
        .iter()
        .take(count)
        .enumerate()
        .map(|(i, p)| {
            let mut blocks: Vec<BlockHash> = p.blocks.iter().copied().take(QUERY_BLOCKS).collect();
            let filler = (blocks.len()..QUERY_BLOCKS).map(|j| {
                BlockHash(((i as u64) << 32 | j as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93))
            });
            blocks.extend(filler);
            let seq = router::hashing::sequence_hashes(&blocks);
            let locals = blocks.iter().map(|b| LocalBlockHash(b.0)).collect();
            (seq, locals)
        })
        .collect()
}
