//! A request's prompt blocks as a worker sees them: per-block content keys, sequence
//! hashes and tokens.

use crate::kv::content::BlockKey;
use crate::proto::RequestInfo;
use router::trace_hashing::{BlockHashes, TraceHasher};
use std::rc::Rc;

/// The prompt blocks of one request.
#[derive(Debug, Clone)]
pub struct PromptBlocks {
    /// Engine-block hashes of the full blocks.
    pub hashes: Rc<BlockHashes>,
    /// Content key of every block, the partial tail block included.
    pub keys: Vec<BlockKey>,
}

impl PromptBlocks {
    /// Blocks covering the prompt (full ones and the partial tail).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True for an empty prompt.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Full blocks (cacheable, with a sequence hash).
    pub fn full(&self) -> usize {
        self.hashes.seq.len()
    }

    /// The cache key of block `i` when it is full.
    pub fn cache_hash(&self, i: usize) -> Option<u64> {
        self.hashes.seq.get(i).copied()
    }
}

/// Content key of a request's partial tail block: unique per request, known to both sides.
fn tail_hash(request: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(&request.to_le_bytes(), 0x7a11)
}

/// Computes a request's prompt blocks.
pub fn prompt_blocks(
    hasher: &mut TraceHasher,
    block_tokens: usize,
    req: &RequestInfo,
) -> PromptBlocks {
    let hashes = hasher.hashes(&req.hash_ids, req.isl);
    let n = req.isl.div_ceil(block_tokens);
    let mut keys: Vec<BlockKey> = hashes
        .seq
        .iter()
        .enumerate()
        .map(|(i, &h)| BlockKey {
            hash: h,
            position: i as u32,
        })
        .collect();
    while keys.len() < n {
        keys.push(BlockKey {
            hash: tail_hash(req.id),
            position: keys.len() as u32,
        });
    }
    PromptBlocks {
        hashes: Rc::new(hashes),
        keys,
    }
}

/// The token ids of full block `i` (Mooncake expansion: each trace block is
/// `trace_block` copies of its hash id).
pub fn block_tokens(req: &RequestInfo, block_tokens: usize, i: usize) -> Vec<u32> {
    let last = req.hash_ids.len().saturating_sub(1);
    (i * block_tokens..(i + 1) * block_tokens)
        .map(|t| req.hash_ids[(t / req.trace_block.max(1)).min(last)] as u32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_block_and_tokens() {
        let req = RequestInfo {
            id: 9,
            isl: 1100,
            osl: 4,
            hash_ids: vec![1, 2, 3],
            trace_block: 512,
        };
        let mut h = TraceHasher::new(64, 512);
        let b = prompt_blocks(&mut h, 64, &req);
        assert_eq!((b.len(), b.full()), (18, 17));
        assert_eq!(b.keys[17].position, 17);
        assert_eq!(b.cache_hash(17), None);
        let t = block_tokens(&req, 64, 8);
        assert_eq!(t, vec![2u32; 64]);
        assert_eq!(
            router::trace_hashing::local_block_hash(&t),
            b.hashes.local[8],
            "tokens hash back to the engine's block hash"
        );
    }
}
