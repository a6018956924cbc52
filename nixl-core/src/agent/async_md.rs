//! Asynchronous metadata exchange (`sendLocalMD`, `fetchRemoteMD`, ...): through a peer's
//! listener when `opts.ip_addr` is set, else through the central etcd store when
//! `NIXL_ETCD_ENDPOINTS` is configured.

use std::sync::Arc;

use super::{Agent, AgentInner, OptArgs};
use crate::desc::RegDescList;
use crate::exchange::frame::Command;
use crate::exchange::store::Store;
use crate::exchange::{Conns, Exchange, MetadataHost, p2p};
use crate::status::{Result, err};

/// NIXL's default label for full metadata in a central store.
pub const DEFAULT_METADATA_LABEL: &str = "metadata";

/// Where an exchange call goes.
enum Route {
    Peer(String, u16),
    Store(Arc<Store>),
}

impl Agent {
    fn exchange(&self) -> Result<&Exchange> {
        self.inner
            .exchange
            .get()
            .ok_or_else(|| err!(Backend, "metadata exchange is not running"))
    }

    fn route(&self, opts: Option<&OptArgs>) -> Result<Route> {
        if let Some((ip, port)) = opts.and_then(|o| o.ip_addr.clone().map(|ip| (ip, o.port))) {
            return Ok(Route::Peer(ip, port));
        }
        match self.exchange()?.store()? {
            Some(store) => Ok(Route::Store(store)),
            None => Err(err!(
                NotSupported,
                "no peer address given (set ip_addr/port) and no central store configured (NIXL_ETCD_ENDPOINTS)"
            )),
        }
    }

    /// Publishes this agent's metadata (`sendLocalMD`) to a peer's listener (`opts.ip_addr`,
    /// `opts.port`) or to the central store under `<ns><agent>/metadata`. Returns once queued.
    pub fn send_local_md(&self, opts: Option<&OptArgs>) -> Result<()> {
        let md = self.inner.local_md()?;
        match self.route(opts)? {
            Route::Peer(ip, port) => self.push_later("send_local_md", ip, port, Command::Load, md),
            Route::Store(store) => {
                let name = self.inner.name.clone();
                self.exchange()?
                    .queue("send_local_md", move |_: &dyn MetadataHost| {
                        store.publish(&name, DEFAULT_METADATA_LABEL, md)
                    })
            }
        }
    }

    /// Publishes part of this agent's metadata (`sendLocalPartialMD`); empty `descs` sends
    /// connection info only. In a central store it goes under `opts.metadata_label`, which is
    /// then required.
    pub fn send_local_partial_md(&self, descs: &RegDescList, opts: Option<&OptArgs>) -> Result<()> {
        let md = self.inner.local_partial_md(descs, opts)?;
        match self.route(opts)? {
            Route::Peer(ip, port) => {
                self.push_later("send_local_partial_md", ip, port, Command::Load, md)
            }
            Route::Store(store) => {
                let label = opts
                    .and_then(|o| o.metadata_label.clone())
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| {
                        err!(
                            InvalidParam,
                            "partial metadata in a central store needs a metadata label"
                        )
                    })?;
                let name = self.inner.name.clone();
                self.exchange()?
                    .queue("send_local_partial_md", move |_: &dyn MetadataHost| {
                        store.publish(&name, &label, md)
                    })
            }
        }
    }

    /// Fetches `name`'s metadata (`fetchRemoteMD`) from a peer's listener or from the central
    /// store (waiting for it to appear up to `etcd_watch_timeout`, then watching for its
    /// removal). Returns once queued; `check_remote_md(name, ..)` tells when it has arrived.
    pub fn fetch_remote_md(&self, name: &str, opts: Option<&OptArgs>) -> Result<()> {
        if name.is_empty() {
            return Err(err!(InvalidParam, "fetch_remote_md needs an agent name"));
        }
        let name = name.to_owned();
        match self.route(opts)? {
            Route::Peer(ip, port) => {
                self.exchange()?
                    .queue("fetch_remote_md", move |host: &dyn MetadataHost| {
                        let md = p2p::fetch(&ip, port, host.auth_secret())?;
                        let loaded = host.load_remote_md(&md)?;
                        if loaded != name {
                            log::warn!(
                                "fetched metadata from {ip}:{port} names agent {loaded}, not {name}"
                            );
                        }
                        Ok(())
                    })
            }
            Route::Store(store) => {
                let label = opts
                    .and_then(|o| o.metadata_label.clone())
                    .filter(|l| !l.is_empty())
                    .unwrap_or_else(|| DEFAULT_METADATA_LABEL.to_owned());
                self.exchange()?
                    .queue("fetch_remote_md", move |host: &dyn MetadataHost| {
                        store.fetch_and_watch(host, &name, &label)
                    })
            }
        }
    }

    /// Tells a peer to forget this agent, or removes its keys from the central store so every
    /// watching peer forgets it (`invalidateLocalMD`). Returns once queued.
    pub fn invalidate_local_md(&self, opts: Option<&OptArgs>) -> Result<()> {
        let name = self.inner.name.clone();
        match self.route(opts)? {
            Route::Peer(ip, port) => self.push_later(
                "invalidate_local_md",
                ip,
                port,
                Command::Invalidate,
                name.into_bytes(),
            ),
            Route::Store(store) => self
                .exchange()?
                .queue("invalidate_local_md", move |_: &dyn MetadataHost| {
                    store.remove(&name)
                }),
        }
    }

    fn push_later(
        &self,
        what: &'static str,
        ip: String,
        port: u16,
        cmd: Command,
        payload: Vec<u8>,
    ) -> Result<()> {
        self.exchange()?
            .queue(what, move |host: &dyn MetadataHost| {
                p2p::push(&ip, port, host.auth_secret(), cmd, &payload)
            })
    }
}

/// The agent as its exchange sees it (see `MetadataHost`).
impl MetadataHost for AgentInner {
    fn name(&self) -> &str {
        &self.name
    }

    fn auth_secret(&self) -> Option<&[u8]> {
        self.config.auth_secret.as_deref()
    }

    fn local_md(&self) -> Result<Vec<u8>> {
        AgentInner::local_md(self)
    }

    fn load_remote_md(&self, blob: &[u8]) -> Result<String> {
        AgentInner::load_remote_md(self, blob)
    }

    fn invalidate_remote_md(&self, name: &str) -> Result<()> {
        AgentInner::invalidate_remote_md(self, name)
    }

    fn remote_conns(&self, name: &str) -> Option<Conns> {
        AgentInner::remote_conns(self, name)
    }

    fn incarnation_answers(&self, name: &str, conns: &[(String, Vec<u8>)]) -> bool {
        AgentInner::incarnation_answers(self, name, conns)
    }
}
