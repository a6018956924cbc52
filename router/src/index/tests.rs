use super::*;
use crate::hashing::{BlockHash, ExternalHash, hash_prompt};
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};

fn stored(id: u64, parent: Option<u64>, blocks: &[(u64, BlockHash)]) -> KvEvent {
    KvEvent {
        tier: crate::StorageTier::Device,
        event_id: id,
        data: KvEventData::Stored {
            parent: parent.map(ExternalHash),
            blocks: blocks
                .iter()
                .map(|&(e, t)| StoredBlock {
                    external: ExternalHash(e),
                    tokens: t,
                })
                .collect(),
        },
    }
}

fn removed(id: u64, blocks: &[u64]) -> KvEvent {
    KvEvent {
        tier: crate::StorageTier::Device,
        event_id: id,
        data: KvEventData::Removed {
            blocks: blocks.iter().map(|&b| ExternalHash(b)).collect(),
        },
    }
}

/// A prompt of `n` blocks whose tokens start at `base`, and its engine-side event blocks.
fn prompt(base: u32, n: usize) -> (Vec<SequenceHash>, Vec<(u64, BlockHash)>) {
    let tokens: Vec<u32> = (0..n as u32 * 4).map(|t| base + t).collect();
    let h = hash_prompt(&tokens, 4, None);
    // Engine hashes are opaque: derive them from ours so the test can name them.
    let ext = h
        .sequence
        .iter()
        .zip(&h.blocks)
        .map(|(s, b)| (s.0 ^ 0xABCD, *b))
        .collect();
    (h.sequence, ext)
}

#[test]
fn stores_chain_through_parents_and_scores_leading_blocks() {
    let mut index = Indexer::new();
    let (seq, ext) = prompt(0, 6);
    let (a, b) = (WorkerId::new(1), WorkerId::new(2));
    assert_eq!(
        index.apply(a, &stored(0, None, &ext[..3])).outcome,
        ApplyOutcome::Applied
    );
    index.apply(a, &stored(1, Some(ext[2].0), &ext[3..5]));
    index.apply(b, &stored(0, None, &ext[..2]));
    let scores = index.find_matches(&seq);
    assert_eq!((scores.get(a), scores.get(b)), (5, 2));
    assert_eq!(index.tree_size(a), 5);
    assert_eq!(index.distinct_blocks(), 5);
    assert_eq!(index.entries(), 7);
}

#[test]
fn holes_cut_the_match_even_if_deeper_blocks_remain() {
    let mut index = Indexer::new();
    let (seq, ext) = prompt(0, 5);
    let w = WorkerId::new(1);
    index.apply(w, &stored(0, None, &ext));
    index.apply(w, &removed(1, &[ext[2].0]));
    assert_eq!(index.find_matches(&seq).get(w), 2);
    // Re-storing the block closes the hole.
    index.apply(w, &stored(2, Some(ext[1].0), &ext[2..3]));
    assert_eq!(index.find_matches(&seq).get(w), 5);
}

#[test]
fn a_reused_external_hash_moves_to_its_new_block() {
    let mut index = Indexer::new();
    let (seq_a, ext_a) = prompt(0, 2);
    let (seq_b, ext_b) = prompt(5_000, 1);
    let w = WorkerId::new(1);
    let (x, y) = (ext_a[0].0, 777);
    index.apply(w, &stored(0, None, &[(x, ext_a[0].1)]));
    // The same event stores a0 again under `y` and names a1 with `x`: a0 stays held.
    index.apply(w, &stored(1, None, &[(y, ext_a[0].1), (x, ext_a[1].1)]));
    assert_eq!(index.find_matches(&seq_a).get(w), 2);
    assert_eq!(index.tree_size(w), 2);
    // `y` now names b0: a0 is no longer held, so nothing of prompt a matches.
    index.apply(w, &stored(2, None, &[(y, ext_b[0].1)]));
    assert_eq!(index.find_matches(&seq_a).get(w), 0);
    assert_eq!(index.find_matches(&seq_b).get(w), 1);
    assert_eq!(index.distinct_blocks(), 2);
}

#[test]
fn gaps_duplicates_and_missing_parents_are_reported() {
    let mut index = Indexer::new();
    let (_, ext) = prompt(0, 3);
    let w = WorkerId::new(9);
    assert_eq!(index.apply(w, &stored(0, None, &ext[..1])).gap, None);
    let report = index.apply(w, &stored(3, Some(ext[0].0), &ext[1..2]));
    assert_eq!(report.gap, Some(1..3));
    assert_eq!(
        index.apply(w, &removed(2, &[ext[0].0])).outcome,
        ApplyOutcome::Duplicate
    );
    let orphan = index.apply(w, &stored(4, Some(12345), &ext[2..3]));
    assert_eq!(orphan.outcome, ApplyOutcome::ParentMissing);
    assert_eq!(index.last_event_id(w), Some(4));
    assert_eq!(index.tree_size(w), 2);
}

