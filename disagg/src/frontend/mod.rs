//! The frontend process: replays a workload, routes each request with the `router` crate
//! (KV-aware prefill choice, load- and transfer-aware decode choice, conditional local
//! prefill), drives the worker processes over their control channels, lets the planner
//! resize the pools, injects faults, and writes the report.

mod config;
pub mod dashboard;
mod error;
mod fleet;
mod lifecycle;
pub mod metrics;
mod observe;
mod plot;
mod prefix_fetch;
pub mod process;
mod progress;
pub mod prom;
mod requests;
pub mod workload;

pub use config::{Discovery, Kill, Mode, RunConfig};
pub use error::RunError;
pub use metrics::Report;

use fleet::{Event, Fleet, WorkerSpec};
use metrics::Metrics;
use planner::{Limits, Planner, ReplicaTarget, SloPlanner, SloPlannerConfig, SloTargets};
use requests::Req;
use router::sched::{DisaggRouter, DynamoCost, KvRouter, LocalPrefillRule, PredictedTtft};
use router::wire::EngineStream;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Tokens per KV block (the mock model's).
const BLOCK_TOKENS: u32 = 64;

/// The planner's SLO targets (s), also what `disagg_sla_attainment` measures against.
const SLO: SloTargets = SloTargets {
    ttft: 0.3,
    itl: 0.03,
};

/// The frontend's state.
struct Frontend {
    cfg: RunConfig,
    fleet: Fleet,
    events: Receiver<Event>,
    router: DisaggRouter<DynamoCost, PredictedTtft>,
    streams: HashMap<u64, EngineStream>,
    reqs: Vec<Req>,
    wire: HashMap<u64, usize>,
    next_wire: u64,
    next_arrival: usize,
    queue: VecDeque<usize>,
    metrics: Metrics,
    /// Failures by kind (the message with numbers masked): the first message of the kind, as
    /// it was (real numbers), and how many.
    failures: HashMap<String, (String, usize)>,
    served: usize,
    t0: Instant,
    planner: Option<SloPlanner>,
    target: ReplicaTarget,
    obs: observe::ObsAcc,
    draining: HashSet<u64>,
    library: String,
    kills: Vec<Kill>,
    progress: progress::Progress,
    /// The run's metric endpoints, unless turned off.
    endpoints: Option<prom::Endpoints>,
    /// Seconds the endpoints stay up, idle, before the first request and after the last.
    linger: f64,
}

/// Runs the whole thing and returns the report (also written to `out_dir`).
pub fn run(cfg: RunConfig) -> Result<Report, RunError> {
    std::fs::create_dir_all(&cfg.out_dir).map_err(RunError::io(cfg.out_dir.display()))?;
    interrupt::install();
    let linger = prom::linger_s()?;
    let endpoints = prom::Endpoints::start(&cfg.host, &cfg.out_dir)?;
    if let Some(e) = &endpoints {
        println!(
            "metrics: frontend {} (every endpoint, for Prometheus file_sd_configs: {})",
            e.url(e.frontend_port),
            e.targets_file().display()
        );
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let spec = worker_spec(&cfg);
    let fleet = Fleet::new(&cfg.host, &spec, tx)?;
    let mut model = router::PerfModel {
        kv_capacity_tokens: (cfg.blocks as u64) * u64::from(BLOCK_TOKENS),
        kv_bytes_per_token: crate::kv::KvLayout::mock_model(1).bytes_per_token_all_layers() as f64,
        ..router::PerfModel::default()
    };
    model.transfer_bytes_per_s = 2e9;
    let rule = if cfg.local_prefill {
        // Ours: local only when it beats the remote path including the stall it inflicts.
        LocalPrefillRule::Model { stall_weight: 1.0 }
    } else {
        LocalPrefillRule::Never
    };
    let router = DisaggRouter::new(
        KvRouter::new(DynamoCost::new(BLOCK_TOKENS, 1), BLOCK_TOKENS),
        KvRouter::new(PredictedTtft::new(model, BLOCK_TOKENS, 2), BLOCK_TOKENS),
        rule,
        model,
    );
    let planner = cfg.planner.then(|| make_planner(&cfg)).transpose()?;
    let reqs = requests::table(&cfg.workload, BLOCK_TOKENS as usize);
    let n = reqs.len();
    let mut fe = Frontend {
        target: ReplicaTarget::new(cfg.prefill, cfg.decode),
        kills: cfg.kills.clone(),
        progress: progress::Progress::new(
            n,
            cfg.workload
                .requests
                .last()
                .map_or(0.0, |r| r.arrival_ms / 1000.0),
            cfg.progress,
        ),
        cfg,
        fleet,
        events: rx,
        router,
        streams: HashMap::new(),
        reqs,
        wire: HashMap::new(),
        next_wire: 1,
        next_arrival: 0,
        queue: VecDeque::new(),
        metrics: Metrics::default(),
        failures: HashMap::new(),
        served: 0,
        t0: Instant::now(),
        planner,
        obs: observe::ObsAcc::default(),
        draining: HashSet::new(),
        library: String::new(),
        endpoints,
        linger,
    };
    let out_dir = std::path::absolute(&fe.cfg.out_dir).unwrap_or_else(|_| fe.cfg.out_dir.clone());
    fe.progress.announce(&out_dir);
    let result = fe.main_loop().and_then(|()| fe.settle());
    if result.is_ok() && linger > 0.0 && fe.endpoints.is_some() {
        // Workers stay up, idle, so scrapers see every final value.
        let counts = planner::Connector::counts(fe.fleet.connector());
        fe.publish_state(counts.prefill.ready, counts.decode.ready);
        std::thread::sleep(Duration::from_secs_f64(linger));
    }
    fe.fleet.shutdown();
    fe.progress.finish();
    result?;
    fe.finish()
}

fn worker_spec(cfg: &RunConfig) -> WorkerSpec {
    let lib = match &cfg.lib {
        crate::transfer::capi::LibChoice::Linked => "linked".to_string(),
        crate::transfer::capi::LibChoice::Path(p) => p.display().to_string(),
    };
    let args = vec![
        "--blocks".into(),
        cfg.blocks.to_string(),
        "--speedup".into(),
        cfg.speedup.to_string(),
        "--pin-timeout".into(),
        cfg.pin_timeout_s.to_string(),
        "--push-chunk".into(),
        cfg.push_chunk.to_string(),
        "--lib".into(),
        lib,
        "--host".into(),
        cfg.host.clone(),
    ];
    let mut args = args;
    if cfg.inject_corruption {
        args.push("--corrupt-first".into());
    }
    args.extend(tier_args(cfg));
    let listen_ports = (cfg.discovery == Discovery::Listener).then(|| {
        let base = free_port_block(&cfg.host, 16);
        (base, base + 8)
    });
    WorkerSpec {
        exe: cfg.exe.clone(),
        args,
        env: cfg.worker_env.clone(),
        log_dir: cfg.out_dir.join("logs"),
        listen_ports,
        netns: cfg.worker_netns.clone(),
    }
}

/// Worker arguments for the host tier, prefix fetch and their test hooks.
fn tier_args(cfg: &RunConfig) -> Vec<String> {
    let mut args = vec![
        "--host-tier-blocks".into(),
        cfg.host_tier_blocks.to_string(),
        "--fetch-timeout".into(),
        cfg.fetch_timeout_s.to_string(),
    ];
    if cfg.inject_stale_fetch {
        args.push("--stale-lend".into());
    }
    if cfg.kill_holder_mid_fetch {
        let marker = cfg.out_dir.join("holder-killed-mid-fetch");
        let _ = std::fs::remove_file(&marker);
        args.push("--die-on-lend".into());
        args.push(marker.display().to_string());
    }
    args
}

/// The first port of `n` consecutive ports that are free now (below the ephemeral range),
/// starting from a per-process offset so concurrent runs do not collide. Workers' metadata
/// listeners bind `base + slot`.
fn free_port_block(host: &str, n: u16) -> u16 {
    let blocks = (32_000 - 20_000) / n;
    let start = (std::process::id() % u32::from(blocks)) as u16;
    for k in 0..blocks {
        let base = 20_000 + ((start + k) % blocks) * n;
        let free = (base..base + n).all(|p| {
            std::net::TcpListener::bind((host, p)).is_ok()
                && std::net::TcpListener::bind(("0.0.0.0", p)).is_ok()
        });
        if free {
            return base;
        }
    }
    20_000
}

fn make_planner(cfg: &RunConfig) -> Result<SloPlanner, RunError> {
    let profile = planner::PerfProfile::mock_engine()?;
    let pc = SloPlannerConfig {
        targets: SLO,
        interval: cfg.planner_interval_s,
        startup_delay: 2.0,
        down_patience: 2,
        limits: Limits {
            min_prefill: 1,
            max_prefill: cfg.max_workers,
            min_decode: 1,
            max_decode: cfg.max_workers,
            ..Limits::default()
        },
        ..SloPlannerConfig::default()
    };
    Ok(SloPlanner::new(pc, profile))
}

impl Frontend {
    fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// The frontend's series, when metrics are on.
    fn prom(&self) -> Option<&prom::FrontendProm> {
        self.endpoints.as_ref().map(|e| &*e.prom)
    }

    fn accounted(&self) -> usize {
        self.served + self.failures.values().map(|(_, n)| n).sum::<usize>()
    }

    /// Starts the initial fleet and waits until it serves; the workload clock starts then.
    ///
    /// A worker that exits during start-up fails the run with its log's path and last line.
    fn start_fleet(&mut self) -> Result<(), RunError> {
        let target = self.target;
        self.fleet.set_target(0.0, target, &|_| 0)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = self.now();
            planner::Connector::poll(self.fleet.connector(), now, &|_| 0)?;
            let committed = planner::Connector::counts(self.fleet.connector()).committed();
            self.connector_events();
            if committed.prefill < target.prefill || committed.decode < target.decode {
                return Err(RunError::WorkerExited {
                    last_words: last_words(&self.cfg.out_dir.join("logs")),
                });
            }
            let ready = (
                self.router.prefill.workers().len() as u32,
                self.router.decode.workers().len() as u32,
            );
            if ready.0 >= target.prefill && ready.1 >= target.decode {
                break;
            }
            if Instant::now() > deadline {
                return Err(RunError::NotReady {
                    ready,
                    target: (target.prefill, target.decode),
                    logs: self.cfg.out_dir.join("logs"),
                });
            }
            match self.events.recv_timeout(Duration::from_millis(10)) {
                Ok(ev) => self.on_event(ev)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(RunError::EventsClosed),
            }
        }
        if self.linger > 0.0 && self.endpoints.is_some() {
            // Scrapers find the endpoints (Prometheus applies new targets every 5 s) and see
            // the idle fleet before the first request.
            self.publish_state(
                self.router.prefill.workers().len() as u32,
                self.router.decode.workers().len() as u32,
            );
            std::thread::sleep(Duration::from_secs_f64(self.linger));
        }
        // Worker start-up is not part of the replay.
        self.t0 = Instant::now();
        self.metrics.replicas.clear();
        Ok(())
    }

    fn main_loop(&mut self) -> Result<(), RunError> {
        let n = self.reqs.len();
        self.start_fleet()?;
        let mut next_tick = 0.0;
        let mut next_plan = self
            .planner
            .as_ref()
            .map_or(f64::INFINITY, |p| p.interval());
        // Nothing may hang: a hard stop well after the last arrival.
        let last_arrival = self.reqs.last().map_or(0.0, |r| r.arrival_s);
        let hard_stop = last_arrival + self.cfg.request_timeout_s + 30.0;
        while self.accounted() < n {
            let now = self.now();
            if interrupt::happened() {
                // Ctrl-C: end the run as the hard stop does, so the report is still written.
                self.progress
                    .note(&format!("interrupted at {now:.0} s; writing the report"));
                for idx in 0..n {
                    self.queue.retain(|&q| q != idx);
                    self.fail_attempt(idx, "not finished: the run was interrupted (Ctrl-C)", false);
                }
                break;
            }
            if now > hard_stop {
                // A safety net (requests time out on their own): fail what is left, so the
                // report still accounts for every request.
                self.progress.note(&format!("hard stop after {now:.0} s"));
                for idx in 0..n {
                    self.queue.retain(|&q| q != idx);
                    self.fail_attempt(idx, "not finished when the run was stopped", false);
                }
                break;
            }
            self.arrivals(now);
            self.route_queued(now);
            let wait = self.next_wake(now);
            match self.events.recv_timeout(wait) {
                Ok(ev) => self.on_event(ev)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(RunError::EventsClosed),
            }
            while let Ok(ev) = self.events.try_recv() {
                self.on_event(ev)?;
            }
            let now = self.now();
            if now >= next_tick {
                self.tick(now)?;
                next_tick = now + 0.25;
            }
            if now >= next_plan {
                self.plan(now)?;
                next_plan = now
                    + self
                        .planner
                        .as_ref()
                        .map_or(f64::INFINITY, |p| p.interval());
            }
        }
        Ok(())
    }

    /// After the last request: waits (up to the pin timeout and a bit) until no worker holds
    /// a KV slot any more, and records what is still held.
    fn settle(&mut self) -> Result<(), RunError> {
        let deadline = Instant::now() + Duration::from_secs_f64(self.cfg.pin_timeout_s + 2.0);
        // Loads are reported every 200 ms: only trust reports newer than the last request.
        let since = Instant::now();
        let mut fresh = std::collections::HashSet::new();
        loop {
            let held: usize = self.fleet.conns.values().map(|c| c.load.slots_in_use).sum();
            let all_fresh = self.fleet.conns.keys().all(|id| fresh.contains(id));
            self.metrics.slots_held_at_end = held as u64;
            if (all_fresh && held == 0) || Instant::now() > deadline {
                return Ok(());
            }
            match self.events.recv_timeout(Duration::from_millis(20)) {
                Ok(Event::Msg { replica, msg }) => {
                    if matches!(msg, crate::proto::WorkerMsg::Load(_))
                        && since.elapsed().as_secs_f64() > 0.25
                    {
                        fresh.insert(replica);
                    }
                    self.on_msg(replica, msg);
                }
                Ok(ev) => self.on_event(ev)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    fn next_wake(&self, now: f64) -> Duration {
        let next = self
            .reqs
            .get(self.next_arrival)
            .map_or(0.05, |r| (r.arrival_s - now).clamp(0.0, 0.05));
        Duration::from_secs_f64(next.max(0.0005))
    }

    fn arrivals(&mut self, now: f64) {
        while let Some(r) = self.reqs.get(self.next_arrival) {
            if r.arrival_s > now {
                break;
            }
            let idx = self.next_arrival;
            self.next_arrival += 1;
            let isl = r.spec.input_length;
            self.obs.arrive(isl as f64);
            // A prompt no worker's pool can hold would only wait out its timeout.
            let need = isl.div_ceil(BLOCK_TOKENS as usize);
            if need > self.cfg.blocks {
                let why = format!(
                    "prompt of {isl} tokens needs {need} KV blocks of {BLOCK_TOKENS} tokens; a \
                     worker's pool holds {} (--blocks)",
                    self.cfg.blocks
                );
                self.fail_attempt(idx, &why, false);
                continue;
            }
            self.queue.push_back(idx);
        }
    }

    fn on_event(&mut self, ev: Event) -> Result<(), RunError> {
        match ev {
            Event::Hello { stream, hello } => self.on_hello(stream, hello),
            Event::Msg { replica, msg } => {
                self.on_msg(replica, msg);
                Ok(())
            }
            Event::Closed { replica } => {
                let died = !self.draining.contains(&replica);
                self.worker_gone(replica, died);
                Ok(())
            }
            Event::Kv {
                replica,
                sequence,
                batch,
            } => {
                self.on_kv(replica, sequence, batch);
                Ok(())
            }
        }
    }

    /// Periodic work: connector events, faults, timeouts, samples, progress.
    fn tick(&mut self, now: f64) -> Result<(), RunError> {
        let in_flight = self.in_flight();
        let f = |id: u64| in_flight.get(&id).copied().unwrap_or(0);
        if self.planner.is_none() {
            // Keeps the pools at their size: replaces workers that died.
            self.fleet.set_target(now, self.target, &f)?;
        } else {
            planner::Connector::poll(self.fleet.connector(), now, &f)?;
        }
        self.connector_events();
        self.inject_faults(now);
        self.expire(now);
        let counts = planner::Connector::counts(self.fleet.connector());
        self.metrics
            .replicas
            .push((now, counts.prefill.ready, counts.decode.ready));
        self.metrics.sample_tiers(now);
        self.publish_state(counts.prefill.ready, counts.decode.ready);
        let failed = self.failures.values().map(|(_, n)| n).sum::<usize>();
        self.progress.update(
            self.served,
            failed,
            counts.prefill.ready,
            counts.decode.ready,
            now,
        );
        Ok(())
    }

    /// Sets the gauges of replicas and requests in flight.
    fn publish_state(&self, prefill: u32, decode: u32) {
        if let Some(p) = self.prom() {
            p.replicas(prefill, decode);
            p.set_load(self.wire.len(), self.queue.len());
        }
    }

    fn inject_faults(&mut self, now: f64) {
        let due: Vec<Kill> = self
            .kills
            .iter()
            .filter(|k| k.at_s <= now)
            .copied()
            .collect();
        self.kills.retain(|k| k.at_s > now);
        for k in due {
            match self.fleet.kill_one(k.role) {
                Some(id) => self.progress.note(&format!(
                    "fault: killed {} worker {id} at {now:.1} s",
                    k.role.as_str()
                )),
                None => self.progress.note(&format!(
                    "fault: no {} worker to kill at {now:.1} s",
                    k.role.as_str()
                )),
            }
        }
    }

    fn plan(&mut self, now: f64) -> Result<(), RunError> {
        let counts = planner::Connector::counts(self.fleet.connector());
        let obs = self.obs.take(now, &self.fleet, counts);
        let Some(p) = self.planner.as_mut() else {
            return Ok(());
        };
        let target = p.decide(&obs);
        let d = p.diagnostics();
        if let Some(prom) = self.endpoints.as_ref().map(|e| &e.prom) {
            prom.planned(
                d.observed_rate,
                d.planned_rate,
                (self.target.prefill, self.target.decode),
                (target.prefill, target.decode),
            );
        }
        let needed = p.size_for_rate(d.observed_rate);
        self.metrics.plan.push(metrics::PlanPoint {
            t: now,
            observed_rate: d.observed_rate,
            planned_rate: d.planned_rate,
            planned: (target.prefill, target.decode),
            needed: (needed.prefill, needed.decode),
        });
        if target != self.target {
            self.progress.note(&format!(
                "planner: {}P+{}D -> {}P+{}D at {now:.0} s (observed {:.1} req/s, planned for \
                 {:.1}, sizing asks {}P+{}D)",
                self.target.prefill,
                self.target.decode,
                target.prefill,
                target.decode,
                d.observed_rate,
                d.planned_rate,
                d.needed.prefill,
                d.needed.decode
            ));
        }
        self.target = target;
        let in_flight = self.in_flight();
        self.fleet
            .set_target(now, target, &|id| in_flight.get(&id).copied().unwrap_or(0))?;
        self.connector_events();
        Ok(())
    }

    fn finish(&mut self) -> Result<Report, RunError> {
        let mut failures: Vec<(String, usize)> = self
            .failures
            .values()
            .map(|(first, n)| {
                let text = if *n > 1 {
                    format!("{first} (the first of {n} alike)")
                } else {
                    first.clone()
                };
                (text, *n)
            })
            .collect();
        failures.sort();
        let report = Report::build(
            &self.metrics,
            self.cfg.mode.as_str(),
            &self.library,
            self.cfg.discovery.as_str(),
            self.cfg.planner,
            self.reqs.len(),
            self.served,
            failures,
            self.now(),
            self.reqs.iter().map(requests::Req::record).collect(),
        );
        let json = serde_json::to_string_pretty(&report)?;
        let path = self.cfg.out_dir.join("report.json");
        std::fs::write(&path, json).map_err(RunError::io(path.display()))?;
        plot::write(&self.cfg.out_dir.join("report.png"), &self.metrics)?;
        Ok(report)
    }
}

/// The path and last line of the worker logs in `dir` that say something (the last words of a
/// worker that exited), or the folder when none does.
fn last_words(dir: &std::path::Path) -> String {
    let mut logs: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    logs.sort();
    let said: Vec<String> = logs
        .iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(p).ok()?;
            let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
            Some(format!("{}: {last}", p.display()))
        })
        .collect();
    if said.is_empty() {
        format!("see the worker logs in {}", dir.display())
    } else {
        said.join("; ")
    }
}

/// Ctrl-C (SIGINT) ends the run early with a report; a second one kills as usual.
mod interrupt {
    use std::sync::atomic::{AtomicBool, Ordering};

    static HAPPENED: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_sigint(_: libc::c_int) {
        // Only an atomic store: async-signal-safe.
        HAPPENED.store(true, Ordering::SeqCst);
    }

    /// Installs the handler (once per run; SA_RESETHAND: the next SIGINT has its default
    /// effect).
    pub(super) fn install() {
        HAPPENED.store(false, Ordering::SeqCst);
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        }
    }

    /// Whether SIGINT arrived since [`install`].
    pub(super) fn happened() -> bool {
        HAPPENED.load(Ordering::SeqCst)
    }
}
