//! Agent configuration: NIXL's `nixlAgentConfig` fields plus this implementation's knobs.

use std::time::Duration;

use crate::types::ThreadSync;

/// NIXL's default port for the metadata listener.
pub const DEFAULT_COMM_PORT: u16 = 8888;

/// How an agent is configured (`nixlAgentConfig`).
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Ask backends for a progress thread. The default backend always progresses transfers on
    /// its own threads, so this only changes how eagerly idle threads sleep.
    pub use_prog_thread: bool,
    /// Run the peer-to-peer metadata listener.
    pub use_listen_thread: bool,
    /// Port of the metadata listener (0 = pick a free one).
    pub listen_port: u16,
    /// NIXL's locking mode; this agent is thread-safe in all of them.
    pub sync_mode: ThreadSync,
    /// Progress-thread poll delay.
    pub pthr_delay: Duration,
    /// Metadata-listener poll delay.
    pub lthr_delay: Duration,
    /// Record per-request telemetry (also turned on by `NIXL_TELEMETRY_ENABLE`).
    pub capture_telemetry: bool,
    /// How long a fetch from a central store waits for the key to appear.
    pub etcd_watch_timeout: Duration,
    /// How long an unresponsive peer is waited for before REMOTE_DISCONNECT.
    pub peer_timeout: Duration,
    /// Shared secret that peers must prove they know before reading or writing this agent's
    /// memory over the network (default: `NIXL_RS_SECRET`; `None` = no authentication).
    pub auth_secret: Option<Vec<u8>>,
    /// etcd endpoints of the central metadata store (default: `NIXL_ETCD_ENDPOINTS`,
    /// comma-separated); empty = no store.
    pub etcd_endpoints: Vec<String>,
    /// Key prefix in etcd (default: `NIXL_ETCD_NAMESPACE`, else `/nixl/agents/`).
    pub etcd_namespace: String,
    /// Lease of this agent's etcd keys: they vanish this long after the process dies
    /// (default: `NIXL_RS_ETCD_LEASE_TTL_S`, else 10 s).
    pub etcd_lease_ttl: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            use_prog_thread: false,
            use_listen_thread: false,
            listen_port: DEFAULT_COMM_PORT,
            sync_mode: ThreadSync::None,
            pthr_delay: Duration::ZERO,
            lthr_delay: Duration::from_micros(100_000),
            capture_telemetry: false,
            etcd_watch_timeout: Duration::from_secs(5),
            peer_timeout: peer_timeout_from_env().unwrap_or(Duration::from_secs(5)),
            auth_secret: std::env::var("NIXL_RS_SECRET")
                .ok()
                .filter(|s| !s.is_empty())
                .map(String::into_bytes),
            etcd_endpoints: std::env::var("NIXL_ETCD_ENDPOINTS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            etcd_namespace: std::env::var("NIXL_ETCD_NAMESPACE")
                .unwrap_or_else(|_| "/nixl/agents/".into()),
            etcd_lease_ttl: Duration::from_secs(
                std::env::var("NIXL_RS_ETCD_LEASE_TTL_S")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(10)
                    .max(1),
            ),
        }
    }
}

impl AgentConfig {
    /// Whether telemetry is on, after applying `NIXL_TELEMETRY_ENABLE` (`y`/`1`/`yes` turns it
    /// on, `n`/`0`/`no` turns it off even when the config asks for it).
    pub fn telemetry_enabled(&self) -> bool {
        match std::env::var("NIXL_TELEMETRY_ENABLE").map(|v| v.to_ascii_lowercase()) {
            Ok(v) if matches!(v.as_str(), "y" | "yes" | "1" | "true" | "on") => true,
            Ok(v) if matches!(v.as_str(), "n" | "no" | "0" | "false" | "off") => false,
            _ => self.capture_telemetry,
        }
    }
}

/// `NIXL_RS_PEER_TIMEOUT_MS` overrides the default peer timeout.
fn peer_timeout_from_env() -> Option<Duration> {
    let ms: u64 = std::env::var("NIXL_RS_PEER_TIMEOUT_MS")
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_millis(ms.max(1)))
}
