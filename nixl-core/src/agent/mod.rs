//! The public façade: [`Agent`], NIXL's north-bound API.
//!
//! An agent is `Send + Sync` and every method may be called from many threads at once,
//! whatever [`ThreadSync`](crate::ThreadSync) mode is configured. The data path (post, status)
//! takes no agent-wide lock: a request carries everything it resolved when it was made.

mod async_md;
mod keys;
mod memory;
mod metadata_ops;
mod notif;
mod opts;
mod pairs;
mod pool;
mod remote;
mod request;
mod wait;
mod xfer;

use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::{Backend, BackendContext, NotifQueue, Params, plugins};
use crate::config::AgentConfig;
use crate::desc::RegDescList;
use crate::registry::Region;
use crate::status::{Result, err};
use crate::types::MemType;

use memory::{KeyMaker, MemTables};
use remote::RemoteAgent;

pub use notif::NotifMap;
pub use opts::OptArgs;
pub use request::PreppedDlist;
pub use wait::{NotifReady, XferReady};
pub use xfer::{XferRequest, XferTelemetry};

/// A backend instance created on an agent (`nixlBackendH`). Backends live as long as the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackendHandle(pub(crate) usize);

pub(crate) struct BackendSlot {
    pub(crate) name: String,
    pub(crate) engine: Arc<dyn Backend>,
}

pub(crate) struct AgentInner {
    pub(crate) name: String,
    pub(crate) config: AgentConfig,
    pub(crate) telemetry: bool,
    pub(crate) backends: RwLock<Vec<BackendSlot>>,
    /// Local registrations, indexed like `backends`.
    pub(crate) local: RwLock<Vec<MemTables>>,
    /// Bumped by every deregistration, so requests know to re-check their local descriptors.
    pub(crate) local_generation: AtomicU64,
    pub(crate) remotes: RwLock<std::collections::HashMap<String, Arc<RemoteAgent>>>,
    pub(crate) notifs: Arc<NotifQueue>,
    pub(crate) exchange: std::sync::OnceLock<crate::exchange::Exchange>,
    /// Prometheus series, when the process's endpoint ran as the agent was made.
    pub(crate) metrics: Option<Arc<crate::metrics::AgentMetrics>>,
    keys: KeyMaker,
    /// Descriptor vectors of released requests, for the next ones.
    desc_pool: pool::DescPool,
}

/// A NIXL agent: a named endpoint that owns backends, registered memory, knowledge of remote
/// agents, and transfer requests.
pub struct Agent {
    inner: Arc<AgentInner>,
}

impl Agent {
    /// Creates an agent. The name must be non-empty and at most
    /// [`MAX_NAME_LEN`](crate::metadata::MAX_NAME_LEN) bytes (longer names could never be
    /// published); it is how peers address this agent.
    pub fn new(name: &str, config: AgentConfig) -> Result<Agent> {
        if name.is_empty() {
            return Err(err!(InvalidParam, "an agent needs a non-empty name"));
        }
        if name.len() > crate::metadata::MAX_NAME_LEN {
            return Err(err!(
                InvalidParam,
                "an agent name of {} bytes is over the limit of {} bytes",
                name.len(),
                crate::metadata::MAX_NAME_LEN
            ));
        }
        let telemetry = config.telemetry_enabled();
        let listen_port = config.use_listen_thread.then_some(config.listen_port);
        if telemetry {
            // As in NIXL, an exporter that cannot start leaves the agent working without it.
            if let Err(e) = crate::metrics::start_from_env() {
                log::warn!("{e}; agent {name} runs without Prometheus metrics");
            }
        }
        let metrics =
            crate::metrics::exporter_port().map(|_| crate::metrics::AgentMetrics::new(name));
        let agent = Agent {
            inner: Arc::new(AgentInner {
                name: name.to_owned(),
                config,
                telemetry,
                backends: RwLock::new(Vec::new()),
                local: RwLock::new(Vec::new()),
                local_generation: AtomicU64::new(0),
                remotes: RwLock::new(Default::default()),
                notifs: Arc::new(NotifQueue::default()),
                exchange: std::sync::OnceLock::new(),
                metrics,
                keys: KeyMaker::new(),
                desc_pool: pool::DescPool::default(),
            }),
        };
        let inner = Arc::downgrade(&agent.inner);
        let host: std::sync::Weak<dyn crate::exchange::MetadataHost> = inner;
        let exchange = crate::exchange::Exchange::start(host, listen_port, &agent.inner.config)?;
        let _ = agent.inner.exchange.set(exchange);
        Ok(agent)
    }

