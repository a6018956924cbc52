//! Keeps a caller that polls one transfer in a tight loop from starving the threads moving it.
//!
//! Engines (and nixlbench) often wait with `while status() == IN_PROG {}`. On a host with few
//! cores that loop takes a core from the worker sending or receiving the bytes: over TCP on two
//! vCPUs it cost a third of the throughput, and more on READ, whose receive side is the costlier
//! one. A thread that polls the same transfer twice in a row, a few microseconds apart, after the
//! transfer has run past a short spin budget, is parked until the transfer finishes or a short
//! bound passes. A thread that polls several requests in turn, or checks them once per scheduler
//! step, is never parked, so no finished request waits behind another's park.

use parking_lot::{Condvar, Mutex};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering, fence};
use std::time::{Duration, Instant};

/// Polls during the first part of a transfer are never parked: short transfers finish within
/// it, and parking would add a wake-up (tens of microseconds on an idle vCPU) to each. Single
/// TCP transfers of up to 1 MiB (about 300 us here) stay inside it; a long one spins for a
/// small part of its time.
const SPIN_BUDGET: Duration = Duration::from_micros(500);
/// Two polls of one transfer by one thread, with no other transfer polled between them and
/// closer than this, are a tight loop.
const TIGHT_POLL: Duration = Duration::from_micros(20);
/// The longest a poll parks; the caller then sees IN_PROG and may poll again.
const PARK_MAX: Duration = Duration::from_micros(250);

thread_local! {
    /// The transfer this thread polled last (its pacer's address) and when.
    static LAST_POLL: Cell<Option<(usize, Instant)>> = const { Cell::new(None) };
}

/// Per-transfer poll pacing: when the transfer started, and where a parked poller waits for
/// the finish.
pub struct PollPacer {
    started: Instant,
    spin_budget: Duration,
    parked: AtomicUsize,
    gate: Mutex<()>,
    finished: Condvar,
}

impl PollPacer {
    /// Pacing for a transfer starting now.
    pub fn new() -> Self {
        PollPacer::with_spin_budget(SPIN_BUDGET)
    }

    /// Pacing that never parks: for transfers whose bytes the GPU's copy engines move, where
    /// the poller takes no CPU from them and a park would only add a wake-up to the finish.
    pub fn never_parks() -> Self {
        PollPacer::with_spin_budget(Duration::MAX)
    }

    /// Pacing with another spin budget (tests use none, or a very long one).
    fn with_spin_budget(spin_budget: Duration) -> Self {
        PollPacer {
            started: Instant::now(),
            spin_budget,
            parked: AtomicUsize::new(0),
            gate: Mutex::new(()),
            finished: Condvar::new(),
        }
    }

    /// Called by a poll that found the transfer in progress: parks the caller (up to
    /// `PARK_MAX`, or until `wake`) when it is spinning on a transfer past the spin budget, and
    /// says whether it did. `in_progress` is re-checked under the gate so a finish between the
    /// poll and the park is not slept through.
    pub fn pace(&self, in_progress: impl Fn() -> bool) -> bool {
        let me = self as *const PollPacer as usize;
        let now = Instant::now();
        let previous = LAST_POLL.replace(Some((me, now)));
        let tight = previous
            .is_some_and(|(who, at)| who == me && now.saturating_duration_since(at) < TIGHT_POLL);
        if !tight || now.saturating_duration_since(self.started) < self.spin_budget {
            return false;
        }
        let mut gate = self.gate.lock();
        self.parked.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let park = in_progress();
        if park {
            self.finished.wait_for(&mut gate, PARK_MAX);
            // Released after parking; a poller that did not park holds it to the end (as before).
            drop(gate);
        }
        self.parked.fetch_sub(1, Ordering::SeqCst);
        // Parking ends the tight loop; the next poll is judged on its own.
        LAST_POLL.set(None);
        park
    }

    /// Wakes parked pollers; called after the transfer's status left IN_PROG. The fences
    /// pair with `pace`'s: either this sees the parked poller or its re-check sees the status.
    pub fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) != 0 {
            let _gate = self.gate.lock();
            self.finished.notify_all();
        }
    }
}

impl Default for PollPacer {
    fn default() -> Self {
        PollPacer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    // The tests count parks rather than time them, so a loaded machine cannot fail them.

    #[test]
    fn polls_inside_the_spin_budget_are_never_parked() {
        let pacer = PollPacer::with_spin_budget(Duration::from_secs(3600));
        assert!((0..10_000).all(|_| !pacer.pace(|| true)));
    }

    #[test]
    fn a_pacer_for_device_copies_never_parks() {
        let pacer = PollPacer::never_parks();
        assert!((0..10_000).all(|_| !pacer.pace(|| true)));
    }

    #[test]
    fn spaced_polls_are_never_parked() {
        let pacer = PollPacer::with_spin_budget(Duration::ZERO);
        for _ in 0..5 {
            std::thread::sleep(TIGHT_POLL * 2);
            assert!(!pacer.pace(|| true), "a poll after a pause must not park");
        }
    }

    #[test]
    fn a_thread_polling_several_transfers_in_turn_is_never_parked() {
        let a = PollPacer::with_spin_budget(Duration::ZERO);
        let b = PollPacer::with_spin_budget(Duration::ZERO);
        assert!((0..10_000).all(|_| !a.pace(|| true) && !b.pace(|| true)));
    }

    #[test]
    fn a_finished_transfer_is_not_slept_on() {
        let pacer = PollPacer::with_spin_budget(Duration::ZERO);
        pacer.pace(|| false);
        // Tight and past the budget, but the re-check under the gate sees the finish.
        assert!(!pacer.pace(|| false));
    }

    #[test]
    fn a_tight_poller_parks_until_the_finish_wakes_it() {
        let pacer = Arc::new(PollPacer::with_spin_budget(Duration::ZERO));
        let done = Arc::new(AtomicBool::new(false));
        let (p, d) = (pacer.clone(), done.clone());
        let poller = std::thread::spawn(move || {
            let (mut polls, mut parks) = (0u64, 0u64);
            while !d.load(Ordering::SeqCst) {
                parks += u64::from(p.pace(|| !d.load(Ordering::SeqCst)));
                polls += 1;
            }
            (polls, parks)
        });
        std::thread::sleep(Duration::from_millis(50));
        done.store(true, Ordering::SeqCst);
        pacer.wake();
        let (polls, parks) = poller.join().unwrap();
        assert!(parks > 0, "{polls} polls and no park");
        // Every other poll parks (a preempted poller may miss a few): an unpaced loop polls
        // millions of times in 50 ms.
        assert!(polls <= 4 * parks + 16, "{polls} polls for {parks} parks");
    }
}
