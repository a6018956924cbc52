//! The initiator's view of one remote network backend: how to reach it (same process,
//! cross-memory attach, TCP) and a pool of TCP connections to it.

use parking_lot::Mutex;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::conninfo::ConnInfo;
use super::proto::{self, Header, Kind, NO_NOTIF};
use super::{Shared, identity};
use crate::backend::ResolvedDesc;
use crate::metrics::peers::{ConnState, PeerMetrics};
use crate::sockio::{Clock, Timed};
use crate::status::{NixlError, Result, err};
use crate::types::MemType;

/// How bytes reach the peer.
pub enum Route {
    /// Another agent in this process.
    SameProcess(Weak<Shared>),
    /// Another process on this host, attached by pid.
    CrossMemory {
        /// The peer's pid.
        pid: i32,
        /// Handle that tells whether that process is still the one we loaded.
        pidfd: OwnedFd,
        /// The peer's live registrations (without them this route is not taken).
        regtab: super::regtab::RegTableReader,
    },
    /// TCP to the peer's control listener.
    Tcp,
}

/// A remote network backend.
pub struct NetPeer {
    /// The remote agent's name.
    pub name: String,
    /// Its connection info.
    pub info: ConnInfo,
    /// The preferred route.
    pub route: Route,
    /// Set when the kernel refused cross-memory attach: use TCP from now on.
    cma_refused: AtomicBool,
    /// Set once the peer is known to be gone.
    dead: AtomicBool,
    my_name: String,
    timeout: Duration,
    secret: Option<Vec<u8>>,
    idle: Mutex<Vec<TcpStream>>,
    /// Series about this peer, when the agent records metrics.
    metrics: Option<PeerMetrics>,
}

/// Why a route was chosen: a short fixed word (a metric label) and a sentence for the log.
type Reason = (&'static str, &'static str);

impl NetPeer {
    /// Builds the handle, choosing the route from the two processes' identities.
    pub fn new(
        name: &str,
        info: ConnInfo,
        my_name: &str,
        timeout: Duration,
        secret: Option<Vec<u8>>,
        force_tcp: bool,
        metrics: Option<PeerMetrics>,
    ) -> Result<NetPeer> {
        let (route, reason) = choose_route(name, &info, force_tcp)?;
        let peer = NetPeer {
            name: name.to_owned(),
            info,
            route,
            cma_refused: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            my_name: my_name.to_owned(),
            timeout,
            secret,
            idle: Mutex::new(Vec::new()),
            metrics,
        };
        peer.report_route(reason);
        Ok(peer)
    }