#[test]
fn cleared_resync_and_worker_removal() {
    let mut index = Indexer::new();
    let (seq, ext) = prompt(0, 4);
    let (a, b) = (WorkerId::new(1), WorkerId::with_rank(1, 1));
    index.apply(a, &stored(0, None, &ext));
    index.apply(b, &stored(0, None, &ext));
    index.apply(
        a,
        &KvEvent {
            tier: crate::StorageTier::Device,
            event_id: 1,
            data: KvEventData::Cleared,
        },
    );
    assert_eq!(index.find_matches(&seq).get(a), 0);
    assert_eq!(index.find_matches(&seq).get(b), 4);
    let dump = [stored(0, None, &ext[..2]).data];
    assert_eq!(index.resync(a, 41, &dump), 0);
    assert_eq!(index.last_event_id(a), Some(41));
    assert_eq!(index.find_matches(&seq).get(a), 2);
    index.remove_worker(b);
    assert_eq!(index.find_matches(&seq).scores, vec![(a, 2)]);
    assert_eq!(index.workers().count(), 1);
    index.remove_worker(a);
    assert_eq!(index.distinct_blocks(), 0);
}

/// Ground truth: per worker the set of sequence hashes it holds.
fn reference_scores(
    held: &HashMap<WorkerId, HashSet<u64>>,
    seq: &[SequenceHash],
) -> Vec<(WorkerId, u32)> {
    let mut out: Vec<(WorkerId, u32)> = held
        .iter()
        .map(|(w, set)| {
            (
                *w,
                seq.iter().take_while(|s| set.contains(&s.0)).count() as u32,
            )
        })
        .filter(|&(_, s)| s > 0)
        .collect();
    out.sort();
    out
}

/// A prompt of 12 blocks sharing its first `shared` blocks with every other prompt
/// built from the same `root` (a branching tree of prompts).
fn branching_prompt(
    root: u32,
    shared: usize,
    tail: u32,
) -> (Vec<SequenceHash>, Vec<(u64, BlockHash)>) {
    let mut tokens: Vec<u32> = (0..shared as u32 * 4).map(|t| root * 100_000 + t).collect();
    tokens.extend((0..(12 - shared) as u32 * 4).map(|t| 50_000_000 + tail * 1000 + t));
    let h = hash_prompt(&tokens, 4, None);
    let ext = h
        .sequence
        .iter()
        .zip(&h.blocks)
        .map(|(s, b)| (s.0 ^ 0xABCD, *b))
        .collect();
    (h.sequence, ext)
}

#[test]
fn random_event_streams_match_ground_truth() {
    let prompts: Vec<_> = (0..40)
        .map(|p| prompt((p % 8) * 1000 + p / 8, 12))
        .collect();
    random_stream_against_ground_truth(42, &prompts, 70);
}

#[test]
fn random_streams_over_branching_prompts_match_ground_truth() {
    // Prompts share prefixes of different lengths, so runs split and merge where paths
    // branch; 150 workers make large (bitmap) worker sets.
    let prompts: Vec<_> = (0..48u32)
        .map(|p| branching_prompt(p % 3, (p as usize * 5) % 12, p))
        .collect();
    random_stream_against_ground_truth(7, &prompts, 150);
}

/// A prompt's sequence hashes and its engine-side `(external hash, block hash)` pairs.
type TestPrompt = (Vec<SequenceHash>, Vec<(u64, BlockHash)>);

fn random_stream_against_ground_truth(seed: u64, prompts: &[TestPrompt], workers: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut index = Indexer::new();
    let mut held: HashMap<WorkerId, HashSet<u64>> = HashMap::new();
    let mut next_id: HashMap<WorkerId, u64> = HashMap::new();
    for step in 0..20_000 {
        let w = WorkerId::new(rng.random_range(0..workers));
        let id = next_id.entry(w).or_insert(0);
        let (seq, ext) = &prompts[rng.random_range(0..prompts.len())];
        let set = held.entry(w).or_default();
        let event = match rng.random_range(0..10) {
            0..6 => {
                // Store from the first missing block onward, naming the parent.
                let start = seq
                    .iter()
                    .take_while(|s| set.contains(&s.0))
                    .count()
                    .min(11);
                let end = rng.random_range(start + 1..=12);
                set.extend(seq[start..end].iter().map(|s| s.0));
                stored(
                    *id,
                    start.checked_sub(1).map(|p| ext[p].0),
                    &ext[start..end],
                )
            }
            6..9 => {
                let at = rng.random_range(0..12);
                set.remove(&seq[at].0);
                removed(*id, &[ext[at].0])
            }
            _ => {
                set.clear();
                KvEvent {
                    tier: crate::StorageTier::Device,
                    event_id: *id,
                    data: KvEventData::Cleared,
                }
            }
        };
        *id += 1;
        assert_eq!(index.apply(w, &event).outcome, ApplyOutcome::Applied);
        if step % 97 == 0 {
            for _ in 0..3 {
                let (seq, _) = &prompts[rng.random_range(0..prompts.len())];
                let mut got = index.find_matches(seq).scores;
                got.sort();
                assert_eq!(got, reference_scores(&held, seq), "step {step}");
            }
        }
    }
    for (w, set) in &held {
        assert_eq!(index.tree_size(*w), set.len());
    }
}
