//! Raw views of registered memory. Registering memory is the caller's promise that it stays
//! valid until deregistered (see `Agent::register_mem`); every function here relies on it.

use crate::backend::{ResolvedDesc, XferJob};
use crate::types::XferOp;

/// The bytes of a registered descriptor.
///
/// # Safety
/// `d` must lie inside memory registered with this process's agent and still valid.
pub unsafe fn bytes<'a>(d: &ResolvedDesc) -> &'a [u8] {
    // SAFETY: guaranteed by the caller (registered, live memory).
    unsafe { std::slice::from_raw_parts(d.addr as *const u8, d.len as usize) }
}

/// The bytes of a registered descriptor, writable.
///
/// # Safety
/// As [`bytes`], and nothing else may access the range for the borrow's lifetime.
pub unsafe fn bytes_mut<'a>(d: &ResolvedDesc) -> &'a mut [u8] {
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts_mut(d.addr as *mut u8, d.len as usize) }
}

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
