//! The worker fleet: processes started and stopped through the planner's local-process
//! connector, their control connections, and their KV-event streams.

use super::RunError;
use super::process::{
    ProcessConnector, ProcessConnectorConfig, Readiness, WorkerCommand, signal_child,
};
use crate::kv::KvLayout;
use crate::proto::{FrontMsg, WorkerLoad, WorkerMsg, WorkerRole, read_msg, write_msg};
use planner::{Connector, ReplicaTarget, Role};
use router::wire::EngineBatch;
use std::collections::{HashMap, HashSet};
use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// Something the frontend's loop must handle.
#[derive(Debug)]
pub enum Event {
    /// A worker connected and introduced itself.
    Hello {
        /// Writable end of its control connection.
        stream: TcpStream,
        /// Its `Hello`.
        hello: WorkerMsg,
    },
    /// A message from a worker.
    Msg {
        /// The worker.
        replica: u64,
        /// The message.
        msg: WorkerMsg,
    },
    /// A worker's control connection closed (it exited or died).
    Closed {
        /// The worker.
        replica: u64,
    },
    /// A KV-event batch from a worker.
    Kv {
        /// The worker.
        replica: u64,
        /// The publisher's sequence number.
        sequence: u64,
        /// The decoded batch.
        batch: EngineBatch,
    },
}

/// A connected worker.
#[derive(Debug)]
pub struct WorkerConn {
    /// Role.
    pub role: WorkerRole,
    /// NIXL agent name.
    pub agent: String,
    /// Agent metadata.
    pub md: Vec<u8>,
    /// Pool geometry.
    pub layout: KvLayout,
    /// Pool base address.
    pub base: u64,
    /// Latest load report.
    pub load: WorkerLoad,
    /// Its metadata listener, when it runs one.
    pub listener: Option<(String, u16)>,
    writer: TcpStream,
}

/// How to start workers.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// The `disagg` executable.
    pub exe: PathBuf,
    /// Extra arguments after `worker --role R --replica N --control ADDR`.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Where worker logs go.
    pub log_dir: PathBuf,
    /// First metadata-listener port per role (prefill, decode), when used.
    pub listen_ports: Option<(u16, u16)>,
    /// Run each role's workers in a network namespace (`ip netns exec NS`), binding that
    /// address: (prefill, decode) as (namespace, ip).
    pub netns: Option<[(String, String); 2]>,
}

/// Worker processes and their connections.
pub struct Fleet {
    connector: ProcessConnector,
    /// Connected workers by replica id.
    pub conns: HashMap<u64, WorkerConn>,
    hello: Arc<Mutex<HashSet<u64>>>,
    subscribe: tokio::sync::mpsc::UnboundedSender<(u64, String)>,
}

fn role_of(r: Role) -> WorkerRole {
    match r {
        Role::Prefill => WorkerRole::Prefill,
        Role::Decode => WorkerRole::Decode,
    }
}

/// The planner's role for a worker role.
pub fn planner_role(r: WorkerRole) -> Role {
    match r {
        WorkerRole::Prefill => Role::Prefill,
        WorkerRole::Decode => Role::Decode,
    }
}

impl Fleet {
    /// Opens the control listener on `host` and the KV-event subscriber; starts no worker yet.
    pub fn new(host: &str, spec: &WorkerSpec, events: Sender<Event>) -> Result<Fleet, RunError> {
        let listener = TcpListener::bind((host, 0)).map_err(RunError::io("control listener"))?;
        let control = listener
            .local_addr()
            .map_err(RunError::io("control listener"))?;
        spawn_acceptor(listener, events.clone())?;
        let subscribe = spawn_subscriber(events)?;
        let hello = Arc::new(Mutex::new(HashSet::new()));
        let probe_set = hello.clone();
        let command = |role: Role| {
            let mut program = spec.exe.display().to_string();
            let mut args = Vec::new();
            let netns = spec
                .netns
                .as_ref()
                .map(|n| &n[usize::from(role == Role::Decode)]);
            if let Some((ns, _)) = netns {
                args.extend(["netns".to_string(), "exec".into(), ns.clone(), program]);
                program = "ip".into();
            }
            args.extend([
                "worker".to_string(),
                "--role".into(),
                role_of(role).as_str().into(),
                "--replica".into(),
                "{id}".into(),
                "--control".into(),
                control.to_string(),
            ]);
            args.extend(spec.args.iter().cloned());
            if let Some((_, ip)) = netns {
                // Later flags win: the worker binds its namespace's address.
                args.extend(["--host".into(), ip.clone()]);
            }
            let mut port_base = 0;
            if let Some((p, d)) = spec.listen_ports {
                port_base = if role == Role::Prefill { p } else { d };
                args.extend(["--listen-port".into(), "{port}".into()]);
            }
            WorkerCommand {
                program,
                args,
                env: spec.env.clone(),
                port_base,
            }
        };
        std::fs::create_dir_all(&spec.log_dir).map_err(RunError::io(spec.log_dir.display()))?;
        let connector = ProcessConnector::new(ProcessConnectorConfig {
            prefill: Some(command(Role::Prefill)),
            decode: Some(command(Role::Decode)),
            readiness: Readiness::Probe(Box::new(move |r| {
                probe_set.lock().map(|s| s.contains(&r.id)).unwrap_or(false)
            })),
            drain_timeout: 30.0,
            stop_grace: 2.0,
            log_dir: Some(spec.log_dir.clone()),
        });
        Ok(Fleet {
            connector,
            conns: HashMap::new(),
            hello,
            subscribe,
        })
    }

