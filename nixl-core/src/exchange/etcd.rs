//! The central metadata store in etcd (feature `etcd`).
//!
//! Keys: `<namespace><agent>/<label>`, label `metadata` for full metadata. Every key this agent
//! writes is bound to one lease kept alive by a background task, so when the process dies its
//! keys expire and every peer watching them invalidates it. A fetch installs a watch on the
//! peer's prefix: a deletion (an `invalidate_local_md`, or lease expiry) invalidates the peer
//! here too.

use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Weak;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, DeleteOptions, EventType, PutOptions, WatchOptions};

use super::MetadataHost;
use crate::config::AgentConfig;
use crate::status::{Result, err};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected store, with its lease and watches.
pub struct EtcdStore {
    rt: tokio::runtime::Runtime,
    client: Client,
    namespace: String,
    lease: i64,
    watch_timeout: Duration,
    agent: Weak<dyn MetadataHost>,
    watched: Mutex<HashSet<String>>,
}

fn etcd_err(what: &str, e: impl std::fmt::Display) -> crate::NixlError {
    err!(Backend, "etcd {what}: {e}")
}

impl EtcdStore {
    /// Connects (bounded by a timeout), takes a lease and keeps it alive.
    pub(crate) fn connect(
        config: &AgentConfig,
        agent: Weak<dyn MetadataHost>,
    ) -> Result<EtcdStore> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nixl-etcd")
            // The gRPC client writes with writev, which raises SIGPIPE on a closed socket:
            // blocked in these threads, it stays pending there and the write fails with EPIPE.
            .on_thread_start(crate::sockio::block_sigpipe)
            .enable_all()
            .build()
            .map_err(|e| etcd_err("runtime", e))?;
        let endpoints = config.etcd_endpoints.clone();
        let ttl = config.etcd_lease_ttl;
        let (client, lease) = rt.block_on(async {
            let options = ConnectOptions::new()
                .with_connect_timeout(CONNECT_TIMEOUT)
                .with_timeout(OP_TIMEOUT);
            let connect = Client::connect(&endpoints, Some(options));
            let mut client = tokio::time::timeout(CONNECT_TIMEOUT * 2, connect)
                .await
                .map_err(|_| err!(Backend, "etcd at {endpoints:?} is unreachable (timed out)"))?
                .map_err(|e| err!(Backend, "etcd at {endpoints:?} is unreachable: {e}"))?;
            let grant =
                tokio::time::timeout(OP_TIMEOUT, client.lease_grant(ttl.as_secs() as i64, None))
                    .await
                    .map_err(|_| err!(Backend, "etcd at {endpoints:?} did not answer (timed out)"))?
                    .map_err(|e| {
                        err!(
                            Backend,
                            "etcd at {endpoints:?} is unreachable (no lease): {e}"
                        )
                    })?;
            Ok::<_, crate::NixlError>((client, grant.id()))
        })?;
        let mut keeper_client = client.clone();
        let period = (ttl / 3).max(Duration::from_millis(300));
        rt.spawn(async move {
            let Ok((mut keeper, mut acks)) = keeper_client.lease_keep_alive(lease).await else {
                return;
            };
            loop {
                if keeper.keep_alive().await.is_err() || acks.message().await.is_err() {
                    log::warn!("etcd lease keep-alive stopped");
                    return;
                }
                tokio::time::sleep(period).await;
            }
        });
        let mut namespace = config.etcd_namespace.clone();
        if !namespace.ends_with('/') {
            namespace.push('/');
        }
        Ok(EtcdStore {
            rt,
            client,
            namespace,
            lease,
            watch_timeout: config.etcd_watch_timeout,
            agent,
            watched: Mutex::new(HashSet::new()),
        })
    }

    fn key(&self, agent: &str, label: &str) -> String {
        format!("{}{agent}/{label}", self.namespace)
    }

    /// Publishes `md` under `<ns><agent>/<label>`, bound to this agent's lease.
    pub(crate) fn publish(&self, agent: &str, label: &str, md: Vec<u8>) -> Result<()> {
        let mut client = self.client.clone();
        let key = self.key(agent, label);
        let lease = self.lease;
        self.rt.block_on(async move {
            tokio::time::timeout(
                OP_TIMEOUT,
                client.put(key, md, Some(PutOptions::new().with_lease(lease))),
            )
            .await
            .map_err(|_| err!(Backend, "etcd put timed out"))?
            .map(drop)
            .map_err(|e| etcd_err("put", e))
        })
    }

    /// Deletes every key under `<ns><agent>/`; peers watching them invalidate the agent.
    pub(crate) fn remove(&self, agent: &str) -> Result<()> {
        let mut client = self.client.clone();
        let prefix = format!("{}{agent}/", self.namespace);
        self.rt.block_on(async move {
            tokio::time::timeout(
                OP_TIMEOUT,
                client.delete(prefix, Some(DeleteOptions::new().with_prefix())),
            )
            .await
            .map_err(|_| err!(Backend, "etcd delete timed out"))?
            .map(drop)
            .map_err(|e| etcd_err("delete", e))
        })
    }

    /// Reads `<ns><agent>/<label>`, waiting for it up to the watch timeout if it is not there
    /// yet; then loads it and watches the agent's prefix for deletion.
    pub(crate) fn fetch_and_watch(
        &self,
        inner: &dyn MetadataHost,
        agent: &str,
        label: &str,
    ) -> Result<()> {
        let mut client = self.client.clone();
        let key = self.key(agent, label);
        let wait = self.watch_timeout;
        let md = self.rt.block_on(async move {
            let got = tokio::time::timeout(OP_TIMEOUT, client.get(key.clone(), None))
                .await
                .map_err(|_| err!(Backend, "etcd get timed out"))?
                .map_err(|e| etcd_err("get", e))?;
            if let Some(kv) = got.kvs().first() {
                return Ok(kv.value().to_vec());
            }
            // Not published yet: watch from just after the revision we read.
            let from = got.header().map_or(0, |h| h.revision() + 1);
            let mut stream = client
                .watch(
                    key.clone(),
                    Some(WatchOptions::new().with_start_revision(from)),
                )
                .await
                .map_err(|e| etcd_err("watch", e))?;
            let arrival = async {
                while let Some(resp) = stream.message().await.map_err(|e| etcd_err("watch", e))? {
                    for ev in resp.events() {
                        if let (EventType::Put, Some(kv)) = (ev.event_type(), ev.kv()) {
                            return Ok(kv.value().to_vec());
                        }
                    }
                }
                Err(err!(Backend, "etcd watch on {key} ended"))
            };
            tokio::time::timeout(wait, arrival)
                .await
                .map_err(|_| err!(NotFound, "no metadata under {key} after {wait:?}"))?
        })?;
        let loaded = inner.load_remote_md(&md)?;
        if loaded != agent {
            return Err(err!(
                InvalidParam,
                "etcd key of {agent} holds metadata of {loaded}"
            ));
        }
        self.watch_for_deletion(agent);
        Ok(())
    }

    fn watch_for_deletion(&self, agent: &str) {
        if !self.watched.lock().insert(agent.to_owned()) {
            return;
        }
        let mut client = self.client.clone();
        let prefix = format!("{}{agent}/", self.namespace);
        let (weak, name) = (self.agent.clone(), agent.to_owned());
        self.rt.spawn(async move {
            let Ok(mut stream) = client
                .watch(prefix, Some(WatchOptions::new().with_prefix()))
                .await
            else {
                return;
            };
            while let Ok(Some(resp)) = stream.message().await {
                if resp
                    .events()
                    .iter()
                    .any(|e| e.event_type() == EventType::Delete)
                {
                    let Some(inner) = weak.upgrade() else { return };
                    if inner.invalidate_remote_md(&name).is_ok() {
                        log::info!(
                            "agent {}: {name} left etcd; its metadata is invalidated",
                            inner.name()
                        );
                    }
                }
            }
        });
    }

    /// Revokes the lease (so this agent's keys vanish now) and stops background tasks.
    pub(crate) fn shutdown(self) {
        let mut client = self.client.clone();
        let lease = self.lease;
        let _ = self.rt.block_on(async move {
            tokio::time::timeout(CONNECT_TIMEOUT, client.lease_revoke(lease)).await
        });
        self.rt.shutdown_timeout(Duration::from_millis(500));
    }
}
