//! Completion without polling for asyncio: a future of nixl-core's polled once with a waker
//! that makes the agent's wake-up socket readable (see `crate::wakeup`).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use crate::errors::IntoPy;
use crate::wakeup::Wakeup;

/// The longest a blocking wait sleeps before looking at Python's signals: Ctrl-C interrupts a
/// wait with no timeout within this, and the waiter wakes only this often (no CPU to speak of).
const SIGNAL_SLICE: Duration = Duration::from_millis(100);

/// Runs `step` (with the GIL released, given how long it may sleep) until it reports done or
/// `timeout` passes (None: no limit), handling Python signals between steps; returns the last
/// step's answer. A signal handler's exception (KeyboardInterrupt) ends the wait.
pub fn sliced<R: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    step: impl Fn(Duration) -> nixl_core::Result<(R, bool)> + Sync,
) -> PyResult<R> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let slice = deadline.map_or(SIGNAL_SLICE, |d| {
            d.saturating_duration_since(Instant::now())
                .min(SIGNAL_SLICE)
        });
        let (r, done) = crate::exiting::detach(py, || step(slice)).py()?;
        if done || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(r);
        }
        py.check_signals()?;
    }
}

/// The agent's wake-up sockets, made on first use.
pub fn wakeup(cell: &OnceLock<Wakeup>) -> PyResult<&Wakeup> {
    if let Some(w) = cell.get() {
        return Ok(w);
    }
    let w = Wakeup::new().map_err(|e| PyOSError::new_err(e.to_string()))?;
    let _ = cell.set(w);
    Ok(cell.get().expect("just set"))
}

/// Polls a future once with the wake-up waker: true if it is ready, else the waker is
/// registered and the socket becomes readable when it should be polled again.
pub fn arm<F: Future<Output = ()>>(fut: F, wakeup: &Wakeup) -> bool {
    let waker = wakeup.waker();
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    matches!(Pin::as_mut(&mut fut).poll(&mut cx), Poll::Ready(()))
}
