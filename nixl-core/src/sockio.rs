//! Socket I/O shared by both listeners (control and metadata) and their clients:
//!
//! - [`Timed`]: every read and write of one request or frame runs under one deadline, so
//!   per-call timeouts never add up, and every write is a `sendmsg(MSG_NOSIGNAL)`, so a peer
//!   that closed never raises SIGPIPE in the host process;
//! - [`ConnSet`]: the served connections, capped, each removed (and its fd closed) when its
//!   thread ends, so churn leaks nothing;
//! - [`accept_loop`]: an accept error (EMFILE and the like) backs off and keeps accepting.

use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Slowest average rate a request may move at once its grace period (the timeout) is spent:
/// a peer trickling bytes to hold a connection is dropped, a merely slow network is not.
pub const MIN_RATE: u64 = 1 << 20;

/// The deadline of one request: it ends `timeout` after the last byte moved (a frozen peer is
/// found within the timeout), and no later than `timeout` plus one second per [`MIN_RATE`]
/// bytes moved since it began (a trickling peer is found too).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    timeout: Duration,
    start: Instant,
    last: Instant,
    moved: u64,
}

impl Clock {
    /// A deadline starting now.
    pub fn start(timeout: Duration) -> Clock {
        let now = Instant::now();
        Clock {
            timeout,
            start: now,
            last: now,
            moved: 0,
        }
    }

    /// Time left, or `TimedOut` once the deadline passed.
    pub fn remaining(&self) -> io::Result<Duration> {
        let by_rate = self.start
            + self.timeout
            + Duration::from_secs_f64(self.moved as f64 / MIN_RATE as f64);
        let deadline = by_rate.min(self.last + self.timeout);
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no progress within the {:?} peer timeout", self.timeout),
                )
            })
    }

    /// Records `n` bytes moved, the last of them at `at`.
    fn progress(&mut self, n: usize, at: Instant) {
        if n > 0 {
            self.last = self.last.max(at);
            self.moved += n as u64;
        }
    }
}

/// A TCP stream read and written under one [`Clock`]; writes never raise SIGPIPE.
pub struct Timed<'a> {
    stream: &'a TcpStream,
    clock: Clock,
}

