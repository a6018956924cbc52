//! Waiting without polling (an extension to NIXL's API): a blocking wait and a `Future` for
//! the end of a posted request and for the arrival of notifications. Both sleep until the
//! threads moving the bytes (or receiving the notification) signal; no CPU is spent meanwhile.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::Agent;
use super::xfer::XferRequest;
use crate::backend::{Completion, NotifQueue};
use crate::status::{Result, Status, err};

/// Resolves when a posted request's post is no longer in progress (see [`Agent::xfer_ready`]).
/// Then [`Agent::xfer_status`] tells how it ended.
pub struct XferReady {
    completion: Arc<Completion>,
}

impl Future for XferReady {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.completion.register(cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Resolves when at least one notification is waiting to be taken by [`Agent::get_notifs`]
/// (see [`Agent::notif_ready`]).
pub struct NotifReady {
    queue: Arc<NotifQueue>,
}

impl Future for NotifReady {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.queue.register(cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

impl Agent {
    /// Blocks until the request's last post leaves IN_PROG or `timeout` passes (`None`: no
    /// limit), then returns [`Agent::xfer_status`]: IN_PROG only on timeout. NOT_POSTED before
    /// the first post.
    pub fn wait_xfer(&self, req: &XferRequest, timeout: Option<Duration>) -> Result<Status> {
        let completion = req.state.lock().completion.clone();
        if let Some(c) = completion {
            c.wait(deadline(timeout));
        }
        self.xfer_status(req)
    }

    /// A future that resolves when the request's current post leaves IN_PROG (at once if it
    /// already has). NOT_POSTED before the first post.
    pub fn xfer_ready(&self, req: &XferRequest) -> Result<XferReady> {
        let completion = req.state.lock().completion.clone();
        let completion = match completion {
            Some(c) => c,
            None if req.state.lock().terminal.is_some() => Arc::new(Completion::done()),
            None => return Err(err!(NotPosted, "the request was never posted")),
        };
        Ok(XferReady { completion })
    }

    /// Blocks until a notification is waiting or `timeout` passes (`None`: no limit); returns
    /// whether one is. Take them with [`Agent::get_notifs`].
    pub fn wait_notifs(&self, timeout: Option<Duration>) -> bool {
        self.inner.notifs.wait(deadline(timeout))
    }

    /// A future that resolves when a notification is waiting to be taken.
    pub fn notif_ready(&self) -> NotifReady {
        NotifReady {
            queue: self.inner.notifs.clone(),
        }
    }
}
