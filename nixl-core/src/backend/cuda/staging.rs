//! Pinned host staging buffers and the chunked pipeline that moves VRAM through them to or from
//! anything the host can reach (a TCP peer, another process by cross-memory attach, a file).
//!
//! Two buffers alternate: while one chunk crosses the host leg, the next one is copied on the
//! device stream, so the device copy and the host I/O overlap.

use parking_lot::Mutex;

use cudarc::driver::sys;

use super::driver::check;
use super::stream::{Event, Stream};
use crate::backend::ResolvedDesc;
use crate::status::{Result, err};

/// Bytes per staging buffer (one pipeline chunk).
pub const CHUNK: u64 = 8 << 20;
/// Idle buffers kept for reuse.
const KEEP: usize = 16;

static IDLE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// A pinned (page-locked, portable) host buffer of [`CHUNK`] bytes, pooled.
pub struct Pinned {
    addr: usize,
}

impl Pinned {
    /// Takes a buffer from the pool or allocates one; a CUDA context must be current.
    pub fn take() -> Result<Pinned> {
        if let Some(addr) = IDLE.lock().pop() {
            return Ok(Pinned { addr });
        }
        let mut p: *mut std::ffi::c_void = std::ptr::null_mut();
        check(
            // SAFETY: valid out-pointer; PORTABLE makes it pinned for every context.
            unsafe { sys::cuMemHostAlloc(&mut p, CHUNK as usize, sys::CU_MEMHOSTALLOC_PORTABLE) },
            "cuMemHostAlloc",
        )?;
        Ok(Pinned { addr: p as usize })
    }

    /// Its address.
    pub fn addr(&self) -> u64 {
        self.addr as u64
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let mut idle = IDLE.lock();
        if idle.len() < KEEP {
            idle.push(self.addr);
        } else {
            drop(idle);
            // SAFETY: allocated by cuMemHostAlloc and no longer referenced.
            unsafe { sys::cuMemFreeHost(self.addr as *mut std::ffi::c_void) };
        }
    }
}

/// One chunk of a staged job: pieces of VRAM and their host-side partners, packed into one
/// staging buffer at increasing offsets.
#[derive(Default)]
struct Batch {
    /// (VRAM address, offset in the staging buffer, length)
    vram: Vec<(u64, u64, u64)>,
    /// Host-side partners, same order and lengths.
    other: Vec<ResolvedDesc>,
    bytes: u64,
}