    /// The port of the peer-to-peer metadata listener, if it runs (`use_listen_thread`); useful
    /// when the configured port was 0.
    pub fn listen_port(&self) -> Option<u16> {
        self.inner.exchange.get().and_then(|e| e.listen_port())
    }

    /// The port of the process's Prometheus endpoint, if this agent records metrics (see
    /// [`crate::metrics`]); useful when the configured port was 0.
    pub fn metrics_port(&self) -> Option<u16> {
        self.inner
            .metrics
            .as_ref()
            .and_then(|_| crate::metrics::exporter_port())
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The configuration the agent was created with.
    pub fn config(&self) -> &AgentConfig {
        &self.inner.config
    }

    /// Whether per-request telemetry is recorded.
    pub fn telemetry_enabled(&self) -> bool {
        self.inner.telemetry
    }

    /// Names of the plugins that can be instantiated (`getAvailPlugins`).
    pub fn available_plugins(&self) -> Vec<String> {
        plugins::all().iter().map(|p| p.name.to_owned()).collect()
    }

    /// A plugin's memory types and default parameters (`getPluginParams`).
    pub fn plugin_params(&self, name: &str) -> Result<(Vec<MemType>, Params)> {
        let plugin = plugins::find(name)?;
        Ok((plugin.mem_types.to_vec(), (plugin.default_params)()))
    }

    /// Instantiates a plugin (`createBackend`). One instance per plugin: a second one is
    /// INVALID_PARAM. Creation order is preference order when several backends could serve a
    /// transfer.
    pub fn create_backend(&self, name: &str, params: &Params) -> Result<BackendHandle> {
        let plugin = plugins::find(name)?;
        let mut backends = self.inner.backends.write();
        if backends.iter().any(|b| b.name == name) {
            return Err(err!(
                InvalidParam,
                "backend {name} already exists on agent {}",
                self.inner.name
            ));
        }
        let ctx = BackendContext {
            agent_name: self.inner.name.clone(),
            config: self.inner.config.clone(),
            notifs: self.inner.notifs.clone(),
        };
        let engine = (plugin.create)(&ctx, params)?;
        // Keep `local` indexed like `backends`; lock order is backends → local.
        self.inner.local.write().push(MemTables::default());
        backends.push(BackendSlot {
            name: name.to_owned(),
            engine,
        });
        Ok(BackendHandle(backends.len() - 1))
    }

    /// The backend created under `name`, if any.
    pub fn backend(&self, name: &str) -> Option<BackendHandle> {
        self.inner
            .backends
            .read()
            .iter()
            .position(|b| b.name == name)
            .map(BackendHandle)
    }

    /// A backend's plugin name.
    pub fn backend_name(&self, backend: BackendHandle) -> Result<String> {
        self.with_backend(backend, |slot| slot.name.clone())
    }

    /// A backend's memory types and effective parameters (`getBackendParams`).
    pub fn backend_params(&self, backend: BackendHandle) -> Result<(Vec<MemType>, Params)> {
        self.with_backend(backend, |slot| {
            (slot.engine.mem_types().to_vec(), slot.engine.params())
        })
    }

    fn with_backend<R>(
        &self,
        backend: BackendHandle,
        f: impl FnOnce(&BackendSlot) -> R,
    ) -> Result<R> {
        self.inner
            .backends
            .read()
            .get(backend.0)
            .map(f)
            .ok_or_else(|| {
                err!(
                    InvalidParam,
                    "backend handle {} does not belong to this agent",
                    backend.0
                )
            })
    }

    /// Backends that serve `mem`, filtered by the caller's hints, as indices.
    fn candidate_backends(&self, mem: MemType, opts: Option<&OptArgs>) -> Vec<usize> {
        let backends = self.inner.backends.read();
        (0..backends.len())
            .filter(|&i| backends[i].engine.mem_types().contains(&mem))
            .filter(|&i| {
                opts.is_none_or(|o| o.backends.is_empty() || o.backends.contains(&BackendHandle(i)))
            })
            .collect()
    }

    /// Registers memory (`registerMem`) with every backend that serves its type (or the hinted
    /// ones). Each backend registers all descriptors or none. SUCCESS if at least one backend
    /// accepted them; NOT_FOUND if no backend serves the type.
    ///
    /// # Safety
    /// Registered memory may be read and written by this agent's transfers and by peers holding
    /// its metadata, at any time until it is deregistered (or the agent dropped). The caller
    /// must keep every registered DRAM range allocated and valid for that long, and must not
    /// rely on Rust's aliasing guarantees for it while transfers may run.
    pub unsafe fn register_mem(&self, descs: &RegDescList, opts: Option<&OptArgs>) -> Result<()> {
        let mem = descs.mem_type();
        if descs.is_empty() {
            return Err(err!(InvalidParam, "nothing to register"));
        }
        if let Some(bad) = descs.descs().iter().find(|d| d.desc.end().is_none()) {
            return Err(err!(
                InvalidParam,
                "descriptor {:?} wraps around the address space",
                bad.desc
            ));
        }
        let candidates = self.candidate_backends(mem, opts);
        if candidates.is_empty() {
            return Err(err!(
                NotFound,
                "no backend on agent {} serves {mem} memory",
                self.inner.name
            ));
        }
        let backends = self.inner.backends.read();
        let mut last_error: Option<crate::NixlError> = None;
        let mut accepted = 0;
        for b in candidates {
            let engine = &backends[b].engine;
            let regions: Vec<_> = descs
                .descs()
                .iter()
                .map(|d| memory::new_region(d, self.inner.keys.next()))
                .collect();
            let mut done = 0;
            let result = regions.iter().try_for_each(|r| {
                engine.register(mem, r)?;
                done += 1;
                Ok(())
            });
            match result {
                Ok(()) => {
                    self.inner.local.write()[b].get_mut(mem).insert_all(regions);
                    accepted += 1;
                }
                Err(e) => {
                    for r in &regions[..done] {
                        engine.deregister(mem, r);
                    }
                    last_error = Some(e);
                }
            }
        }
        if accepted > 0
            && let Some(m) = &self.inner.metrics
        {
            m.registered(descs.descs().iter().map(|d| d.desc.len).sum());
        }
        match (accepted, last_error) {
            (0, Some(e)) => Err(err!(
                Backend,
                "no backend accepted the registration: {}",
                e.message()
            )),
            _ => Ok(()),
        }
    }

    /// Deregisters memory (`deregisterMem`). Every descriptor must exactly match a registration
    /// (address, length, device); otherwise NOT_FOUND and nothing is deregistered.
    pub fn deregister_mem(&self, descs: &RegDescList, opts: Option<&OptArgs>) -> Result<()> {
        let mem = descs.mem_type();
        let ranges: Vec<_> = descs.descs().iter().map(|d| d.desc).collect();
        let candidates = self.candidate_backends(mem, opts);
        let backends = self.inner.backends.read();
        let removed: Vec<(usize, Region)> = {
            let mut local = self.inner.local.write();
            let plan: Vec<(usize, Vec<usize>)> = candidates
                .into_iter()
                .filter_map(|b| memory::exact_positions(local[b].get(mem), &ranges).map(|p| (b, p)))
                .collect();
            if plan.is_empty() || ranges.is_empty() {
                return Err(err!(
                    NotFound,
                    "the descriptors do not exactly match a registration on agent {}",
                    self.inner.name
                ));
            }
            plan.into_iter()
                .flat_map(|(b, positions)| {
                    let regions = local[b].get_mut(mem).remove_positions(positions);
                    regions.into_iter().map(move |r| (b, r))
                })
                .collect()
        };
        self.inner.local_generation.fetch_add(1, Ordering::AcqRel);
        // A backend waits here for copies still in flight into the region, up to the peer
        // timeout: outside the registration lock, so requests, metadata and registrations on
        // other memory go on meanwhile. The region is already unknown to new requests.
        for (b, region) in &removed {
            backends[*b].engine.deregister(mem, region);
        }
        if let Some(m) = &self.inner.metrics {
            m.deregistered(ranges.iter().map(|d| d.len).sum());
        }
        Ok(())
    }

    /// Asks one backend about registered descriptors (`queryMem`), e.g. whether files exist.
    pub fn query_mem(
        &self,
        descs: &RegDescList,
        opts: Option<&OptArgs>,
    ) -> Result<Vec<Option<Params>>> {
        let hinted = opts.map(|o| o.backends.as_slice()).unwrap_or(&[]);
        let [backend] = hinted else {
            return Err(err!(
                InvalidParam,
                "queryMem needs exactly one backend in the optional arguments"
            ));
        };
        let engine = self.with_backend(*backend, |slot| slot.engine.clone())?;
        engine.query_mem(descs.mem_type(), descs.descs())
    }
}

impl Drop for Agent {
    /// Stops every backend: in-flight transfers are canceled and waited for, listeners close.
    /// Requests still held by the caller stay safe to query and release.
    fn drop(&mut self) {
        if let Some(exchange) = self.inner.exchange.get() {
            exchange.shutdown();
        }
        for slot in self.inner.backends.read().iter() {
            slot.engine.shutdown();
        }
    }
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}
