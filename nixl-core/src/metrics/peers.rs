//! Series about peers and connections, which NIXL does not export: the transport each peer
//! got and why, connections and peers by state, reloads of a known peer, notification send
//! time and requests ended by the peer timeout. Updated by the network backend on cold paths
//! (connect, pool hand-over, notification) with atomic operations on handles it keeps.

use parking_lot::Mutex;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::histogram::MicrosHistogram;
use super::{AgentMetrics, FAMILIES};

/// Labels of the per-agent state series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    hostname: String,
    agent_name: String,
    state: &'static str,
}

/// Labels of per-peer series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    hostname: String,
    agent_name: String,
    peer: String,
}

/// Labels of `agent_peer_transport`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    hostname: String,
    agent_name: String,
    peer: String,
    transport: &'static str,
    reason: &'static str,
}

/// The families of this module, registered with the process-wide registry.
#[derive(Default)]
pub(super) struct PeerFamilies {
    route: Family<RouteLabels, Gauge>,
    connections: Family<StateLabels, Gauge>,
    peers: Family<StateLabels, Gauge>,
    reloads: Family<PeerLabels, Counter>,
    timeouts: Family<PeerLabels, Counter>,
    notif_time: Family<PeerLabels, MicrosHistogram>,
}

impl PeerFamilies {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "agent_peer_transport",
            "1 for the transport each peer is reached by now (0 for one it had before), with why",
            self.route.clone(),
        );
        registry.register(
            "agent_connections",
            "TCP connections to peers: idle (pooled), busy (carrying a request), served (accepted)",
            self.connections.clone(),
        );
        registry.register(
            "agent_peers",
            "Loaded peers: connected, or disconnected (found gone, handle not yet dropped)",
            self.peers.clone(),
        );
        registry.register(
            "agent_peer_reconnects",
            "Remote agents loaded again after they were dropped (restart, or metadata reloaded)",
            self.reloads.clone(),
        );
        registry.register(
            "agent_peer_timeouts",
            "Requests and notifications ended because the peer made no progress within the peer timeout",
            self.timeouts.clone(),
        );
        registry.register(
            "agent_notif_send_time_us",
            "Time to hand one notification to its peer, in microseconds",
            self.notif_time.clone(),
        );
    }
}

/// Connection states of `agent_connections`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// Pooled, waiting for the next request.
    Idle,
    /// Carrying a request or notification.
    Busy,
    /// Accepted by this agent's listener and being served.
    Served,
}

impl ConnState {
    fn name(self) -> &'static str {
        match self {
            ConnState::Idle => "idle",
            ConnState::Busy => "busy",
            ConnState::Served => "served",
        }
    }
}

/// Peer names an agent remembers having loaded, to count reconnects (beyond it, loads of new
/// names are not remembered: memory stays bounded under churn).
const REMEMBERED_PEERS: usize = 4096;

impl AgentMetrics {
    /// A remote agent was loaded (a new entry, not an update): a reconnect if this agent had
    /// loaded that name before.
    pub(crate) fn peer_loaded(&self, peer: &str) {
        let mut seen = self.loaded.lock();
        if seen.contains(peer) {
            drop(seen);
            let labels = PeerLabels {
                hostname: self.hostname.clone(),
                agent_name: self.agent_name.clone(),
                peer: self.peer_label(peer),
            };
            FAMILIES.peers.reloads.get_or_create(&labels).inc();
        } else if seen.len() < REMEMBERED_PEERS {
            seen.insert(peer.to_owned());
        }
    }

    fn state_gauge(&self, family: &Family<StateLabels, Gauge>, state: &'static str) -> Gauge {
        family
            .get_or_create(&StateLabels {
                hostname: self.hostname.clone(),
                agent_name: self.agent_name.clone(),
                state,
            })
            .clone()
    }

    /// The gauge of this agent's connections in `state`.
    pub(crate) fn connections(&self, state: ConnState) -> Gauge {
        self.state_gauge(&FAMILIES.peers.connections, state.name())
    }
}

