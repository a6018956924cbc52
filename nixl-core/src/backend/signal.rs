//! Where threads and futures wait for a condition another thread makes true: a condition
//! variable for blocking waiters and a list of wakers for async ones, both released by `notify`.
//!
//! The condition itself lives with the caller (an atomic status, a queue); `wait_until` and
//! `register` re-check it under the signal's lock, and `notify` takes that lock, so a change
//! made before `notify` is never slept through.

use parking_lot::{Condvar, Mutex};
use std::task::Waker;
use std::time::Instant;

/// Blocking and async waiters for one condition.
#[derive(Default)]
pub struct Signal {
    wakers: Mutex<Vec<Waker>>,
    changed: Condvar,
}

impl Signal {
    /// Wakes every waiter; call after making the condition true.
    pub fn notify(&self) {
        let wakers = std::mem::take(&mut *self.wakers.lock());
        self.changed.notify_all();
        for w in wakers {
            w.wake();
        }
    }

    /// Blocks until `ready()` is true or `deadline` passes (`None`: no deadline); returns the
    /// last `ready()`. `ready` runs under the signal's lock: it must not call `notify`.
    pub fn wait_until(&self, ready: impl Fn() -> bool, deadline: Option<Instant>) -> bool {
        let mut guard = self.wakers.lock();
        loop {
            if ready() {
                return true;
            }
            let now = Instant::now();
            let left = match deadline {
                Some(d) if d <= now => return false,
                Some(d) => Some(d - now),
                None => None,
            };
            match left {
                Some(step) => {
                    self.changed.wait_for(&mut guard, step);
                }
                None => self.changed.wait(&mut guard),
            }
        }
    }

    /// Registers `waker` unless `ready()` is already true; returns `ready()`.
    pub fn register(&self, waker: &Waker, ready: impl Fn() -> bool) -> bool {
        let mut wakers = self.wakers.lock();
        if ready() {
            return true;
        }
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_blocked_waiter_returns_when_notified() {
        let signal = Arc::new(Signal::default());
        let flag = Arc::new(AtomicBool::new(false));
        let (s, f) = (signal.clone(), flag.clone());
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            f.store(true, Ordering::SeqCst);
            s.notify();
        });
        assert!(signal.wait_until(|| flag.load(Ordering::SeqCst), None));
        t.join().unwrap();
    }

    #[test]
    fn a_wait_times_out_when_nothing_happens() {
        let signal = Signal::default();
        let deadline = Instant::now() + Duration::from_millis(10);
        assert!(!signal.wait_until(|| false, Some(deadline)));
        assert!(Instant::now() >= deadline);
    }

    #[test]
    fn wakers_are_woken_once_and_not_registered_when_ready() {
        let signal = Signal::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        assert!(!signal.register(&waker, || false));
        assert!(!signal.register(&waker, || false), "same waker kept once");
        signal.notify();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        signal.notify();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "woken wakers are dropped"
        );
        assert!(signal.register(&waker, || true));
        signal.notify();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }
}
