//! Making transfer requests: resolving descriptor lists against registrations once
//! (`prep_xfer_dlist`), building requests from prepped lists by index (`make_xfer_req`) or
//! directly from two lists (`create_xfer_req`).

use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::keys::KeyRuns;
use super::memory::MemTables;
use super::pairs;
use super::remote::RemoteAgent;
use super::xfer::{PostState, ReqMetrics, XferRequest};
use super::{Agent, AgentInner, OptArgs};
use crate::backend::{ResolvedDesc, Target};
use crate::desc::{Desc, XferDescList};
use crate::metrics::{CachedSet, HandleKey};
use crate::status::{Result, err};
use crate::types::{MemType, XferOp};

/// Which side of a transfer a prepped list describes.
#[derive(Clone)]
enum Side {
    /// The initiator's own memory.
    Local,
    /// A remote agent's memory (or this agent's, addressed by its own name).
    Remote(RemoteSide),
}

/// The target of a request: this agent (loopback) or a loaded remote incarnation.
#[derive(Clone)]
pub(super) enum RemoteSide {
    Loopback,
    Agent(Arc<RemoteAgent>),
}

impl RemoteSide {
    pub(super) fn is_valid(&self) -> bool {
        match self {
            RemoteSide::Loopback => true,
            RemoteSide::Agent(r) => r.is_valid(),
        }
    }
}

/// A descriptor list resolved once against registrations (`nixlDlistH`), for building many
/// requests by index with [`Agent::make_xfer_req`].
///
/// Memory: the list itself, shared with the caller when prepped with
/// [`Agent::prep_shared_dlist`], plus per backend that covers it 16 bytes per run of
/// descriptors in one registration (one run for a list in address order over one buffer).
pub struct PreppedDlist {
    agent: Weak<AgentInner>,
    side: Side,
    list: Arc<XferDescList>,
    /// Per candidate backend (in preference order), the key of each descriptor's region.
    keys: Vec<(usize, KeyRuns)>,
    /// The list's shape if it is regular (entries computed by `make_xfer_req`, not read);
    /// found by the first request made from the list, so prepping reads the list once.
    regular: std::sync::OnceLock<Option<pairs::Regular>>,
}

impl PreppedDlist {
    /// Number of descriptors.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True if the list is empty.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The memory type of the list.
    pub fn mem_type(&self) -> MemType {
        self.list.mem_type()
    }

    fn descs(&self) -> &[Desc] {
        self.list.descs()
    }

    fn regular(&self) -> Option<pairs::Regular> {
        *self
            .regular
            .get_or_init(|| pairs::Regular::detect(self.descs()))
    }
}

/// Resolves `descs` against one backend's tables; `Err(i)` if `descs[i]` is uncovered.
fn resolve_keys(
    tables: &MemTables,
    mem: MemType,
    descs: &[Desc],
) -> std::result::Result<KeyRuns, usize> {
    KeyRuns::resolve(tables.get(mem), descs)
}

/// `descs` with their keys, into `out`.
fn resolved(descs: &[Desc], keys: &KeyRuns, mut out: Vec<ResolvedDesc>) -> Vec<ResolvedDesc> {
    out.extend(descs.iter().zip(keys.iter()).map(|(d, key)| ResolvedDesc {
        addr: d.addr,
        len: d.len,
        dev_id: d.dev_id,
        key,
    }));
    out
}

impl Agent {
    fn remote_side(&self, name: &str) -> Result<RemoteSide> {
        if name == self.inner.name {
            return Ok(RemoteSide::Loopback);
        }
        self.inner
            .remotes
            .read()
            .get(name)
            .cloned()
            .map(RemoteSide::Agent)
            .ok_or_else(|| err!(NotFound, "no metadata loaded for agent {name}"))
    }

    /// For each backend that could serve `mem` on `side`, the keys covering `descs`; if none
    /// covers them all, the first descriptor a backend with registrations could not place.
    fn resolve_all(
        &self,
        side: &Side,
        mem: MemType,
        descs: &[Desc],
        opts: Option<&OptArgs>,
    ) -> (Vec<(usize, KeyRuns)>, Option<Desc>) {
        let candidates = self.candidate_backends(mem, opts);
        let backends = self.inner.backends.read();
        let local = self.inner.local.read();
        let mut uncovered = None;
        let keys = candidates
            .into_iter()
            .filter_map(|b| {
                let keys = match side {
                    Side::Local => resolve_keys(&local[b], mem, descs),
                    Side::Remote(RemoteSide::Loopback) => {
                        if !backends[b].engine.capabilities().local {
                            return None;
                        }
                        resolve_keys(&local[b], mem, descs)
                    }
                    Side::Remote(RemoteSide::Agent(remote)) => {
                        remote.link(b)?;
                        let tables = remote.tables.read();
                        resolve_keys(tables.get(&b)?, mem, descs)
                    }
                };
                keys.map(|k| (b, k))
                    .map_err(|i| uncovered = uncovered.or(Some(descs[i])))
                    .ok()
            })
            .collect();
        (keys, uncovered)
    }

