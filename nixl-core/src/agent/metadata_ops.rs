//! Producing, loading and invalidating agent metadata.

use std::sync::Arc;

use super::remote::{Link, RemoteAgent};
use super::{Agent, AgentInner, OptArgs};
use crate::desc::{RegDescList, XferDescList};
use crate::metadata::{AgentMetadata, RemoteRegion, Section};
use crate::registry::Region;
use crate::status::{Result, err};
use crate::types::MemType;

impl AgentInner {
    /// This agent's full metadata blob (`getLocalMD`): connection info of every remote-capable
    /// backend and every registration they hold.
    pub(crate) fn local_md(&self) -> Result<Vec<u8>> {
        self.build_md(None, true, None)
    }

    /// Partial metadata (`getLocalPartialMD`): with no descriptors, connection info only; with
    /// descriptors, just those registrations (each must exactly match one), plus connection
    /// info if `include_conn_info` is set.
    pub(crate) fn local_partial_md(
        &self,
        descs: &RegDescList,
        opts: Option<&OptArgs>,
    ) -> Result<Vec<u8>> {
        if descs.is_empty() {
            return self.build_md(Some(descs), true, opts);
        }
        let include = opts.is_some_and(|o| o.include_conn_info);
        self.build_md(Some(descs), include, opts)
    }

    fn build_md(
        &self,
        only: Option<&RegDescList>,
        with_conns: bool,
        opts: Option<&OptArgs>,
    ) -> Result<Vec<u8>> {
        let backends = self.backends.read();
        let local = self.local.read();
        let hinted = |b: usize| {
            opts.is_none_or(|o| o.backends.is_empty() || o.backends.iter().any(|h| h.0 == b))
        };
        let remote_capable: Vec<usize> = (0..backends.len())
            .filter(|&b| backends[b].engine.capabilities().remote && hinted(b))
            .collect();
        if remote_capable.is_empty() {
            return Err(err!(
                InvalidParam,
                "agent {} has no backend that peers can reach",
                self.name
            ));
        }
        let conns = if with_conns {
            remote_capable
                .iter()
                .map(|&b| (backends[b].name.clone(), backends[b].engine.conn_info()))
                .collect()
        } else {
            Vec::new()
        };
        let mut sections = Vec::new();
        for &b in &remote_capable {
            let engine = backends[b].engine.as_ref();
            for mem in MemType::ALL {
                let table = local[b].get(mem);
                let regions: Vec<RemoteRegion> = match only {
                    None => table
                        .regions()
                        .iter()
                        .map(|r| export(engine, mem, r))
                        .collect(),
                    Some(list) if list.mem_type() != mem || list.is_empty() => Vec::new(),
                    Some(list) => list
                        .descs()
                        .iter()
                        .map(|d| {
                            table
                                .find_exact(&d.desc)
                                .map(|pos| export(engine, mem, &table.regions()[pos]))
                                .ok_or_else(|| {
                                    err!(
                                        NotFound,
                                        "{:?} is not registered with {}",
                                        d.desc,
                                        backends[b].name
                                    )
                                })
                        })
                        .collect::<Result<_>>()?,
                };
                if !regions.is_empty() {
                    sections.push(Section {
                        backend: backends[b].name.clone(),
                        mem_type: mem,
                        regions,
                    });
                }
            }
        }
        Ok(AgentMetadata {
            name: self.name.clone(),
            partial: only.is_some(),
            conns,
            sections,
        }
        .encode())
    }

