//! The default network backend, listed as plugin **"UCX"** for compatibility (there is no UCX
//! inside). Per peer it picks the cheapest route: a direct copy when the peer agent lives in
//! this process, cross-memory attach when it is another process on this host, TCP otherwise.
//! Every agent runs a control listener for notifications, liveness and TCP transfers; its
//! address is part of the connection info.

mod access;
mod cma;
pub mod conninfo;
mod executor;
pub mod identity;
mod inline;
mod memory;
mod mover;
mod peer;
pub mod proto;
mod regtab;
mod server;
pub mod shm;
#[cfg(feature = "cuda")]
mod vram;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::plugins::Plugin;
use super::{
    Backend, BackendContext, Capabilities, Completion, NotifQueue, Params, PeerHandle,
    ResolvedDesc, Target, XferJob,
};
use crate::registry::Region;
use crate::status::{NixlError, Result, err};
use crate::types::{MemType, XferOp};
use access::AccessTable;
use conninfo::ConnInfo;
use executor::Executor;
use mover::{Mover, PartTracker};
use peer::{NetPeer, Route};

/// The plugin entry for this backend.
pub const PLUGIN: Plugin = Plugin {
    name: "UCX",
    mem_types: MEM_TYPES,
    default_params,
    create,
};

#[cfg(not(feature = "cuda"))]
const MEM_TYPES: &[MemType] = &[MemType::Dram];
/// VRAM is served through `backend::cuda` (see `vram.rs`).
#[cfg(feature = "cuda")]
const MEM_TYPES: &[MemType] = &[MemType::Dram, MemType::Vram];

fn default_params() -> Params {
    [
        ("transport", "auto"),
        ("listen_addr", "0.0.0.0:0"),
        ("num_threads", "0"),
        // Same-host work up to this size completes inside `post` (caller plus workers):
        // no hand-off to a sleeping thread, as NIXL/UCX does for cross-memory attach.
        ("inline_max_bytes", "1073741824"),
        ("split_min_bytes", "4194304"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn create(ctx: &BackendContext, params: &Params) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(NetBackend::new(ctx, params)?))
}

/// Backend instances alive in this process, for the same-process route.
static IN_PROCESS: Mutex<Option<HashMap<u64, Weak<Shared>>>> = Mutex::new(None);

fn same_process_backend(instance: u64) -> Option<Weak<Shared>> {
    IN_PROCESS.lock().as_ref()?.get(&instance).cloned()
}

/// State shared by the backend, its listener threads and same-process peers.
pub struct Shared {
    agent_name: String,
    instance: u64,
    /// DRAM registrations; shared so that queued device copies can hold it read-locked until
    /// they complete.
    access: Arc<RwLock<AccessTable>>,
    /// Mirror of `access` in shared memory for same-host peers (written under `access`).
    regtab: Option<regtab::RegTableWriter>,
    notifs: Arc<NotifQueue>,
    peer_timeout: Duration,
    secret: Option<Vec<u8>>,
    shutting_down: AtomicBool,
    /// Connections the control listener serves.
    conns: Arc<crate::sockio::ConnSet>,
    /// The owning agent's metrics, when it records them.
    metrics: Option<Arc<crate::metrics::AgentMetrics>>,
    #[cfg(feature = "cuda")]
    vram: vram::VramState,
}

fn read_access(shared: &Shared) -> RwLockReadGuard<'_, AccessTable> {
    shared.access.read()
}

/// Parsed parameters.
struct Settings {
    force_tcp: bool,
    listen_addr: String,
    threads: usize,
    inline_max: u64,
    split_min: u64,
}

impl Settings {
    fn parse(params: &Params) -> Result<Settings> {
        let r = super::params::ParamReader::new(PLUGIN.name, params, default_params());
        let (get, num) = (|k: &str| r.get(k), |k: &str| r.num(k));
        let transport = std::env::var("NIXL_RS_TRANSPORT").unwrap_or_else(|_| get("transport"));
        let force_tcp = match transport.as_str() {
            "auto" => false,
            "tcp" => true,
            other => {
                return Err(err!(
                    InvalidParam,
                    "transport {other:?} is not one of auto, tcp"
                ));
            }
        };
        let threads = match num("num_threads")? {
            0 => std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(2, 8),
            n => n as usize,
        };
        Ok(Settings {
            force_tcp,
            listen_addr: get("listen_addr"),
            threads,
            inline_max: num("inline_max_bytes")?,
            split_min: num("split_min_bytes")?.max(4096),
        })
    }
}

