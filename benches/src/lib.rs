//! Shared pieces of the nixl-rs benchmarks: transfer buffers (plain `malloc`
//! or huge-page mappings), a verifiable data pattern, a deterministic shuffle,
//! and same-run baselines (memcpy, raw loopback TCP).

pub mod baseline;
pub mod buffer;
pub mod pattern;

/// Deterministic permutation of `0..n` (xorshift Fisher–Yates), so remote
/// blocks are used in a scattered order as real KV block ids are.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut rng = test_support::XorShift::new(seed | 1);
    for i in (1..n).rev() {
        v.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    v
}

/// Bytes per second as GB/s (10⁹).
pub fn gbps(bytes: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        0.0
    } else {
        bytes as f64 / secs / 1e9
    }
}

#[cfg(test)]
mod tests {
    /// The permutation of the inline xorshift this replaced, so benchmark points keep their
    /// block order from run to run across the change.
    fn shuffled_before(n: usize, seed: u64) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        let mut s = seed | 1;
        for i in (1..n).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            v.swap(i, (s % (i as u64 + 1)) as usize);
        }
        v
    }

    #[test]
    fn shuffled_is_a_permutation_and_unchanged() {
        for (n, seed) in [(1, 0), (16, 5), (1000, 0x5eed)] {
            let v = super::shuffled(n, seed);
            assert_eq!(v, shuffled_before(n, seed));
            let mut sorted = v.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        }
    }
}
