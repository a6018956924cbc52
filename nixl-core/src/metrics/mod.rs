//! Prometheus metrics in NIXL's naming (`agent_tx_bytes_total`, `agent_xfer_time_us`, ...),
//! with the labels NIXL lacks: `peer`, `backend`, `op`, `mem_type` / `remote_mem_type` and
//! `transport` (`same-process`, `cma`, `shm`, `tcp`, `cuda-ipc`, `staged`, `file`, or
//! `unknown` for a backend that does not say), plus the peer series of [`peers`].
//!
//! Off by default. On like NIXL's exporter: `NIXL_TELEMETRY_ENABLE=y` and
//! `NIXL_TELEMETRY_EXPORTER=prometheus` when an agent is created, listening on
//! `NIXL_TELEMETRY_PROMETHEUS_PORT` (default 9090; `0` picks a free port) on every address, or
//! only on 127.0.0.1 with `NIXL_TELEMETRY_PROMETHEUS_LOCAL=y`. From Rust, [`start`] does the
//! same. One endpoint per process serves every agent; agents created while it runs record.
//!
//! Cost: a request fetches its counter handles once when it is made, from a cache on the
//! remote-agent entry read without a lock; posting and completing it are atomic adds only.

mod histogram;
pub(crate) mod peers;
mod server;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::status::{Result, Status};
use crate::types::{MemType, XferOp};
use histogram::MicrosHistogram;

pub use server::{LOCAL_VAR, PORT_VAR, exporter_port, serve, start, start_from_env};

/// Distinct peers labelled per agent; later peers share the label `other`.
pub const MAX_PEERS: usize = 64;

/// Labels of agent-wide series (NIXL's set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabels {
    category: &'static str,
    hostname: String,
    agent_name: String,
}

/// Labels of transfer series: NIXL's plus where the bytes went and how.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct XferLabels {
    category: &'static str,
    hostname: String,
    agent_name: String,
    peer: String,
    backend: String,
    op: &'static str,
    mem_type: &'static str,
    remote_mem_type: &'static str,
    transport: &'static str,
}

/// Labels of `agent_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    hostname: String,
    agent_name: String,
    peer: String,
    backend: String,
    status: &'static str,
}

/// The process-wide registry and its families.
struct Families {
    registry: Registry,
    tx_bytes: Family<XferLabels, Counter>,
    rx_bytes: Family<XferLabels, Counter>,
    tx_requests: Family<XferLabels, Counter>,
    rx_requests: Family<XferLabels, Counter>,
    xfer_time: Family<XferLabels, MicrosHistogram>,
    post_time: Family<XferLabels, MicrosHistogram>,
    in_flight: Family<XferLabels, Gauge>,
    mem_registered: Family<AgentLabels, Counter>,
    mem_deregistered: Family<AgentLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    peers: peers::PeerFamilies,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let f = Families {
        registry: Registry::default(),
        tx_bytes: Family::default(),
        rx_bytes: Family::default(),
        tx_requests: Family::default(),
        rx_requests: Family::default(),
        xfer_time: Family::default(),
        post_time: Family::default(),
        in_flight: Family::default(),
        mem_registered: Family::default(),
        mem_deregistered: Family::default(),
        errors: Family::default(),
        peers: peers::PeerFamilies::default(),
    };
    registry.register(
        "agent_tx_bytes",
        "Bytes written to peers (WRITE requests completed)",
        f.tx_bytes.clone(),
    );
    registry.register(
        "agent_rx_bytes",
        "Bytes read from peers (READ requests completed)",
        f.rx_bytes.clone(),
    );
    registry.register(
        "agent_tx_requests_num",
        "WRITE requests completed",
        f.tx_requests.clone(),
    );
    registry.register(
        "agent_rx_requests_num",
        "READ requests completed",
        f.rx_requests.clone(),
    );
    registry.register(
        "agent_xfer_time_us",
        "From post to observed completion, per request, in microseconds",
        f.xfer_time.clone(),
    );
    registry.register(
        "agent_xfer_post_time_us",
        "Time spent in the post call, per request, in microseconds",
        f.post_time.clone(),
    );
    registry.register(
        "agent_xfer_in_flight",
        "Requests posted and not yet seen to end",
        f.in_flight.clone(),
    );
    registry.register(
        "agent_memory_registered",
        "Bytes registered, cumulative",
        f.mem_registered.clone(),
    );
    registry.register(
        "agent_memory_deregistered",
        "Bytes deregistered, cumulative",
        f.mem_deregistered.clone(),
    );
    registry.register(
        "agent_errors",
        "Requests that ended in an error, by status",
        f.errors.clone(),
    );
    f.peers.register(&mut registry);
    Families { registry, ..f }
});