    /// Loads a remote agent's metadata (`loadRemoteMD`) and returns its name.
    ///
    /// Additive (partial metadata adds registrations) and idempotent. Refuses this agent's own
    /// name (INVALID_PARAM) and changed connection info for a remote still believed alive
    /// (NOT_ALLOWED): invalidate it first, or let a failed transfer drop it.
    pub(crate) fn load_remote_md(&self, blob: &[u8]) -> Result<String> {
        let md = AgentMetadata::decode(blob)?;
        if md.name == self.name {
            return Err(err!(
                InvalidParam,
                "metadata of agent {} is this agent's own",
                md.name
            ));
        }
        self.drop_if_replaced_and_gone(&md)?;
        let backends = self.backends.read();
        let backend_index = |name: &str| backends.iter().position(|b| b.name == name);
        let mut remotes = self.remotes.write();
        let remote = match remotes.get(&md.name) {
            Some(known) => {
                for (backend, info) in &md.conns {
                    let changed = backend_index(backend)
                        .and_then(|b| known.link(b))
                        .is_some_and(|link| link.conn_info != *info);
                    if changed {
                        return Err(err!(
                            NotAllowed,
                            "agent {} is already loaded with different connection info; invalidate it first",
                            md.name
                        ));
                    }
                }
                known.clone()
            }
            None => {
                let mut links = Vec::new();
                let mut last_error = None;
                for (backend, info) in &md.conns {
                    let Some(b) = backend_index(backend) else {
                        continue;
                    };
                    match backends[b].engine.load_remote(&md.name, info) {
                        Ok(peer) => links.push(Link {
                            backend: b,
                            conn_info: info.clone(),
                            peer,
                        }),
                        Err(e) => last_error = Some(e),
                    }
                }
                if links.is_empty() {
                    return Err(match last_error {
                        Some(e) => err!(
                            Backend,
                            "cannot use the connection info of {}: {}",
                            md.name,
                            e.message()
                        ),
                        None => err!(
                            Backend,
                            "metadata of {} has no connection info for any backend of this agent",
                            md.name
                        ),
                    });
                }
                let remote = Arc::new(RemoteAgent::new(md.name.clone(), links));
                remotes.insert(md.name.clone(), remote.clone());
                if let Some(m) = &self.metrics {
                    m.peer_loaded(&md.name);
                }
                remote
            }
        };
        let mut tables = remote.tables.write();
        for section in &md.sections {
            let Some(b) = backend_index(&section.backend) else {
                continue;
            };
            if remote.link(b).is_none() {
                continue;
            }
            let link = remote.link(b).expect("checked above");
            let table = tables.entry(b).or_default().get_mut(section.mem_type);
            for r in &section.regions {
                let region = Region {
                    desc: r.desc,
                    key: r.key,
                    meta: Arc::from(&[][..]),
                    public: Arc::from(r.public.as_slice()),
                };
                backends[b]
                    .engine
                    .load_remote_region(&link.peer, section.mem_type, &region)?;
                table.upsert(region);
            }
        }
        Ok(md.name)
    }

    /// If `md` names a known agent with different connection info, checks (without holding
    /// locks) whether the loaded incarnation still answers: if it does, loading is NOT_ALLOWED;
    /// if it is gone, it is dropped so the new incarnation can load.
    fn drop_if_replaced_and_gone(&self, md: &AgentMetadata) -> Result<()> {
        let Some(known) = self.remotes.read().get(&md.name).cloned() else {
            return Ok(());
        };
        let backends: Vec<_> = self
            .backends
            .read()
            .iter()
            .map(|b| (b.name.clone(), b.engine.clone()))
            .collect();
        let mut changed = false;
        for (backend, info) in &md.conns {
            let Some(b) = backends.iter().position(|(name, _)| name == backend) else {
                continue;
            };
            if let Some(link) = known.link(b).filter(|l| l.conn_info != *info) {
                changed = true;
                if backends[b].1.peer_alive(&link.peer) {
                    return Err(err!(
                        NotAllowed,
                        "agent {} is already loaded with different connection info and still answers; invalidate it first",
                        md.name
                    ));
                }
            }
        }
        if changed {
            log::info!(
                "agent {}: the loaded incarnation of {} is gone; loading the new one",
                self.name,
                md.name
            );
            self.on_remote_disconnect(&known);
        }
        Ok(())
    }

    /// The connection info (per backend name) of the loaded incarnation of `name`.
    pub(crate) fn remote_conns(&self, name: &str) -> Option<Vec<(String, Vec<u8>)>> {
        let remote = self.remotes.read().get(name).cloned()?;
        let backends = self.backends.read();
        Some(
            remote
                .links
                .iter()
                .map(|l| (backends[l.backend].name.clone(), l.conn_info.clone()))
                .collect(),
        )
    }

    /// Whether the incarnation of `name` described by `conns` still runs and answers (probed
    /// through fresh handles, bounded by the peer timeout, at most one second).
    pub(crate) fn incarnation_answers(&self, name: &str, conns: &[(String, Vec<u8>)]) -> bool {
        let engines: Vec<_> = self
            .backends
            .read()
            .iter()
            .map(|b| (b.name.clone(), b.engine.clone()))
            .collect();
        conns.iter().any(|(backend, info)| {
            let Some((_, engine)) = engines.iter().find(|(n, _)| n == backend) else {
                return false;
            };
            let Ok(peer) = engine.load_remote(name, info) else {
                return false;
            };
            let alive = engine.peer_alive(&peer);
            engine.disconnect(&peer);
            alive
        })
    }

