//! Metadata exchange: the peer-to-peer listener (`ip:port`) and, with the `etcd` feature, a
//! central etcd store. All outbound calls are asynchronous, as in NIXL: they are queued to one
//! worker thread per agent (so they happen in call order) and their effect is observed with
//! `check_remote_md`.

#[cfg(feature = "etcd")]
mod etcd;
pub mod frame;
pub(crate) mod p2p;
pub(crate) mod store;

use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, unbounded};

use crate::config::AgentConfig;
use crate::status::{Result, err};

/// A peer's connection info per backend name, as its metadata carried it.
pub(crate) type Conns = Vec<(String, Vec<u8>)>;

/// What the exchange needs from the agent it serves. The exchange holds a
/// `Weak<dyn MetadataHost>`, never the agent itself, so the dependency runs one way (the agent
/// implements this in `agent::async_md`) and the exchange can be driven by a test double.
pub(crate) trait MetadataHost: Send + Sync {
    /// The agent's name, for logs.
    fn name(&self) -> &str;
    /// The shared secret that authenticates exchange connections, if any.
    fn auth_secret(&self) -> Option<&[u8]>;
    /// This agent's full metadata blob.
    fn local_md(&self) -> Result<Vec<u8>>;
    /// Loads a peer's metadata blob; returns the peer's name.
    fn load_remote_md(&self, blob: &[u8]) -> Result<String>;
    /// Forgets a peer (NOT_FOUND if unknown).
    fn invalidate_remote_md(&self, name: &str) -> Result<()>;
    /// The connection info of the loaded incarnation of `name`.
    fn remote_conns(&self, name: &str) -> Option<Conns>;
    /// Whether the incarnation of `name` described by `conns` still answers.
    fn incarnation_answers(&self, name: &str, conns: &[(String, Vec<u8>)]) -> bool;
}

type Task = Box<dyn FnOnce(&dyn MetadataHost) + Send>;

/// An agent's exchange machinery: its listener (if enabled) and its outbound worker.
pub struct Exchange {
    listener: Option<p2p::Listener>,
    worker: Mutex<Option<(Sender<Task>, JoinHandle<()>)>>,
    store: Mutex<Option<Arc<store::Store>>>,
    config: AgentConfig,
    agent: Weak<dyn MetadataHost>,
}

impl Exchange {
    /// Starts the listener when `listen_port` is given; `config` names the central store.
    pub(crate) fn start(
        agent: Weak<dyn MetadataHost>,
        listen_port: Option<u16>,
        config: &AgentConfig,
    ) -> Result<Exchange> {
        let secret = config.auth_secret.clone();
        let listener = listen_port
            .map(|port| p2p::Listener::start(agent.clone(), port, secret))
            .transpose()?;
        Ok(Exchange {
            listener,
            worker: Mutex::new(None),
            store: Mutex::new(None),
            config: config.clone(),
            agent,
        })
    }

    /// The listener's port, if it runs.
    pub fn listen_port(&self) -> Option<u16> {
        self.listener.as_ref().map(p2p::Listener::port)
    }

    /// The central store, connecting on first use (bounded by a timeout); `None` when no
    /// endpoints are configured.
    pub(crate) fn store(&self) -> Result<Option<Arc<store::Store>>> {
        if self.config.etcd_endpoints.is_empty() {
            return Ok(None);
        }
        let mut slot = self.store.lock();
        if slot.is_none() {
            *slot = Some(Arc::new(store::Store::connect(
                &self.config,
                self.agent.clone(),
            )?));
        }
        Ok(slot.clone())
    }

    /// Queues `task` to run in order on the agent's exchange thread.
    pub(crate) fn queue(
        &self,
        what: &'static str,
        task: impl FnOnce(&dyn MetadataHost) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let mut slot = self.worker.lock();
        if slot.is_none() {
            let (tx, rx) = unbounded::<Task>();
            let agent = self.agent.clone();
            let handle = std::thread::Builder::new()
                .name("nixl-md-worker".into())
                .spawn(move || {
                    while let Ok(task) = rx.recv() {
                        let Some(host) = agent.upgrade() else { break };
                        task(&*host);
                    }
                })
                .map_err(|e| err!(Backend, "cannot start the metadata worker: {e}"))?;
            *slot = Some((tx, handle));
        }
        let (tx, _) = slot.as_ref().expect("worker started above");
        tx.send(Box::new(move |host: &dyn MetadataHost| {
            if let Err(e) = task(host) {
                log::warn!("agent {}: {what} failed: {e}", host.name());
            }
        }))
        .map_err(|_| err!(Backend, "the metadata worker has stopped"))
    }