/// The network backend.
pub struct NetBackend {
    mover: Mover,
    settings: Settings,
    params: Params,
    conn_info: Vec<u8>,
    listener_fd: i32,
    accept_thread: Mutex<Option<JoinHandle<()>>>,
    executor: Mutex<Option<Arc<Executor>>>,
    inflight: Mutex<Vec<Weak<Completion>>>,
}

impl NetBackend {
    fn new(ctx: &BackendContext, params: &Params) -> Result<NetBackend> {
        let settings = Settings::parse(params)?;
        let listener = TcpListener::bind(&settings.listen_addr)
            .map_err(|e| err!(Backend, "cannot listen on {}: {e}", settings.listen_addr))?;
        let port = listener
            .local_addr()
            .map_err(|e| err!(Backend, "listener address: {e}"))?
            .port();
        if !settings.force_tcp {
            identity::allow_peer_attach();
        }
        let instance = crate::util::random_u64();
        let regtab = regtab::RegTableWriter::create()
            .inspect_err(|e| {
                log::warn!("no shared registration table ({e}); same-host peers will use TCP")
            })
            .ok();
        let regtab_fd = regtab.as_ref().map_or(-1, regtab::RegTableWriter::fd);
        let shared = Arc::new(Shared {
            agent_name: ctx.agent_name.clone(),
            instance,
            access: Arc::new(RwLock::new(AccessTable::default())),
            regtab,
            notifs: ctx.notifs.clone(),
            peer_timeout: ctx.config.peer_timeout,
            secret: ctx.config.auth_secret.clone(),
            shutting_down: AtomicBool::new(false),
            conns: crate::sockio::ConnSet::new(server::MAX_CONNS),
            metrics: crate::metrics::for_agent(&ctx.agent_name),
            #[cfg(feature = "cuda")]
            vram: Default::default(),
        });
        IN_PROCESS
            .lock()
            .get_or_insert_with(HashMap::new)
            .insert(instance, Arc::downgrade(&shared));
        let conn_info = ConnInfo {
            process: identity::local(),
            instance,
            port,
            regtab_fd,
            addrs: identity::advertised_addrs(),
        }
        .encode();
        let listener_fd = listener.as_raw_fd();
        let accept_shared = shared.clone();
        let accept_thread = std::thread::Builder::new()
            .name("nixl-listen".into())
            .spawn(move || server::accept_loop(accept_shared, listener))
            .map_err(|e| err!(Backend, "cannot start the listener thread: {e}"))?;
        let mut effective = default_params();
        effective.extend(params.clone());
        effective.insert("listen_port".into(), port.to_string());
        let executor = Arc::new(Executor::new("nixl-xfer", settings.threads));
        Ok(NetBackend {
            mover: Mover { shared },
            settings,
            params: effective,
            conn_info,
            listener_fd,
            accept_thread: Mutex::new(Some(accept_thread)),
            executor: Mutex::new(Some(executor)),
            inflight: Mutex::new(Vec::new()),
        })
    }

    fn executor(&self) -> Result<Arc<Executor>> {
        self.executor.lock().clone().ok_or_else(|| {
            err!(
                Backend,
                "agent {} is shutting down",
                self.mover.shared.agent_name
            )
        })
    }

    /// Whether a job should complete inside `post`: short same-process or same-host work.
    fn runs_inline(&self, job: &XferJob) -> bool {
        job.total_bytes <= self.settings.inline_max && !self.mover.goes_over_tcp(&job.target)
    }