/// The exposition (OpenMetrics text) of every series in this process.
pub fn encode() -> Result<String> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &FAMILIES.registry)
        .map_err(|e| crate::status::err!(Unknown, "cannot encode metrics: {e}"))?;
    Ok(out)
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match rc {
        0 => String::from_utf8_lossy(&buf[..end]).into_owned(),
        _ => "unknown".to_owned(),
    }
}

/// Agents recording metrics, by name, so that a backend can find its agent's (see
/// [`for_agent`]); agents with one name share their series anyway.
static AGENTS: Mutex<Vec<std::sync::Weak<AgentMetrics>>> = Mutex::new(Vec::new());

/// The metrics of the live agent named `name`, if it records metrics (cold path: backends
/// call it once when they are created).
pub(crate) fn for_agent(name: &str) -> Option<Arc<AgentMetrics>> {
    let mut agents = AGENTS.lock();
    agents.retain(|w| w.strong_count() > 0);
    agents
        .iter()
        .filter_map(std::sync::Weak::upgrade)
        .find(|m| m.agent_name == name)
}

/// One agent's metrics: its registration counters and the peers it has labelled.
pub(crate) struct AgentMetrics {
    hostname: String,
    agent_name: String,
    mem_registered: Counter,
    mem_deregistered: Counter,
    /// Peers given their own label so far (cold path: only when a handle set is made).
    peers: Mutex<Vec<String>>,
    /// Handles of loopback requests (remote agents keep theirs on their entry).
    loopback: HandleCache,
    /// Remote agents loaded so far (see `peers`), to count reconnects.
    loaded: Mutex<std::collections::HashSet<String>>,
}

impl AgentMetrics {
    pub(crate) fn new(agent_name: &str) -> Arc<AgentMetrics> {
        let labels = AgentLabels {
            category: "NIXL_TELEMETRY_MEMORY",
            hostname: hostname(),
            agent_name: agent_name.to_owned(),
        };
        let m = Arc::new(AgentMetrics {
            mem_registered: FAMILIES.mem_registered.get_or_create(&labels).clone(),
            mem_deregistered: FAMILIES.mem_deregistered.get_or_create(&labels).clone(),
            hostname: labels.hostname,
            agent_name: labels.agent_name,
            peers: Mutex::new(Vec::new()),
            loopback: HandleCache::default(),
            loaded: Mutex::default(),
        });
        AGENTS.lock().push(Arc::downgrade(&m));
        m
    }

    pub(crate) fn registered(&self, bytes: u64) {
        self.mem_registered.inc_by(bytes);
    }

    pub(crate) fn deregistered(&self, bytes: u64) {
        self.mem_deregistered.inc_by(bytes);
    }

    /// The cache for loopback requests.
    pub(crate) fn loopback_cache(&self) -> &HandleCache {
        &self.loopback
    }

    /// The peer label for `peer`: itself for the first [`MAX_PEERS`] peers, `other` after.
    pub(crate) fn peer_label(&self, peer: &str) -> String {
        let mut peers = self.peers.lock();
        if peers.iter().any(|p| p == peer) {
            return peer.to_owned();
        }
        if peers.len() < MAX_PEERS {
            peers.push(peer.to_owned());
            return peer.to_owned();
        }
        "other".to_owned()
    }
}

/// What selects a request's series besides the agent and peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct HandleKey {
    pub(crate) backend: usize,
    pub(crate) op: XferOp,
    pub(crate) local_mem: MemType,
    pub(crate) remote_mem: MemType,
    pub(crate) transport: &'static str,
}

/// Handle sets kept in slots a request reads without a lock; a peer's requests rarely use more
/// (one per backend, op, memory-type pair and transport in use).
const SLOTS: usize = 8;

/// Handle sets made for one peer, so a request fetches its handles without a lock: it scans
/// the filled slots (set once, in order, never changed). Making a set, and sets beyond the
/// slots, go through a lock. Kept on the remote-agent entry (or the agent, for loopback): a
/// reloaded peer starts with an empty cache, whose sets land on the same series.
#[derive(Default)]
pub(crate) struct HandleCache {
    slots: [OnceLock<(HandleKey, Arc<XferMetrics>)>; SLOTS],
    /// Taken to fill a slot (so slots fill in order) and to reach the sets beyond them.
    spill: Mutex<HashMap<HandleKey, Arc<XferMetrics>>>,
}

