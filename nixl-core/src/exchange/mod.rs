//! Metadata exchange: the peer-to-peer listener (`ip:port`) and, with the `etcd` feature, a
//! central etcd store. All outbound calls are asynchronous, as in NIXL: they are queued to one
//! worker thread per agent (so they happen in call order) and their effect is observed with
//! `check_remote_md`.

#[cfg(feature = "etcd")]
mod etcd;
pub mod frame;
pub(crate) mod p2p;
pub(crate) mod store;

use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, unbounded};

use crate::agent::AgentInner;
use crate::backend::lock;
use crate::status::{Result, err};

type Task = Box<dyn FnOnce(&AgentInner) + Send>;

/// An agent's exchange machinery: its listener (if enabled) and its outbound worker.
pub struct Exchange {
    listener: Option<p2p::Listener>,
    worker: Mutex<Option<(Sender<Task>, JoinHandle<()>)>>,
    store: Mutex<Option<Arc<store::Store>>>,
    agent: Weak<AgentInner>,
}

impl Exchange {
    /// Starts the listener when `listen_port` is given.
    pub(crate) fn start(
        agent: Weak<AgentInner>,
        listen_port: Option<u16>,
        secret: Option<Vec<u8>>,
    ) -> Result<Exchange> {
        let listener = listen_port
            .map(|port| p2p::Listener::start(agent.clone(), port, secret))
            .transpose()?;
        Ok(Exchange {
            listener,
            worker: Mutex::new(None),
            store: Mutex::new(None),
            agent,
        })
    }

    /// The listener's port, if it runs.
    pub fn listen_port(&self) -> Option<u16> {
        self.listener.as_ref().map(p2p::Listener::port)
    }

    /// The central store, connecting on first use (bounded by a timeout); `None` when no
    /// endpoints are configured.
    pub(crate) fn store(&self, inner: &AgentInner) -> Result<Option<Arc<store::Store>>> {
        if inner.config.etcd_endpoints.is_empty() {
            return Ok(None);
        }
        let mut slot = lock(&self.store);
        if slot.is_none() {
            *slot = Some(Arc::new(store::Store::connect(
                &inner.config,
                self.agent.clone(),
            )?));
        }
        Ok(slot.clone())
    }

    /// Queues `task` to run in order on the agent's exchange thread.
    pub(crate) fn queue(
        &self,
        what: &'static str,
        task: impl FnOnce(&AgentInner) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let mut slot = lock(&self.worker);
        if slot.is_none() {
            let (tx, rx) = unbounded::<Task>();
            let agent = self.agent.clone();
            let handle = std::thread::Builder::new()
                .name("nixl-md-worker".into())
                .spawn(move || {
                    while let Ok(task) = rx.recv() {
                        let Some(inner) = agent.upgrade() else { break };
                        task(&inner);
                    }
                })
                .map_err(|e| err!(Backend, "cannot start the metadata worker: {e}"))?;
            *slot = Some((tx, handle));
        }
        let (tx, _) = slot.as_ref().expect("worker started above");
        tx.send(Box::new(move |inner: &AgentInner| {
            if let Err(e) = task(inner) {
                log::warn!("agent {}: {what} failed: {e}", inner.name);
            }
        }))
        .map_err(|_| err!(Backend, "the metadata worker has stopped"))
    }

    /// Stops the listener and the worker (after the tasks already queued).
    pub(crate) fn shutdown(&self) {
        if let Some(l) = &self.listener {
            l.shutdown();
        }
        let store = lock(&self.store).take();
        if let Some((tx, handle)) = lock(&self.worker).take() {
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
