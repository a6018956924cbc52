//! The **"LIBFABRIC"** backend: READ and WRITE by RMA through libfabric, so one code path
//! drives InfiniBand/RoCE (`verbs`), AWS EFA (`efa`), HPE Slingshot (`cxi`) and, in software,
//! `tcp;ofi_rxm` and `shm`.
//!
//! libfabric is loaded at run time (`dlopen("libfabric.so.1")`); without it the backend answers
//! NOT_SUPPORTED saying what to install, and everything else works. The provider is libfabric's
//! choice after its `FI_PROVIDER` filter, or the `provider` parameter; it is logged and shown in
//! the backend parameters, and never silently replaced. `num_endpoints` RDM endpoints per agent
//! (one domain, so one key per registration; each endpoint with its own completion queue and
//! progress thread, a request's RMAs spread over them); one address vector entry per peer and
//! endpoint; each registration's provider key travels in the agent metadata; a
//! notification is a message sent once every RMA of the transfer completed (writes are posted
//! with delivery-complete semantics, so the data is visible at the target first).
//! See `README.md` here for parameters, what was verified, and provider behaviour found.

mod ep;
mod notif_auth;
mod plan;
mod sys;
#[cfg(test)]
mod tests;
mod wire;
mod xfer;

use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::plugins::Plugin;
use super::{
    Backend, BackendContext, Capabilities, Completion, NotifQueue, Params, PeerHandle, Target,
    XferJob,
};
use crate::registry::Region;
use crate::status::{Result, err};
use crate::types::{MemType, XferOp};
use ep::Endpoint;
use xfer::{Done, LocalMr, OpCtx, OpKind, PeerLink, Throttle, Xfer};

/// The plugin entry for this backend.
pub const PLUGIN: Plugin = Plugin {
    name: "LIBFABRIC",
    mem_types: &[MemType::Dram],
    default_params,
    create,
};

