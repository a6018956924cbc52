//! The host-memory tier: a second pool, registered with the transfer library beside the
//! GPU pool, that keeps blocks the GPU pool evicts so they can be onboarded instead of
//! recomputed. Its slots are kept by the same [`SlotTable`] (LRU over unreferenced blocks);
//! moving bytes between the tiers is the worker's job (local transfers through the C ABI).

use super::{AllocError, DoesNotFit, KvLayout, KvPool, SlotTable};

/// A worker's host tier.
#[derive(Debug)]
pub struct HostTier {
    /// The tier's memory (same geometry per block as the GPU pool).
    pub pool: KvPool,
    /// Which host slots hold which blocks.
    pub slots: SlotTable,
}

impl HostTier {
    /// A tier of `blocks` blocks shaped like `gpu`, or why it cannot be allocated.
    pub fn new(gpu: &KvLayout, blocks: usize) -> Result<Self, AllocError> {
        let layout = KvLayout {
            num_blocks: blocks,
            ..*gpu
        };
        let pool = KvPool::try_new(layout).map_err(|e| AllocError::HostTier(Box::new(e)))?;
        Ok(HostTier {
            pool,
            slots: SlotTable::new(blocks),
        })
    }
}

/// Memory the system can still give, from `/proc/meminfo`'s `MemAvailable` (bytes); `None`
/// where that is not known.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses pools that together cannot fit: `workers` processes at most, each with a GPU pool
/// of `gpu_blocks` and a host tier of `host_blocks` blocks of `block_bytes`, against
/// `available` bytes (keeping a tenth for everything else).
pub fn check_fits(
    workers: u64,
    gpu_blocks: usize,
    host_blocks: usize,
    block_bytes: usize,
    available: u64,
) -> Result<(), DoesNotFit> {
    let per_worker = (gpu_blocks as u128 + host_blocks as u128) * block_bytes as u128;
    let total = per_worker * u128::from(workers);
    let budget = u128::from(available) / 10 * 9;
    if total <= budget {
        return Ok(());
    }
    Err(DoesNotFit {
        workers,
        gpu_blocks,
        host_blocks,
        block_bytes,
        total,
        budget,
        available,
        most: host_blocks_that_fit(workers, gpu_blocks, block_bytes, available),
    })
}

/// The largest host tier per worker that [`check_fits`] accepts (0 when even the GPU pools
/// do not fit).
pub fn host_blocks_that_fit(
    workers: u64,
    gpu_blocks: usize,
    block_bytes: usize,
    available: u64,
) -> usize {
    let budget = u128::from(available) / 10 * 9;
    let per_worker = budget / u128::from(workers.max(1)) / block_bytes.max(1) as u128;
    let host = per_worker.saturating_sub(gpu_blocks as u128);
    usize::try_from(host).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_larger_than_memory_are_refused_with_the_numbers() {
        let mib = 1u64 << 20;
        assert!(check_fits(4, 256, 512, 256 << 10, 1024 * mib).is_ok());
        let e = check_fits(4, 256, 4096, 256 << 10, 1024 * mib)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--host-tier-blocks 4096"), "{e}");
        assert!(e.contains("MemAvailable"), "{e}");
        let most = host_blocks_that_fit(4, 256, 256 << 10, 1024 * mib);
        assert!(e.contains(&format!("at most {most} fit")), "{e}");
        assert!(check_fits(4, 256, most, 256 << 10, 1024 * mib).is_ok());
        assert!(check_fits(4, 256, most + 1, 256 << 10, 1024 * mib).is_err());
        // No overflow on absurd sizes.
        assert!(check_fits(8, usize::MAX, usize::MAX, 256 << 10, u64::MAX).is_err());
    }

    #[test]
    fn host_tier_has_the_gpu_block_shape() {
        let gpu = KvLayout::mock_model(8);
        let t = HostTier::new(&gpu, 3).unwrap();
        assert_eq!(t.pool.layout().block_bytes(), gpu.block_bytes());
        assert_eq!(t.slots.capacity(), 3);
        assert!(available_memory().is_some_and(|m| m > 0));
    }
}
