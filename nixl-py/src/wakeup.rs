//! Wakes an asyncio loop from any thread without the GIL: a waker writes one byte to a Unix
//! socket whose other end the loop watches (`loop.add_reader`). The sockets belong to the
//! native agent, so a waker that outlives the loop never writes into a reused descriptor.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::task::{Wake, Waker};

/// The two ends: the loop reads `rx`, wakers write `tx`.
pub struct Wakeup {
    rx: OwnedFd,
    tx: Arc<OwnedFd>,
}

struct ByteWaker(Arc<OwnedFd>);

impl Wake for ByteWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let byte = 1u8;
        // SAFETY: `tx` is an open socket owned by this waker (shared); the buffer is one valid
        // byte. Non-blocking and no SIGPIPE: a full buffer already holds a wake-up, and a
        // closed reader has nobody left to wake.
        unsafe {
            libc::send(
                self.0.as_raw_fd(),
                (&byte as *const u8).cast(),
                1,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            );
        }
    }
}

impl Wakeup {
    /// A new pair of connected, non-blocking sockets.
    pub fn new() -> std::io::Result<Wakeup> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors socketpair writes.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: socketpair succeeded, so both descriptors are open and owned by us alone.
        let (rx, tx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Wakeup {
            rx,
            tx: Arc::new(tx),
        })
    }

    /// The descriptor the loop watches; readable after a wake-up.
    pub fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    /// A waker that makes `fd` readable.
    pub fn waker(&self) -> Waker {
        Waker::from(Arc::new(ByteWaker(self.tx.clone())))
    }
}