fn default_params() -> Params {
    [
        // Empty: `FI_PROVIDER` if set, else libfabric's first choice.
        ("provider", ""),
        // Largest single RMA; larger descriptors are split.
        ("chunk_bytes", "8388608"),
        // Most local/remote range pairs in one RMA (capped by the provider's iov limits);
        // 1 posts one RMA per (merged) descriptor pair.
        ("max_iov", "4"),
        // Most RMAs in flight on each endpoint; 0: as many as the provider's queue takes.
        ("max_inflight", "0"),
        // "blocking": the progress thread sleeps in fi_cq_sread where the provider has a wait
        // object; "polled": it polls, backing off to 1 ms sleeps when idle; "auto": polled on
        // shm (whose fi_cq_sread does not wake), blocking elsewhere.
        ("progress", "auto"),
        // RDM endpoints, each with its own completion queue and progress thread; a request's
        // RMAs are spread over them (1 to 16). "auto": 2 where the progress threads sleep in
        // fi_cq_sread (tcp), 1 where they poll (shm): measured in BENCHMARKS.md.
        ("num_endpoints", "auto"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn create(ctx: &BackendContext, params: &Params) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(FabricBackend::new(ctx, params)?))
}

/// Receive buffers posted for notifications.
const RECV_BUFS: usize = 64;

/// A registration seen in a peer's metadata.
#[derive(Clone, Copy)]
struct RemoteMr {
    key: u64,
    base: u64,
}

/// A backend's handle on one remote agent.
struct FabricPeer {
    name: String,
    link: Arc<PeerLink>,
    regions: RwLock<HashMap<u64, RemoteMr>>,
}

/// The persistent contexts of the notification receive buffers (`OpCtx::boxed` pointers).
struct RecvContexts(Vec<usize>);

impl Drop for RecvContexts {
    fn drop(&mut self) {
        for &ctx in &self.0 {
            // SAFETY: dropped after the endpoint (field order in `Shared`), so the provider no
            // longer holds them; each came from `OpCtx::boxed` and is freed once, here.
            drop(unsafe { OpCtx::unpost(ctx as *mut std::ffi::c_void) });
        }
    }
}

/// One endpoint with its own completion queue, progress thread and bound on RMAs in flight.
pub struct Lane {
    ep: Endpoint,
    /// This endpoint in its own address vector (loopback transfers).
    self_addr: sys::fi_addr_t,
    /// Bounds the RMAs in flight on it; posters wait here for completions.
    throttle: Throttle,
    /// RMAs posted on it (how requests were spread).
    posted: AtomicUsize,
}

/// State shared by the backend and its progress threads.
pub struct Shared {
    /// The endpoints, at least one; the first also carries notifications.
    lanes: Vec<Lane>,
    agent_name: String,
    notifs: Arc<NotifQueue>,
    peer_timeout: Duration,
    stopping: AtomicBool,
    /// Local registrations by the agent's region key.
    local: RwLock<HashMap<u64, Arc<LocalMr>>>,
    /// Transfers with operations outstanding (for the peer timeout).
    active: Mutex<Vec<std::sync::Weak<Xfer>>>,
    /// Transfers posted and not yet finished (or given up): a polling progress thread does
    /// not back off while there are any.
    outstanding: Arc<AtomicUsize>,
    /// The progress thread polls (no wait object, or one that does not wake).
    polled: bool,
    /// Notification receive buffers and their (persistent) contexts.
    /// Owns the receive buffers; only ever accessed through `recv_slab_ptr`, one slot at a
    /// time (the provider writes the others concurrently).
    _recv_slab: Vec<u8>,
    recv_slab_ptr: usize,
    /// Declared after `lanes`, so freed only once the endpoints are closed.
    recv_ctx: RecvContexts,
    recv_reg: Mutex<Option<ep::MemReg>>,
    /// Proves and checks notifications when a shared secret is configured.
    auth: notif_auth::NotifAuth,
}

impl Shared {
    /// The first endpoint: registrations (the domain is shared), notifications.
    fn ep(&self) -> &Endpoint {
        &self.lanes[0].ep
    }

    /// Posts a message to `peer`, whose endpoint address is `dest` (None: this endpoint);
    /// `done` runs when it completes.
    fn send_msg(
        &self,
        peer: sys::fi_addr_t,
        dest: Option<&[u8]>,
        msg: &[u8],
        done: Done,
    ) -> Result<()> {
        let dest = dest.unwrap_or(&self.ep().name);
        let wire = self.auth.seal(dest, &self.agent_name, msg)?;
        let reg = if self.ep().traits.mr_local {
            // SAFETY: the buffer is moved into the context below and freed only after the
            // registration is closed on completion.
            Some(unsafe {
                self.ep()
                    .mr_reg(wire.as_ptr() as u64, wire.len() as u64, 0)?
            })
        } else {
            None
        };
        let desc = reg.as_ref().map_or(0, |r| r.desc);
        let (ptr, len) = (wire.as_ptr(), wire.len());
        let ctx = OpCtx::boxed(OpKind::Send(wire, reg, done));
        let deadline = Instant::now() + self.peer_timeout;
        loop {
            // SAFETY: the buffer lives in the context (a Vec's heap data does not move).
            let rc = unsafe {
                self.ep()
                    .send(std::slice::from_raw_parts(ptr, len), desc, peer, ctx)
            };
            if rc == 0 {
                return Ok(());
            }
            if rc != -sys::FI_EAGAIN || Instant::now() > deadline {
                // SAFETY: the provider did not take the context.
                if let OpKind::Send(_, Some(reg), _) = unsafe { OpCtx::unpost(ctx) } {
                    reg.close();
                }
                return Err(if rc == -sys::FI_EAGAIN {
                    err!(
                        RemoteDisconnect,
                        "the notification could not be queued in {:?}",
                        self.peer_timeout
                    )
                } else {
                    xfer::map_error(self, rc as i32, "notification send")
                });
            }
            std::thread::yield_now();
        }
    }

    fn post_recv(&self, slot: usize) {
        let desc = self.recv_reg.lock().as_ref().map_or(0, |r| r.desc);
        let buf = self.recv_slab_ptr + slot * wire::NOTIF_BUF_LEN;
        loop {
            // SAFETY: the slab outlives the endpoint's use of it (closed in shutdown first);
            // the context is persistent.
            let rc = unsafe {
                self.ep().recv(
                    buf as *mut u8,
                    wire::NOTIF_BUF_LEN,
                    desc,
                    self.recv_ctx.0[slot] as *mut _,
                )
            };
            if rc != -sys::FI_EAGAIN || self.stopping.load(Ordering::Acquire) {
                if rc != 0 && rc != -sys::FI_EAGAIN {
                    log::error!(
                        "LIBFABRIC: cannot post a receive buffer: {}",
                        self.ep().error_text(rc)
                    );
                }
                return;
            }
            std::thread::yield_now();
        }
    }

    fn on_recv(&self, slot: usize, result: std::result::Result<usize, i32>) {
        match result {
            Ok(len) => {
                let len = len.min(wire::NOTIF_BUF_LEN);
                let start = self.recv_slab_ptr + slot * wire::NOTIF_BUF_LEN;
                // SAFETY: the slot lies in the slab, and the provider completed its receive
                // into it; it is re-posted only after this read.
                let bytes = unsafe { std::slice::from_raw_parts(start as *const u8, len) };
                match self.auth.open(&self.ep().name, bytes) {
                    Ok((sender, msg)) => self.notifs.push(&sender, msg),
                    Err(e) => log::warn!("LIBFABRIC: dropped a notification: {e}"),
                }
            }
            Err(code) if code.abs() == libc::ECANCELED => return,
            Err(code) => log::warn!(
                "LIBFABRIC: receive failed: {}",
                self.ep().error_text(code as isize)
            ),
        }
        if !self.stopping.load(Ordering::Acquire) {
            self.post_recv(slot);
        }
    }
}

/// Parsed parameters.
struct Settings {
    provider: Option<String>,
    progress: ep::Progress,
    chunk: u64,
    max_iov: usize,
    max_inflight: usize,
    /// None: auto (chosen once the CQ kind is known).
    num_endpoints: Option<usize>,
}

impl Settings {
    fn parse(params: &Params) -> Result<Settings> {
        let r = super::params::ParamReader::new(PLUGIN.name, params, default_params());
        let (get, number) = (|k: &str| r.get(k), |k: &str| r.num(k));
        let chunk = number("chunk_bytes")?;
        let max_iov = number("max_iov")?.clamp(1, ep::MAX_IOV as u64) as usize;
        let max_inflight = number("max_inflight")?.min(1 << 20) as usize;
        let num_endpoints = match get("num_endpoints").as_str() {
            "auto" => None,
            _ => {
                let n = number("num_endpoints")?;
                if !(1..=wire::MAX_ENDPOINTS as u64).contains(&n) {
                    return Err(err!(
                        InvalidParam,
                        "num_endpoints {n} is not auto or in 1..={}",
                        wire::MAX_ENDPOINTS
                    ));
                }
                Some(n as usize)
            }
        };
        let provider = Some(get("provider"))
            .filter(|p| !p.is_empty())
            .or_else(|| std::env::var("FI_PROVIDER").ok().filter(|p| !p.is_empty()));
        let progress = match get("progress").as_str() {
            "auto" => ep::Progress::Auto,
            "blocking" => ep::Progress::Blocking,
            "polled" => ep::Progress::Polled,
            other => {
                return Err(err!(
                    InvalidParam,
                    "progress {other:?} is not one of auto, blocking, polled"
                ));
            }
        };
        Ok(Settings {
            provider,
            progress,
            chunk: chunk.max(4096),
            max_iov,
            max_inflight,
            num_endpoints,
        })
    }
}

/// Pieces per RMA, by direction.
struct MaxIov {
    read: usize,
    write: usize,
}

/// The libfabric backend.
pub struct FabricBackend {
    shared: Arc<Shared>,
    max_iov: MaxIov,
    settings: Settings,
    params: Params,
    conn_info: Vec<u8>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Where the next request starts spreading its RMAs over the lanes.
    next_lane: AtomicUsize,
}

impl FabricBackend {
    fn new(ctx: &BackendContext, params: &Params) -> Result<FabricBackend> {
        let mut settings = Settings::parse(params)?;
        let lib = sys::lib().map_err(|m| err!(NotSupported, "LIBFABRIC backend: {m}"))?;
        let ep = Endpoint::open(lib, settings.provider.as_deref(), settings.progress)?;
        let traits = ep.traits.clone();
        if traits.max_msg_size > 0 {
            settings.chunk = settings.chunk.min(traits.max_msg_size as u64);
        }
        let inflight_limit = match (settings.max_inflight, traits.tx_size) {
            (0, 0) => usize::MAX,
            (0, tx) => tx,
            (n, 0) => n,
            (n, tx) => n.min(tx),
        };
        // Auto: a second endpoint (connection, progress thread) where progress threads sleep
        // in fi_cq_sread; where they poll (shm), another poller costs a core instead.
        let num_endpoints = settings
            .num_endpoints
            .unwrap_or(if ep.blocking_cq { 2 } else { 1 });
        let mut eps = vec![ep];
        for _ in 1..num_endpoints {
            eps.push(eps[0].sibling(settings.progress)?);
        }
        let lanes = eps
            .into_iter()
            .map(|ep| {
                Ok(Lane {
                    self_addr: ep.av_insert(&ep.name.clone())?,
                    ep,
                    throttle: Throttle::new(inflight_limit),
                    posted: AtomicUsize::new(0),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ep = &lanes[0].ep;
        let mut slab = vec![0u8; RECV_BUFS * wire::NOTIF_BUF_LEN];
        let slab_ptr = slab.as_mut_ptr() as usize;
        let recv_reg = if traits.mr_local {
            // SAFETY: the slab is owned by `Shared` and outlives the registration (closed in
            // shutdown before the endpoint).
            Some(unsafe { ep.mr_reg(slab_ptr as u64, slab.len() as u64, 0)? })
        } else {
            None
        };
        let recv_ctx = RecvContexts(
            (0..RECV_BUFS)
                .map(|i| OpCtx::boxed(OpKind::Recv(i)) as usize)
                .collect(),
        );
        let blocking = ep.blocking_cq;
        let shared = Arc::new(Shared {
            lanes,
            agent_name: ctx.agent_name.clone(),
            notifs: ctx.notifs.clone(),
            peer_timeout: ctx.config.peer_timeout,
            stopping: AtomicBool::new(false),
            local: RwLock::new(HashMap::new()),
            active: Mutex::new(Vec::new()),
            outstanding: Arc::new(AtomicUsize::new(0)),
            polled: !blocking,
            _recv_slab: slab,
            recv_slab_ptr: slab_ptr,
            recv_ctx,
            recv_reg: Mutex::new(recv_reg),
            auth: notif_auth::NotifAuth::new(ctx.config.auth_secret.clone()),
        });
        for slot in 0..RECV_BUFS {
            shared.post_recv(slot);
        }
        let mut threads = Vec::with_capacity(shared.lanes.len());
        for lane in 0..shared.lanes.len() {
            let weak = Arc::downgrade(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("nixl-fabric-{lane}"))
                .spawn(move || xfer::progress_loop(weak, lane));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    stop_threads(&shared, threads);
                    return Err(err!(
                        Backend,
                        "cannot start a libfabric progress thread: {e}"
                    ));
                }
            }
        }
        log::info!(
            "LIBFABRIC backend of {}: provider {} (fabric {}, domain {}), {} endpoint(s), {} \
             completion queue",
            ctx.agent_name,
            traits.provider,
            traits.fabric,
            traits.domain,
            shared.lanes.len(),
            if blocking { "blocking" } else { "polled" }
        );
        let mut effective = default_params();
        effective.extend(params.clone());
        effective.insert("provider".into(), traits.provider.clone());
        effective.insert("fabric".into(), traits.fabric.clone());
        effective.insert("domain".into(), traits.domain.clone());
        effective.insert("chunk_bytes".into(), settings.chunk.to_string());
        // shm (libfabric 1.17) serves a READ of several pieces far slower than one piece at a
        // time (BENCHMARKS.md, "LIBFABRIC after the small-block round"), while its WRITEs gain.
        let write_iov = settings.max_iov.min(traits.max_iov);
        let max_iov = MaxIov {
            read: if traits.provider.split(';').next() == Some("shm") {
                1
            } else {
                write_iov
            },
            write: write_iov,
        };
        effective.insert("max_iov".into(), write_iov.to_string());
        effective.insert("max_iov_read".into(), max_iov.read.to_string());
        effective.insert(
            "max_inflight".into(),
            shared.lanes[0].throttle.limit().to_string(),
        );
        effective.insert("num_endpoints".into(), shared.lanes.len().to_string());
        effective.insert(
            "peer_auth".into(),
            if shared.auth.enabled() {
                "notifications: shared secret; RMA: provider keys"
            } else {
                "none (provider keys only)"
            }
            .into(),
        );
        effective.insert(
            "mr_mode".into(),
            format!(
                "local={} virt_addr={} prov_key={}",
                traits.mr_local, traits.virt_addr, traits.prov_key
            ),
        );
        effective.insert(
            "progress".into(),
            if blocking { "fi_cq_sread" } else { "polled" }.into(),
        );
        let conn_info = wire::ConnInfo {
            provider: traits.provider,
            addrs: shared.lanes.iter().map(|l| l.ep.name.clone()).collect(),
        }
        .encode();
        Ok(FabricBackend {
            shared,
            max_iov,
            settings,
            params: effective,
            conn_info,
            threads: Mutex::new(threads),
            next_lane: AtomicUsize::new(0),
        })
    }

    /// The peer's address handles (one per lane), re-inserted first if its connection broke.
    fn reconnect_if_broken(&self, p: &FabricPeer) -> Result<Vec<sys::fi_addr_t>> {
        let link = &p.link;
        let lanes = &self.shared.lanes;
        if link.broken.swap(false, Ordering::AcqRel) {
            link.remove_from(lanes);
            for (i, lane) in lanes.iter().enumerate() {
                match lane.ep.av_insert(link.raw_for(i)) {
                    Ok(addr) => link.addrs[i].store(addr, Ordering::Release),
                    Err(e) => {
                        // Try again on the next post (entries made so far are removed then).
                        link.broken.store(true, Ordering::Release);
                        return Err(e);
                    }
                }
            }
            log::info!("LIBFABRIC: reconnecting to {}", p.name);
        }
        Ok(link
            .addrs
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .collect())
    }

    /// Posts every RMA of `job`; returns once all are queued (or the request was canceled).
    fn post_ops(&self, job: &XferJob, peer: Option<&FabricPeer>) -> Result<Arc<Completion>> {
        let shared = &self.shared;
        let write = job.op == XferOp::Write;
        let addrs = match peer {
            Some(p) => self.reconnect_if_broken(p)?,
            None => shared.lanes.iter().map(|l| l.self_addr).collect(),
        };
        // Resolve everything first: nothing is posted for a request with a bad descriptor.
        let mut plan = plan::Planner::new(
            split_chunk(self.settings.chunk, job.total_bytes, shared.lanes.len()),
            if write {
                self.max_iov.write
            } else {
                self.max_iov.read
            },
            Arc::ptr_eq,
            job.local.len(),
        );
        {
            let local = shared.local.read();
            let remote_of = |key: u64| -> Option<RemoteMr> {
                match peer {
                    Some(p) => p.regions.read().get(&key).copied(),
                    None => local.get(&key).map(|m| RemoteMr {
                        key: m.key,
                        base: m.base,
                    }),
                }
            };
            // Consecutive pairs usually share registrations: look each up once per change.
            let mut cached: Option<(u64, Arc<LocalMr>, u64, RemoteMr)> = None;
            for (l, r) in job.local.iter().zip(job.remote.iter()) {
                let hit = cached
                    .as_ref()
                    .is_some_and(|(lk, _, rk, _)| *lk == l.key && *rk == r.key);
                if !hit {
                    let lmr = local.get(&l.key).cloned().ok_or_else(|| {
                        err!(
                            NotFound,
                            "local range {:#x}+{} is not registered with LIBFABRIC",
                            l.addr,
                            l.len
                        )
                    })?;
                    let rmr = remote_of(r.key).ok_or_else(|| {
                        err!(
                            NotFound,
                            "remote range {:#x}+{} has no LIBFABRIC key (metadata not loaded?)",
                            r.addr,
                            r.len
                        )
                    })?;
                    cached = Some((l.key, lmr, r.key, rmr));
                }
                let (_, lmr, _, rmr) = cached.as_ref().expect("set above");
                let remote_addr = if shared.ep().traits.virt_addr {
                    r.addr
                } else {
                    r.addr - rmr.base
                };
                plan.add(lmr, rmr.key, l.addr, remote_addr, l.len);
            }
        }
        let ops = plan.finish();
        let completion = Arc::new(Completion::new(1));
        if !completion.enter() {
            return Ok(completion);
        }
        let x = Arc::new(Xfer::new(
            shared,
            completion.clone(),
            job.notif.clone(),
            addrs[0],
            peer.map(|p| p.link.clone()),
        ));
        let (weak, provider) = (Arc::downgrade(&x), shared.ep().traits.provider.clone());
        completion.set_progress(move || {
            if let Some(x) = weak.upgrade() {
                x.check_stall(&provider);
            }
        });
        {
            let mut active = shared.active.lock();
            active.retain(|w| w.strong_count() > 0);
            active.push(Arc::downgrade(&x));
        }
        let deadline_step = shared.peer_timeout;
        // Spread the RMAs over the lanes: each goes to the lane with the fewest bytes of this
        // request so far, ties broken from a rotating start so that one-RMA requests take
        // turns.
        let nlanes = shared.lanes.len();
        let first = self.next_lane.fetch_add(1, Ordering::Relaxed) % nlanes;
        let mut load = vec![0u64; nlanes];
        for op in ops {
            if completion.is_canceled() {
                break;
            }
            let lane = (0..nlanes)
                .map(|k| (first + k) % nlanes)
                .min_by_key(|&i| load[i])
                .expect("at least one lane");
            load[lane] += op.bytes();
            let (lane_ep, throttle, addr) = (
                &shared.lanes[lane].ep,
                &shared.lanes[lane].throttle,
                addrs[lane],
            );
            // Bound what is in flight on the endpoint (the provider's queue would take more,
            // but a deep queue of large RMAs only delays the completions that free it).
            if !throttle.acquire(shared, lane, deadline_step, &|| completion.is_canceled()) {
                let e = if completion.is_canceled() {
                    err!(Canceled, "the request was released")
                } else {
                    err!(
                        RemoteDisconnect,
                        "no RMA on the endpoint completed for {deadline_step:?}"
                    )
                };
                // Counted as an operation that failed at once (the poster's guard stays).
                x.remaining.fetch_add(1, Ordering::AcqRel);
                x.op_done(shared, Err(e));
                break;
            }
            x.remaining.fetch_add(1, Ordering::AcqRel);
            op.mr.inflight.fetch_add(1, Ordering::AcqRel);
            let desc = op.mr.desc;
            let ctx = OpCtx::boxed(OpKind::Rma(x.clone(), op.mr.clone(), lane));
            let mut waited_since: Option<Instant> = None;
            let rc = loop {
                // SAFETY: the local ranges lie in a live registration whose in-flight count
                // was raised (deregistration waits for it); the context lives until completion.
                let rc = unsafe { lane_ep.rma(write, op.pieces(), desc, addr, op.key, ctx) };
                if rc != -sys::FI_EAGAIN {
                    break rc;
                }
                let since = *waited_since.get_or_insert_with(Instant::now);
                if since.elapsed() > deadline_step || completion.is_canceled() {
                    break rc;
                }
                // The provider's queue is full: free it by reading completions here.
                throttle.wait_for_room(shared, lane, true);
            };
            if rc == 0 {
                shared.lanes[lane].posted.fetch_add(1, Ordering::Relaxed);
            } else {
                // SAFETY: the provider did not take the context.
                if let OpKind::Rma(x, lmr, _) = unsafe { OpCtx::unpost(ctx) } {
                    lmr.inflight.fetch_sub(1, Ordering::AcqRel);
                    throttle.release();
                    let e = if rc == -sys::FI_EAGAIN && completion.is_canceled() {
                        err!(Canceled, "the request was released")
                    } else if rc == -sys::FI_EAGAIN {
                        err!(
                            RemoteDisconnect,
                            "the provider accepted no operation for {deadline_step:?}"
                        )
                    } else {
                        xfer::map_error(
                            shared,
                            rc as i32,
                            if write { "fi_writemsg" } else { "fi_readmsg" },
                        )
                    };
                    x.op_done(shared, Err(e));
                }
                break;
            }
        }
        // Drop the poster's guard: the last completion (maybe this) finishes the transfer.
        x.op_done(shared, Ok(()));
        Ok(completion)
    }
}

impl Backend for FabricBackend {
    fn name(&self) -> &str {
        PLUGIN.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NETWORK
    }

    fn mem_types(&self) -> &[MemType] {
        PLUGIN.mem_types
    }

    fn params(&self) -> Params {
        self.params.clone()
    }

    fn register(&self, mem: MemType, region: &Region) -> Result<()> {
        if mem != MemType::Dram {
            return Err(err!(
                NotSupported,
                "the LIBFABRIC backend serves DRAM, not {mem}"
            ));
        }
        if region.desc.len == 0 {
            return Err(err!(
                InvalidParam,
                "cannot register an empty range with LIBFABRIC"
            ));
        }
        // A random requested key, for providers that take the user's: stale or guessed keys
        // are then unlikely to name another live registration.
        let requested = crate::util::random_u64() & 0xffff_ffff_ffff;
        // SAFETY: the agent keeps the registered range mapped until `deregister` returns.
        let reg = unsafe {
            self.shared
                .ep()
                .mr_reg(region.desc.addr, region.desc.len, requested)?
        };
        let mr = Arc::new(LocalMr {
            key: reg.key,
            base: region.desc.addr,
            desc: reg.desc,
            reg: Mutex::new(Some(reg)),
            inflight: Default::default(),
        });
        self.shared.local.write().insert(region.key, mr);
        Ok(())
    }

    fn deregister(&self, _mem: MemType, region: &Region) {
        let mr = self.shared.local.write().remove(&region.key);
        let Some(mr) = mr else { return };
        // Nothing new can start on it; wait until the provider returned every operation
        // posted on it, then close it (the provider then refuses its key). Bounded: a peer
        // that returned nothing for the peer timeout is treated as dead (its address removed,
        // which makes connection-based providers flush what was posted to it); after twice
        // the peer timeout the registration is closed regardless, so deregister_mem returns.
        let start = Instant::now();
        let mut severed = false;
        while mr.inflight.load(Ordering::Acquire) > 0 {
            let waited = start.elapsed();
            if !severed && waited > self.shared.peer_timeout {
                severed = true;
                let n = self.shared.sever_stalled_peers();
                log::warn!(
                    "LIBFABRIC: deregistration waited {waited:?} for {} operation(s); treating \
                     {n} unresponsive peer(s) as dead",
                    mr.inflight.load(Ordering::Acquire)
                );
            }
            if waited > 2 * self.shared.peer_timeout {
                log::error!(
                    "LIBFABRIC: closing a registration with {} operation(s) the provider never \
                     returned (peer dead or refusing them, e.g. shm with an unknown key)",
                    mr.inflight.load(Ordering::Acquire)
                );
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        if let Some(reg) = mr.reg.lock().take() {
            reg.close();
        }
    }

    fn public_data(&self, mem: MemType, region: &Region) -> Vec<u8> {
        let _ = mem;
        self.shared
            .local
            .read()
            .get(&region.key)
            .map_or_else(Vec::new, |m| wire::encode_key(m.key))
    }

    fn conn_info(&self) -> Vec<u8> {
        self.conn_info.clone()
    }

    fn load_remote(&self, remote_agent: &str, conn_info: &[u8]) -> Result<PeerHandle> {
        let info = wire::ConnInfo::decode(conn_info)?;
        let ours = &self.shared.ep().traits.provider;
        if &info.provider != ours {
            return Err(err!(
                Mismatch,
                "agent {remote_agent} uses libfabric provider {:?}, this agent {ours:?}",
                info.provider
            ));
        }
        // Binary addresses have one length per provider; string ones (shm) vary.
        let ours_len = self.shared.ep().name.len();
        let fixed = !self.shared.ep().traits.addr_str;
        if let Some(a) = info.addrs.iter().find(|a| fixed && a.len() != ours_len) {
            return Err(err!(
                InvalidParam,
                "agent {remote_agent}'s libfabric address has {} bytes, {ours} uses {ours_len}",
                a.len(),
            ));
        }
        let mut addrs = Vec::with_capacity(self.shared.lanes.len());
        for (i, lane) in self.shared.lanes.iter().enumerate() {
            // Lanes wrap around the peer's endpoints, as `PeerLink::raw_for` does.
            match lane.ep.av_insert(&info.addrs[i % info.addrs.len()]) {
                Ok(a) => addrs.push(a),
                Err(e) => {
                    for (lane, &a) in self.shared.lanes.iter().zip(&addrs) {
                        lane.ep.av_remove(a);
                    }
                    return Err(e);
                }
            }
        }
        let link = PeerLink {
            addrs: addrs.into_iter().map(Into::into).collect(),
            raws: info.addrs,
            broken: false.into(),
        };
        Ok(Arc::new(FabricPeer {
            name: remote_agent.to_owned(),
            link: Arc::new(link),
            regions: RwLock::new(HashMap::new()),
        }))
    }

    fn load_remote_region(&self, peer: &PeerHandle, mem: MemType, region: &Region) -> Result<()> {
        let Some(p) = peer.downcast_ref::<FabricPeer>() else {
            return Err(err!(InvalidParam, "not a LIBFABRIC peer"));
        };
        if mem != MemType::Dram {
            return Ok(());
        }
        let key = wire::decode_key(&region.public).map_err(|e| {
            err!(
                InvalidParam,
                "agent {}'s region {:#x}: {e}",
                p.name,
                region.desc.addr
            )
        })?;
        p.regions.write().insert(
            region.key,
            RemoteMr {
                key,
                base: region.desc.addr,
            },
        );
        Ok(())
    }

    fn disconnect(&self, peer: &PeerHandle) {
        if let Some(p) = peer.downcast_ref::<FabricPeer>() {
            p.link.remove_from(&self.shared.lanes);
        }
    }

    fn post(&self, job: XferJob) -> Result<Arc<Completion>> {
        if job.local_mem != MemType::Dram || job.remote_mem != MemType::Dram {
            return Err(err!(
                NotSupported,
                "the LIBFABRIC backend moves DRAM to DRAM, not {} to {}",
                job.local_mem,
                job.remote_mem
            ));
        }
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(err!(
                Backend,
                "agent {} is shutting down",
                self.shared.agent_name
            ));
        }
        if let Some(n) = &job.notif
            && n.len() > wire::MAX_NOTIF_LEN
        {
            return Err(err!(
                InvalidParam,
                "notification of {} bytes exceeds the LIBFABRIC backend's {}",
                n.len(),
                wire::MAX_NOTIF_LEN
            ));
        }
        match &job.target {
            Target::Loopback => self.post_ops(&job, None),
            Target::Peer(p) => {
                let p = p
                    .downcast_ref::<FabricPeer>()
                    .ok_or_else(|| err!(InvalidParam, "not a LIBFABRIC peer"))?;
                self.post_ops(&job, Some(p))
            }
        }
    }

    fn gen_notif(&self, target: &Target, msg: &[u8]) -> Result<()> {
        let (addr, dest) = match target {
            Target::Loopback => (self.shared.lanes[0].self_addr, None),
            Target::Peer(p) => {
                let p = p
                    .downcast_ref::<FabricPeer>()
                    .ok_or_else(|| err!(InvalidParam, "not a LIBFABRIC peer"))?;
                (self.reconnect_if_broken(p)?[0], Some(&p.link.raws[0][..]))
            }
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.shared.send_msg(addr, dest, msg, Done::Waiter(tx))?;
        rx.recv_timeout(self.shared.peer_timeout)
            .unwrap_or_else(|_| {
                Err(err!(
                    RemoteDisconnect,
                    "notification not acknowledged within the peer timeout ({:?})",
                    self.shared.peer_timeout
                ))
            })
    }

    fn shutdown(&self) {
        let shared = &self.shared;
        if shared.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        stop_threads(shared, std::mem::take(&mut *self.threads.lock()));
        shared.abandon_active();
        let mrs: Vec<_> = shared.local.write().drain().map(|(_, m)| m).collect();
        for m in mrs {
            if let Some(reg) = m.reg.lock().take() {
                reg.close();
            }
        }
        if let Some(reg) = shared.recv_reg.lock().take() {
            reg.close();
        }
    }
}

/// Smallest RMA a request is cut into so that it spreads over several endpoints: below it, one
/// RMA's fixed costs (a request header, a completion) outweigh what a second endpoint adds.
const MIN_SPLIT: u64 = 1 << 20;

/// The largest RMA for a request of `total` bytes on `lanes` endpoints: `chunk`, or less so
/// that a request of at least `lanes` × [`MIN_SPLIT`] has an RMA for every endpoint.
fn split_chunk(chunk: u64, total: u64, lanes: usize) -> u64 {
    let share = total.div_ceil(lanes as u64).next_multiple_of(4096);
    chunk.min(share.max(MIN_SPLIT))
}

/// Stops the progress threads (`stopping` set, or set here) and waits for them.
fn stop_threads(shared: &Shared, threads: Vec<JoinHandle<()>>) {
    shared.stopping.store(true, Ordering::Release);
    for lane in &shared.lanes {
        lane.ep.signal_cq();
    }
    for t in threads {
        let _ = t.join();
    }
}

impl Drop for FabricBackend {
    fn drop(&mut self) {
        self.shutdown();
    }
}
