//! Block and sequence hashing compatible with Dynamo's KV router and with the
//! `tokens_hash` that Dynamo's publisher attaches to vLLM/SGLang KV events.
//!
//! * block hash: XXH3-64 over the block's `u32` little-endian token ids, seed 1337
//!   (or `1337 + xxh3_64(lora_name)` for a LoRA adapter); only full blocks are hashed;
//! * sequence hash: `seq[0] = block[0]`, `seq[i] = XXH3-64(seed 1337, le(seq[i-1]) ‖ le(block[i]))`.
//!   The chain seed stays 1337 even under LoRA: the adapter is already in every block hash.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// The XXH3 seed Dynamo uses for block hashes and for the sequence-hash chain.
pub const HASH_SEED: u64 = 1337;

/// Hash of the tokens of one full block, independent of what precedes it
/// (Dynamo's `LocalBlockHash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct BlockHash(pub u64);

/// Hash of a block *and its whole prefix* (Dynamo's `SequenceHash`). Two prompts share
/// a sequence hash at depth `i` exactly when they share their first `i + 1` blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SequenceHash(pub u64);

/// An engine's own opaque identifier for a cached block (vLLM's block hash), used as the
/// key of stored/removed events. It is per engine and unrelated to our hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ExternalHash(pub u64);

/// The block-hash seed for an optional LoRA adapter; an empty name means the base model.
pub fn block_seed(lora: Option<&str>) -> u64 {
    match lora.filter(|name| !name.is_empty()) {
        Some(name) => HASH_SEED.wrapping_add(xxh3_64(name.as_bytes())),
        None => HASH_SEED,
    }
}

/// Hashes one block of tokens with an explicit seed (see [`block_seed`]).
pub fn hash_block(tokens: &[u32], seed: u64) -> BlockHash {
    // One stack buffer per block keeps this allocation-free for common block sizes.
    let mut stack = [0u8; 256 * 4];
    let len = tokens.len() * 4;
    if len <= stack.len() {
        for (dst, token) in stack.chunks_exact_mut(4).zip(tokens) {
            dst.copy_from_slice(&token.to_le_bytes());
        }
        BlockHash(xxh3_64_with_seed(&stack[..len], seed))
    } else {
        let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
        BlockHash(xxh3_64_with_seed(&bytes, seed))
    }
}

/// Block hashes of every *full* block of `tokens`; the partial tail block is ignored.
/// A `block_size` of zero yields no blocks.
pub fn hash_blocks(tokens: &[u32], block_size: usize, lora: Option<&str>) -> Vec<BlockHash> {
    if block_size == 0 {
        return Vec::new();
    }
    let seed = block_seed(lora);
    tokens
        .chunks_exact(block_size)
        .map(|chunk| hash_block(chunk, seed))
        .collect()
}

/// The sequence hash of `block` given the sequence hash of its parent block.
#[inline]
pub fn next_sequence_hash(parent: SequenceHash, block: BlockHash) -> SequenceHash {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&parent.0.to_le_bytes());
    bytes[8..].copy_from_slice(&block.0.to_le_bytes());
    SequenceHash(xxh3_64_with_seed(&bytes, HASH_SEED))
}

/// The sequence hash of a block: chained from its parent, or equal to the block hash
/// for the first block of a sequence.
#[inline]
pub fn chain(parent: Option<SequenceHash>, block: BlockHash) -> SequenceHash {
    match parent {
        Some(parent) => next_sequence_hash(parent, block),
        None => SequenceHash(block.0),
    }
}

/// Chained sequence hashes for a run of block hashes starting at the root.
pub fn sequence_hashes(blocks: &[BlockHash]) -> Vec<SequenceHash> {
    let mut out = Vec::with_capacity(blocks.len());
    let mut parent = None;
    for &block in blocks {
        let seq = chain(parent, block);
        out.push(seq);
        parent = Some(seq);
    }
    out
}

/// Both hash kinds for a prompt: what the router needs to match it and to track it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PromptHashes {
    /// One block hash per full block.
    pub blocks: Vec<BlockHash>,
    /// One chained sequence hash per full block.
    pub sequence: Vec<SequenceHash>,
}

/// Hashes a prompt into block and sequence hashes in one pass.
pub fn hash_prompt(tokens: &[u32], block_size: usize, lora: Option<&str>) -> PromptHashes {
    let blocks = hash_blocks(tokens, block_size, lora);
    let sequence = sequence_hashes(&blocks);
    PromptHashes { blocks, sequence }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_full_blocks_are_hashed() {
        let tokens: Vec<u32> = (0..35).collect();
        assert_eq!(hash_blocks(&tokens, 16, None).len(), 2);
        assert!(hash_blocks(&tokens, 0, None).is_empty());
    }

    #[test]
    fn block_hash_is_xxh3_of_le_bytes_with_seed_1337() {
        let tokens = [1u32, 2, 3, 4];
        let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
        assert_eq!(
            hash_blocks(&tokens, 4, None)[0].0,
            xxh3_64_with_seed(&bytes, 1337)
        );
    }

    #[test]
    fn lora_changes_block_hashes_but_empty_name_does_not() {
        let tokens: Vec<u32> = (0..32).collect();
        let base = hash_blocks(&tokens, 16, None);
        assert_ne!(base, hash_blocks(&tokens, 16, Some("adapter")));
        assert_eq!(base, hash_blocks(&tokens, 16, Some("")));
    }

    #[test]
    fn sequence_hash_depends_on_prefix() {
        let a = hash_blocks(&[1, 1, 2, 2], 2, None);
        let b = hash_blocks(&[3, 3, 2, 2], 2, None);
        assert_eq!(a[1], b[1]);
        let (sa, sb) = (sequence_hashes(&a), sequence_hashes(&b));
        assert_eq!(sa[0].0, a[0].0);
        assert_ne!(sa[1], sb[1]);
    }

    #[test]
    fn large_blocks_take_the_heap_path_consistently() {
        let tokens: Vec<u32> = (0..600).collect();
        let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
        assert_eq!(hash_block(&tokens, 7).0, xxh3_64_with_seed(&bytes, 7));
    }
}
