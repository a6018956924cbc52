//! Block hashes for trace requests, on [`crate::hashing`]'s Dynamo-compatible hashes.
//!
//! A Mooncake `hash_id` stands for `trace_block_size` copies of the token
//! `hash_id as u32` (Dynamo's trace expansion). Engine blocks are hashed like
//! Dynamo's router ([`crate::hashing::hash_block`], seed 1337, chained with
//! [`crate::hashing::chain`]), so a router that hashes the expanded tokens itself gets exactly
//! these values. Used by the simulator and by disagg's frontend and workers.

use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::hashing::{BlockHash, HASH_SEED, SequenceHash, chain, hash_block};

/// Local hash of one block of tokens ([`hash_block`] with the base-model seed), as a `u64`.
pub fn local_block_hash(tokens: &[u32]) -> u64 {
    hash_block(tokens, HASH_SEED).0
}

/// Sequence hash of a block given its parent's sequence hash ([`chain`]), as a `u64`.
pub fn chain_hash(parent: Option<u64>, local: u64) -> u64 {
    chain(parent.map(SequenceHash), BlockHash(local)).0
}

/// Local and sequence hashes of a request's full prompt blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockHashes {
    /// Per-block hash of the block's tokens.
    pub local: Vec<u64>,
    /// Prefix-chained hash identifying the block and everything before it.
    pub seq: Vec<u64>,
}

/// Expands trace hash ids into engine-block hashes, memoising uniform blocks.
#[derive(Debug)]
pub struct TraceHasher {
    block_size: usize,
    trace_block_size: usize,
    uniform_cache: FxHashMap<u64, u64>,
    scratch: Vec<u32>,
}

impl TraceHasher {
    /// Hasher for engine blocks of `block_size` tokens from trace blocks of
    /// `trace_block_size` tokens.
    pub fn new(block_size: usize, trace_block_size: usize) -> Self {
        assert!(
            block_size > 0 && trace_block_size > 0,
            "block sizes must be positive"
        );
        TraceHasher {
            block_size,
            trace_block_size,
            uniform_cache: FxHashMap::default(),
            scratch: Vec::with_capacity(block_size),
        }
    }

    /// Hashes of the full engine blocks of a prompt of `input_length` tokens.
    /// Positions past the listed hash ids reuse the last id (a short list).
    pub fn hashes(&mut self, hash_ids: &[u64], input_length: usize) -> BlockHashes {
        let n = input_length / self.block_size;
        let mut out = BlockHashes {
            local: Vec::with_capacity(n),
            seq: Vec::with_capacity(n),
        };
        if hash_ids.is_empty() {
            return out;
        }
        let id_at = |tok: usize| hash_ids[(tok / self.trace_block_size).min(hash_ids.len() - 1)];
        let mut parent = None;
        for b in 0..n {
            let first = b * self.block_size;
            let last = first + self.block_size - 1;
            let (a, z) = (id_at(first), id_at(last));
            let local = if a == z {
                let bs = self.block_size;
                *self
                    .uniform_cache
                    .entry(a)
                    .or_insert_with(|| local_block_hash(&vec![a as u32; bs]))
            } else {
                self.scratch.clear();
                self.scratch.extend((first..=last).map(|t| id_at(t) as u32));
                local_block_hash(&self.scratch)
            };
            let seq = chain_hash(parent, local);
            out.local.push(local);
            out.seq.push(seq);
            parent = Some(seq);
        }
        out
    }
}

/// Local hash standing for a block of generated tokens: unique per request
/// and position, so decode blocks never match another request's prompt.
pub fn generated_block_hash(request_uid: u64, block_index: usize) -> u64 {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&request_uid.to_le_bytes());
    bytes[8..].copy_from_slice(&(block_index as u64).to_le_bytes());
    xxh3_64_with_seed(&bytes, HASH_SEED ^ 0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_matches_explicit_tokens() {
        let ids = [7u64, 9, 11];
        let input = 512 * 2 + 130; // last trace block partial: 2 full engine blocks of it
        let mut h = TraceHasher::new(64, 512);
        let got = h.hashes(&ids, input);
        assert_eq!(got.local.len(), input / 64);
        let tokens: Vec<u32> = (0..input).map(|t| ids[t / 512] as u32).collect();
        let mut parent = None;
        for (i, chunk) in tokens.chunks_exact(64).enumerate() {
            let local = local_block_hash(chunk);
            let seq = chain_hash(parent, local);
            assert_eq!(got.local[i], local);
            assert_eq!(got.seq[i], seq);
            parent = Some(seq);
        }
    }

    #[test]
    fn unaligned_blocks_mix_ids() {
        let mut h = TraceHasher::new(48, 32);
        let got = h.hashes(&[1, 2, 3], 96);
        let tokens: Vec<u32> = (0..96).map(|t| [1u32, 2, 3][t / 32]).collect();
        assert_eq!(got.local[0], local_block_hash(&tokens[..48]));
        assert_eq!(got.local[1], local_block_hash(&tokens[48..]));
    }

    #[test]
    fn the_u64_helpers_are_the_router_hashes() {
        // What the simulator's former copy computed: XXH3-64 (seed 1337) over the LE tokens,
        // and over le(parent) ‖ le(local) for the chain.
        let tokens = [5u32, 6, 7, 8];
        let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
        let local = local_block_hash(&tokens);
        assert_eq!(local, xxh3_64_with_seed(&bytes, 1337));
        assert_eq!(chain_hash(None, local), local);
        let mut pair = [0u8; 16];
        pair[..8].copy_from_slice(&42u64.to_le_bytes());
        pair[8..].copy_from_slice(&local.to_le_bytes());
        assert_eq!(chain_hash(Some(42), local), xxh3_64_with_seed(&pair, 1337));
    }

    #[test]
    fn shared_prefix_shares_hashes_and_divergence_separates() {
        let mut h = TraceHasher::new(64, 512);
        let a = h.hashes(&[0, 1, 2], 1536);
        let b = h.hashes(&[0, 1, 5], 1536);
        assert_eq!(a.seq[..16], b.seq[..16]);
        assert_ne!(a.seq[16], b.seq[16]);
    }
}
