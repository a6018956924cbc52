//! A worker process: a mock engine for timing and scheduling, a real KV pool registered with
//! the transfer library, a control connection to the frontend and a KV-event publisher.
//!
//! Prefill workers "compute" uncached blocks by writing their deterministic contents and
//! hand them over (pinned until the decode side's READ notification, or written to the
//! decode worker in push mode). Decode workers verify every block they receive before the
//! request starts decoding. Blocks the pool evicts go to a host tier ([`host`]); a prefill
//! worker told that a peer holds a longer prefix READs it from that peer ([`fetch`]).

mod blocks;
mod decode;
mod driver;
mod error;
mod exporter;
mod fetch;
mod host;
mod prefill;

use crate::events::{Publisher, VllmEncoder};
use crate::kv::{HostTier, KvLayout, KvPool, SlotTable};
use crate::proto::{FrontMsg, WorkerLoad, WorkerMsg, WorkerRole, read_msg, write_msg};
use crate::transfer::{Transport, XferId, capi::LibChoice};
use driver::EngineDriver;
use router::trace_hashing::TraceHasher;
use sim::config::EngineConfig;
use sim::engine::{Engine, Output, Role};
use std::collections::HashMap;
use std::io::BufReader;
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub use blocks::{PromptBlocks, block_tokens, prompt_blocks};
pub use error::{PeerError, WorkerError};

/// Settings of one worker process (`disagg worker ...`; the frontend writes these flags).
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Role: prefill or decode.
    #[arg(long, value_parser = crate::cli::worker_role)]
    pub role: WorkerRole,
    /// Replica id given by the frontend.
    #[arg(long, default_value_t = 0)]
    pub replica: u64,
    /// Frontend control address (`host:port`).
    #[arg(long)]
    pub control: String,
    /// KV pool blocks.
    #[arg(long, default_value_t = 1024)]
    pub blocks: usize,
    /// Divides the engine's modelled step times.
    #[arg(long, default_value_t = 1.0)]
    pub speedup: f64,
    /// Seconds a pulled prefill block stays pinned without a notification.
    #[arg(long = "pin-timeout", default_value_t = 10.0)]
    pub pin_timeout_s: f64,
    /// Blocks per push-mode WRITE (one notification each).
    #[arg(long, default_value_t = 8)]
    pub push_chunk: usize,
    /// Which `libnixl_capi` to use: `linked` or a path.
    #[arg(long, value_parser = crate::cli::worker_lib, default_value = "linked")]
    pub lib: LibChoice,
    /// Host the KV-event publisher binds.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Publish metadata through the transfer library's listener on this port (0: off).
    #[arg(long, default_value_t = 0)]
    pub listen_port: u16,
    /// Test hook: damage the first block received over the network before verifying it,
    /// to show that verification catches it.
    #[arg(long)]
    pub corrupt_first: bool,
    /// Host-tier blocks (0: no tier).
    #[arg(long, default_value_t = 0)]
    pub host_tier_blocks: usize,
    /// Seconds a prefix fetch may take before the worker recomputes instead.
    #[arg(long = "fetch-timeout", default_value_t = 1.0)]
    pub fetch_timeout_s: f64,
    /// Test hook: when lending blocks to a fetching peer, report a reused slot for the
    /// first one (as if it had been evicted and overwritten), to show the fetcher rejects it.
    #[arg(long)]
    pub stale_lend: bool,
    /// Test hook: the first worker to lend blocks (the one that creates this file) is
    /// SIGKILLed right after answering, mid-fetch.
    #[arg(long)]
    pub die_on_lend: Option<std::path::PathBuf>,
}

/// A peer's KV pool.
#[derive(Debug, Clone, Copy)]
struct PeerPool {
    layout: KvLayout,
    base: u64,
}

/// Everything a worker holds.
pub(crate) struct Worker {
    args: WorkerArgs,
    role: WorkerRole,
    pool: KvPool,
    slots: SlotTable,
    host: Option<HostTier>,
    transport: Box<dyn Transport>,
    driver: EngineDriver,
    hasher: TraceHasher,
    conn: TcpStream,
    peers: HashMap<String, PeerPool>,
    encoder: VllmEncoder,
    publisher: Publisher,
    load: WorkerLoad,
    prefill: prefill::PrefillState,
    decode: decode::DecodeState,
    fetch: fetch::FetchState,
}

