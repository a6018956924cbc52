//! Operations in flight and the thread that completes them.
//!
//! Every posted operation carries a heap context whose first bytes are scratch space for
//! providers that ask for `FI_CONTEXT`/`FI_CONTEXT2`; the completion queue hands it back, and
//! the progress thread — asleep in `fi_cq_sread` while nothing happens — finishes the
//! transfer, sends its notification and re-posts receive buffers.

use parking_lot::{Condvar, Mutex};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::sys;
use super::{Lane, Shared};
use crate::backend::Completion;
use crate::status::{NixlError, Result, err};

/// A local registration and the operations still using it.
pub struct LocalMr {
    /// The provider's registration (None once closed).
    pub reg: Mutex<Option<super::ep::MemReg>>,
    /// Provider key.
    pub key: u64,
    /// Start of the registered range (loopback RMAs address it by offset where the provider
    /// does not use virtual addresses).
    pub base: u64,
    /// Local descriptor.
    pub desc: usize,
    /// Operations posted on it that the provider has not returned yet.
    pub inflight: AtomicUsize,
}

/// A peer's address vector entries (one per local endpoint), re-made after its connection
/// broke (connection-based providers such as `tcp;ofi_rxm` drop the connection when the target
/// refuses an access).
pub struct PeerLink {
    /// Current handle of the peer in each local endpoint's address vector (index: lane).
    pub addrs: Vec<AtomicU64>,
    /// The peer's endpoint addresses; its first one receives notifications.
    pub raws: Vec<Vec<u8>>,
    /// An operation to it failed as if disconnected: re-insert before the next post.
    pub broken: AtomicBool,
}

impl PeerLink {
    /// The peer endpoint local lane `lane` talks to (lanes wrap around the peer's endpoints).
    pub fn raw_for(&self, lane: usize) -> &[u8] {
        &self.raws[lane % self.raws.len()]
    }

    /// Removes the peer's entries from the address vectors, each once: a removed table index
    /// may be handed to the next peer inserted, so it must never be removed twice. Returns
    /// whether this call removed any.
    pub fn remove_from(&self, lanes: &[Lane]) -> bool {
        let mut removed = false;
        for (addr, lane) in self.addrs.iter().zip(lanes) {
            let old = addr.swap(sys::FI_ADDR_NOTAVAIL, Ordering::AcqRel);
            if old != sys::FI_ADDR_NOTAVAIL {
                lane.ep.av_remove(old);
                removed = true;
            }
        }
        removed
    }
}

/// One posted transfer.
pub struct Xfer {
    /// Operations (and the poster's guard) not finished yet.
    pub remaining: AtomicUsize,
    error: Mutex<Option<NixlError>>,
    /// The user's request.
    pub completion: Arc<Completion>,
    /// Sent to the peer once every operation succeeded.
    pub notif: Option<Vec<u8>>,
    /// Peer address for the notification (in the first lane's address vector).
    pub peer: sys::fi_addr_t,
    /// The peer's link (None: loopback), marked broken by disconnect-class errors.
    link: Option<Arc<PeerLink>>,
    /// Milliseconds since `epoch` of the last completion seen (peer timeout).
    last_progress: AtomicU64,
    epoch: Instant,
    timeout: Duration,
    /// The user's status was already set (timed out): later outcomes only release memory.
    reported: AtomicBool,
    /// The request's `enter` was matched by a `leave` (at most once).
    left: AtomicBool,
    /// The backend's count of unfinished transfers, this one included until `leave`.
    outstanding: Arc<AtomicUsize>,
}

impl Xfer {
    /// A transfer about to post operations.
    pub fn new(
        shared: &Shared,
        completion: Arc<Completion>,
        notif: Option<Vec<u8>>,
        peer: sys::fi_addr_t,
        link: Option<Arc<PeerLink>>,
    ) -> Xfer {
        Xfer {
            remaining: AtomicUsize::new(1),
            error: Mutex::new(None),
            completion,
            notif,
            peer,
            link,
            last_progress: AtomicU64::new(0),
            epoch: Instant::now(),
            timeout: shared.peer_timeout,
            reported: AtomicBool::new(false),
            left: AtomicBool::new(false),
            outstanding: {
                shared.outstanding.fetch_add(1, Ordering::AcqRel);
                shared.outstanding.clone()
            },
        }
    }

