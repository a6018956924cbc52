//! [`Transport`] over NIXL's C ABI (`nixl_capi_*`) through the `nixl-capi-client` binding: one
//! agent, one network backend ("UCX" — ours or real NIXL's), the KV pool (and the host tier,
//! when there is one) registered as DRAM.

use super::{Op, Segment, TransferError, Transport, XResult, XferId, XferState};
use nixl_capi_client::{
    Agent, AgentConfig, Api, Backend, MemType, NotifMap, OptArgs, RegList, Request, XferList,
    XferOp,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Which `libnixl_capi` implementation to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibChoice {
    /// The `nixl-ffi` implementation linked into this binary (nothing to install).
    Linked,
    /// A `libnixl_capi.so` loaded at run time (ours, or real NIXL's).
    Path(PathBuf),
}

impl LibChoice {
    /// Human-readable name for reports.
    pub fn describe(&self) -> String {
        match self {
            LibChoice::Linked => "linked nixl-ffi".into(),
            LibChoice::Path(p) => p.display().to_string(),
        }
    }

    /// The function table.
    pub fn api(&self) -> XResult<Arc<Api>> {
        match self {
            LibChoice::Linked => Ok(Arc::new(crate::linked::api())),
            LibChoice::Path(p) => {
                Api::load(p)
                    .map(Arc::new)
                    .map_err(|source| TransferError::Load {
                        path: p.clone(),
                        source,
                    })
            }
        }
    }
}

/// A NIXL agent with the worker's KV pool registered.
pub struct CapiTransport {
    api: Arc<Api>,
    agent: Agent,
    _backend: Backend,
    _registered: RegList,
    requests: HashMap<u64, Request>,
    next: u64,
    notifs: NotifMap,
    name: String,
}

impl CapiTransport {
    /// Creates agent `name` in the library `api` calls (see [`LibChoice::api`]), its network
    /// backend, and registers each `(base, len)` region. `listen_port != 0` starts the
    /// library's metadata listener on that port.
    pub fn new(
        api: Arc<Api>,
        name: &str,
        regions: &[(u64, usize)],
        listen_port: u16,
    ) -> XResult<Self> {
        let cfg = AgentConfig {
            enable_listen_thread: listen_port != 0,
            listen_port,
            ..AgentConfig::default()
        };
        let agent = Agent::with_config(&api, name, &cfg)?;
        let backend = agent.create_backend("UCX", &[])?;
        let mut reg = RegList::new(&api, MemType::Dram)?;
        for &(base, len) in regions {
            reg.add(base as usize, len, 0, &[])?;
        }
        agent.register(&reg, None)?;
        let notifs = NotifMap::new(&api)?;
        Ok(CapiTransport {
            api,
            agent,
            _backend: backend,
            _registered: reg,
            requests: HashMap::new(),
            next: 0,
            notifs,
            name: name.to_string(),
        })
    }

    fn list(&self, segs: &[Segment]) -> XResult<XferList> {
        let mut l = XferList::new(&self.api, MemType::Dram)?;
        for s in segs {
            l.add(s.addr as usize, s.len, 0)?;
        }
        Ok(l)
    }

    fn listener_opt(&self, ip: Option<&str>, port: Option<u16>) -> XResult<Option<OptArgs>> {
        if ip.is_none() && port.is_none() {
            return Ok(None);
        }
        let mut opt = OptArgs::new(&self.api)?;
        if let Some(ip) = ip {
            opt.ip_addr(ip)?;
        }
        if let Some(port) = port {
            opt.port(port)?;
        }
        Ok(Some(opt))
    }
}

impl Transport for CapiTransport {
    fn name(&self) -> &str {
        &self.name
    }

    fn local_md(&mut self) -> XResult<Vec<u8>> {
        Ok(self.agent.local_md()?)
    }

    fn load_peer(&mut self, md: &[u8]) -> XResult<String> {
        Ok(self.agent.load_remote_md(md)?)
    }

    fn forget_peer(&mut self, name: &str) {
        // The peer may never have been loaded; nothing to undo then.
        let _ = self.agent.invalidate_remote_md(name);
    }

    fn post(
        &mut self,
        op: Op,
        peer: &str,
        local: &[Segment],
        remote: &[Segment],
        notif: Option<&[u8]>,
    ) -> XResult<XferId> {
        let l = self.list(local)?;
        let r = self.list(remote)?;
        let mut opt = OptArgs::new(&self.api)?;
        if let Some(msg) = notif {
            opt.notif(msg)?;
        }
        let op = match op {
            Op::Read => XferOp::Read,
            Op::Write => XferOp::Write,
        };
        let mut req = self.agent.create_xfer_req(op, &l, &r, peer, Some(&opt))?;
        req.post(Some(&opt))?;
        self.next += 1;
        self.requests.insert(self.next, req);
        Ok(XferId(self.next))
    }

    fn poll(&mut self, id: XferId) -> XResult<XferState> {
        let req = self
            .requests
            .get(&id.0)
            .ok_or(TransferError::UnknownXfer(id.0))?;
        match req.status()? {
            nixl_capi_client::XferState::Done => Ok(XferState::Done),
            nixl_capi_client::XferState::InProgress => Ok(XferState::InProgress),
        }
    }

    fn release(&mut self, id: XferId) {
        self.requests.remove(&id.0);
    }

    fn take_notifs(&mut self) -> XResult<Vec<(String, Vec<u8>)>> {
        self.agent.get_notifs(&mut self.notifs, None)?;
        let entries = self.notifs.entries()?;
        self.notifs.clear()?;
        Ok(entries
            .into_iter()
            .flat_map(|(agent, msgs)| msgs.into_iter().map(move |m| (agent.clone(), m)))
            .collect())
    }

    fn notify(&mut self, peer: &str, msg: &[u8]) -> XResult<()> {
        Ok(self.agent.gen_notif(peer, msg, None)?)
    }

    fn publish_md(&mut self) -> XResult<()> {
        // Without ip/port: to etcd when the library is configured for it; peers that fetch
        // from our listener need nothing published.
        if std::env::var_os("NIXL_ETCD_ENDPOINTS").is_some() {
            self.agent.send_local_md(None)?;
        }
        Ok(())
    }

    fn fetch_peer(&mut self, name: &str, ip: Option<&str>, port: Option<u16>) -> XResult<()> {
        let opt = self.listener_opt(ip, port)?;
        Ok(self.agent.fetch_remote_md(name, opt.as_ref())?)
    }

    fn has_peer(&mut self, name: &str) -> bool {
        self.agent.check_remote_md(name, None).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn a_library_that_does_not_load_keeps_the_loader_error() {
        let missing = PathBuf::from("/nonexistent/libnixl_capi.so");
        let Err(e) = LibChoice::Path(missing.clone()).api() else {
            panic!("loaded a library that does not exist");
        };
        assert!(matches!(&e, TransferError::Load { path, .. } if *path == missing));
        let source = e.source().expect("the loader's error");
        assert!(source.is::<nixl_capi_client::LoadError>(), "{source:?}");
        assert!(
            e.to_string().contains("/nonexistent/libnixl_capi.so"),
            "{e}"
        );
    }
}