    /// Runs a job on the worker threads, split into parts; the last part to finish sends the
    /// notification (only if every part succeeded) and completes the request.
    fn post_async(&self, job: XferJob) -> Result<Arc<Completion>> {
        let executor = self.executor()?;
        let parts = memory::split(&job, executor.threads(), self.settings.split_min);
        let completion = Arc::new(Completion::new(1));
        let tracker = Arc::new(PartTracker::new(parts.len()));
        let job = Arc::new(job);
        {
            let mut inflight = self.inflight.lock();
            inflight.retain(|w| w.strong_count() > 0);
            inflight.push(Arc::downgrade(&completion));
        }
        for (local, remote) in parts {
            let (completion, tracker, job, mover) = (
                completion.clone(),
                tracker.clone(),
                job.clone(),
                self.mover.clone(),
            );
            executor.spawn(move || {
                let result = if completion.enter() {
                    let r = mover.move_bytes(&job.target, job.op, &local, &remote, &|| {
                        completion.is_canceled()
                    });
                    completion.leave();
                    r
                } else {
                    Err(err!(Canceled, "the request was released"))
                };
                if let Some(outcome) = tracker.finish(result) {
                    let outcome = outcome.and_then(|()| match &job.notif {
                        Some(msg) => mover.notify(&job.target, msg),
                        None => Ok(()),
                    });
                    completion.finish_part(outcome);
                }
            });
        }
        Ok(completion)
    }
}

impl Backend for NetBackend {
    fn name(&self) -> &str {
        PLUGIN.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NETWORK
    }

    fn mem_types(&self) -> &[MemType] {
        MEM_TYPES
    }

    fn params(&self) -> Params {
        self.params.clone()
    }

    fn register(&self, mem: MemType, region: &Region) -> Result<()> {
        #[cfg(feature = "cuda")]
        if mem == MemType::Vram {
            return vram::register(&self.mover.shared, region);
        }
        if mem != MemType::Dram {
            return Err(err!(
                NotSupported,
                "the network backend serves DRAM, not {mem}"
            ));
        }
        let shared = &self.mover.shared;
        let mut access = write_access(shared);
        access.insert(region.key, region.desc);
        if let Some(t) = &shared.regtab {
            t.insert(region.key, region.desc);
        }
        Ok(())
    }

    fn deregister(&self, _mem: MemType, region: &Region) {
        // Taking the write lock waits for in-process copies and served requests in flight.
        let shared = &self.mover.shared;
        #[cfg(feature = "cuda")]
        if _mem == MemType::Vram {
            return vram::deregister(shared, region);
        }
        shm::forget_region(region.key);
        let slot = {
            let mut access = write_access(shared);
            access.remove(region.key);
            shared.regtab.as_ref().and_then(|t| t.remove(region.key))
        };
        // Same-host peers copy without this process: wait (without the lock) for the copies
        // they started before the removal, so none touches the memory once this returns.
        if let (Some(t), Some(slot)) = (&shared.regtab, slot)
            && !t.drain(slot, shared.peer_timeout)
        {
            log::warn!(
                "agent {}: a same-host peer's copy into {:#x}+{} did not end within the peer \
                 timeout; treating that peer as dead",
                shared.agent_name,
                region.desc.addr,
                region.desc.len
            );
        }
    }

    fn public_data(&self, mem: MemType, region: &Region) -> Vec<u8> {
        match mem {
            #[cfg(feature = "cuda")]
            MemType::Vram => vram::public_data(&self.mover.shared, region),
            MemType::Dram => {
                let shared = &self.mover.shared;
                let backing = shm::backing_of(region);
                if let (Some(b), Some(t)) = (backing, &shared.regtab) {
                    // Peers map only where the table says; written under the writers' lock.
                    let _access = write_access(shared);
                    t.set_backing(region.key, b);
                }
                backing.map_or_else(Vec::new, shm::encode)
            }
            _ => Vec::new(),
        }
    }

    fn load_remote_region(&self, peer: &PeerHandle, mem: MemType, region: &Region) -> Result<()> {
        match mem {
            #[cfg(feature = "cuda")]
            MemType::Vram => vram::load_remote_region(&self.mover.shared, peer, region),
            MemType::Dram => shm::load_remote_region(peer, region),
            _ => Ok(()),
        }
    }

    fn conn_info(&self) -> Vec<u8> {
        self.conn_info.clone()
    }

