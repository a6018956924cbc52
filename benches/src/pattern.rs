//! A data pattern that identifies each block slot, for consistency checks.

/// Fills `block` (slot `slot` of a run seeded with `seed`) with its pattern.
pub fn fill(block: &mut [u8], seed: u64, slot: usize) {
    let base = seed.rotate_left(17) ^ ((slot as u64) << 24);
    for (i, chunk) in block.chunks_mut(8).enumerate() {
        let w = (base ^ i as u64).to_le_bytes();
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
}

/// Whether `block` holds slot `slot`'s pattern.
pub fn check(block: &[u8], seed: u64, slot: usize) -> bool {
    let base = seed.rotate_left(17) ^ ((slot as u64) << 24);
    block.chunks(8).enumerate().all(|(i, chunk)| {
        let w = (base ^ i as u64).to_le_bytes();
        chunk == &w[..chunk.len()]
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn fill_then_check() {
        let mut b = vec![0u8; 4100];
        super::fill(&mut b, 5, 3);
        assert!(super::check(&b, 5, 3));
        assert!(!super::check(&b, 5, 4));
        assert!(!super::check(&b, 6, 3));
    }
}