    /// The process connector (for the planner and replica events).
    pub fn connector(&mut self) -> &mut ProcessConnector {
        &mut self.connector
    }

    /// Moves toward `target` replicas.
    pub fn set_target(
        &mut self,
        now: f64,
        target: ReplicaTarget,
        in_flight: &dyn Fn(u64) -> usize,
    ) -> Result<(), RunError> {
        self.connector.set_target(now, target, in_flight)?;
        Ok(())
    }

    /// Records a worker's `Hello`: keeps its connection, subscribes to its KV events.
    /// Returns its replica id.
    pub fn on_hello(&mut self, stream: TcpStream, hello: WorkerMsg) -> Option<u64> {
        let WorkerMsg::Hello {
            replica,
            role,
            agent,
            md,
            layout,
            base_addr,
            events,
            listener,
            ..
        } = hello
        else {
            return None;
        };
        let _ = self.subscribe.send((replica, events));
        self.conns.insert(
            replica,
            WorkerConn {
                role,
                agent,
                md,
                layout,
                base: base_addr,
                load: WorkerLoad::default(),
                listener,
                writer: stream,
            },
        );
        if let Ok(mut s) = self.hello.lock() {
            s.insert(replica);
        }
        Some(replica)
    }

    /// Sends `msg` to a worker; false if it is gone or the write failed.
    pub fn send(&mut self, replica: u64, msg: &FrontMsg) -> bool {
        match self.conns.get_mut(&replica) {
            Some(c) => write_msg(&mut c.writer, msg).is_ok(),
            None => false,
        }
    }

    /// Forgets a worker's connection; returns it.
    pub fn forget(&mut self, replica: u64) -> Option<WorkerConn> {
        if let Ok(mut s) = self.hello.lock() {
            s.remove(&replica);
        }
        self.conns.remove(&replica)
    }

    /// SIGKILLs one live worker of `role` (fault injection); returns its replica id.
    pub fn kill_one(&mut self, role: WorkerRole) -> Option<u64> {
        let mut ids: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.role == role)
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        let id = *ids.first()?;
        let pid = self.connector.pid(id)?;
        signal_child(pid, libc::SIGKILL).ok().map(|()| id)
    }

    /// Asks every worker to exit, then stops (and reaps) every process.
    pub fn shutdown(&mut self) {
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.send(id, &FrontMsg::Shutdown);
        }
        self.connector.stop_all();
    }
}

fn spawn_acceptor(listener: TcpListener, events: Sender<Event>) -> Result<(), RunError> {
    std::thread::Builder::new()
        .name("control-accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                stream.set_nodelay(true).ok();
                let events = events.clone();
                let spawned = std::thread::Builder::new()
                    .name("control-rx".into())
                    .spawn(move || read_worker(stream, events));
                if spawned.is_err() {
                    return;
                }
            }
        })
        .map(|_| ())
        .map_err(RunError::io("control-accept thread"))
}

fn read_worker(stream: TcpStream, events: Sender<Event>) {
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    let Ok(Some(hello @ WorkerMsg::Hello { replica, .. })) = read_msg::<WorkerMsg>(&mut r) else {
        return;
    };
    if events
        .send(Event::Hello {
            stream: writer,
            hello,
        })
        .is_err()
    {
        return;
    }
    while let Ok(Some(msg)) = read_msg::<WorkerMsg>(&mut r) {
        if events.send(Event::Msg { replica, msg }).is_err() {
            return;
        }
    }
    let _ = events.send(Event::Closed { replica });
}

/// A thread with a tokio runtime subscribing to each worker's KV events.
fn spawn_subscriber(
    events: Sender<Event>,
) -> Result<tokio::sync::mpsc::UnboundedSender<(u64, String)>, RunError> {
    use router::wire::DecodeOptions;
    use router::wire::zmq_subscriber::KvEventSubscriber;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, String)>();
    crate::events::spawn_on_runtime("kv-subscriber", move || async move {
        while let Some((replica, endpoint)) = rx.recv().await {
            let events = events.clone();
            tokio::spawn(async move {
                let opts = DecodeOptions { block_size: 64 };
                let Ok(mut sub) = KvEventSubscriber::connect(&endpoint, "", opts).await else {
                    return;
                };
                while let Ok((sequence, batch)) = sub.next().await {
                    let ev = Event::Kv {
                        replica,
                        sequence,
                        batch,
                    };
                    if events.send(ev).is_err() {
                        return;
                    }
                }
            });
        }
    })
    .map_err(RunError::io("kv-subscriber thread"))?;
    Ok(tx)
}
