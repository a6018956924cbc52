//! Why a KV pool could not be had: an allocation that failed, or pools that together cannot
//! fit in this machine's memory (refused before any worker starts).

/// A pool (or host tier) that could not be allocated.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    /// The size overflows an allocation layout.
    #[error("a {size}-byte KV pool is too large")]
    TooLarge {
        /// Bytes asked for.
        size: usize,
        /// The layout's refusal.
        #[source]
        source: std::alloc::LayoutError,
    },
    /// The allocator had no memory to give.
    #[error("could not allocate a {mib} MiB KV pool")]
    OutOfMemory {
        /// MiB asked for.
        mib: usize,
    },
    /// The host tier's pool failed.
    #[error("host tier: {0}")]
    HostTier(#[source] Box<AllocError>),
}

/// Pools that together need more memory than the machine can give (see
/// [`super::check_fits`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "--host-tier-blocks {host_blocks}: up to {workers} workers × (GPU pool of {gpu_blocks} \
     blocks (--blocks) + host tier of {host_blocks} blocks, {} KiB each) = {:.1} GiB, more \
     than the {:.1} GiB this machine can give (90% of MemAvailable {:.1} GiB); lower \
     --host-tier-blocks (at most {most} fit) or --blocks",
    .block_bytes >> 10,
    gib(*.total),
    gib(*.budget),
    gib(u128::from(*.available))
)]
pub struct DoesNotFit {
    /// Workers alive at once, at most.
    pub workers: u64,
    /// GPU pool blocks per worker.
    pub gpu_blocks: usize,
    /// Host tier blocks per worker.
    pub host_blocks: usize,
    /// Bytes per block.
    pub block_bytes: usize,
    /// Bytes all pools need together.
    pub total: u128,
    /// Bytes the pools may take (90% of `available`).
    pub budget: u128,
    /// `MemAvailable` in bytes.
    pub available: u64,
    /// The largest host tier per worker that fits (see [`super::host_blocks_that_fit`]).
    pub most: usize,
}

fn gib(b: u128) -> f64 {
    b as f64 / (1u64 << 30) as f64
}
