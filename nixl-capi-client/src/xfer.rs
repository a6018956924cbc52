//! Prepared descriptor lists and transfer requests.

use crate::agent::{Agent, AgentInner};
use crate::dlist::{XferList, XferOp};
use crate::error::{Error, Result, check, cstr};
use crate::ffi::{self, XferDlistHandleT, XferReqT, XferTelemetry};
use crate::opt::{OptArgs, raw_opt};
use std::sync::Arc;

/// Name that makes `prep_xfer_dlist` prepare a local list (NIXL_INIT_AGENT).
pub const LOCAL_AGENT: &str = "";

/// A prepared descriptor list (`nixl_capi_xfer_dlist_handle_t`), released on drop.
pub struct PreppedList {
    agent: Arc<AgentInner>,
    raw: XferDlistHandleT,
    len: usize,
}

// SAFETY: the handle is immutable after preparation; the agent serialises
// calls when its library does not lock.
unsafe impl Send for PreppedList {}
// SAFETY: see above.
unsafe impl Sync for PreppedList {}

impl PreppedList {
    /// Number of descriptors prepared.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no descriptor was prepared.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The raw handle, valid while `self` lives.
    pub fn as_raw(&self) -> XferDlistHandleT {
        self.raw
    }
}

impl Drop for PreppedList {
    fn drop(&mut self) {
        let _g = self.agent.guard();
        // SAFETY: prepared by this agent, released once (this also frees it).
        unsafe { (self.agent.api.release_xfer_dlist_handle)(self.agent.raw, self.raw) };
    }
}

/// A transfer request. Dropping it releases and destroys it; if the library
/// refuses to release (still in flight), the handle is leaked rather than
/// freed under the library's feet.
pub struct Request {
    agent: Arc<AgentInner>,
    raw: XferReqT,
}

// SAFETY: requests may be posted/polled from any thread; the agent serialises
// calls when its library does not lock, and `post` takes `&mut self`.
unsafe impl Send for Request {}

/// State of a request after `post` or a status poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XferState {
    /// Complete.
    Done,
    /// Still moving data.
    InProgress,
}

impl Request {
    fn state(op: &'static str, code: ffi::Status) -> Result<XferState> {
        match code {
            ffi::SUCCESS => Ok(XferState::Done),
            ffi::IN_PROG => Ok(XferState::InProgress),
            code => Err(Error { code, op }),
        }
    }

    /// Posts (or re-posts) the request.
    pub fn post(&mut self, opt: Option<&OptArgs>) -> Result<XferState> {
        let _g = self.agent.guard();
        // SAFETY: handles live; `self` exclusively borrowed.
        let r = unsafe { (self.agent.api.post_xfer_req)(self.agent.raw, self.raw, raw_opt(opt)) };
        Request::state("post_xfer_req", r)
    }

    /// Polls the request once.
    pub fn status(&self) -> Result<XferState> {
        let _g = self.agent.guard();
        // SAFETY: handles live.
        let r = unsafe { (self.agent.api.get_xfer_status)(self.agent.raw, self.raw) };
        Request::state("get_xfer_status", r)
    }

    /// Polls until done (busy-wait with `spin_loop`/`yield_now`).
    pub fn wait(&self) -> Result<()> {
        let mut spins = 0u32;
        while self.status()? == XferState::InProgress {
            spins += 1;
            if spins < 1024 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        Ok(())
    }

    /// Posts and waits for completion.
    pub fn run(&mut self, opt: Option<&OptArgs>) -> Result<()> {
        if self.post(opt)? == XferState::InProgress {
            self.wait()?;
        }
        Ok(())
    }

    /// Telemetry of the last run (needs `capture_telemetry`).
    pub fn telemetry(&self) -> Result<XferTelemetry> {
        let mut t = XferTelemetry::default();
        let _g = self.agent.guard();
        // SAFETY: `t` is a valid out struct with the C layout.
        check("get_xfer_telemetry", unsafe {
            (self.agent.api.get_xfer_telemetry)(self.agent.raw, self.raw, &mut t)
        })?;
        Ok(t)
    }

    /// The raw handle, valid while `self` lives.
    pub fn as_raw(&self) -> XferReqT {
        self.raw
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        let _g = self.agent.guard();
        let api = &self.agent.api;
        // SAFETY: created by this agent; destroyed only after a successful release.
        unsafe {
            if (api.release_xfer_req)(self.agent.raw, self.raw) == ffi::SUCCESS {
                (api.destroy_xfer_req)(self.raw);
            }
        }
    }
}

impl Agent {
    /// Prepares `descs` of `agent_name` ([`LOCAL_AGENT`] for local memory).
    pub fn prep_xfer_dlist(
        &self,
        agent_name: &str,
        descs: &XferList,
        opt: Option<&OptArgs>,
    ) -> Result<PreppedList> {
        let c = cstr("prep_xfer_dlist", agent_name)?;
        let len = descs.len()?;
        let mut raw = std::ptr::null_mut();
        let _g = self.inner.guard();
        // SAFETY: handles live; `raw` a valid out pointer.
        check("prep_xfer_dlist", unsafe {
            (self.inner.api.prep_xfer_dlist)(
                self.inner.raw,
                c.as_ptr(),
                descs.as_raw(),
                &mut raw,
                raw_opt(opt),
            )
        })?;
        Ok(PreppedList {
            agent: self.inner.clone(),
            raw,
            len,
        })
    }

    /// Prepares a local list.
    pub fn prep_local(&self, descs: &XferList) -> Result<PreppedList> {
        self.prep_xfer_dlist(LOCAL_AGENT, descs, None)
    }

    /// Builds a request from prepared lists and index arrays (`make_xfer_req`).
    #[allow(clippy::too_many_arguments)]
    pub fn make_xfer_req(
        &self,
        op: XferOp,
        local: &PreppedList,
        local_idx: &[i32],
        remote: &PreppedList,
        remote_idx: &[i32],
        opt: Option<&OptArgs>,
    ) -> Result<Request> {
        let mut raw = std::ptr::null_mut();
        let _g = self.inner.guard();
        // SAFETY: handles live; index slices valid for their lengths.
        check("make_xfer_req", unsafe {
            (self.inner.api.make_xfer_req)(
                self.inner.raw,
                op as i32,
                local.raw,
                local_idx.as_ptr(),
                local_idx.len(),
                remote.raw,
                remote_idx.as_ptr(),
                remote_idx.len(),
                &mut raw,
                raw_opt(opt),
            )
        })?;
        Ok(Request {
            agent: self.inner.clone(),
            raw,
        })
    }

    /// Builds a request from plain lists against `remote_agent` (`create_xfer_req`).
    pub fn create_xfer_req(
        &self,
        op: XferOp,
        local: &XferList,
        remote: &XferList,
        remote_agent: &str,
        opt: Option<&OptArgs>,
    ) -> Result<Request> {
        let c = cstr("create_xfer_req", remote_agent)?;
        let mut raw = std::ptr::null_mut();
        let _g = self.inner.guard();
        // SAFETY: handles live; `raw` a valid out pointer.
        check("create_xfer_req", unsafe {
            (self.inner.api.create_xfer_req)(
                self.inner.raw,
                op as i32,
                local.as_raw(),
                remote.as_raw(),
                c.as_ptr(),
                &mut raw,
                raw_opt(opt),
            )
        })?;
        Ok(Request {
            agent: self.inner.clone(),
            raw,
        })
    }
}
