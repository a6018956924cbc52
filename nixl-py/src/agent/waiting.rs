//! Completion without polling for asyncio: a future of nixl-core's polled once with a waker
//! that makes the agent's wake-up socket readable (see `crate::wakeup`).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use crate::wakeup::Wakeup;

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
