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

/// Word `i` of a block's layer slice: one multiply-xorshift of the seed and the position, so
/// filling and checking run at memory speed.
#[inline(always)]
fn word(seed: u64, i: usize) -> u64 {
    let mut w = seed.wrapping_add((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    w ^= w >> 29;
    w = w.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    w ^ (w >> 32)
}

/// Fills `buf` (one layer of one block) with the contents of `key` at `layer`.
pub fn fill(buf: &mut [u8], key: BlockKey, layer: usize) {
    let s = seed(key, layer);
    // SAFETY: any bit pattern is a valid u64; `align_to_mut` only reinterprets the aligned middle.
    let (pre, mid, post) = unsafe { buf.align_to_mut::<u64>() };
    if !pre.is_empty() {
        return fill_bytes(buf, s);
    }
    for (i, w) in mid.iter_mut().enumerate() {
        *w = word(s, i).to_le();
    }
    let base = mid.len();
    for (j, chunk) in post.chunks_mut(8).enumerate() {
        let w = word(s, base + j).to_le_bytes();
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
}

fn fill_bytes(buf: &mut [u8], s: u64) {
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let w = word(s, i).to_le_bytes();
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
}

/// True when `buf` holds exactly the contents of `key` at `layer`.
pub fn verify(buf: &[u8], key: BlockKey, layer: usize) -> bool {
    let s = seed(key, layer);
    // SAFETY: any bit pattern is a valid u64; `align_to` only reinterprets the aligned middle.
    let (pre, mid, post) = unsafe { buf.align_to::<u64>() };
    if !pre.is_empty() {
        return verify_bytes(buf, s);
    }
    // No early exit: a branch-free fold vectorises.
    let ok = mid
        .iter()
        .enumerate()
        .fold(true, |acc, (i, w)| acc & (*w == word(s, i).to_le()));
    let base = mid.len();
    ok && post.chunks(8).enumerate().all(|(j, chunk)| {
        let w = word(s, base + j).to_le_bytes();
        chunk == &w[..chunk.len()]
    })
}

fn verify_bytes(buf: &[u8], s: u64) -> bool {
    buf.chunks(8).enumerate().all(|(i, chunk)| {
        let w = word(s, i).to_le_bytes();
        chunk == &w[..chunk.len()]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_unaligned_paths_agree() {
        let key = BlockKey {
            hash: 9,
            position: 1,
        };
        let mut words = vec![0u64; 130];
        // SAFETY: a u64 buffer viewed as bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), 1040) };
        fill(&mut bytes[..1036], key, 2);
        let mut shifted = vec![0u8; 1037];
        shifted[1..].copy_from_slice(&bytes[..1036]);
        assert!(
            verify(&shifted[1..], key, 2),
            "unaligned view of aligned contents"
        );
        let mut other = vec![0u8; 1037];
        fill(&mut other[1..], key, 2);
        assert_eq!(
            &other[1..],
            &bytes[..1036],
            "unaligned fill writes the same bytes"
        );
    }

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