    fn fail(&self, e: NixlError) {
        let mut slot = self.error.lock();
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    /// Records one operation's end; the last one finishes the transfer.
    pub fn op_done(self: &Arc<Self>, shared: &Shared, result: Result<()>) {
        if let Err(e) = result {
            if e.status() == crate::status::Status::RemoteDisconnect
                && let Some(link) = &self.link
            {
                link.broken.store(true, Ordering::Release);
            }
            self.fail(e);
        }
        self.last_progress
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_ops_done(shared);
        }
    }

    fn all_ops_done(self: &Arc<Self>, shared: &Shared) {
        // Nothing of the provider touches the request's memory any more.
        self.leave();
        let outcome = match self.error.lock().take() {
            Some(e) => Err(e),
            None if self.completion.is_canceled() => {
                Err(err!(Canceled, "the request was released"))
            }
            None => Ok(()),
        };
        match (outcome, &self.notif) {
            (Ok(()), Some(msg)) => {
                let done = Done::Xfer(self.clone());
                let dest = self.link.as_ref().map(|l| &l.raws[0][..]);
                if let Err(e) = shared.send_msg(self.peer, dest, msg, done) {
                    self.report(Err(e));
                }
            }
            (outcome, _) => self.report(outcome),
        }
    }

    fn leave(&self) {
        if !self.left.swap(true, Ordering::AcqRel) {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
            self.completion.leave();
        }
    }

    /// Sets the user's status, once.
    pub fn report(&self, outcome: Result<()>) {
        if !self.reported.swap(true, Ordering::AcqRel) {
            self.completion.finish_part(outcome);
        }
    }

    /// Operations outstanding and no completion within the peer timeout.
    fn is_stalled(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.remaining.load(Ordering::Acquire) > 0
            && now.saturating_sub(self.last_progress.load(Ordering::Relaxed))
                > self.timeout.as_millis() as u64
    }

    /// Reports REMOTE_DISCONNECT if no completion came within the peer timeout while
    /// operations are outstanding (the operations stay counted until the provider returns
    /// them). Run by the progress thread and by every user poll, since some providers' blocking
    /// reads (shm in libfabric 1.17) do not return on their timeout.
    pub fn check_stall(&self, provider: &str) {
        if !self.reported.load(Ordering::Acquire) && self.is_stalled() {
            log::warn!(
                "LIBFABRIC: no completion from the peer in {:?}; reporting REMOTE_DISCONNECT",
                self.timeout
            );
            self.report(Err(err!(
                RemoteDisconnect,
                "no completion from the peer within the peer timeout ({:?}) on {provider}",
                self.timeout
            )));
            // Let release return: some providers never hand back an operation to a dead peer
            // (shm in libfabric 1.17). The registrations involved keep the operations counted,
            // so deregistering them still waits for the provider.
            self.leave();
        }
    }
}

/// What to do when a message send completes.
pub enum Done {
    /// A transfer's notification: completes the transfer.
    Xfer(Arc<Xfer>),
    /// A standalone notification: wakes its sender.
    Waiter(crossbeam_channel::Sender<Result<()>>),
}

/// What an operation was.
pub enum OpKind {
    /// One RMA of a transfer, on a local registration, posted on a lane (index).
    Rma(Arc<Xfer>, Arc<LocalMr>, usize),
    /// A message send: its buffer (and registration where the provider needs one).
    Send(Vec<u8>, Option<super::ep::MemReg>, Done),
    /// A posted receive buffer (index into the receive slab); never freed while running.
    Recv(usize),
}

/// An operation's context as the provider sees it.
#[repr(C)]
pub struct OpCtx {
    /// Provider scratch (`struct fi_context2`), first as the mode bits require.
    scratch: [usize; 8],
    /// What the operation was.
    pub kind: OpKind,
}

impl OpCtx {
    /// A heap context for a one-shot operation.
    pub fn boxed(kind: OpKind) -> *mut c_void {
        Box::into_raw(Box::new(OpCtx {
            scratch: [0; 8],
            kind,
        }))
        .cast()
    }

    /// Frees a one-shot context whose operation was never posted.
    ///
    /// # Safety
    /// `ctx` came from [`OpCtx::boxed`] and the provider did not take it.
    pub unsafe fn unpost(ctx: *mut c_void) -> OpKind {
        // SAFETY: as documented.
        unsafe { Box::from_raw(ctx.cast::<OpCtx>()) }.kind
    }
}

