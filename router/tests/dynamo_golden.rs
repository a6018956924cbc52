//! Golden vectors against Dynamo's own implementation (`dynamo-kv-router` 1.6.1, a
//! dev-dependency only): block hashes, sequence hashes, LoRA seeds, and the overlap
//! scores of Dynamo's reference radix tree on the same event stream.

use dynamo_kv_router::protocols::{
    BlockHashOptions, ExternalSequenceBlockHash, KvCacheEvent, KvCacheEventData, KvCacheRemoveData,
    KvCacheStoreData, KvCacheStoredBlockData, LocalBlockHash, RouterEvent,
    compute_block_hash_for_seq, compute_seq_hash_for_block,
};
use rand::{Rng, SeedableRng};
use router::hashing::{hash_blocks, sequence_hashes};
use router::{ExternalHash, Indexer, KvEvent, KvEventData, StoredBlock, WorkerId, hash_prompt};

fn dynamo_hashes(tokens: &[u32], block_size: u32, lora: Option<&str>) -> (Vec<u64>, Vec<u64>) {
    let options = BlockHashOptions {
        lora_name: lora,
        ..Default::default()
    };
    let blocks = compute_block_hash_for_seq(tokens, block_size, options);
    let seqs = compute_seq_hash_for_block(&blocks);
    (blocks.iter().map(|b| b.0).collect(), seqs)
}

#[test]
fn block_and_sequence_hashes_match_dynamo_on_random_streams() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1337);
    for case in 0..300 {
        let block_size = [1u32, 4, 16, 32, 64, 128][case % 6];
        let len = rng.random_range(0..3_000);
        let tokens: Vec<u32> = (0..len).map(|_| rng.random()).collect();
        let lora = match case % 3 {
            0 => None,
            1 => Some("adapter-a"),
            _ => Some(""),
        };
        let (blocks, seqs) = dynamo_hashes(&tokens, block_size, lora);
        let ours = hash_blocks(&tokens, block_size as usize, lora);
        assert_eq!(
            ours.iter().map(|b| b.0).collect::<Vec<_>>(),
            blocks,
            "case {case}"
        );
        let our_seqs = sequence_hashes(&ours);
        assert_eq!(
            our_seqs.iter().map(|s| s.0).collect::<Vec<_>>(),
            seqs,
            "case {case}"
        );
    }
}

fn dynamo_store(worker: u64, id: u64, parent: Option<u64>, blocks: &[(u64, u64)]) -> RouterEvent {
    let data = KvCacheEventData::Stored(KvCacheStoreData {
        parent_hash: parent.map(ExternalSequenceBlockHash),
        start_position: None,
        blocks: blocks
            .iter()
            .map(|&(ext, local)| KvCacheStoredBlockData {
                block_hash: ExternalSequenceBlockHash(ext),
                tokens_hash: LocalBlockHash(local),
                mm_extra_info: None,
            })
            .collect(),
    });
    RouterEvent::new(
        worker,
        KvCacheEvent {
            event_id: id,
            data,
            dp_rank: 0,
        },
    )
}

fn dynamo_remove(worker: u64, id: u64, blocks: &[u64]) -> RouterEvent {
    let data = KvCacheEventData::Removed(KvCacheRemoveData {
        block_hashes: blocks
            .iter()
            .map(|&b| ExternalSequenceBlockHash(b))
            .collect(),
    });
    RouterEvent::new(
        worker,
        KvCacheEvent {
            event_id: id,
            data,
            dp_rank: 0,
        },
    )
}

