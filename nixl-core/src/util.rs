//! Small helpers shared across modules.

/// A random 64-bit value from the OS.
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source is unavailable");
    u64::from_le_bytes(bytes)
}