/// Maps a provider error to NIXL's status.
pub fn map_error(shared: &Shared, code: i32, what: &str) -> NixlError {
    let text = shared.ep().error_text(code as isize);
    let provider = &shared.ep().traits.provider;
    match code.abs() {
        libc::ECONNRESET
        | libc::ENOTCONN
        | libc::ECONNREFUSED
        | libc::ECONNABORTED
        | libc::EHOSTUNREACH
        | libc::ENETUNREACH
        | libc::ETIMEDOUT
        | libc::EPIPE
        | libc::ESRCH
        | libc::EIO => err!(RemoteDisconnect, "{what} on {provider}: {text}"),
        libc::EKEYREJECTED | libc::EACCES | libc::EPERM | libc::EINVAL | libc::EFAULT => err!(
            NotAllowed,
            "{what} on {provider}: the peer's provider refused the key or range ({text})"
        ),
        // Not ours to cancel (release stops posting, it cancels nothing in the provider): the
        // provider flushed the operation because the connection went down, which is how
        // tcp;ofi_rxm answers a target that refused a key or range, or a peer that is gone.
        libc::ECANCELED => err!(
            RemoteDisconnect,
            "{what} on {provider}: flushed, the connection to the peer closed (the peer \
             refused the key or range, or is gone)"
        ),
        _ => err!(Backend, "{what} on {provider}: {text}"),
    }
}

/// Dispatches one completion (or error completion) to its operation.
///
/// # Safety
/// `ctx` is an operation context handed back by the provider, exactly once.
unsafe fn complete(shared: &Shared, ctx: *mut c_void, result: std::result::Result<usize, i32>) {
    let op = ctx.cast::<OpCtx>();
    // SAFETY: receive contexts live in the receive slab as long as the endpoint does.
    if let OpKind::Recv(slot) = unsafe { &(*op).kind } {
        shared.on_recv(*slot, result);
        return;
    }
    // SAFETY: one-shot contexts come from `OpCtx::boxed` and come back once.
    let op = unsafe { Box::from_raw(op) };
    match op.kind {
        OpKind::Rma(xfer, mr, lane) => {
            mr.inflight.fetch_sub(1, Ordering::AcqRel);
            shared.lanes[lane].throttle.release();
            let r = result.map(drop).map_err(|c| map_error(shared, c, "RMA"));
            xfer.op_done(shared, r);
        }
        OpKind::Send(_buf, reg, done) => {
            if let Some(reg) = reg {
                reg.close();
            }
            let r = result
                .map(drop)
                .map_err(|c| map_error(shared, c, "notification"));
            match done {
                Done::Xfer(x) => x.report(r),
                Done::Waiter(tx) => {
                    let _ = tx.send(r);
                }
            }
        }
        OpKind::Recv(_) => unreachable!("handled above"),
    }
}

const NO_ENTRY: sys::fi_cq_data_entry = sys::fi_cq_data_entry {
    op_context: std::ptr::null_mut(),
    flags: 0,
    len: 0,
    buf: std::ptr::null_mut(),
    data: 0,
};

/// Reads one batch of completions from lane `lane` (waiting up to 100 ms where `wait` and the
/// CQ has a wait object) and finishes their operations. Returns how many there were.
fn reap(shared: &Shared, lane: usize, wait: bool) -> usize {
    let mut entries = [NO_ENTRY; 64];
    let ep = &shared.lanes[lane].ep;
    let read = if wait {
        ep.read_cq(&mut entries, 100)
    } else {
        ep.poll_cq(&mut entries)
    };
    match read {
        Ok(n) => {
            for e in &entries[..n] {
                // SAFETY: each context comes back once, from an operation we posted.
                unsafe { complete(shared, e.op_context, Ok(e.len)) };
            }
            n
        }
        Err(e) => {
            // SAFETY: as above.
            unsafe { complete(shared, e.op_context, Err(e.err)) };
            1
        }
    }
}

/// The progress thread of lane `lane`: reads its completions (sleeping in the provider's wait
/// object when it has one, else backing off to 1 ms polls); the first lane's also fails
/// transfers stalled past the peer timeout.
pub fn progress_loop(shared: Weak<Shared>, lane: usize) {
    let mut idle_polls = 0u32;
    let mut last_scan = Instant::now();
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        let got = reap(&shared, lane, !shared.polled);
        if got == 0 && shared.polled && shared.outstanding.load(Ordering::Acquire) == 0 {
            idle_polls = idle_polls.saturating_add(1);
            if idle_polls > 64 {
                std::thread::sleep(Duration::from_micros(
                    (u64::from(idle_polls) * 10).min(1000),
                ));
            }
        } else {
            idle_polls = 0;
        }
        if lane == 0 && last_scan.elapsed() >= Duration::from_millis(100) {
            last_scan = Instant::now();
            shared.fail_stalled();
        }
    }
}

