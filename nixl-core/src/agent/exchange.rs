//! Asynchronous metadata exchange (`sendLocalMD`, `fetchRemoteMD`, ...): through a peer's
//! listener when `opts.ip_addr` is set, else through the central store if one is configured.

use super::{Agent, AgentInner, OptArgs};
use crate::desc::RegDescList;
use crate::exchange::frame::Command;
use crate::exchange::{Exchange, p2p};
use crate::status::{Result, err};

/// Where an exchange call goes.
enum Route<'a> {
    Peer(&'a str, u16),
}

fn route(opts: Option<&OptArgs>) -> Result<Route<'_>> {
    match opts.and_then(|o| o.ip_addr.as_deref().map(|ip| (ip, o.port))) {
        Some((ip, port)) => Ok(Route::Peer(ip, port)),
        None => Err(err!(
            NotSupported,
            "no peer address given (set ip_addr/port) and no central metadata store is configured"
        )),
    }
}

impl Agent {
    fn exchange(&self) -> Result<&Exchange> {
        self.inner
            .exchange
            .get()
            .ok_or_else(|| err!(Backend, "metadata exchange is not running"))
    }

    /// Publishes this agent's metadata to a peer's listener (`opts.ip_addr`/`opts.port`)
    /// (`sendLocalMD`). Returns once queued.
    pub fn send_local_md(&self, opts: Option<&OptArgs>) -> Result<()> {
        let md = self.inner.local_md()?;
        match route(opts)? {
            Route::Peer(ip, port) => self.push_later("send_local_md", ip, port, Command::Load, md),
        }
    }

    /// Publishes part of this agent's metadata (`sendLocalPartialMD`); empty `descs` sends
    /// connection info only.
    pub fn send_local_partial_md(&self, descs: &RegDescList, opts: Option<&OptArgs>) -> Result<()> {
        let md = self.inner.local_partial_md(descs, opts)?;
        match route(opts)? {
            Route::Peer(ip, port) => {
                self.push_later("send_local_partial_md", ip, port, Command::Load, md)
            }
        }
    }

    /// Asks a peer's listener for `name`'s metadata and loads it (`fetchRemoteMD`); returns once
    /// queued, and `check_remote_md(name, ..)` tells when it has arrived.
    pub fn fetch_remote_md(&self, name: &str, opts: Option<&OptArgs>) -> Result<()> {
        if name.is_empty() {
            return Err(err!(InvalidParam, "fetch_remote_md needs an agent name"));
        }
        match route(opts)? {
            Route::Peer(ip, port) => {
                let (ip, name) = (ip.to_owned(), name.to_owned());
                self.exchange()?
                    .queue("fetch_remote_md", move |inner: &AgentInner| {
                        let md = p2p::fetch(&ip, port)?;
                        let loaded = inner.load_remote_md(&md)?;
                        if loaded != name {
                            log::warn!(
                                "fetched metadata from {ip}:{port} names agent {loaded}, not {name}"
                            );
                        }
                        Ok(())
                    })
            }
        }
    }

    /// Tells a peer to forget this agent (`invalidateLocalMD`). Returns once queued.
    pub fn invalidate_local_md(&self, opts: Option<&OptArgs>) -> Result<()> {
        match route(opts)? {
            Route::Peer(ip, port) => {
                let name = self.inner.name.clone().into_bytes();
                self.push_later("invalidate_local_md", ip, port, Command::Invalidate, name)
            }
        }
    }

    fn push_later(
        &self,
        what: &'static str,
        ip: &str,
        port: u16,
        cmd: Command,
        payload: Vec<u8>,
    ) -> Result<()> {
        let ip = ip.to_owned();
        self.exchange()?.queue(what, move |_: &AgentInner| {
            p2p::push(&ip, port, cmd, &payload)
        })
    }
}
