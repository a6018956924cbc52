//! The shared completion state of one posted transfer.

use parking_lot::{Condvar, Mutex};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::pacer::PollPacer;
use super::signal::Signal;
use crate::status::{NixlError, Status};

/// Completion of a posted transfer, shared between the request and the threads moving it.
///
/// Workers `enter` before touching memory and `leave` after; `cancel_and_wait` stops new work
/// and waits for every worker to leave, which is what lets release guarantee that no byte of
/// the request's memory is touched afterwards.
pub struct Completion {
    status: AtomicI32,
    error: Mutex<Option<NixlError>>,
    canceled: AtomicBool,
    pending_parts: AtomicUsize,
    active: Mutex<usize>,
    idle: Condvar,
    /// When the last part finished, so telemetry measures the transfer, not the polling.
    finished_at: OnceLock<Instant>,
    /// Parks a caller spinning on `poll` so it does not starve the workers.
    pacer: PollPacer,
    /// Lets `poll` finish the work itself where it can see it done (device copies).
    progress: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Blocking and async waiters for the status to leave IN_PROG.
    finished: Signal,
}

impl Completion {
    /// A completion waiting for `parts` pieces of work to finish.
    pub fn new(parts: usize) -> Self {
        Completion::with_pacer(parts, PollPacer::new())
    }

    /// A completion for work the GPU's copy engines do: polls are never parked (see
    /// [`PollPacer::never_parks`]).
    pub fn for_device_copies(parts: usize) -> Self {
        Completion::with_pacer(parts, PollPacer::never_parks())
    }

    fn with_pacer(parts: usize, pacer: PollPacer) -> Self {
        let c = Completion {
            status: AtomicI32::new(if parts == 0 {
                Status::Success.code()
            } else {
                Status::InProg.code()
            }),
            error: Mutex::new(None),
            canceled: AtomicBool::new(false),
            pending_parts: AtomicUsize::new(parts),
            active: Mutex::new(0),
            idle: Condvar::new(),
            finished_at: OnceLock::new(),
            pacer,
            progress: OnceLock::new(),
            finished: Signal::default(),
        };
        if parts == 0 {
            let _ = c.finished_at.set(Instant::now());
        }
        c
    }

    /// An already finished completion.
    pub fn done() -> Self {
        Completion::new(0)
    }

    /// An already failed completion.
    pub fn failed(error: NixlError) -> Self {
        let c = Completion::new(1);
        c.finish_part(Err(error));
        c
    }

    /// Current status: IN_PROG, SUCCESS or the first error.
    pub fn status(&self) -> Status {
        Status::from_code(self.status.load(Ordering::Acquire)).unwrap_or(Status::Unknown)
    }

    /// The status as seen by a user's poll (`getXferStatus`): like [`Completion::status`], after
    /// running the progress check if one is set ([`Completion::set_progress`]); a caller
    /// polling a long transfer in a tight loop is parked briefly (see [`PollPacer`]) so it
    /// leaves the CPU to the threads moving the bytes.
    pub fn poll(&self) -> Status {
        let mut status = self.status();
        if status == Status::InProg
            && let Some(progress) = self.progress.get()
        {
            progress();
            status = self.status();
        }
        if status != Status::InProg {
            return status;
        }
        self.pacer.pace(|| self.status() == Status::InProg);
        self.status()
    }

    /// Sets what each poll of an unfinished transfer runs first: a check that may finish it
    /// (e.g. whether the device copies completed). Set once; later calls are ignored.
    pub fn set_progress(&self, progress: impl Fn() + Send + Sync + 'static) {
        let _ = self.progress.set(Box::new(progress));
    }

    /// When the transfer finished (all parts done), if it has.
    pub fn finished_at(&self) -> Option<Instant> {
        self.finished_at.get().copied()
    }

    /// The first error, if the transfer failed.
    pub fn error(&self) -> Option<NixlError> {
        self.error.lock().clone()
    }

    /// Whether the request was canceled; workers check it between chunks.
    pub fn is_canceled(&self) -> bool {
        self.canceled.load(Ordering::Acquire)
    }

    /// Registers a worker about to touch the request's memory. Returns false (and registers
    /// nothing) once the request is canceled.
    pub fn enter(&self) -> bool {
        let mut active = self.active.lock();
        if self.is_canceled() {
            return false;
        }
        *active += 1;
        true
    }

    /// Ends what `enter` began.
    pub fn leave(&self) {
        let mut active = self.active.lock();
        *active -= 1;
        if *active == 0 {
            self.idle.notify_all();
        }
    }