    /// Forgets a remote agent (`invalidateRemoteMD`): its requests are refused from now on and
    /// its connections are closed. NOT_FOUND if it is unknown.
    pub(crate) fn invalidate_remote_md(&self, name: &str) -> Result<()> {
        let removed = self.remotes.write().remove(name);
        let remote =
            removed.ok_or_else(|| err!(NotFound, "no metadata loaded for agent {name}"))?;
        self.drop_remote(&remote);
        Ok(())
    }
}

impl Agent {
    /// This agent's full metadata blob (`getLocalMD`): connection info of every remote-capable
    /// backend and every registration they hold.
    pub fn local_md(&self) -> Result<Vec<u8>> {
        self.inner.local_md()
    }

    /// Partial metadata (`getLocalPartialMD`): with no descriptors, connection info only; with
    /// descriptors, just those registrations (each must exactly match one), plus connection
    /// info if `include_conn_info` is set.
    pub fn local_partial_md(&self, descs: &RegDescList, opts: Option<&OptArgs>) -> Result<Vec<u8>> {
        self.inner.local_partial_md(descs, opts)
    }

    /// Loads a remote agent's metadata (`loadRemoteMD`) and returns its name.
    ///
    /// Additive (partial metadata adds registrations) and idempotent. Refuses this agent's own
    /// name (INVALID_PARAM) and changed connection info for a remote still believed alive
    /// (NOT_ALLOWED): invalidate it first, or let a failed transfer drop it.
    pub fn load_remote_md(&self, blob: &[u8]) -> Result<String> {
        self.inner.load_remote_md(blob)
    }

    /// Forgets a remote agent (`invalidateRemoteMD`): its requests are refused from now on and
    /// its connections are closed. NOT_FOUND if it is unknown.
    pub fn invalidate_remote_md(&self, name: &str) -> Result<()> {
        self.inner.invalidate_remote_md(name)
    }

    /// Whether a remote agent's metadata is loaded (`checkRemoteMD`) and, if `descs` is not
    /// empty, whether one backend covers all of them. NOT_FOUND means "not (yet)".
    pub fn check_remote_md(&self, name: &str, descs: &XferDescList) -> Result<()> {
        let remote = self
            .inner
            .remotes
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| err!(NotFound, "no metadata loaded for agent {name}"))?;
        if descs.is_empty() {
            return Ok(());
        }
        let tables = remote.tables.read();
        let covered = tables.values().any(|t| {
            let table = t.get(descs.mem_type());
            descs.descs().iter().all(|d| table.covering(d).is_some())
        });
        if covered {
            Ok(())
        } else {
            Err(err!(
                NotFound,
                "agent {name} has not published registrations covering these descriptors"
            ))
        }
    }

    /// Checks that a remote agent's metadata is loaded (`makeConnection`). Connections are
    /// opened lazily on first use and kept.
    pub fn make_connection(&self, name: &str) -> Result<()> {
        if self.inner.remotes.read().contains_key(name) {
            Ok(())
        } else {
            Err(err!(NotFound, "no metadata loaded for agent {name}"))
        }
    }

    /// Names of the remote agents whose metadata is loaded.
    pub fn remote_agents(&self) -> Vec<String> {
        self.inner.remotes.read().keys().cloned().collect()
    }
}

impl AgentInner {
    /// Marks a remote incarnation invalid and closes its backend connections.
    pub(crate) fn drop_remote(&self, remote: &RemoteAgent) {
        remote.mark_invalid();
        let backends = self.backends.read();
        for link in &remote.links {
            backends[link.backend].engine.disconnect(&link.peer);
        }
    }

    /// Drops a remote that a transfer found disconnected, unless it was already replaced.
    pub(crate) fn on_remote_disconnect(&self, remote: &Arc<RemoteAgent>) {
        let mut remotes = self.remotes.write();
        if remotes
            .get(&remote.name)
            .is_some_and(|r| Arc::ptr_eq(r, remote))
        {
            remotes.remove(&remote.name);
            drop(remotes);
            log::warn!(
                "agent {}: remote {} disconnected; its metadata is dropped",
                self.name,
                remote.name
            );
            self.drop_remote(remote);
        }
    }
}

fn export(engine: &dyn crate::backend::Backend, mem: MemType, region: &Region) -> RemoteRegion {
    RemoteRegion {
        desc: region.desc,
        key: region.key,
        public: engine.public_data(mem, region),
    }
}