/// Same random store/remove stream into Dynamo's `RadixTree` and our `Indexer`; the
/// overlap scores must agree for every query. The stream behaves like an engine: a
/// block is stored only when not already cached, and only leaves are evicted
/// (tail-first), so both indexes see well-formed input.
#[test]
fn overlap_scores_match_dynamo_radix_tree() {
    use std::collections::HashSet;
    const BLOCKS: usize = 20;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    // Prompts share prefixes of 0..4 blocks with each other.
    let prompts: Vec<_> = (0..30u32)
        .map(|p| {
            let tokens: Vec<u32> = (0..16 * BLOCKS as u32)
                .map(|t| if t < 16 * (p % 5) { t } else { p * 10_000 + t })
                .collect();
            hash_prompt(&tokens, 16, None)
        })
        .collect();
    let mut dynamo = dynamo_kv_router::RadixTree::new();
    let mut ours = Indexer::new();
    let mut held: Vec<HashSet<u64>> = vec![HashSet::new(); 16];
    let mut next_id = [0u64; 16];
    for step in 0..6_000 {
        let w = rng.random_range(0..16usize);
        let prompt = &prompts[rng.random_range(0..prompts.len())];
        // Engine hashes are opaque but, as with vLLM under a fixed hash seed, the same on
        // every worker (Dynamo's compressed tree keys shared edges by them).
        let ext = |i: usize| prompt.sequence[i].0 ^ 0x5EED;
        let cached = prompt
            .sequence
            .iter()
            .take_while(|s| held[w].contains(&s.0))
            .count();
        let id = next_id[w];
        next_id[w] += 1;
        let (dyn_event, our_event) = if rng.random_bool(0.55) && cached < BLOCKS {
            let end = rng.random_range(cached + 1..=BLOCKS);
            let blocks: Vec<(u64, u64)> = (cached..end)
                .map(|i| (ext(i), prompt.blocks[i].0))
                .collect();
            let parent = cached.checked_sub(1).map(ext);
            held[w].extend(prompt.sequence[cached..end].iter().map(|s| s.0));
            let our = KvEventData::Stored {
                parent: parent.map(ExternalHash),
                blocks: blocks
                    .iter()
                    .map(|&(e, t)| StoredBlock {
                        external: ExternalHash(e),
                        tokens: router::BlockHash(t),
                    })
                    .collect(),
            };
            (dynamo_store(w as u64, id, parent, &blocks), our)
        } else {
            // Evict leaves from this prompt's cached tail: a block goes only when no
            // other cached block of this worker extends it.
            let has_child = |seq: u64, held: &HashSet<u64>| {
                prompts.iter().any(|q| {
                    q.sequence
                        .windows(2)
                        .any(|pair| pair[0].0 == seq && held.contains(&pair[1].0))
                })
            };
            let mut gone = Vec::new();
            let mut depth = cached;
            while depth > 0 && rng.random_bool(0.7) {
                let seq = prompt.sequence[depth - 1].0;
                if has_child(seq, &held[w]) {
                    break;
                }
                held[w].remove(&seq);
                gone.push(ext(depth - 1));
                depth -= 1;
            }
            let our = KvEventData::Removed {
                blocks: gone.iter().map(|&b| ExternalHash(b)).collect(),
            };
            (dynamo_remove(w as u64, id, &gone), our)
        };
        let shown = format!("{:?}", dyn_event.event.data);
        let result = dynamo.apply_event(dyn_event);
        assert!(
            result.is_ok(),
            "step {step}: Dynamo rejected {shown}: {result:?}"
        );
        let report = ours.apply(
            WorkerId::new(w as u64),
            &KvEvent {
                tier: router::StorageTier::Device,
                event_id: id,
                data: our_event,
            },
        );
        assert_eq!(report.outcome, router::ApplyOutcome::Applied);
        if step % 7 == 0 {
            let q = &prompts[rng.random_range(0..prompts.len())];
            let locals = q.blocks.iter().map(|b| LocalBlockHash(b.0)).collect();
            let theirs = dynamo.find_matches(locals, false);
            let mut expected: Vec<(u64, u32)> = theirs
                .scores
                .iter()
                .map(|(w, s)| (w.worker_id, *s))
                .filter(|&(_, s)| s > 0)
                .collect();
            expected.sort();
            let mut got: Vec<(u64, u32)> = ours
                .find_matches(&q.sequence)
                .scores
                .iter()
                .map(|(w, s)| (w.id, *s))
                .collect();
            got.sort();
            assert_eq!(got, expected, "step {step}");
        }
    }
    for w in 0..16u64 {
        let theirs = dynamo
            .dump_tree_as_events()
            .iter()
            .filter(|e| e.worker_id == w)
            .count();
        assert!(theirs > 0 || held[w as usize].is_empty());
        assert_eq!(ours.tree_size(WorkerId::new(w)), held[w as usize].len());
    }
}