/// Runs a worker until the frontend says stop or goes away.
pub fn run(args: WorkerArgs) -> Result<(), WorkerError> {
    let layout = KvLayout::mock_model(args.blocks);
    let pool = KvPool::try_new(layout)?;
    let host = (args.host_tier_blocks > 0)
        .then(|| HostTier::new(&layout, args.host_tier_blocks))
        .transpose()?;
    let mut regions = vec![(pool.base_addr(), pool.len())];
    if let Some(h) = &host {
        regions.push((h.pool.base_addr(), h.pool.len()));
    }
    let name = format!(
        "{}-{}-{}",
        args.role.as_str(),
        args.replica,
        std::process::id()
    );
    let api = args.lib.api().map_err(WorkerError::Library)?;
    let exporter = exporter::Exporter::before_agent(&api, &args.host);
    let transport =
        crate::transfer::capi::CapiTransport::new(api, &name, &regions, args.listen_port)
            .map_err(WorkerError::Library)?;
    let metrics = exporter.port(&args.host);
    let mut transport: Box<dyn Transport> = Box::new(transport);
    let library = args.lib.describe();
    let publisher = Publisher::bind(&args.host).map_err(WorkerError::KvEvents)?;
    // The engine's model of the host tier mirrors the real one, so its step timing takes
    // onboarded blocks as loaded (priced by its transfer model) rather than computed.
    let engine_cfg = EngineConfig {
        num_gpu_blocks: args.blocks,
        host_blocks: args.host_tier_blocks,
        block_size: layout.block_tokens,
        ..EngineConfig::default()
    };
    let role = match args.role {
        WorkerRole::Prefill => Role::Prefill,
        WorkerRole::Decode => Role::Decode,
    };
    let engine = Engine::new(engine_cfg, role, true);
    let conn = TcpStream::connect(&args.control).map_err(|source| WorkerError::Connect {
        addr: args.control.clone(),
        source,
    })?;
    conn.set_nodelay(true).ok();
    let md = transport
        .local_md()
        .map_err(|source| WorkerError::Metadata {
            what: "local",
            source,
        })?;
    transport
        .publish_md()
        .map_err(|source| WorkerError::Metadata {
            what: "publish",
            source,
        })?;
    let mut worker = Worker {
        role: args.role,
        pool,
        slots: SlotTable::new(args.blocks),
        host,
        transport,
        driver: EngineDriver::new(engine, args.speedup),
        hasher: TraceHasher::new(layout.block_tokens, 512),
        conn: conn.try_clone().map_err(|source| WorkerError::Io {
            what: "control connection",
            source,
        })?,
        peers: HashMap::new(),
        encoder: VllmEncoder::new(layout.block_tokens),
        load: WorkerLoad::default(),
        prefill: prefill::PrefillState::default(),
        decode: decode::DecodeState::default(),
        fetch: fetch::FetchState::default(),
        args: args.clone(),
        publisher,
    };
    worker.send(&WorkerMsg::Hello {
        metrics,
        replica: args.replica,
        role: args.role,
        agent: name,
        md,
        layout,
        base_addr: worker.pool.base_addr(),
        events: worker.publisher.endpoint().to_string(),
        library,
        listener: (args.listen_port != 0).then(|| (args.host.clone(), args.listen_port)),
    })?;
    let rx = spawn_reader(conn)?;
    worker.run_loop(&rx)
}

fn spawn_reader(conn: TcpStream) -> Result<Receiver<Option<FrontMsg>>, WorkerError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("control-rx".into())
        .spawn(move || {
            let mut r = BufReader::new(conn);
            loop {
                match read_msg::<FrontMsg>(&mut r) {
                    Ok(Some(m)) => {
                        if tx.send(Some(m)).is_err() {
                            return;
                        }
                    }
                    _ => {
                        let _ = tx.send(None);
                        return;
                    }
                }
            }
        })
        .map_err(|source| WorkerError::Io {
            what: "control-rx thread",
            source,
        })?;
    Ok(rx)
}

