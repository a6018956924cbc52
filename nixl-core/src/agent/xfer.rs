//! The life of a transfer request: post, status, telemetry, release.

use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::remote::{RemoteAgent, is_disconnect};
use super::request::RemoteSide;
use super::{Agent, AgentInner, OptArgs};
use crate::backend::{Backend, Completion, SharedDescs, Target, XferJob};
use crate::desc::Desc;
use crate::status::{NixlError, Result, Status, err};
use crate::types::{MemType, XferOp};

/// Per-request telemetry (`nixlXferTelemetry`), all durations in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XferTelemetry {
    /// When the last post started, in µs since the Unix epoch.
    pub start_time_us: u64,
    /// How long the post call took.
    pub post_duration_us: u64,
    /// From the start of the post to observed completion.
    pub xfer_duration_us: u64,
    /// Bytes moved by one post.
    pub total_bytes: u64,
    /// Descriptors in the request (after merging).
    pub desc_count: u64,
}

pub(super) struct PostState {
    pub(super) notif: Option<Vec<u8>>,
    pub(super) completion: Option<Arc<Completion>>,
    /// Terminal status once observed; sticky until the next post.
    pub(super) terminal: Option<std::result::Result<(), NixlError>>,
    pub(super) post_start: Option<Instant>,
    pub(super) telemetry: XferTelemetry,
    /// The current post is counted in the in-flight gauge.
    pub(super) in_flight: bool,
}

/// A transfer request (`nixlXferReqH`): made once, posted any number of times (each post
/// after the previous one completed). Dropping it is releasing it: an in-flight post is
/// canceled and waited for, so no byte of its memory is touched afterwards.
pub struct XferRequest {
    pub(super) agent: Weak<AgentInner>,
    pub(super) op: XferOp,
    pub(super) backend: usize,
    pub(super) engine: Arc<dyn Backend>,
    pub(super) local_mem: MemType,
    pub(super) remote_mem: MemType,
    pub(super) local: SharedDescs,
    pub(super) remote: SharedDescs,
    pub(super) remote_side: RemoteSide,
    pub(super) target: Target,
    pub(super) total_bytes: u64,
    pub(super) checked_generation: std::sync::atomic::AtomicU64,
    pub(super) state: Mutex<PostState>,
    /// Series this request updates, when the agent records metrics.
    pub(super) metrics: Option<ReqMetrics>,
}

/// Where a request's series are.
pub(super) enum ReqMetrics {
    /// In slot `i` of the cache of the remote agent the request targets (and holds).
    Peer(usize),
    /// Held by the request: loopback requests, and sets beyond a peer cache's slots.
    Own(Arc<crate::metrics::XferMetrics>),
}

impl PostState {
    pub(super) fn new(notif: Option<Vec<u8>>) -> Self {
        PostState {
            notif,
            completion: None,
            terminal: None,
            post_start: None,
            telemetry: XferTelemetry::default(),
            in_flight: false,
        }
    }
}

impl XferRequest {
    /// Number of descriptor pairs (after merging).
    pub fn desc_count(&self) -> usize {
        self.local.len()
    }

    /// Bytes moved by one post.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The operation.
    pub fn op(&self) -> XferOp {
        self.op
    }

    /// The backend chosen for the request (`queryXferBackend`).
    pub fn backend(&self) -> super::BackendHandle {
        super::BackendHandle(self.backend)
    }

    /// The series this request updates, if the agent records metrics.
    fn metrics(&self) -> Option<&crate::metrics::XferMetrics> {
        match (self.metrics.as_ref()?, &self.remote_side) {
            (ReqMetrics::Own(m), _) => Some(m),
            (ReqMetrics::Peer(i), RemoteSide::Agent(r)) => Some(r.metrics.slot(*i)),
            // Never made: loopback requests hold their own handles.
            (ReqMetrics::Peer(_), RemoteSide::Loopback) => None,
        }
    }
}