    /// Resolves a descriptor list once (`prepXferDlist`). `agent` is `None` (or empty, NIXL's
    /// `NIXL_INIT_AGENT`) for the initiator's own memory, a remote agent's name for its memory,
    /// or this agent's own name for loopback targets.
    ///
    /// Every descriptor must lie inside one registration (NOT_FOUND otherwise). The list is
    /// copied; [`prep_shared_dlist`](Self::prep_shared_dlist) shares it instead.
    pub fn prep_xfer_dlist(
        &self,
        agent: Option<&str>,
        descs: &XferDescList,
        opts: Option<&OptArgs>,
    ) -> Result<PreppedDlist> {
        self.prep_shared_dlist(agent, Arc::new(descs.clone()), opts)
    }

    /// [`prep_xfer_dlist`](Self::prep_xfer_dlist) keeping a reference to `descs` rather
    /// than a copy: for callers that hold their lists in an `Arc` and copy on write.
    pub fn prep_shared_dlist(
        &self,
        agent: Option<&str>,
        descs: Arc<XferDescList>,
        opts: Option<&OptArgs>,
    ) -> Result<PreppedDlist> {
        let side = match agent {
            None | Some("") => Side::Local,
            Some(name) => Side::Remote(self.remote_side(name)?),
        };
        let (keys, uncovered) = self.resolve_all(&side, descs.mem_type(), descs.descs(), opts);
        if keys.is_empty() && !descs.is_empty() {
            return Err(match uncovered {
                Some(d) => err!(
                    NotFound,
                    "descriptor {d:?} is not inside one registered {} region",
                    descs.mem_type()
                ),
                None => err!(
                    NotFound,
                    "no backend has registrations covering every descriptor of the list"
                ),
            });
        }
        Ok(PreppedDlist {
            agent: Arc::downgrade(&self.inner),
            side,
            regular: std::sync::OnceLock::new(),
            list: descs,
            keys,
        })
    }

    /// Builds a request from two prepped lists and index arrays (`makeXferReq`). Indices are
    /// checked; consecutive pairs contiguous on both sides are merged unless `skip_desc_merge`.
    pub fn make_xfer_req(
        &self,
        op: XferOp,
        local: &PreppedDlist,
        local_idx: &[i32],
        remote: &PreppedDlist,
        remote_idx: &[i32],
        opts: Option<&OptArgs>,
    ) -> Result<XferRequest> {
        let ours = |l: &PreppedDlist| std::ptr::eq(l.agent.as_ptr(), Arc::as_ptr(&self.inner));
        if !ours(local) || !ours(remote) {
            return Err(err!(
                InvalidParam,
                "a prepped list belongs to another agent"
            ));
        }
        let Side::Local = local.side else {
            return Err(err!(
                InvalidParam,
                "the local list was prepped for a remote agent"
            ));
        };
        let Side::Remote(remote_side) = &remote.side else {
            return Err(err!(
                InvalidParam,
                "the remote list was prepped as local memory"
            ));
        };
        if !remote_side.is_valid() {
            return Err(err!(
                NotFound,
                "the remote agent's metadata was invalidated since the list was prepped"
            ));
        }
        if local_idx.len() != remote_idx.len() || local_idx.is_empty() {
            return Err(err!(
                InvalidParam,
                "index lists must be non-empty and of equal length ({} vs {})",
                local_idx.len(),
                remote_idx.len()
            ));
        }
        let hinted = |b: usize| {
            opts.is_none_or(|o| o.backends.is_empty() || o.backends.iter().any(|h| h.0 == b))
        };
        let (backend, lkeys, rkeys) = local
            .keys
            .iter()
            .filter(|(b, _)| hinted(*b))
            .find_map(|(b, lk)| {
                remote
                    .keys
                    .iter()
                    .find(|(rb, _)| rb == b)
                    .map(|(_, rk)| (*b, lk, rk))
            })
            .ok_or_else(|| err!(NotFound, "no backend serves both prepped lists"))?;
        let merge = !opts.is_some_and(|o| o.skip_desc_merge);
        let gathered = pairs::gather(
            &pairs::Side {
                descs: local.descs(),
                keys: lkeys,
                regular: local.regular(),
                idx: local_idx,
                which: "local",
            },
            &pairs::Side {
                descs: remote.descs(),
                keys: rkeys,
                regular: remote.regular(),
                idx: remote_idx,
                which: "remote",
            },
            merge,
            &self.inner.desc_pool,
        )?;
        self.build_request(
            op,
            backend,
            (local.mem_type(), remote.mem_type()),
            gathered,
            remote_side.clone(),
            opts,
        )
    }