impl Worker {
    pub(crate) fn send(&mut self, msg: &WorkerMsg) -> Result<(), WorkerError> {
        write_msg(&mut self.conn, msg).map_err(WorkerError::Control)
    }

    fn run_loop(&mut self, rx: &Receiver<Option<FrontMsg>>) -> Result<(), WorkerError> {
        let mut outputs = Vec::new();
        let mut next_load = Instant::now();
        let t0 = std::time::SystemTime::now();
        loop {
            let now = Instant::now();
            let wait = self.wait_time(now);
            match rx.recv_timeout(wait) {
                Ok(Some(FrontMsg::Shutdown)) | Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                    return Ok(());
                }
                Ok(Some(msg)) => self.handle(msg)?,
                Err(RecvTimeoutError::Timeout) => {}
            }
            while let Ok(m) = rx.try_recv() {
                match m {
                    Some(FrontMsg::Shutdown) | None => return Ok(()),
                    Some(msg) => self.handle(msg)?,
                }
            }
            let now = Instant::now();
            self.poll_transfers(now)?;
            self.driver.step(now, &mut outputs);
            if !outputs.is_empty() {
                self.on_outputs(&mut outputs)?;
            }
            self.publish_events(t0);
            if now >= next_load {
                self.report_load()?;
                next_load = now + Duration::from_millis(200);
            }
        }
    }

    fn wait_time(&self, now: Instant) -> Duration {
        let busy = self.prefill.busy() || self.decode.busy() || self.fetch.busy();
        let mut wait = if busy {
            Duration::from_micros(300)
        } else {
            Duration::from_millis(10)
        };
        for d in [self.driver.deadline(), self.decode.next_local_deadline()]
            .into_iter()
            .flatten()
        {
            wait = wait.min(d.saturating_duration_since(now));
        }
        wait
    }

    fn handle(&mut self, msg: FrontMsg) -> Result<(), WorkerError> {
        match msg {
            FrontMsg::Peer {
                agent,
                md,
                listener,
                layout,
                base_addr,
            } => {
                let loaded = if md.is_empty() {
                    self.fetch_peer(&agent, listener)
                } else {
                    self.transport.load_peer(&md).map(|_| ()).map_err(|source| {
                        PeerError::LoadMetadata {
                            agent: agent.clone(),
                            source,
                        }
                    })
                };
                // A peer that cannot be reached (it may have just died) is not fatal: it is
                // left out, and requests that involve it fail and are re-routed.
                if let Err(e) = loaded {
                    eprintln!("disagg worker: {e}; continuing without that peer");
                    return Ok(());
                }
                self.peers.insert(
                    agent,
                    PeerPool {
                        layout,
                        base: base_addr,
                    },
                );
            }
            FrontMsg::PeerGone { agent } => {
                // Fetches from it end before its metadata goes (their handles need it).
                self.fetch_peer_gone(&agent);
                self.peers.remove(&agent);
                self.transport.forget_peer(&agent);
                self.on_peer_gone(&agent)?;
            }
            FrontMsg::Prefill { req, push, fetch } => self.on_prefill(req, push, fetch),
            FrontMsg::Allocate { req } => self.on_allocate(req)?,
            FrontMsg::Decode { req, source } => self.on_decode(req, source)?,
            FrontMsg::Abort { id } => self.on_abort(id),
            FrontMsg::Shutdown => {}
        }
        Ok(())
    }

    /// Fetches a peer's metadata from its listener (or etcd) and waits until it is loaded.
    fn fetch_peer(
        &mut self,
        agent: &str,
        listener: Option<(String, u16)>,
    ) -> Result<(), PeerError> {
        let (ip, port) = listener.map_or((None, None), |(ip, p)| (Some(ip), Some(p)));
        let deadline = Instant::now() + Duration::from_secs(5);
        // The library's last error, if the last try failed in the library.
        let mut last_err = None;
        while Instant::now() < deadline {
            match self.transport.fetch_peer(agent, ip.as_deref(), port) {
                Ok(()) => {
                    let poll_until = Instant::now() + Duration::from_secs(2);
                    while Instant::now() < poll_until {
                        if self.transport.has_peer(agent) {
                            return Ok(());
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    last_err = None;
                }
                Err(e) => last_err = Some(e),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let agent = agent.to_string();
        Err(match last_err {
            Some(source) => PeerError::FetchMetadata { agent, source },
            None => PeerError::NotLoaded { agent },
        })
    }

    fn on_peer_gone(&mut self, agent: &str) -> Result<(), WorkerError> {
        match self.role {
            WorkerRole::Prefill => self.prefill_peer_gone(agent),
            WorkerRole::Decode => self.decode_peer_gone(agent),
        }
    }

    fn poll_transfers(&mut self, now: Instant) -> Result<(), WorkerError> {
        match self.role {
            WorkerRole::Prefill => self.prefill_poll(now),
            WorkerRole::Decode => self.decode_poll(now),
        }
    }

    fn on_outputs(&mut self, outputs: &mut Vec<Output>) -> Result<(), WorkerError> {
        let mut tokens = Vec::new();
        for out in outputs.drain(..) {
            match out {
                Output::Token { request, .. } if self.role == WorkerRole::Decode => {
                    tokens.push(request as u64);
                }
                Output::Token { .. } => {}
                Output::HandedOff {
                    request,
                    cached_tokens,
                } => self.prefill_handed_off(request as u64, cached_tokens)?,
                Output::Finished { request, .. } => self.decode_finished(request as u64)?,
                Output::Rejected { request } => {
                    self.forget_request(request as u64);
                    self.send(&WorkerMsg::Failed {
                        id: request as u64,
                        error: "request does not fit in the worker's KV cache".into(),
                    })?;
                }
            }
        }
        if !tokens.is_empty() {
            self.send(&WorkerMsg::Tokens { ids: tokens })?;
        }
        Ok(())
    }

    fn forget_request(&mut self, id: u64) {
        self.prefill.forget(id);
        self.fetch_abandon(id);
        if let Some(slots) = self.decode.forget(id) {
            self.slots.release_all(&slots);
        }
    }

    fn publish_events(&mut self, t0: std::time::SystemTime) {
        let events = self.driver.engine_mut().take_kv_events();
        if events.is_empty() {
            return;
        }
        let ts = t0.elapsed().map_or(0.0, |d| d.as_secs_f64()).max(0.0);
        if let Some(payload) = self.encoder.encode(ts, &events) {
            self.publisher.send(payload);
        }
    }

    fn report_load(&mut self) -> Result<(), WorkerError> {
        let l = self.driver.engine().load();
        self.load.waiting = l.waiting + self.prefill.stalled_len() + self.decode.pending_len();
        self.load.running = l.running;
        self.load.pending_prefill_tokens = l.pending_prefill_tokens;
        self.load.decode_kv_tokens = l.decode_kv_tokens;
        self.load.slots_in_use = self.slots.referenced();
        if self.role == WorkerRole::Prefill {
            // Decode engines charge nothing for prompt KV, loaded or not.
            let moves = self.driver.engine().move_stats();
            self.load.tiers.timed_from_host = moves.host.onboarded;
            self.load.tiers.timed_from_peer = moves.fetched_blocks;
        }
        let load = self.load;
        self.send(&WorkerMsg::Load(load))
    }

    /// Remembers the prompt tokens of `blocks` for KV events.
    fn remember_tokens(&mut self, req: &crate::proto::RequestInfo, blocks: &PromptBlocks) {
        let bt = self.pool.layout().block_tokens;
        for i in 0..blocks.full() {
            if let Some(h) = blocks.cache_hash(i) {
                self.encoder.remember(h, block_tokens(req, bt, i));
            }
        }
    }
}

/// Releases every transfer that belongs to request `id` and forgets it.
fn release_xfers_of(xfers: &mut HashMap<XferId, u64>, id: u64, transport: &mut dyn Transport) {
    xfers.retain(|&x, rid| {
        let ours = *rid == id;
        if ours {
            transport.release(x);
        }
        !ours
    });
}
