//! VRAM jobs the GPU moves alone (both sides in this process, or remote VRAM of a process on
//! this host through its IPC mappings), posted without a thread hop: `post` checks the target's
//! registrations and queues the copies from the caller's thread, so the copy engines start at
//! once. The job then finishes (what the copies used released, the notification sent, the
//! request complete) as soon as the user's next status poll or a worker blocked on the copies'
//! event sees them complete, whichever comes first; exactly one of them finishes it.

use std::sync::{Arc, Mutex};

use parking_lot::{RawRwLock, lock_api::ArcRwLockReadGuard};

use super::super::Mover;
use super::super::access::AccessTable;
use super::super::executor::Executor;
use crate::backend::cuda::context::{self, Scoped};
use crate::backend::cuda::ipc::RemoteVram;
use crate::backend::cuda::stream::{Event, Stream};
use crate::backend::cuda::{self};
use crate::backend::{Completion, XferJob, lock};
use crate::status::{Result, err};

/// What queued copies use, kept until they complete.
#[allow(dead_code, reason = "held only to be dropped once the copies complete")]
pub(in crate::backend::net) enum Hold {
    /// The target agent's VRAM or DRAM table, read-locked: its deregistrations wait for the
    /// copies.
    Table(ArcRwLockReadGuard<RawRwLock, AccessTable>),
    /// The IPC mappings of the remote registrations, kept open.
    Mappings(Vec<Arc<RemoteVram>>),
}

/// Copies queued on a stream of GPU `dev`; complete when `event` is.
pub(in crate::backend::net) struct Queued {
    dev: u64,
    event: Event,
    used: InUse,
}

/// What a queued job keeps until its copies complete. Fields drop in order: the stream is
/// synchronized before `hold` lets go of the memory.
struct InUse {
    _stream: Stream,
    _hold: Hold,
}

impl Queued {
    /// Queues `job`'s copies (its local descriptors against the remote `pieces`) on a stream
    /// of GPU `dev` and records their end.
    ///
    /// # Safety
    /// Every range must be memory this transfer may read or write, kept so by `hold` (remote)
    /// and the request (local) until the copies complete.
    pub unsafe fn new(dev: u64, job: &XferJob, pieces: &[(u64, u64)], hold: Hold) -> Result<Self> {
        let stream = Stream::take(dev)?;
        let event = Event::take(dev)?;
        // SAFETY: forwarded from the caller.
        let queued = unsafe { cuda::queue_pairs(&stream, job.op, &job.local, pieces) }
            .and_then(|()| stream.record(&event));
        if let Err(e) = queued {
            // Whatever was queued must end before `hold` lets go of the memory.
            let _ = stream.sync();
            return Err(e);
        }
        Ok(Queued {
            dev,
            event,
            used: InUse {
                _stream: stream,
                _hold: hold,
            },
        })
    }

    /// Blocks until the copies have completed, then lets go of what they used.
    pub fn wait(self) -> Result<()> {
        self.event.sync()
    }
}

/// A queued job whose completion is still to be seen.
struct Tracked {
    dev: u64,
    event: Event,
    /// Taken by whichever of the poll and the worker finishes the job.
    pending: Mutex<Option<(InUse, XferJob)>>,
    completion: Arc<Completion>,
    mover: Mover,
}

/// Tracks queued copies until they complete: the completion's polls check their event, and
/// a worker blocks on it so the job finishes (and its notification goes) even if nobody polls.
pub(in crate::backend::net) fn track(
    queued: Queued,
    job: XferJob,
    completion: Arc<Completion>,
    mover: Mover,
    executor: &Executor,
) {
    // Counts as work touching the request's memory: releasing the request waits for it.
    let entered = completion.enter();
    debug_assert!(entered, "a new request cannot be canceled yet");
    let tracked = Arc::new(Tracked {
        dev: queued.dev,
        event: queued.event,
        pending: Mutex::new(Some((queued.used, job))),
        completion,
        mover,
    });
    let weak = Arc::downgrade(&tracked);
    tracked.completion.set_progress(move || {
        if let Some(t) = weak.upgrade() {
            t.check();
        }
    });
    executor.spawn(move || tracked.wait());
}

impl Tracked {
    /// A status poll's check: finishes the job if its copies have completed; never blocks.
    fn check(&self) {
        let done = Scoped::bind(self.dev).and_then(|_ctx| self.event.query());
        match done {
            Ok(false) => {}
            Ok(true) => self.finish(Ok(())),
            Err(e) => self.finish(Err(e)),
        }
    }

    /// A worker's wait: blocks until the copies have completed, then finishes the job.
    fn wait(&self) {
        let copied = context::bind(self.dev).and_then(|_| self.event.sync());
        self.finish(copied);
    }

    /// Ends the job once: lets go of the memory, sends the notification if everything went
    /// well, completes the request.
    fn finish(&self, copied: Result<()>) {
        let Some((used, job)) = lock(&self.pending).take() else {
            return;
        };
        {
            let _ctx = Scoped::bind(self.dev);
            drop(used);
        }
        self.completion.leave();
        let outcome = copied
            .and_then(|()| match self.completion.is_canceled() {
                true => Err(err!(Canceled, "the request was released")),
                false => Ok(()),
            })
            .and_then(|()| match &job.notif {
                Some(msg) => self.mover.notify(&job.target, msg),
                None => Ok(()),
            });
        self.completion.finish_part(outcome);
    }
}
