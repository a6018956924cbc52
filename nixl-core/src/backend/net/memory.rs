//! Access to registered memory. Registering memory is the caller's promise that it stays
//! valid until deregistered (see `Agent::register_mem`); every function here relies on it.
//!
//! The contract for every path that moves bytes (here, `proto::read_exact_descs` /
//! `write_all_descs` for TCP, `cma`, `shm`, the CUDA staging): registered memory is only ever
//! touched through raw addresses (`ptr::copy`, iovecs handed to the kernel), never through a
//! `&[u8]` or `&mut [u8]`. Overlapping descriptors are therefore *allowed*, not rejected:
//! NIXL accepts them and a peer may send them. Each byte of an overlap ends up from one of the
//! overlapping sources (in descriptor order on one thread; a transfer split across threads
//! promises no order), and no aliasing reference is ever formed. Likewise memory
//! that peers write while it is read (a READ served during another peer's WRITE) is a race in
//! the data the application sees, as in NIXL, but never a Rust reference to mutating memory.

use crate::backend::{ResolvedDesc, XferJob};
use crate::types::XferOp;

/// Copies each pair within this process: WRITE local → remote, READ remote → local.
///
/// # Safety
/// Both sides must be registered, live memory (the target's checked by its access table).
pub unsafe fn copy_pairs(op: XferOp, local: &[ResolvedDesc], remote: &[ResolvedDesc]) {
    for (l, r) in local.iter().zip(remote) {
        let (src, dst) = match op {
            XferOp::Write => (l.addr, r.addr),
            XferOp::Read => (r.addr, l.addr),
        };
        // SAFETY: both ranges are registered and live (caller); `copy` tolerates overlap,
        // which loopback transfers within one region may have.
        unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, l.len as usize) };
    }
}

/// Splits a job's pairs into at most `parts` runs of roughly equal bytes, each at least
/// `min_bytes`; descriptors larger than a share are cut so big single transfers parallelize.
pub fn split(
    job: &XferJob,
    parts: usize,
    min_bytes: u64,
) -> Vec<(Vec<ResolvedDesc>, Vec<ResolvedDesc>)> {
    let parts = (job.total_bytes / min_bytes.max(1)).clamp(1, parts.max(1) as u64);
    let share = job.total_bytes.div_ceil(parts);
    let mut out = Vec::with_capacity(parts as usize);
    let (mut l_run, mut r_run, mut run_bytes) = (Vec::new(), Vec::new(), 0u64);
    for (l, r) in job.local.iter().zip(job.remote.iter()) {
        let mut off = 0;
        while off < l.len {
            let take = (l.len - off).min(share - run_bytes);
            l_run.push(ResolvedDesc {
                addr: l.addr + off,
                len: take,
                ..*l
            });
            r_run.push(ResolvedDesc {
                addr: r.addr + off,
                len: take,
                ..*r
            });
            off += take;
            run_bytes += take;
            if run_bytes == share {
                out.push((std::mem::take(&mut l_run), std::mem::take(&mut r_run)));
                run_bytes = 0;
            }
        }
    }
    if !l_run.is_empty() {
        out.push((l_run, r_run));
    }
    out
}