/// Where a request finds its handle set in a [`HandleCache`].
pub(crate) enum CachedSet {
    /// A slot: read through the cache's owner, which the request holds anyway, so making
    /// the request touches no shared reference count.
    Slot(usize),
    /// A set beyond the slots: the request holds its own reference.
    Spilled(Arc<XferMetrics>),
}

impl HandleCache {
    /// The handles for `key`, made on first use.
    pub(crate) fn get(
        &self,
        agent: &AgentMetrics,
        peer: &str,
        backend_name: &str,
        key: HandleKey,
    ) -> Arc<XferMetrics> {
        match self.locate(agent, peer, backend_name, key) {
            CachedSet::Slot(i) => self.slot_arc(i).clone(),
            CachedSet::Spilled(m) => m,
        }
    }

    /// Where the handles for `key` are, made on first use.
    pub(crate) fn locate(
        &self,
        agent: &AgentMetrics,
        peer: &str,
        backend_name: &str,
        key: HandleKey,
    ) -> CachedSet {
        match self.find(key) {
            Some(i) => CachedSet::Slot(i),
            None => self.make(agent, peer, backend_name, key),
        }
    }

    /// The set in slot `i`, as [`locate`](Self::locate) returned it.
    pub(crate) fn slot(&self, i: usize) -> &XferMetrics {
        self.slot_arc(i)
    }

    fn slot_arc(&self, i: usize) -> &Arc<XferMetrics> {
        let (_, m) = self.slots[i].get().expect("a located slot stays filled");
        m
    }

    /// The slot holding `key`'s set, among the filled ones.
    #[inline]
    fn find(&self, key: HandleKey) -> Option<usize> {
        for (i, slot) in self.slots.iter().enumerate() {
            match slot.get() {
                Some((k, _)) if *k == key => return Some(i),
                Some(_) => {}
                // Slots fill in order: none after an empty one.
                None => return None,
            }
        }
        None
    }

    /// Cold path: the set for `key` made (or found, if another thread made it meanwhile).
    #[cold]
    fn make(
        &self,
        agent: &AgentMetrics,
        peer: &str,
        backend_name: &str,
        key: HandleKey,
    ) -> CachedSet {
        let mut spill = self.spill.lock();
        if let Some(i) = self.find(key) {
            return CachedSet::Slot(i);
        }
        if let Some(m) = spill.get(&key) {
            return CachedSet::Spilled(m.clone());
        }
        let m = XferMetrics::new(agent, peer, backend_name, key);
        // Only this lock's holder sets slots, so the first empty one takes it.
        match self.slots.iter().position(|s| s.get().is_none()) {
            Some(i) => {
                let _ = self.slots[i].set((key, m));
                CachedSet::Slot(i)
            }
            None => {
                spill.insert(key, m.clone());
                CachedSet::Spilled(m)
            }
        }
    }
}

/// The series one request updates: fetched once when the request is made.
pub(crate) struct XferMetrics {
    bytes: Counter,
    requests: Counter,
    xfer_time: MicrosHistogram,
    post_time: MicrosHistogram,
    in_flight: Gauge,
    /// Errors are rare: they look their counter up by these labels plus the status.
    errors: ErrorLabels,
}

impl XferMetrics {
    fn new(agent: &AgentMetrics, peer: &str, backend: &str, key: HandleKey) -> Arc<XferMetrics> {
        let labels = XferLabels {
            category: "NIXL_TELEMETRY_TRANSFER",
            hostname: agent.hostname.clone(),
            agent_name: agent.agent_name.clone(),
            peer: agent.peer_label(peer),
            backend: backend.to_owned(),
            op: match key.op {
                XferOp::Read => "READ",
                XferOp::Write => "WRITE",
            },
            mem_type: key.local_mem.name(),
            remote_mem_type: key.remote_mem.name(),
            transport: key.transport,
        };
        let f = &*FAMILIES;
        let (bytes, requests) = match key.op {
            XferOp::Write => (&f.tx_bytes, &f.tx_requests),
            XferOp::Read => (&f.rx_bytes, &f.rx_requests),
        };
        Arc::new(XferMetrics {
            bytes: bytes.get_or_create(&labels).clone(),
            requests: requests.get_or_create(&labels).clone(),
            xfer_time: f.xfer_time.get_or_create(&labels).clone(),
            post_time: f.post_time.get_or_create(&labels).clone(),
            in_flight: f.in_flight.get_or_create(&labels).clone(),
            errors: ErrorLabels {
                hostname: labels.hostname,
                agent_name: labels.agent_name,
                peer: labels.peer,
                backend: labels.backend,
                status: "",
            },
        })
    }