    /// Builds a request directly from two descriptor lists (`createXferReq`); no merging.
    pub fn create_xfer_req(
        &self,
        op: XferOp,
        local: &XferDescList,
        remote: &XferDescList,
        remote_agent: &str,
        opts: Option<&OptArgs>,
    ) -> Result<XferRequest> {
        if local.len() != remote.len() || local.is_empty() {
            return Err(err!(
                InvalidParam,
                "descriptor lists must be non-empty and of equal length ({} vs {})",
                local.len(),
                remote.len()
            ));
        }
        if let Some((l, r)) = local
            .descs()
            .iter()
            .zip(remote.descs())
            .find(|(l, r)| l.len != r.len)
        {
            return Err(err!(
                InvalidParam,
                "pair length mismatch: local {} bytes, remote {}",
                l.len,
                r.len
            ));
        }
        let remote_side = self.remote_side(remote_agent)?;
        let (lkeys, _) = self.resolve_all(&Side::Local, local.mem_type(), local.descs(), opts);
        if lkeys.is_empty() {
            return Err(err!(
                NotFound,
                "local descriptors are not inside registered {} memory",
                local.mem_type()
            ));
        }
        let (rkeys, _) = self.resolve_all(
            &Side::Remote(remote_side.clone()),
            remote.mem_type(),
            remote.descs(),
            opts,
        );
        let (backend, lk, rk) = lkeys
            .iter()
            .find_map(|(b, lk)| rkeys.iter().find(|(rb, _)| rb == b).map(|(_, rk)| (*b, lk, rk)))
            .ok_or_else(|| {
                err!(NotFound, "remote descriptors are not inside memory {remote_agent} registered with a common backend")
            })?;
        let pool = &self.inner.desc_pool;
        let gathered = pairs::Gathered {
            local: resolved(local.descs(), lk, pool.take(local.len())),
            remote: resolved(remote.descs(), rk, pool.take(remote.len())),
            total_bytes: local.descs().iter().map(|d| d.len).sum(),
        };
        self.build_request(
            op,
            backend,
            (local.mem_type(), remote.mem_type()),
            gathered,
            remote_side,
            opts,
        )
    }

    fn build_request(
        &self,
        op: XferOp,
        backend: usize,
        (local_mem, remote_mem): (MemType, MemType),
        descs: pairs::Gathered,
        remote_side: RemoteSide,
        opts: Option<&OptArgs>,
    ) -> Result<XferRequest> {
        let pairs::Gathered {
            local,
            remote,
            total_bytes,
        } = descs;
        let engine = self.inner.backends.read()[backend].engine.clone();
        let target = match &remote_side {
            RemoteSide::Loopback => Target::Loopback,
            RemoteSide::Agent(r) => Target::Peer(
                r.link(backend)
                    .ok_or_else(|| {
                        err!(NotFound, "no connection to {} through this backend", r.name)
                    })?
                    .peer
                    .clone(),
            ),
        };
        let metrics = self.inner.metrics.as_ref().map(|m| {
            let file = |mem| matches!(mem, MemType::File | MemType::Obj | MemType::Blk);
            let transport = match &target {
                Target::Loopback if file(local_mem) || file(remote_mem) => "file",
                Target::Loopback => "same-process",
                Target::Peer(p) => engine
                    .transport(p, local_mem, remote_mem, &remote)
                    .unwrap_or("unknown"),
            };
            let key = HandleKey {
                backend,
                op,
                local_mem,
                remote_mem,
                transport,
            };
            match &remote_side {
                RemoteSide::Loopback => {
                    ReqMetrics::Own(
                        m.loopback_cache()
                            .get(m, &self.inner.name, engine.name(), key),
                    )
                }
                RemoteSide::Agent(r) => match r.metrics.locate(m, &r.name, engine.name(), key) {
                    CachedSet::Slot(i) => ReqMetrics::Peer(i),
                    CachedSet::Spilled(m) => ReqMetrics::Own(m),
                },
            }
        });
        Ok(XferRequest {
            agent: Arc::downgrade(&self.inner),
            op,
            backend,
            engine,
            local_mem,
            remote_mem,
            local: Arc::new(local),
            remote: Arc::new(remote),
            remote_side,
            target,
            total_bytes,
            checked_generation: self.inner.local_generation.load(Ordering::Acquire).into(),
            state: Mutex::new(PostState::new(opts.and_then(|o| o.notif.clone()))),
            metrics,
        })
    }
}

impl std::fmt::Debug for PreppedDlist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreppedDlist")
            .field("mem_type", &self.mem_type())
            .field("descs", &self.len())
            .finish_non_exhaustive()
    }
}