    /// The transport a request between these memory types takes now (a metric label):
    /// device copies through CUDA IPC, pinned staging where VRAM meets another route, the
    /// peer's shared mapping when every remote descriptor lies in one, else the route's.
    pub fn transport_for(
        &self,
        local_mem: MemType,
        remote_mem: MemType,
        remote: &[ResolvedDesc],
    ) -> &'static str {
        let vram = local_mem == MemType::Vram || remote_mem == MemType::Vram;
        match &self.route {
            Route::SameProcess(_) => "same-process",
            Route::CrossMemory { .. } if remote_mem == MemType::Vram => "cuda-ipc",
            Route::CrossMemory { .. } if vram => "staged",
            Route::CrossMemory { regtab, .. } if !self.cma_allowed() || regtab.overflowed() => {
                "tcp"
            }
            Route::CrossMemory { .. } if super::shm::all_mapped(self.info.instance, remote) => {
                "shm"
            }
            Route::CrossMemory { .. } => "cma",
            Route::Tcp if vram => "staged",
            Route::Tcp => "tcp",
        }
    }

    /// Says in the log and in `agent_peer_transport` how this peer is reached and why.
    fn report_route(&self, (word, why): Reason) {
        let transport = match self.route {
            Route::SameProcess(_) => "same-process",
            Route::CrossMemory { .. } if self.cma_allowed() => "cma",
            _ => "tcp",
        };
        log::info!(
            "agent {} reaches {} by {transport}: {why}",
            self.my_name,
            self.name
        );
        if let Some(m) = &self.metrics {
            m.set_route(transport, word);
        }
    }

    /// Moves the metrics of one connection between states.
    fn conn_moved(&self, from: Option<ConnState>, to: Option<ConnState>) {
        if let Some(m) = &self.metrics {
            m.conn_moved(from, to);
        }
    }

    /// Hands a connection back to the pool.
    fn pool(&self, stream: TcpStream, from: Option<ConnState>) {
        self.conn_moved(from, Some(ConnState::Idle));
        self.idle.lock().push(stream);
    }

    /// True once a transfer found the peer gone.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Remembers that the kernel refused attach, and says so once in the log.
    pub fn refuse_cma(&self) {
        if !self.cma_refused.swap(true, Ordering::AcqRel) {
            log::warn!(
                "cross-memory attach to {} (pid {}) is not permitted; using TCP for this peer",
                self.name,
                self.info.process.pid
            );
            self.report_route(("cma-refused", "the kernel refused cross-memory attach"));
        }
    }

    /// Whether cross-memory attach is still worth trying.
    pub fn cma_allowed(&self) -> bool {
        !self.cma_refused.load(Ordering::Acquire)
    }

    /// The agent behind a same-process route, or REMOTE_DISCONNECT once it is gone.
    pub fn in_process(&self, agent: &Weak<Shared>) -> Result<Arc<Shared>> {
        agent
            .upgrade()
            .ok_or_else(|| err!(RemoteDisconnect, "agent {} no longer exists", self.name))
    }

    /// REMOTE_DISCONNECT, with the peer closed, once the process behind a cross-memory route
    /// has exited.
    pub fn ensure_running(&self, pid: i32, pidfd: &OwnedFd) -> Result<()> {
        if super::cma::pidfd_exited(pidfd) {
            self.close();
            return Err(err!(
                RemoteDisconnect,
                "agent {} (pid {pid}) exited",
                self.name
            ));
        }
        Ok(())
    }

    /// Whether the peer process still runs and answers as the incarnation we loaded (bounded
    /// by the peer timeout, at most one second).
    pub fn is_alive(&self) -> bool {
        if self.is_dead() {
            return false;
        }
        match &self.route {
            Route::SameProcess(weak) => weak
                .upgrade()
                .is_some_and(|s| !s.shutting_down.load(Ordering::Acquire)),
            Route::CrossMemory { pidfd, .. } => !super::cma::pidfd_exited(pidfd),
            Route::Tcp => {
                if !self.idle.lock().is_empty() {
                    // A pooled connection that the peer closed reads as EOF at once.
                    return self.with_conn(|s| probe_open(s.stream()).map(Ok)).is_ok();
                }
                let mut clock = Clock::start(self.timeout);
                match self.connect_within(&mut clock, Duration::from_secs(1)) {
                    Ok(stream) => {
                        self.pool(stream, None);
                        true
                    }
                    Err(_) => false,
                }
            }
        }
    }

    /// Marks the peer gone and closes pooled connections.
    pub fn close(&self) {
        self.dead.store(true, Ordering::Release);
        let closed = std::mem::take(&mut *self.idle.lock()).len();
        if let Some(m) = &self.metrics {
            m.idle_closed(closed);
            m.disconnected();
        }
    }

    fn candidate_addrs(&self) -> Vec<SocketAddr> {
        let me = identity::local();
        let mut ips: Vec<IpAddr> = Vec::new();
        if self.info.process.boot_id == me.boot_id && self.info.process.net_ns == me.net_ns {
            ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        ips.extend(self.info.addrs.iter().copied());
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, self.info.port))
            .collect()
    }

    /// Connects (trying each address for at most `per_addr`) and shakes hands, all within
    /// `clock`'s deadline.
    fn connect_within(&self, clock: &mut Clock, per_addr: Duration) -> Result<TcpStream> {
        let mut last = None;
        for addr in self.candidate_addrs() {
            let limit = clock
                .remaining()
                .map_err(|e| err!(RemoteDisconnect, "cannot reach agent {}: {e}", self.name))?
                .min(per_addr);
            match TcpStream::connect_timeout(&addr, limit) {
                Ok(stream) => return self.handshake(stream, clock),
                Err(e) => last = Some(format!("{addr}: {e}")),
            }
        }
        Err(err!(
            RemoteDisconnect,
            "cannot reach agent {}: {}",
            self.name,
            last.unwrap_or_else(|| "it published no address".into())
        ))
    }

    fn handshake(&self, socket: TcpStream, clock: &mut Clock) -> Result<TcpStream> {
        let io = |e: std::io::Error| {
            if let (Some(m), std::io::ErrorKind::TimedOut) = (&self.metrics, e.kind()) {
                m.timed_out();
            }
            err!(
                RemoteDisconnect,
                "handshake with agent {} failed: {e}",
                self.name
            )
        };
        socket.set_nodelay(true).map_err(io)?;
        let mut stream = Timed::resume(&socket, *clock);
        let challenge = proto::read_header(&mut stream).map_err(io)?;
        if challenge.kind != Kind::Challenge {
            return Err(err!(
                RemoteDisconnect,
                "agent {} did not open with a challenge",
                self.name
            ));
        }
        let proof = match (&self.secret, challenge.b) {
            (Some(secret), _) => crate::auth::proof(
                crate::auth::Context::Data,
                secret,
                challenge.a,
                self.info.instance,
                &self.my_name,
            )
            .to_vec(),
            (None, 0) => Vec::new(),
            (None, _) => {
                return Err(err!(
                    NotAllowed,
                    "agent {} requires a shared secret (set NIXL_RS_SECRET or AgentConfig::auth_secret)",
                    self.name
                ));
            }
        };
        let name = self.my_name.as_bytes();
        let hello = Header::new(
            Kind::Hello,
            name.len() as u64,
            self.info.instance,
            proof.len() as u64,
        )
        .encode();
        proto::write_all_slices(&mut stream, &[&hello, name, &proof]).map_err(io)?;
        let answer = proto::read_status(&mut stream, Kind::HelloAck).map_err(io)?;
        *clock = stream.clock();
        match answer {
            Ok(()) => Ok(socket),
            Err(e) if e.status() == crate::Status::NotAllowed => Err(e),
            Err(e) => Err(err!(
                RemoteDisconnect,
                "agent {} refused the connection: {}",
                self.name,
                e.message()
            )),
        }
    }

    /// Runs `op` on a pooled connection, connecting first if none is idle; the connection, the
    /// handshake and `op` share one deadline (see `sockio::Clock`). I/O errors mean the peer
    /// is unreachable: REMOTE_DISCONNECT, and the connection is dropped.
    fn with_conn<R>(
        &self,
        op: impl FnOnce(&mut Timed<'_>) -> std::io::Result<Result<R>>,
    ) -> Result<R> {
        if self.is_dead() {
            return Err(err!(
                RemoteDisconnect,
                "agent {} is disconnected",
                self.name
            ));
        }
        let mut clock = Clock::start(self.timeout);
        let pooled = self.idle.lock().pop();
        let (stream, from) = match pooled {
            Some(s) => (s, Some(ConnState::Idle)),
            None => (
                self.connect_within(&mut clock, Duration::from_secs(2))?,
                None,
            ),
        };
        self.conn_moved(from, Some(ConnState::Busy));
        let outcome = op(&mut Timed::resume(&stream, clock));
        match outcome {
            Ok(result) => {
                self.pool(stream, Some(ConnState::Busy));
                result
            }
            Err(e) => {
                self.conn_moved(Some(ConnState::Busy), None);
                if let (Some(m), std::io::ErrorKind::TimedOut) = (&self.metrics, e.kind()) {
                    m.timed_out();
                }
                self.close();
                Err(err!(
                    RemoteDisconnect,
                    "connection to agent {} failed: {e}",
                    self.name
                ))
            }
        }
    }

    /// Sends a notification (no answer is awaited; frames on a connection are processed in
    /// order, so it lands after any data this connection carried before).
    pub fn send_notif(&self, msg: &[u8]) -> Result<()> {
        let began = std::time::Instant::now();
        let sent = self.send_notif_now(msg);
        self.notif_sent(began);
        sent
    }

    /// Records the time a notification took to hand over, when the agent records metrics.
    pub fn notif_sent(&self, began: std::time::Instant) {
        if let Some(m) = &self.metrics {
            m.notif_sent(began.elapsed().as_micros() as u64);
        }
    }

    fn send_notif_now(&self, msg: &[u8]) -> Result<()> {
        proto::check_notif(msg.len())?;
        let header = Header::new(Kind::Notif, msg.len() as u64, 0, 0).encode();
        self.with_conn(|s| proto::write_all_slices(s, &[&header, msg]).map(Ok))
    }

    /// Pushes local bytes into the peer's registered memory over TCP, straight from the
    /// local buffers; the peer receives straight into its registered memory.
    pub fn tcp_write(
        &self,
        local: &[ResolvedDesc],
        remote: &[ResolvedDesc],
        notif: Option<&[u8]>,
    ) -> Result<()> {
        proto::check_request(remote.len(), notif)?;
        let total: u64 = local.iter().map(|d| d.len).sum();
        let descs = proto::encode_descs(remote);
        let notif_len = notif.map_or(NO_NOTIF, |n| n.len() as u64);
        let header = Header::new(Kind::Write, remote.len() as u64, total, notif_len).encode();
        self.with_conn(|s| {
            let head: [&[u8]; 3] = [&header, &descs, notif.unwrap_or(&[])];
            // SAFETY: local descriptors are registered, live memory of this process.
            let sent = unsafe { proto::write_all_descs(s, &head, local) };
            // If the peer refused early it may have answered already; prefer its answer. The
            // same deadline runs on: after a timeout this read fails at once.
            match (sent, proto::read_status(s, Kind::Resp)) {
                (_, Ok(answer)) => Ok(answer),
                (Err(e), Err(_)) | (Ok(()), Err(e)) => Err(e),
            }
        })
    }

    /// Pulls bytes from the peer's registered memory over TCP straight into local buffers,
    /// then sends the notification (so it lands after the data is here).
    pub fn tcp_read(
        &self,
        local: &[ResolvedDesc],
        remote: &[ResolvedDesc],
        notif: Option<&[u8]>,
    ) -> Result<()> {
        proto::check_request(remote.len(), notif)?;
        let total: u64 = local.iter().map(|d| d.len).sum();
        let descs = proto::encode_descs(remote);
        let header = Header::new(Kind::Read, remote.len() as u64, total, 0).encode();
        self.with_conn(|s| {
            proto::write_all_slices(s, &[&header, &descs])?;
            if let Err(e) = proto::read_status(s, Kind::Resp)? {
                return Ok(Err(e));
            }
            // SAFETY: local descriptors are registered, live memory of this process, and the
            // request owns them while it runs (they may overlap: raw addresses are used).
            unsafe { proto::read_exact_descs(s, local) }?;
            if let Some(msg) = notif {
                let h = Header::new(Kind::Notif, msg.len() as u64, 0, 0).encode();
                proto::write_all_slices(s, &[&h, msg])?;
            }
            Ok(Ok(()))
        })
    }
}