    /// A post was accepted by the backend.
    pub(crate) fn posted(&self, post_us: u64) {
        self.post_time.observe(post_us);
        self.in_flight.inc();
    }

    /// A posted request was seen to complete.
    pub(crate) fn completed(&self, bytes: u64, xfer_us: u64) {
        self.bytes.inc_by(bytes);
        self.requests.inc();
        self.xfer_time.observe(xfer_us);
        self.in_flight.dec();
    }

    /// A posted request ended without being seen to complete (error or release).
    pub(crate) fn ended(&self) {
        self.in_flight.dec();
    }

    /// A post failed, or a posted request ended in `status`.
    pub(crate) fn error(&self, status: Status) {
        let labels = ErrorLabels {
            status: status.name(),
            ..self.errors.clone()
        };
        FAMILIES.errors.get_or_create(&labels).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(transport: &'static str, op: XferOp) -> HandleKey {
        HandleKey {
            backend: 0,
            op,
            local_mem: MemType::Dram,
            remote_mem: MemType::Dram,
            transport,
        }
    }

    #[test]
    fn a_cache_hands_out_one_set_per_key_beyond_its_slots() {
        let m = AgentMetrics::new("cache-test");
        let cache = HandleCache::default();
        let transports = [
            "same-process",
            "cma",
            "shm",
            "tcp",
            "cuda-ipc",
            "staged",
            "file",
        ];
        let keys: Vec<HandleKey> = transports
            .iter()
            .flat_map(|&t| [key(t, XferOp::Read), key(t, XferOp::Write)])
            .collect();
        assert!(keys.len() > SLOTS, "the test must spill past the slots");
        let first: Vec<_> = keys.iter().map(|&k| cache.get(&m, "p", "UCX", k)).collect();
        for (i, &k) in keys.iter().enumerate() {
            let again = cache.get(&m, "p", "UCX", k);
            for (j, set) in first.iter().enumerate() {
                assert_eq!(Arc::ptr_eq(&again, set), i == j, "key {i} against set {j}");
            }
        }
    }

    #[test]
    fn threads_racing_for_a_key_share_one_set_and_series() {
        let m = AgentMetrics::new("race-test");
        let cache = HandleCache::default();
        let sets: Vec<Arc<XferMetrics>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| cache.get(&m, "p", "UCX", key("tcp", XferOp::Write))))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(sets.iter().all(|x| Arc::ptr_eq(x, &sets[0])));
        // A reloaded peer (a new cache) lands on the same series.
        let reloaded = HandleCache::default().get(&m, "p", "UCX", key("tcp", XferOp::Write));
        sets[0].completed(100, 1);
        reloaded.completed(20, 1);
        let text = encode().unwrap();
        let lines: Vec<_> = text
            .lines()
            .filter(|l| l.starts_with("agent_tx_bytes_total{") && l.contains("race-test"))
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].ends_with(" 120"), "{}", lines[0]);
    }

    #[test]
    fn peers_beyond_the_cap_share_other() {
        let m = AgentMetrics::new("cap-test");
        for i in 0..MAX_PEERS {
            assert_eq!(m.peer_label(&format!("p{i}")), format!("p{i}"));
        }
        assert_eq!(m.peer_label("late"), "other");
        assert_eq!(m.peer_label("p0"), "p0", "a labelled peer keeps its label");
        // Handles made for two late peers land on one series.
        let key = HandleKey {
            backend: 0,
            op: XferOp::Write,
            local_mem: MemType::Dram,
            remote_mem: MemType::Dram,
            transport: "tcp",
        };
        let x = HandleCache::default().get(&m, "late-1", "UCX", key);
        let y = HandleCache::default().get(&m, "late-2", "UCX", key);
        x.posted(5);
        x.completed(100, 10);
        y.posted(5);
        y.completed(20, 10);
        let text = encode().unwrap();
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("agent_tx_bytes_total{") && l.contains("agent_name=\"cap-test\"")
            })
            .unwrap();
        assert!(
            line.contains("peer=\"other\"") && line.ends_with(" 120"),
            "{line}"
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("agent_tx_bytes_total{") && l.contains("cap-test"))
                .count(),
            1
        );
    }
}