/// Packs pairs into batches of at most `chunk` bytes, cutting large descriptors.
fn batches(vram: &[ResolvedDesc], other: &[ResolvedDesc], chunk: u64) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut cur = Batch::default();
    for (v, o) in vram.iter().zip(other) {
        let mut off = 0;
        while off < v.len {
            let take = (v.len - off).min(chunk - cur.bytes);
            cur.vram.push((v.addr + off, cur.bytes, take));
            cur.other.push(ResolvedDesc {
                addr: o.addr + off,
                len: take,
                ..*o
            });
            cur.bytes += take;
            off += take;
            if cur.bytes == chunk {
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if cur.bytes > 0 {
        out.push(cur);
    }
    out
}

/// Staged descriptors for a batch in `buf` (local, unregistered: only this process uses them).
fn staged(batch: &Batch, buf: &Pinned) -> Vec<ResolvedDesc> {
    batch
        .vram
        .iter()
        .map(|&(_, off, len)| ResolvedDesc {
            addr: buf.addr() + off,
            len,
            dev_id: 0,
            key: 0,
        })
        .collect()
}

/// The host leg of one chunk: staged buffer pieces and their partners, pairwise.
pub type HostLeg<'a> = dyn FnMut(&[ResolvedDesc], &[ResolvedDesc]) -> Result<()> + 'a;

/// Copies VRAM (`vram`, on GPU `dev_id`) out through staging; `sink` receives each staged
/// chunk with its partners and must consume it before returning. Stops with CANCELED when
/// `stop` says so between chunks.
///
/// # Safety
/// Every `vram` descriptor must be live device memory registered by this process.
pub unsafe fn vram_to_host(
    dev_id: u64,
    vram: &[ResolvedDesc],
    other: &[ResolvedDesc],
    sink: &mut HostLeg<'_>,
    stop: &dyn Fn() -> bool,
) -> Result<()> {
    super::context::bind(dev_id)?;
    let bufs = [Pinned::take()?, Pinned::take()?];
    let events = [Event::take(dev_id)?, Event::take(dev_id)?];
    // Declared last, so dropped first: its drop waits for queued copies, so on an early error
    // no copy can still touch the buffers once they are back in the pool.
    let stream = Stream::take(dev_id)?;
    let plan = batches(vram, other, CHUNK);
    let mut prev: Option<usize> = None;
    for (i, batch) in plan.iter().enumerate() {
        if stop() {
            return Err(err!(Canceled, "the request was released"));
        }
        let slot = i % 2;
        for &(src, off, len) in &batch.vram {
            // SAFETY: `src` is live registered VRAM (caller); the buffer is ours and idle (its
            // previous chunk was consumed by `sink` before this iteration).
            unsafe { stream.copy(bufs[slot].addr() + off, src, len)? };
        }
        stream.record(&events[slot])?;
        if let Some(p) = prev {
            events[p % 2].sync()?;
            sink(&staged(&plan[p], &bufs[p % 2]), &plan[p].other)?;
        }
        prev = Some(i);
    }
    if let Some(p) = prev {
        events[p % 2].sync()?;
        sink(&staged(&plan[p], &bufs[p % 2]), &plan[p].other)?;
    }
    Ok(())
}

/// Copies into VRAM through staging: `source` fills each staged chunk from its partners, then
/// the chunk is copied to the device while the next one is filled. Returns once every copy has
/// completed on the device.
///
/// # Safety
/// Every `vram` descriptor must be live device memory registered by this process, writable by
/// this transfer.
pub unsafe fn host_to_vram(
    dev_id: u64,
    vram: &[ResolvedDesc],
    other: &[ResolvedDesc],
    source: &mut HostLeg<'_>,
    stop: &dyn Fn() -> bool,
) -> Result<()> {
    super::context::bind(dev_id)?;
    let bufs = [Pinned::take()?, Pinned::take()?];
    let events = [Event::take(dev_id)?, Event::take(dev_id)?];
    // Declared last, so dropped first: its drop waits for queued copies, so on an early error
    // no copy can still touch the buffers once they are back in the pool.
    let stream = Stream::take(dev_id)?;
    for (i, batch) in batches(vram, other, CHUNK).iter().enumerate() {
        if stop() {
            stream.sync()?;
            return Err(err!(Canceled, "the request was released"));
        }
        let slot = i % 2;
        // The buffer's previous chunk must have left for the device before it is refilled.
        events[slot].sync()?;
        source(&staged(batch, &bufs[slot]), &batch.other)?;
        for &(dst, off, len) in &batch.vram {
            // SAFETY: `dst` is live, writable registered VRAM (caller); the buffer was just
            // filled and is not touched again before its event completes.
            unsafe { stream.copy(dst, bufs[slot].addr() + off, len)? };
        }
        stream.record(&events[slot])?;
    }
    stream.sync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_pack_small_and_cut_large_descriptors() {
        let d = |addr, len| ResolvedDesc {
            addr,
            len,
            dev_id: 0,
            key: 9,
        };
        let vram = [d(0x1000, 10), d(0x2000, 25), d(0x9000, 3)];
        let other = [d(100, 10), d(200, 25), d(900, 3)];
        let plan = batches(&vram, &other, 16);
        let sizes: Vec<u64> = plan.iter().map(|b| b.bytes).collect();
        assert_eq!(sizes, vec![16, 16, 6]);
        // The first chunk holds all of the first pair and 6 bytes of the second.
        assert_eq!(plan[0].vram, vec![(0x1000, 0, 10), (0x2000, 10, 6)]);
        assert_eq!(plan[0].other[1].addr, 200);
        assert_eq!(plan[1].vram, vec![(0x2006, 0, 16)]);
        assert_eq!(plan[1].other[0].addr, 206);
        assert_eq!(plan[2].vram, vec![(0x2016, 0, 3), (0x9000, 3, 3)]);
        assert!(plan.iter().all(|b| b.other.iter().all(|o| o.key == 9)));
        let total: u64 = plan.iter().flat_map(|b| b.vram.iter().map(|v| v.2)).sum();
        assert_eq!(total, 38);
    }
}