impl Drop for XferRequest {
    fn drop(&mut self) {
        let mut state = self.state.lock();
        if let Some(c) = state.completion.take() {
            c.cancel_and_wait();
        }
        if let (true, Some(m)) = (state.in_flight, self.metrics()) {
            m.ended();
        }
        drop(state);
        // Nothing touches the descriptors any more: keep their memory for the next request
        // (unless a backend still holds a copy of the list).
        if let Some(agent) = self.agent.upgrade() {
            for descs in [
                std::mem::take(&mut self.local),
                std::mem::take(&mut self.remote),
            ] {
                if let Ok(v) = Arc::try_unwrap(descs) {
                    agent.desc_pool.give(v);
                }
            }
        }
    }
}

impl Agent {
    /// Posts a request (`postXferReq`): SUCCESS if it completed inline, IN_PROG otherwise, or
    /// an error. A post with `opts` replaces the request's notification (or clears it when
    /// `opts.notif` is `None`). Reposting while a previous post runs is REPOST_ACTIVE.
    pub fn post_xfer_req(&self, req: &XferRequest, opts: Option<&OptArgs>) -> Result<Status> {
        self.check_owner(req)?;
        let mut state = req.state.lock();
        if state
            .completion
            .as_ref()
            .is_some_and(|c| c.status() == Status::InProg)
        {
            return Err(err!(
                RepostActive,
                "the previous post of this request is still in progress"
            ));
        }
        if !req.remote_side.is_valid() {
            if let Some(m) = req.metrics() {
                m.error(Status::NotFound);
            }
            return Err(err!(
                NotFound,
                "the remote agent's metadata was invalidated or reloaded; make a new request"
            ));
        }
        self.revalidate_local(req)?;
        if let Some(o) = opts {
            state.notif = o.notif.clone();
        }
        let start = Instant::now();
        let job = XferJob {
            op: req.op,
            local_mem: req.local_mem,
            remote_mem: req.remote_mem,
            local: req.local.clone(),
            remote: req.remote.clone(),
            target: req.target.clone(),
            notif: state.notif.clone(),
            total_bytes: req.total_bytes,
        };
        state.terminal = None;
        state.post_start = Some(start);
        state.telemetry = XferTelemetry {
            start_time_us: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64),
            total_bytes: req.total_bytes,
            desc_count: req.local.len() as u64,
            ..XferTelemetry::default()
        };
        let completion = match req.engine.post(job) {
            Ok(c) => c,
            Err(e) => {
                state.completion = None;
                if let Some(m) = req.metrics() {
                    m.error(e.status());
                }
                self.after_failure(req, &e);
                return Err(e);
            }
        };
        state.telemetry.post_duration_us = micros(start.elapsed());
        state.completion = Some(completion);
        if let Some(m) = req.metrics() {
            m.posted(state.telemetry.post_duration_us);
            state.in_flight = true;
        }
        drop(state);
        self.xfer_status(req)
    }

    /// A request's status (`getXferStatus`): IN_PROG, SUCCESS, or the error that ended it.
    /// A terminal status stays until the next post. NOT_POSTED before the first post.
    pub fn xfer_status(&self, req: &XferRequest) -> Result<Status> {
        let state = req.state.lock();
        if let Some(terminal) = &state.terminal {
            return terminal.clone().map(|()| Status::Success);
        }
        let Some(completion) = state.completion.clone() else {
            return Err(err!(NotPosted, "the request was never posted"));
        };
        // A poll may park briefly (see `Completion::poll`); not while holding the request.
        drop(state);
        let status = completion.poll();
        let mut state = req.state.lock();
        if let Some(terminal) = &state.terminal {
            return terminal.clone().map(|()| Status::Success);
        }
        if !state
            .completion
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &completion))
        {
            // Re-posted by another thread meanwhile: the new post is what counts.
            return Ok(Status::InProg);
        }
        match status {
            Status::InProg => Ok(Status::InProg),
            Status::Success => {
                if let Some(start) = state.post_start {
                    let end = completion.finished_at().unwrap_or_else(Instant::now);
                    state.telemetry.xfer_duration_us = micros(end.saturating_duration_since(start));
                }
                state.terminal = Some(Ok(()));
                if let (true, Some(m)) = (std::mem::take(&mut state.in_flight), req.metrics()) {
                    m.completed(req.total_bytes, state.telemetry.xfer_duration_us);
                }
                Ok(Status::Success)
            }
            status => {
                let e = completion
                    .error()
                    .unwrap_or_else(|| NixlError::new(status, "transfer failed"));
                state.terminal = Some(Err(e.clone()));
                if let (true, Some(m)) = (std::mem::take(&mut state.in_flight), req.metrics()) {
                    m.ended();
                    m.error(e.status());
                }
                drop(state);
                self.after_failure(req, &e);
                Err(e)
            }
        }
    }

    /// Telemetry of the last post (`getXferTelemetry`): NO_TELEMETRY if disabled, NOT_POSTED
    /// before the first post, `None` while it is still in progress.
    pub fn xfer_telemetry(&self, req: &XferRequest) -> Result<Option<XferTelemetry>> {
        if !self.inner.telemetry {
            return Err(err!(
                NoTelemetry,
                "telemetry is disabled (set capture_telemetry or NIXL_TELEMETRY_ENABLE=y)"
            ));
        }
        match self.xfer_status(req) {
            Ok(Status::InProg) => Ok(None),
            Ok(_) => Ok(Some(req.state.lock().telemetry)),
            Err(e) if e.status() == Status::NotPosted => Err(e),
            Err(_) => Ok(Some(req.state.lock().telemetry)),
        }
    }

    /// Releases a request (`releaseXferReq`): cancels an in-flight post and waits until none of
    /// the request's memory is being touched. Same as dropping it.
    pub fn release_xfer_req(&self, req: XferRequest) -> Result<()> {
        drop(req);
        Ok(())
    }

    /// Cancels a request's in-flight post and waits until none of its memory is touched, as
    /// releasing it does, for callers that cannot drop it yet: another thread may still hold
    /// it (waiting on it, say), and sees CANCELED. A post that already ended is left as it is.
    pub fn cancel_xfer_req(&self, req: &XferRequest) -> Result<()> {
        self.check_owner(req)?;
        let completion = req.state.lock().completion.clone();
        if let Some(c) = completion {
            c.cancel_and_wait();
        }
        Ok(())
    }

    fn check_owner(&self, req: &XferRequest) -> Result<()> {
        if std::ptr::eq(req.agent.as_ptr(), Arc::as_ptr(&self.inner)) {
            Ok(())
        } else {
            Err(err!(InvalidParam, "the request belongs to another agent"))
        }
    }

    /// After a deregistration, checks once that every local descriptor is still registered.
    fn revalidate_local(&self, req: &XferRequest) -> Result<()> {
        let now = self.inner.local_generation.load(Ordering::Acquire);
        if req.checked_generation.load(Ordering::Acquire) == now {
            return Ok(());
        }
        let local = self.inner.local.read();
        let table = local[req.backend].get(req.local_mem);
        for d in req.local.iter() {
            let desc = Desc::new(d.addr, d.len, d.dev_id);
            if table.covering(&desc).is_none_or(|r| r.key != d.key) {
                return Err(err!(
                    NotFound,
                    "local memory {desc:?} was deregistered after the request was made"
                ));
            }
        }
        if let Target::Loopback = req.target {
            let remote_table = local[req.backend].get(req.remote_mem);
            for d in req.remote.iter() {
                let desc = Desc::new(d.addr, d.len, d.dev_id);
                if remote_table.covering(&desc).is_none_or(|r| r.key != d.key) {
                    return Err(err!(
                        NotFound,
                        "target memory {desc:?} was deregistered after the request was made"
                    ));
                }
            }
        }
        req.checked_generation.store(now, Ordering::Release);
        Ok(())
    }

    fn after_failure(&self, req: &XferRequest, e: &NixlError) {
        if let (true, RemoteSide::Agent(remote)) = (is_disconnect(e.status()), &req.remote_side) {
            let remote: &Arc<RemoteAgent> = remote;
            self.inner.on_remote_disconnect(remote);
        }
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

impl std::fmt::Debug for XferRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XferRequest")
            .field("op", &self.op)
            .field("descs", &self.local.len())
            .field("total_bytes", &self.total_bytes)
            .finish_non_exhaustive()
    }
}
