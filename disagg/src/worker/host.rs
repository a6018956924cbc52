//! The host tier in use: a GPU-pool eviction offloads the evicted block to the host tier,
//! and a GPU miss that the host tier holds is onboarded back, each move a local transfer
//! through the C ABI (this agent READs or WRITEs its own registered memory). Every
//! onboarded block is verified against its contents before it is used.

use super::{PeerError, Worker};
use crate::kv::content::BlockKey;
use crate::kv::{KvPool, SlotId};
use crate::transfer::{Op, Segment, Transport, XferState};
use std::time::{Duration, Instant};

/// A local copy taking longer than this is abandoned (the block is then not offloaded, or
/// recomputed instead of onboarded).
const LOCAL_COPY_LIMIT: Duration = Duration::from_secs(2);

/// Copies GPU slot `gpu` to host slot `host` (`Op::Write`) or back (`Op::Read`) as one
/// loopback transfer (one descriptor per layer), and waits for it.
fn local_copy(
    transport: &mut dyn Transport,
    op: Op,
    gpu_pool: &KvPool,
    gpu: SlotId,
    host_pool: &KvPool,
    host: SlotId,
) -> Result<(), PeerError> {
    let layout = *gpu_pool.layout();
    let seg = |pool: &KvPool, slot: SlotId, layer| Segment {
        addr: pool.addr(layer, slot as usize),
        len: layout.layer_block_bytes(),
    };
    let local: Vec<Segment> = (0..layout.layers).map(|l| seg(gpu_pool, gpu, l)).collect();
    let remote: Vec<Segment> = (0..layout.layers)
        .map(|l| seg(host_pool, host, l))
        .collect();
    let me = transport.name().to_string();
    let x = transport
        .post(op, &me, &local, &remote, None)
        .map_err(PeerError::Local)?;
    let deadline = Instant::now() + LOCAL_COPY_LIMIT;
    let result = loop {
        match transport.poll(x) {
            Ok(XferState::Done) => break Ok(()),
            Ok(XferState::InProgress) if Instant::now() < deadline => std::thread::yield_now(),
            Ok(XferState::InProgress) => break Err(PeerError::LocalTimeout),
            Err(e) => break Err(PeerError::Local(e)),
        }
    };
    transport.release(x);
    result
}

impl Worker {
    /// A fresh GPU slot, referenced once; a cached block evicted to make room is offloaded
    /// to the host tier first. `None` when every slot is referenced.
    pub(crate) fn alloc_slot(&mut self) -> Option<SlotId> {
        let (slot, evicted) = self.slots.allocate_evicting()?;
        if let Some(key) = evicted {
            self.offload(slot, key);
        }
        Some(slot)
    }

    /// Copies the block `key` in GPU slot `gpu` (just evicted) into the host tier.
    fn offload(&mut self, gpu: SlotId, key: BlockKey) {
        let Some(host) = self.host.as_mut() else {
            return;
        };
        if host.slots.contains(key.hash) {
            return;
        }
        // The tier's own LRU block makes room when it is full.
        let Some(h) = host.slots.allocate() else {
            return;
        };
        match local_copy(
            self.transport.as_mut(),
            Op::Write,
            &self.pool,
            gpu,
            &host.pool,
            h,
        ) {
            Ok(()) => {
                host.slots.publish(h, key);
                self.load.tiers.offloaded += 1;
            }
            Err(e) => eprintln!("disagg worker: offload of a block failed: {e}"),
        }
        host.slots.release(h);
    }

    /// True when the host tier holds `hash`.
    pub(crate) fn host_has(&self, hash: u64) -> bool {
        self.host.as_ref().is_some_and(|h| h.slots.contains(hash))
    }

    /// A GPU slot (referenced once, published) holding block `key` onboarded from the host
    /// tier and verified; `None` when the tier does not hold it or no GPU slot is free. A
    /// block whose bytes do not match is dropped from the tier and recomputed.
    pub(crate) fn onboard(&mut self, key: BlockKey) -> Option<SlotId> {
        let h = self.host.as_mut()?.slots.acquire_cached(key.hash)?;
        let Some(slot) = self.alloc_slot() else {
            self.host.as_mut()?.slots.release(h);
            return None;
        };
        let host = self.host.as_mut()?;
        let copied = local_copy(
            self.transport.as_mut(),
            Op::Read,
            &self.pool,
            slot,
            &host.pool,
            h,
        );
        let t = &mut self.load.tiers;
        if copied.is_ok() && self.pool.verify(slot as usize, key) {
            t.from_host += 1;
            t.verified += 1;
        } else {
            if let Err(e) = copied {
                eprintln!("disagg worker: onboarding a block failed: {e}");
            } else {
                t.verified += 1;
                t.host_corrupt += 1;
            }
            host.slots.forget(key.hash);
            self.pool.fill(slot as usize, key);
            t.recomputed += 1;
        }
        host.slots.release(h);
        self.slots.publish(slot, key);
        Some(slot)
    }
}
