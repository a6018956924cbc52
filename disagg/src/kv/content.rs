//! Deterministic block contents. A prefill worker "computes" a block by writing words derived
//! from the block's identity (its sequence hash, or a per-request key for a partial block),
//! its layer and its position in the sequence; a decode worker checks every received block
//! against the same function. Any misplaced, stale or torn byte shows up as a mismatch.

/// Identity of one block's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct BlockKey {
    /// The block's sequence hash (full blocks) or a per-request key (the partial tail block).
    pub hash: u64,
    /// Position of the block in its sequence.
    pub position: u32,
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn seed(key: BlockKey, layer: usize) -> u64 {
    splitmix64(key.hash ^ splitmix64((u64::from(key.position) << 16) ^ layer as u64))
}

/// Word `i` of a block's layer slice.
fn word(seed: u64, i: usize) -> u64 {
    splitmix64(seed.wrapping_add((i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)))
}

/// Fills `buf` (one layer of one block) with the contents of `key` at `layer`.
pub fn fill(buf: &mut [u8], key: BlockKey, layer: usize) {
    let s = seed(key, layer);
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let w = word(s, i).to_le_bytes();
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
}

/// True when `buf` holds exactly the contents of `key` at `layer`.
pub fn verify(buf: &[u8], key: BlockKey, layer: usize) -> bool {
    let s = seed(key, layer);
    buf.chunks(8).enumerate().all(|(i, chunk)| {
        let w = word(s, i).to_le_bytes();
        chunk == &w[..chunk.len()]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_then_verify_and_any_flip_is_caught() {
        let key = BlockKey {
            hash: 42,
            position: 3,
        };
        let mut buf = vec![0u8; 4096 + 4];
        fill(&mut buf, key, 1);
        assert!(verify(&buf, key, 1));
        assert!(!verify(&buf, key, 2), "another layer differs");
        assert!(!verify(&buf, BlockKey { position: 4, ..key }, 1));
        assert!(!verify(&buf, BlockKey { hash: 43, ..key }, 1));
        buf[4097] ^= 1;
        assert!(!verify(&buf, key, 1));
        assert!(
            !verify(&vec![0u8; 4100], key, 1),
            "zeroes are not valid contents"
        );
    }
}