/// The route to a peer, from the two processes' identities, and why.
fn choose_route(name: &str, info: &ConnInfo, force_tcp: bool) -> Result<(Route, Reason)> {
    let me = identity::local();
    if force_tcp {
        return Ok((
            Route::Tcp,
            (
                "forced",
                "transport=tcp (backend parameter or NIXL_RS_TRANSPORT)",
            ),
        ));
    }
    if info.process.process_token == me.process_token {
        let shared = super::same_process_backend(info.instance)
            .ok_or_else(|| err!(NotFound, "agent {name} no longer exists in this process"))?;
        return Ok((
            Route::SameProcess(shared),
            ("same-process", "it lives in this process"),
        ));
    }
    if info.process.boot_id != me.boot_id || info.process.pid_ns != me.pid_ns {
        return Ok((
            Route::Tcp,
            ("other-host", "another host, or another PID namespace"),
        ));
    }
    let pidfd = super::cma::open_pidfd(info.process.pid, info.process.start_time)?;
    // Without the target's table nothing on this host would check a cross-memory copy
    // against its registrations: use TCP, where the target checks.
    let regtab = (info.regtab_fd >= 0)
        .then(|| super::regtab::RegTableReader::open(info.process.pid, info.regtab_fd));
    // The table came from the process the pidfd names only if that one still runs.
    if super::cma::pidfd_exited(&pidfd) {
        return Err(err!(
            RemoteDisconnect,
            "agent {name} exited while connecting"
        ));
    }
    Ok(match regtab {
        Some(Ok(regtab)) => (
            Route::CrossMemory {
                pid: info.process.pid as i32,
                pidfd,
                regtab,
            },
            (
                "same-host",
                "same host and PID namespace, registration table shared (shm where its regions are shared mappings)",
            ),
        ),
        Some(Err(e)) => {
            log::warn!("agent {name}: its registration table is not readable ({e}); using TCP");
            (
                Route::Tcp,
                (
                    "regtab-unreadable",
                    "its registration table is not readable",
                ),
            )
        }
        None => (Route::Tcp, ("no-regtab", "it shares no registration table")),
    })
}

impl Drop for NetPeer {
    fn drop(&mut self) {
        if let Some(m) = &self.metrics {
            m.idle_closed(self.idle.lock().len());
        }
    }
}

/// Converts an error from a peer into one that names it.
pub fn named(peer: &NetPeer, e: NixlError) -> NixlError {
    NixlError::new(e.status(), format!("agent {}: {}", peer.name, e.message()))
}

/// Fails if the peer has closed the connection (a zero-length non-blocking peek).
fn probe_open(stream: &TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(true)?;
    let mut byte = [0u8; 1];
    let result = match stream.peek(&mut byte) {
        Ok(0) => Err(std::io::ErrorKind::UnexpectedEof.into()),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    };
    stream.set_nonblocking(false)?;
    result
}