impl<'a> Timed<'a> {
    /// `stream` under a fresh deadline of `timeout`.
    pub fn new(stream: &'a TcpStream, timeout: Duration) -> Timed<'a> {
        Timed::resume(stream, Clock::start(timeout))
    }

    /// `stream` under a deadline already running.
    pub fn resume(stream: &'a TcpStream, clock: Clock) -> Timed<'a> {
        Timed { stream, clock }
    }

    /// The deadline, to carry on with another stream.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The underlying stream.
    pub fn stream(&self) -> &TcpStream {
        self.stream
    }

    /// Runs one system call with the socket timeout set to the time left; a timeout that
    /// expired before the deadline (or EINTR) retries, one at the deadline is `TimedOut`.
    ///
    /// A blocking send returns short only when its timeout fires, having copied bytes at
    /// unknown times before: those count as moved when the call began (else a peer that froze
    /// mid-call would get a second timeout). Each send waits at most a quarter of the timeout,
    /// so a slow but steady peer still shows progress.
    fn call(
        &mut self,
        set: fn(&TcpStream, Option<Duration>) -> io::Result<()>,
        send_len: Option<usize>,
        mut op: impl FnMut(&TcpStream) -> io::Result<usize>,
    ) -> io::Result<usize> {
        loop {
            let mut left = self.clock.remaining()?;
            if send_len.is_some() {
                left = left.min(self.clock.timeout / 4);
            }
            set(self.stream, Some(left.max(Duration::from_millis(1))))?;
            let begun = Instant::now();
            match op(self.stream) {
                Ok(n) => {
                    let at = match send_len {
                        Some(asked) if n < asked => begun,
                        _ => Instant::now(),
                    };
                    self.clock.progress(n, at);
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Timed<'_> {
    /// One `readv` into raw ranges, under the deadline. The ranges are never turned into Rust
    /// references, so they may overlap (a peer's descriptors can).
    ///
    /// # Safety
    /// Every iovec must be valid for writes of its length for the duration of the call.
    pub unsafe fn readv_raw(&mut self, iov: &[libc::iovec]) -> io::Result<usize> {
        let count = iov.len().min(libc::c_int::MAX as usize) as libc::c_int;
        self.call(TcpStream::set_read_timeout, None, |s| {
            // SAFETY: the caller vouches for the ranges; `iov` lives through the call.
            let n = unsafe { libc::readv(s.as_raw_fd(), iov.as_ptr(), count) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    }

    /// One `sendmsg(MSG_NOSIGNAL)` from raw ranges, under the deadline. As with
    /// [`Timed::readv_raw`], the ranges are never turned into Rust references, so memory that
    /// other peers write meanwhile is read without a data race on a `&[u8]`.
    ///
    /// # Safety
    /// Every iovec must be valid for reads of its length for the duration of the call.
    pub unsafe fn writev_raw(&mut self, iov: &[libc::iovec]) -> io::Result<usize> {
        let asked = iov.iter().map(|v| v.iov_len).sum();
        self.call(TcpStream::set_write_timeout, Some(asked), |s| {
            // SAFETY: the caller vouches for the ranges; `iov` lives through the call.
            unsafe { sendmsg_nosignal(s, iov.as_ptr(), iov.len()) }
        })
    }
}

impl Read for Timed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.call(TcpStream::set_read_timeout, None, |mut s| s.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.call(TcpStream::set_read_timeout, None, |mut s| {
            s.read_vectored(bufs)
        })
    }
}

impl Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let asked = bufs.iter().map(|b| b.len()).sum();
        self.call(TcpStream::set_write_timeout, Some(asked), |s| {
            send_nosignal(s, bufs)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `sendmsg` with `MSG_NOSIGNAL`: a closed peer is `EPIPE`, never SIGPIPE (`writev`, which
/// `TcpStream::write_vectored` uses, raises it).
pub fn send_nosignal(stream: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // IoSlice is ABI-compatible with iovec on Unix; sendmsg only reads through the pointer.
    // SAFETY: `bufs` are valid for reads for the duration of the call.
    unsafe { sendmsg_nosignal(stream, bufs.as_ptr().cast::<libc::iovec>(), bufs.len()) }
}

/// `sendmsg(MSG_NOSIGNAL)` of `count` iovecs at `iov`.
///
/// # Safety
/// `iov` must point at `count` iovecs, each valid for reads of its length during the call.
unsafe fn sendmsg_nosignal(
    stream: &TcpStream,
    iov: *const libc::iovec,
    count: usize,
) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid (no address, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.cast_mut();
    msg.msg_iovlen = count.min(libc::c_int::MAX as usize) as _;
    // SAFETY: `msg` points at the caller's iovecs, valid for reads during the call.
    let n = unsafe { libc::sendmsg(stream.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Blocks SIGPIPE in the calling thread, for threads whose socket writes this crate does not
/// issue itself (etcd's gRPC client): a write to a closed socket then fails with EPIPE and the
/// signal stays pending in that thread instead of killing the host process.
#[cfg_attr(not(feature = "etcd"), allow(dead_code))]
pub fn block_sigpipe() {
    // SAFETY: plain signal-mask calls on this thread with a valid set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Blocks until `stream` has a byte to read (no deadline: an idle connection may stay open).
/// Returns false at end of stream.
pub fn wait_readable(stream: &TcpStream) -> io::Result<bool> {
    stream.set_read_timeout(None)?;
    let mut byte = [0u8; 1];
    loop {
        match stream.peek(&mut byte) {
            Ok(n) => return Ok(n > 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The connections a listener serves: at most `cap` at once, each tracked (for shutdown)
/// only while its thread runs.
pub struct ConnSet {
    cap: usize,
    state: Mutex<ConnState>,
    drained: Condvar,
}

#[derive(Default)]
struct ConnState {
    next: u64,
    closing: bool,
    live: HashMap<u64, TcpStream>,
}

/// A served connection's place in its [`ConnSet`], released when dropped.
pub struct ConnGuard {
    set: Arc<ConnSet>,
    id: u64,
}

impl ConnSet {
    /// A set of at most `cap` connections.
    pub fn new(cap: usize) -> Arc<ConnSet> {
        Arc::new(ConnSet {
            cap,
            state: Mutex::default(),
            drained: Condvar::new(),
        })
    }

    /// Takes a place for `stream`; `None` when the set is full or closing (the caller drops
    /// the connection).
    pub fn admit(self: &Arc<Self>, stream: &TcpStream) -> Option<ConnGuard> {
        let mut state = self.state.lock();
        if state.closing || state.live.len() >= self.cap {
            return None;
        }
        let clone = stream.try_clone().ok()?;
        let id = state.next;
        state.next += 1;
        state.live.insert(id, clone);
        Some(ConnGuard {
            set: self.clone(),
            id,
        })
    }

    /// How many connections are served now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.state.lock().live.len()
    }

    /// Whether none is served now.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses new connections, shuts down the open ones and waits for their threads.
    pub fn close_all(&self) {
        let mut state = self.state.lock();
        state.closing = true;
        for s in state.live.values() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        while !state.live.is_empty() {
            self.drained.wait(&mut state);
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut state = self.set.state.lock();
        state.live.remove(&self.id);
        if state.live.is_empty() {
            self.set.drained.notify_all();
        }
    }
}

/// Accepts until `stop()` says so, handing each connection to `serve`. A failed accept never
/// ends the loop: out of descriptors or memory it backs off (up to half a second) and retries,
/// so the port stays open and pending peers are served once resources free up.
pub fn accept_loop(
    listener: &TcpListener,
    what: &str,
    stop: impl Fn() -> bool,
    mut serve: impl FnMut(TcpStream),
) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = listener.accept();
        if stop() {
            return;
        }
        match accepted {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(5);
                serve(stream);
            }
            Err(e) => {
                let scarce = matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                );
                if scarce {
                    if backoff == Duration::from_millis(5) {
                        log::warn!("{what}: accept failed ({e}); retrying with back-off");
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                } else if e.kind() != io::ErrorKind::Interrupted {
                    // ECONNABORTED and the like concern one peer; EINVAL is shutdown racing us.
                    log::debug!("{what}: accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        (c, l.accept().unwrap().0)
    }

    /// Whether SIGPIPE became pending for this thread while `f` ran with it blocked.
    fn raises_sigpipe(f: impl FnOnce()) -> bool {
        // SAFETY: plain signal-mask calls on this thread with valid sets.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGPIPE);
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            f();
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigpending(&mut pending);
            let raised = libc::sigismember(&pending, libc::SIGPIPE) == 1;
            if raised {
                let zero = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                libc::sigtimedwait(&set, std::ptr::null_mut(), &zero);
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            raised
        }
    }

    #[test]
    fn writes_to_a_closed_socket_fail_without_sigpipe() {
        // Control: a plain writev to a socket shut for writing raises SIGPIPE.
        let (c, _s) = pair();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(raises_sigpipe(|| {
            assert!((&c).write_vectored(&[IoSlice::new(b"x")]).is_err());
        }));
        let (c, _s) = pair();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(!raises_sigpipe(|| {
            let mut t = Timed::new(&c, Duration::from_secs(1));
            let e = t.write_all(b"hello").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        }));
    }

    #[test]
    fn a_trickle_does_not_extend_the_deadline_forever() {
        let (c, s) = pair();
        let writer = std::thread::spawn(move || {
            for _ in 0..40 {
                if (&c).write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let start = Instant::now();
        let mut t = Timed::new(&s, Duration::from_millis(500));
        let mut buf = [0u8; 64];
        let e = t.read_exact(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        // Progress every 100 ms, yet the frame's deadline held (generous bound: 4 s of trickle).
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        drop(s);
        writer.join().unwrap();
    }

    #[test]
    fn conn_set_caps_and_forgets_closed_connections() {
        let set = ConnSet::new(2);
        let (a, _x) = pair();
        let (b, _y) = pair();
        let (c, _z) = pair();
        let ga = set.admit(&a).unwrap();
        let gb = set.admit(&b).unwrap();
        assert!(set.admit(&c).is_none(), "over the cap");
        drop(ga);
        assert_eq!(set.len(), 1);
        let gc = set.admit(&c).unwrap();
        drop((gb, gc));
        assert!(set.is_empty());
        set.close_all();
        assert!(set.admit(&a).is_none(), "closing");
    }
}