/// Bounds the RMAs in flight on the endpoint. A poster over the bound reads completions
/// itself (the progress thread may be asleep in a wait the provider does not wake, shm) and,
/// when there are none, sleeps until the progress thread returns an RMA — it does not spin,
/// which on a machine with few cores would take them from the peer moving the data.
pub struct Throttle {
    inflight: AtomicUsize,
    limit: usize,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    room: Condvar,
}

impl Throttle {
    /// At most `limit` RMAs in flight.
    pub fn new(limit: usize) -> Throttle {
        Throttle {
            inflight: AtomicUsize::new(0),
            limit: limit.max(1),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            room: Condvar::new(),
        }
    }

    /// The bound.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes a slot for one RMA, waiting while the bound is reached. False when nothing
    /// completed for `patience` or `give_up` said so (no slot taken).
    pub fn acquire(
        &self,
        shared: &Shared,
        lane: usize,
        patience: Duration,
        give_up: &dyn Fn() -> bool,
    ) -> bool {
        let mut since: Option<Instant> = None;
        loop {
            let n = self.inflight.load(Ordering::Acquire);
            if n < self.limit {
                if self
                    .inflight
                    .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            let t = *since.get_or_insert_with(Instant::now);
            if t.elapsed() > patience || give_up() {
                return false;
            }
            self.wait_for_room(shared, lane, false);
        }
    }

    /// Gives a slot back (an RMA completed, or was never posted).
    pub fn release(&self) {
        // SeqCst with the sleeper's count: either it sees the slot, or we see the sleeper.
        self.inflight.fetch_sub(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock();
            self.room.notify_all();
        }
    }

    /// Reads completions of this throttle's lane (`lane`) from the poster's thread; when there
    /// were none, sleeps until an RMA completes (or 1 ms, in case the provider needs driving
    /// again). `queue_full`: the provider answered `-FI_EAGAIN`, so sleep whatever the count
    /// says.
    pub fn wait_for_room(&self, shared: &Shared, lane: usize, queue_full: bool) {
        if reap(shared, lane, false) > 0 {
            return;
        }
        if queue_full && shared.polled {
            // A polled provider (shm) frees its queue when the peer takes the command, which
            // produces no completion here to wake a sleeper: retry at once, as the progress
            // thread polls anyway.
            std::thread::yield_now();
            return;
        }
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.lock.lock();
        if queue_full || self.inflight.load(Ordering::SeqCst) >= self.limit {
            let _ = self.room.wait_for(&mut guard, Duration::from_millis(1));
        } else {
            drop(guard);
        }
        self.sleepers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    /// Fails (for the user; memory stays pinned until the provider returns the operations)
    /// every transfer that saw no completion within the peer timeout.
    /// At shutdown, after the progress thread stopped: ends every unfinished transfer so that
    /// releasing it does not wait for completions nobody will read (the endpoint, closed
    /// when the backend is dropped right after, stops the provider touching memory).
    pub fn abandon_active(&self) {
        for x in self.active.lock().drain(..).filter_map(|w| w.upgrade()) {
            x.report(Err(err!(
                Backend,
                "agent {} is shutting down",
                self.agent_name
            )));
            x.leave();
        }
    }

    /// Removes from the address vector every peer with a transfer that saw no completion
    /// within the peer timeout (connection-based providers then flush the operations posted
    /// to it), and marks it to be re-inserted before its next transfer. Returns how many.
    pub fn sever_stalled_peers(&self) -> usize {
        let stalled: Vec<Arc<PeerLink>> = self
            .active
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|x| x.is_stalled())
            .filter_map(|x| x.link.clone())
            .collect();
        let mut severed = 0;
        for link in stalled {
            link.broken.store(true, Ordering::Release);
            if link.remove_from(&self.lanes) {
                severed += 1;
            }
        }
        severed
    }

    fn fail_stalled(&self) {
        let mut active = self.active.lock();
        active.retain(|w| w.strong_count() > 0);
        for x in active.iter().filter_map(Weak::upgrade) {
            x.check_stall(&self.ep().traits.provider);
        }
    }
}
