//! VRAM: registration checks, CUDA IPC publication and opening, and device copies, through the
//! CUDA driver loaded at run time ([cudarc] with dynamic loading; no toolkit needed to build).
//!
//! This module is not a plugin of its own: NIXL users register VRAM with `"UCX"` (our network
//! backend) and `"POSIX"`, which delegate everything VRAM to the functions here. Without a
//! driver library, or with a driver that sees no device, every entry point returns a
//! NOT_SUPPORTED error with a message and never panics (see [`driver`]).
//!
//! Layout, one job per module: [`driver`] (loading and the guard, error mapping), [`context`]
//! (primary context per device, peer access), [`pointer`](mod@pointer) (pointer attributes and chunks),
//! [`ipc`] (published handles, opened mappings), [`stream`] (dedicated streams, events),
//! [`vmm`] (VMM allocations shared as file descriptors), [`staging`] (pinned buffers, chunked
//! pipeline), [`file`](mod@file) (VRAM <-> FILE for POSIX), [`mem`] (device allocations for tests and
//! benchmarks).
//!
//! Notifications are the callers' business: every function here returns only once its copies
//! have completed on the device, so a notification sent afterwards follows the data, except
//! [`queue_pairs`], whose caller waits (on an event of [`stream`]) before notifying.

pub mod context;
pub mod driver;
pub mod file;
pub mod ipc;
pub mod mem;
pub mod pointer;
pub mod staging;
pub mod stream;
pub mod vmm;

use crate::backend::ResolvedDesc;
use crate::registry::Region;
use crate::status::Result;
use crate::types::XferOp;

pub use driver::available;

/// Checks a new VRAM registration with the driver: device memory of the named GPU, mapped over
/// its whole length, possibly across several allocations. Host memory is INVALID_PARAM.
pub fn check(region: &Region) -> Result<Vec<pointer::Chunk>> {
    let d = region.desc;
    pointer::device_chunks(d.addr, d.len, d.dev_id)
}

/// [`check`]s a new VRAM registration and returns what peers in other processes need to map
/// it ([`ipc`] format), with the descriptors it names (keep them as long as the registration).
pub fn register(region: &Region) -> Result<ipc::Export> {
    let chunks = check(region)?;
    Ok(ipc::export(region.desc.dev_id as u32, &chunks))
}

/// Copies pairs whose addresses are all usable in this process (local VRAM or DRAM, memory of
/// agents in this process, IPC-mapped remote VRAM): WRITE local → remote, READ remote → local,
/// asynchronously on one stream of GPU `dev_id`, and returns once the copies have completed on
/// the device.
///
/// # Safety
/// Every range must be live memory this transfer may read (sources) or write (destinations).
pub unsafe fn copy_pairs(
    dev_id: u64,
    op: XferOp,
    local: &[ResolvedDesc],
    remote: &[(u64, u64)],
) -> Result<()> {
    let s = stream::Stream::take(dev_id)?;
    // SAFETY: forwarded from the caller; synchronized below, before the ranges may go.
    unsafe { queue_pairs(&s, op, local, remote)? };
    s.sync()
}

/// Queues the copies of [`copy_pairs`] on `stream` without waiting for them; `remote` holds
/// the addresses of the remote side, in order, in pieces that line up with `local`.
///
/// # Safety
/// Every range must be live memory this transfer may read (sources) or write (destinations),
/// and stay so until the stream has been synchronized.
pub unsafe fn queue_pairs(
    stream: &stream::Stream,
    op: XferOp,
    local: &[ResolvedDesc],
    remote: &[(u64, u64)],
) -> Result<()> {
    let mut remote_at = remote.iter();
    for l in local {
        let mut off = 0;
        while off < l.len {
            let Some(&(r, len)) = remote_at.next() else {
                return Err(crate::status::err!(
                    Backend,
                    "remote pieces do not add up to the local descriptors"
                ));
            };
            if off + len > l.len {
                return Err(crate::status::err!(
                    Backend,
                    "remote pieces do not line up with the local descriptors"
                ));
            }
            let (src, dst) = match op {
                XferOp::Write => (l.addr + off, r),
                XferOp::Read => (r, l.addr + off),
            };
            // SAFETY: both ranges are live and accessible (caller).
            unsafe { stream.copy(dst, src, len)? };
            off += len;
        }
    }
    Ok(())
}

/// Enables direct access from GPU `from` to GPU `to` where the hardware allows (no-op for
/// the same device); errors only if the driver fails.
pub fn prepare_peer(from: u64, to: u64) -> Result<()> {
    let (a, b) = (context::ordinal(from)?, context::ordinal(to)?);
    context::enable_peer(a, b).map(|_| ())
}

#[cfg(test)]
mod tests;