/// One loaded peer's handles (kept on the backend's peer handle).
pub(crate) struct PeerMetrics {
    /// Keeps the agent's label cap alive as long as the peer's series are updated.
    _agent: Arc<AgentMetrics>,
    labels: PeerLabels,
    connected: Gauge,
    disconnected: Gauge,
    idle: Gauge,
    busy: Gauge,
    timeouts: Counter,
    notif_time: MicrosHistogram,
    /// The transport and reason now set to 1, and whether the peer was found gone.
    state: Mutex<(Option<(&'static str, &'static str)>, bool)>,
}

impl PeerMetrics {
    /// Handles for `peer`, counted as connected.
    pub(crate) fn new(agent: &Arc<AgentMetrics>, peer: &str) -> PeerMetrics {
        let f = &FAMILIES.peers;
        let labels = PeerLabels {
            hostname: agent.hostname.clone(),
            agent_name: agent.agent_name.clone(),
            peer: agent.peer_label(peer),
        };
        let connected = agent.state_gauge(&f.peers, "connected");
        connected.inc();
        PeerMetrics {
            disconnected: agent.state_gauge(&f.peers, "disconnected"),
            idle: agent.connections(ConnState::Idle),
            busy: agent.connections(ConnState::Busy),
            timeouts: f.timeouts.get_or_create(&labels).clone(),
            notif_time: f.notif_time.get_or_create(&labels).clone(),
            connected,
            _agent: agent.clone(),
            labels,
            state: Mutex::new((None, false)),
        }
    }

    fn route_gauge(&self, transport: &'static str, reason: &'static str) -> Gauge {
        FAMILIES
            .peers
            .route
            .get_or_create(&RouteLabels {
                hostname: self.labels.hostname.clone(),
                agent_name: self.labels.agent_name.clone(),
                peer: self.labels.peer.clone(),
                transport,
                reason,
            })
            .clone()
    }

    /// The peer is reached by `transport` now, because of `reason` (a short fixed word).
    /// Counted per live handle (a probe of a new incarnation adds one for a moment).
    pub(crate) fn set_route(&self, transport: &'static str, reason: &'static str) {
        let mut state = self.state.lock();
        if let Some((t, r)) = state.0.replace((transport, reason)) {
            self.route_gauge(t, r).dec();
        }
        self.route_gauge(transport, reason).inc();
    }

    /// The peer was found gone (counted once).
    pub(crate) fn disconnected(&self) {
        let mut state = self.state.lock();
        if !std::mem::replace(&mut state.1, true) {
            self.connected.dec();
            self.disconnected.inc();
        }
    }

    /// A request or notification ended because the peer timeout passed.
    pub(crate) fn timed_out(&self) {
        self.timeouts.inc();
    }

    /// A notification was handed to the peer in `us` microseconds.
    pub(crate) fn notif_sent(&self, us: u64) {
        self.notif_time.observe(us);
    }

    /// A connection moved from `from` (None: newly opened) to `to` (None: closed).
    pub(crate) fn conn_moved(&self, from: Option<ConnState>, to: Option<ConnState>) {
        let gauge = |s| match s {
            ConnState::Idle => &self.idle,
            ConnState::Busy => &self.busy,
            ConnState::Served => unreachable!("served connections are the listener's"),
        };
        if let Some(s) = from {
            gauge(s).dec();
        }
        if let Some(s) = to {
            gauge(s).inc();
        }
    }

    /// `n` idle connections were closed.
    pub(crate) fn idle_closed(&self, n: usize) {
        self.idle.dec_by(n as i64);
    }
}

impl Drop for PeerMetrics {
    fn drop(&mut self) {
        let state = self.state.get_mut();
        if state.1 {
            self.disconnected.dec();
        } else {
            self.connected.dec();
        }
        if let Some((t, r)) = state.0 {
            self.route_gauge(t, r).dec();
        }
    }
}