    /// Stops the listener and the worker (after the tasks already queued).
    pub(crate) fn shutdown(&self) {
        if let Some(l) = &self.listener {
            l.shutdown();
        }
        let store = self.store.lock().take();
        if let Some((tx, handle)) = self.worker.lock().take() {
            drop(tx);
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
        // The worker held the last other reference, so the store can now be shut down.
        if let Some(store) = store.and_then(|s| Arc::try_unwrap(s).ok()) {
            store.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crossbeam_channel::{RecvTimeoutError, unbounded};

    use super::{Conns, Exchange, MetadataHost};
    use crate::config::AgentConfig;
    use crate::status::{Result, err};

    /// A host with no agent, no backends and no sockets behind it.
    struct FakeHost;

    impl MetadataHost for FakeHost {
        fn name(&self) -> &str {
            "fake"
        }
        fn auth_secret(&self) -> Option<&[u8]> {
            None
        }
        fn local_md(&self) -> Result<Vec<u8>> {
            Ok(b"md".to_vec())
        }
        fn load_remote_md(&self, _blob: &[u8]) -> Result<String> {
            Err(err!(InvalidParam, "not a blob"))
        }
        fn invalidate_remote_md(&self, name: &str) -> Result<()> {
            Err(err!(NotFound, "no metadata loaded for agent {name}"))
        }
        fn remote_conns(&self, _name: &str) -> Option<Conns> {
            None
        }
        fn incarnation_answers(&self, _name: &str, _conns: &[(String, Vec<u8>)]) -> bool {
            false
        }
    }

    fn exchange(host: &Arc<FakeHost>) -> Exchange {
        let config = AgentConfig {
            etcd_endpoints: Vec::new(),
            ..AgentConfig::default()
        };
        let weak = Arc::downgrade(host);
        let weak: std::sync::Weak<dyn MetadataHost> = weak;
        Exchange::start(weak, None, &config).unwrap()
    }

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn tasks_run_in_call_order_on_one_thread_and_a_failure_stops_none() {
        let host = Arc::new(FakeHost);
        let ex = exchange(&host);
        assert!(ex.listen_port().is_none());
        assert!(ex.store().unwrap().is_none(), "no endpoints: no store");
        let (tx, rx) = unbounded();
        for i in 0..20 {
            let tx = tx.clone();
            ex.queue("test", move |h: &dyn MetadataHost| {
                let _ = tx.send((i, std::thread::current().id(), h.local_md()?));
                // Every other task fails; the worker logs it and goes on.
                if i % 2 == 0 {
                    h.load_remote_md(b"x").map(drop)
                } else {
                    Ok(())
                }
            })
            .unwrap();
        }
        let got: Vec<_> = (0..20).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        assert!(got.iter().all(|g| g.1 == got[0].1 && g.2 == b"md"));
        assert_ne!(got[0].1, std::thread::current().id());
        ex.shutdown();
    }

    #[test]
    fn shutdown_waits_for_the_tasks_already_queued() {
        let host = Arc::new(FakeHost);
        let ex = exchange(&host);
        let (tx, rx) = unbounded();
        for i in 0..5 {
            let tx = tx.clone();
            ex.queue("test", move |_: &dyn MetadataHost| {
                let _ = tx.send(i);
                Ok(())
            })
            .unwrap();
        }
        ex.shutdown();
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            (0..5).collect::<Vec<_>>()
        );
    }

    /// The exchange never keeps its agent alive: once the host is gone, a queued task is
    /// dropped unrun (its sender closes) instead of running against a dead agent.
    #[test]
    fn tasks_for_a_dropped_host_are_dropped_unrun() {
        let host = Arc::new(FakeHost);
        let ex = exchange(&host);
        let (tx, rx) = unbounded::<()>();
        drop(host);
        ex.queue("test", move |_: &dyn MetadataHost| {
            let _ = tx.send(());
            Ok(())
        })
        .unwrap();
        assert_eq!(rx.recv_timeout(WAIT), Err(RecvTimeoutError::Disconnected));
        ex.shutdown();
    }
}
