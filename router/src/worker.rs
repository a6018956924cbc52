//! Worker identity.

/// One routable engine: a worker process and, for data-parallel engines, one of its
/// DP ranks (each rank has its own KV cache, so each is a separate routing target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct WorkerId {
    /// The worker (process / instance) id.
    pub id: u64,
    /// The data-parallel rank inside the worker (0 when DP is off).
    pub dp_rank: u32,
}

impl WorkerId {
    /// A worker without data parallelism.
    pub const fn new(id: u64) -> Self {
        WorkerId { id, dp_rank: 0 }
    }

    /// One DP rank of a worker.
    pub const fn with_rank(id: u64, dp_rank: u32) -> Self {
        WorkerId { id, dp_rank }
    }
}