    /// Records one finished part; the first error wins, and the last part sets SUCCESS.
    pub fn finish_part(&self, result: Result<(), NixlError>) {
        if let Err(e) = result {
            let mut slot = self.error.lock();
            if slot.is_none() {
                self.status.store(e.status().code(), Ordering::Release);
                *slot = Some(e);
                drop(slot);
                self.pacer.wake();
                self.finished.notify();
            }
        }
        if self.pending_parts.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.finished_at.set(Instant::now());
            let _ = self.status.compare_exchange(
                Status::InProg.code(),
                Status::Success.code(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            self.pacer.wake();
            self.finished.notify();
        }
    }

    /// Cancels the transfer and blocks until no worker is touching its memory.
    pub fn cancel_and_wait(&self) {
        let mut active = self.active.lock();
        self.canceled.store(true, Ordering::Release);
        while *active > 0 {
            self.idle.wait(&mut active);
        }
        drop(active);
        let _ = self.status.compare_exchange(
            Status::InProg.code(),
            Status::Canceled.code(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.pacer.wake();
        self.finished.notify();
    }

    /// Blocks until the status leaves IN_PROG or `deadline` passes, without spinning, and
    /// returns the status then. Completions finished by a progress check (device copies) are
    /// checked every [`PROGRESS_SLICE`] meanwhile.
    pub fn wait(&self, deadline: Option<Instant>) -> Status {
        loop {
            // The progress check may finish the transfer and notify: never under the signal.
            let status = self.check();
            if status != Status::InProg {
                return status;
            }
            let step = match (deadline, self.progress.get()) {
                (d, None) => d,
                (Some(d), Some(_)) => Some(d.min(Instant::now() + PROGRESS_SLICE)),
                (None, Some(_)) => Some(Instant::now() + PROGRESS_SLICE),
            };
            self.finished
                .wait_until(|| self.status() != Status::InProg, step);
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.check();
            }
        }
    }

    /// Registers `waker` for the end of the transfer unless it already ended; returns whether
    /// it ended. A completion finished only by a progress check wakes the waker at once
    /// instead of registering it, so its future keeps polling (device copies are short).
    pub fn register(&self, waker: &Waker) -> bool {
        if self.check() != Status::InProg {
            return true;
        }
        if self.progress.get().is_some() {
            waker.wake_by_ref();
            return false;
        }
        self.finished
            .register(waker, || self.status() != Status::InProg)
    }

    /// The status after running the progress check, never parking.
    fn check(&self) -> Status {
        if self.status() == Status::InProg
            && let Some(progress) = self.progress.get()
        {
            progress();
        }
        self.status()
    }
}

/// How often a blocking wait runs the progress check of a completion that needs one.
const PROGRESS_SLICE: Duration = Duration::from_millis(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::err;

    #[test]
    fn last_part_succeeds_first_error_wins() {
        let c = Completion::new(2);
        assert_eq!(c.status(), Status::InProg);
        c.finish_part(Ok(()));
        assert_eq!(c.status(), Status::InProg);
        c.finish_part(Ok(()));
        assert_eq!(c.status(), Status::Success);

        let c = Completion::new(2);
        c.finish_part(Err(err!(RemoteDisconnect, "gone")));
        c.finish_part(Err(err!(Backend, "later")));
        assert_eq!(c.status(), Status::RemoteDisconnect);
    }

    #[test]
    fn a_poll_runs_the_progress_check_until_it_finishes_the_transfer() {
        use std::sync::atomic::AtomicUsize;
        let c = std::sync::Arc::new(Completion::for_device_copies(1));
        let checks = std::sync::Arc::new(AtomicUsize::new(0));
        let (weak, n) = (std::sync::Arc::downgrade(&c), checks.clone());
        c.set_progress(move || {
            if n.fetch_add(1, Ordering::SeqCst) == 2
                && let Some(c) = weak.upgrade()
            {
                c.finish_part(Ok(()));
            }
        });
        assert_eq!(c.poll(), Status::InProg);
        assert_eq!(c.poll(), Status::InProg);
        assert_eq!(c.poll(), Status::Success);
        assert_eq!(c.poll(), Status::Success);
        assert_eq!(checks.load(Ordering::SeqCst), 3, "no check once finished");
    }

    #[test]
    fn wait_times_out_then_returns_when_the_last_part_finishes() {
        use std::time::Duration;
        let c = std::sync::Arc::new(Completion::new(1));
        let deadline = Instant::now() + Duration::from_millis(10);
        assert_eq!(c.wait(Some(deadline)), Status::InProg);
        assert!(Instant::now() >= deadline);
        let c2 = c.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            c2.finish_part(Ok(()));
        });
        assert_eq!(c.wait(None), Status::Success);
        t.join().unwrap();
    }

    #[test]
    fn the_first_error_ends_a_wait_before_the_other_parts() {
        let c = std::sync::Arc::new(Completion::new(2));
        let c2 = c.clone();
        let t = std::thread::spawn(move || c2.finish_part(Err(err!(RemoteDisconnect, "gone"))));
        assert_eq!(c.wait(None), Status::RemoteDisconnect);
        t.join().unwrap();
    }

    #[test]
    fn a_wait_runs_the_progress_check_until_it_finishes() {
        use std::sync::atomic::AtomicUsize;
        let c = std::sync::Arc::new(Completion::for_device_copies(1));
        let checks = std::sync::Arc::new(AtomicUsize::new(0));
        let (weak, n) = (std::sync::Arc::downgrade(&c), checks.clone());
        c.set_progress(move || {
            if n.fetch_add(1, Ordering::SeqCst) == 3
                && let Some(c) = weak.upgrade()
            {
                c.finish_part(Ok(()));
            }
        });
        assert_eq!(c.wait(None), Status::Success);
        assert_eq!(checks.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn cancel_waits_for_active_workers() {
        let c = std::sync::Arc::new(Completion::new(1));
        assert!(c.enter());
        let c2 = c.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            c2.leave();
        });
        let start = std::time::Instant::now();
        c.cancel_and_wait();
        assert!(start.elapsed() >= std::time::Duration::from_millis(40));
        assert!(!c.enter(), "no new work after cancel");
        assert_eq!(c.status(), Status::Canceled);
        t.join().unwrap();
    }
}