    fn load_remote(&self, remote_agent: &str, conn_info: &[u8]) -> Result<PeerHandle> {
        let info = ConnInfo::decode(conn_info)?;
        let shared = &self.mover.shared;
        let metrics = shared
            .metrics
            .as_ref()
            .map(|m| crate::metrics::peers::PeerMetrics::new(m, remote_agent));
        let peer = NetPeer::new(
            remote_agent,
            info,
            &shared.agent_name,
            shared.peer_timeout,
            shared.secret.clone(),
            self.settings.force_tcp,
            metrics,
        )?;
        Ok(Arc::new(peer))
    }

    fn transport(
        &self,
        peer: &PeerHandle,
        local_mem: MemType,
        remote_mem: MemType,
        remote: &[ResolvedDesc],
    ) -> Option<&'static str> {
        let p = peer.downcast_ref::<NetPeer>()?;
        Some(p.transport_for(local_mem, remote_mem, remote))
    }

    fn peer_alive(&self, peer: &PeerHandle) -> bool {
        peer.downcast_ref::<NetPeer>()
            .is_some_and(NetPeer::is_alive)
    }

    fn disconnect(&self, peer: &PeerHandle) {
        if let Some(p) = peer.downcast_ref::<NetPeer>() {
            shm::forget_peer(p.info.instance);
            p.close();
            #[cfg(feature = "cuda")]
            vram::disconnect(&self.mover.shared, p);
        }
    }

    fn post(&self, job: XferJob) -> Result<Arc<Completion>> {
        // Wire limits are checked before any byte moves, whatever the route.
        proto::check_notif(job.notif.as_ref().map_or(0, Vec::len))?;
        #[cfg(feature = "cuda")]
        if vram::involves_vram(&job) {
            return vram::post(self, job);
        }
        if job.local_mem != MemType::Dram || job.remote_mem != MemType::Dram {
            return Err(err!(
                NotSupported,
                "the network backend moves DRAM to DRAM, not {} to {}",
                job.local_mem,
                job.remote_mem
            ));
        }
        if !self.runs_inline(&job) {
            return self.post_async(job);
        }
        let executor = self.executor.lock().clone();
        let outcome = inline::run(
            &self.mover,
            executor.as_ref(),
            &job,
            self.settings.split_min,
        )
        .and_then(|()| match &job.notif {
            Some(msg) => self.mover.notify(&job.target, msg),
            None => Ok(()),
        });
        Ok(Arc::new(match outcome {
            Ok(()) => Completion::done(),
            Err(e) => Completion::failed(e),
        }))
    }

    fn gen_notif(&self, target: &Target, msg: &[u8]) -> Result<()> {
        proto::check_notif(msg.len())?;
        self.mover.notify(target, msg)
    }

    fn shutdown(&self) {
        let shared = &self.mover.shared;
        if shared.shutting_down.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(map) = IN_PROCESS.lock().as_mut() {
            map.remove(&shared.instance);
        }
        // Unblock accept() and every served connection, then wait for their threads.
        // SAFETY: the listener fd stays open until the accept thread (its owner) returns.
        unsafe { libc::shutdown(self.listener_fd, libc::SHUT_RDWR) };
        if let Some(t) = self.accept_thread.lock().take() {
            let _ = t.join();
        }
        shared.conns.close_all();
        for c in std::mem::take(&mut *self.inflight.lock()) {
            if let Some(c) = c.upgrade() {
                c.cancel_and_wait();
            }
        }
        self.executor.lock().take();
        let mut access = write_access(shared);
        if let Some(t) = &shared.regtab {
            let stuck = t.clear(access.keys(), shared.peer_timeout);
            if stuck > 0 {
                log::warn!(
                    "agent {}: {stuck} same-host peer copies did not end within the peer timeout",
                    shared.agent_name
                );
            }
        }
        access.clear();
        #[cfg(feature = "cuda")]
        vram::clear(shared);
    }
}

impl Drop for NetBackend {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write_access(shared: &Shared) -> RwLockWriteGuard<'_, AccessTable> {
    shared.access.write()
}
