//! Same-host transfers by cross-memory attach (`process_vm_readv` / `process_vm_writev`):
//! one copy, no target involvement, up to IOV_MAX descriptors per system call.

use crate::backend::ResolvedDesc;
use crate::status::{Result, err};
use crate::types::XferOp;

const IOV_MAX: usize = 1024;

/// Outcome of a failed cross-memory-attach call.
pub enum CmaError {
    /// The kernel refuses attach (ptrace policy, different user): fall back to TCP.
    NotPermitted,
    /// Anything else, as a NIXL error.
    Failed(crate::status::NixlError),
}

/// Moves every pair between this process and `pid`. Stops early (returning Ok) if `stop`
/// says so between batches.
pub fn transfer(
    pid: i32,
    op: XferOp,
    local: &[ResolvedDesc],
    remote: &[ResolvedDesc],
    stop: &dyn Fn() -> bool,
) -> std::result::Result<(), CmaError> {
    let mut liov: Vec<libc::iovec> = Vec::with_capacity(IOV_MAX.min(local.len()));
    let mut riov: Vec<libc::iovec> = Vec::with_capacity(IOV_MAX.min(local.len()));
    for (lchunk, rchunk) in local.chunks(IOV_MAX).zip(remote.chunks(IOV_MAX)) {
        if stop() {
            return Ok(());
        }
        liov.clear();
        riov.clear();
        liov.extend(lchunk.iter().map(iov));
        riov.extend(rchunk.iter().map(iov));
        batch(pid, op, &mut liov, &mut riov)?;
    }
    Ok(())
}

fn iov(d: &ResolvedDesc) -> libc::iovec {
    libc::iovec {
        iov_base: d.addr as *mut libc::c_void,
        iov_len: d.len as usize,
    }
}

/// One batch; on a partial transfer, resumes after the bytes already moved.
fn batch(
    pid: i32,
    op: XferOp,
    liov: &mut [libc::iovec],
    riov: &mut [libc::iovec],
) -> std::result::Result<(), CmaError> {
    let mut start = 0;
    while start < liov.len() {
        let (l, r) = (&liov[start..], &riov[start..]);
        let want: usize = l.iter().map(|v| v.iov_len).sum();
        // SAFETY: the iovecs describe registered local memory and the peer's registered
        // memory (as published in its metadata); the kernel checks the peer side itself.
        let n = unsafe {
            match op {
                XferOp::Write => libc::process_vm_writev(
                    pid,
                    l.as_ptr(),
                    l.len() as _,
                    r.as_ptr(),
                    r.len() as _,
                    0,
                ),
                XferOp::Read => libc::process_vm_readv(
                    pid,
                    l.as_ptr(),
                    l.len() as _,
                    r.as_ptr(),
                    r.len() as _,
                    0,
                ),
            }
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => CmaError::NotPermitted,
                Some(libc::ESRCH) => {
                    CmaError::Failed(err!(RemoteDisconnect, "peer process {pid} is gone"))
                }
                _ => CmaError::Failed(err!(
                    Backend,
                    "cross-memory attach to process {pid} failed: {e}"
                )),
            });
        }
        let n = n as usize;
        if n == want {
            return Ok(());
        }
        if n == 0 {
            return Err(CmaError::Failed(err!(
                Backend,
                "cross-memory attach to process {pid} made no progress"
            )));
        }
        // Skip the fully moved pairs and trim the partly moved one on both sides.
        let mut left = n;
        while left >= liov[start].iov_len {
            left -= liov[start].iov_len;
            start += 1;
        }
        for v in [&mut liov[start], &mut riov[start]] {
            v.iov_base = (v.iov_base as usize + left) as *mut libc::c_void;
            v.iov_len -= left;
        }
    }
    Ok(())
}

/// Whether the process behind `pidfd` has exited (so its pid may be reused).
pub fn pidfd_exited(pidfd: &std::os::fd::OwnedFd) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
    rc != 0
}

/// Opens a pidfd for `pid` after checking it is the process that published `start_time`.
pub fn open_pidfd(pid: u32, start_time: u64) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if super::identity::start_time(pid) != Some(start_time) {
        return Err(err!(
            RemoteDisconnect,
            "process {pid} is not the peer that published this metadata"
        ));
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as i32;
    if fd < 0 {
        return Err(err!(
            RemoteDisconnect,
            "cannot open process {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` is a fresh descriptor we now own.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // Re-check after opening: the pid could have been reused in between.
    if super::identity::start_time(pid) != Some(start_time) {
        return Err(err!(
            RemoteDisconnect,
            "process {pid} exited while connecting"
        ));
    }
    Ok(owned)
}
