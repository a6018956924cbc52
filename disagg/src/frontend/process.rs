//! A connector that runs each replica as a local worker process (the planner's
//! [`Connector`] with real processes; the planner crate itself does no I/O): it spawns the role's
//! command, calls it ready after a delay or when a probe says so, and when a replica has
//! drained sends SIGTERM, then SIGKILL if it has not exited after a grace period. Children
//! are tracked and reaped; dropping the connector kills any left.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use planner::connector::{
    Action, Connector, ConnectorError, DecisionId, DecisionLog, InFlight, Replica, ReplicaEvent,
    ReplicaId, ReplicaSet, ReplicaState, StopReason,
};
use planner::replicas::{ReplicaCounts, ReplicaTarget, Role};

/// The command that runs one worker of a role. In `args` and env values the placeholders
/// `{role}`, `{id}`, `{slot}` and `{port}` (= `port_base + slot`) are replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    /// Program to run.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// First port of the role; `{port}` is this plus the replica's slot.
    pub port_base: u16,
}

impl WorkerCommand {
    /// `program` with `args`, no extra environment, ports from 0.
    pub fn new(program: impl Into<String>, args: &[&str]) -> Self {
        Self {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            port_base: 0,
        }
    }

    fn expand(&self, text: &str, role: Role, id: ReplicaId, slot: u32) -> String {
        let port = u32::from(self.port_base) + slot;
        text.replace("{role}", role.as_str())
            .replace("{id}", &id.to_string())
            .replace("{slot}", &slot.to_string())
            .replace("{port}", &port.to_string())
    }
}

/// When a started worker counts as ready.
pub enum Readiness {
    /// This many seconds after it was spawned.
    After(f64),
    /// When the probe returns true for it (e.g. its port answers).
    Probe(Box<dyn FnMut(&Replica) -> bool + Send>),
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Readiness::After(s) => write!(f, "After({s})"),
            Readiness::Probe(_) => write!(f, "Probe(..)"),
        }
    }
}

/// Settings of [`ProcessConnector`].
#[derive(Debug)]
pub struct ProcessConnectorConfig {
    /// Command for prefill workers.
    pub prefill: Option<WorkerCommand>,
    /// Command for decode workers.
    pub decode: Option<WorkerCommand>,
    /// When a worker is ready.
    pub readiness: Readiness,
    /// Seconds a drain may take before the worker is stopped anyway.
    pub drain_timeout: f64,
    /// Seconds between SIGTERM and SIGKILL.
    pub stop_grace: f64,
    /// Directory for `{role}-{id}.log` with each worker's stdout and stderr; discarded if
    /// `None`.
    pub log_dir: Option<PathBuf>,
}

/// A worker sent SIGTERM, waiting to exit.
#[derive(Debug)]
struct Terminating {
    child: Child,
    signalled_at: f64,
}

/// Local worker processes as replicas.
#[derive(Debug)]
pub struct ProcessConnector {
    cfg: ProcessConnectorConfig,
    set: ReplicaSet,
    children: HashMap<ReplicaId, (Child, f64)>,
    terminating: Vec<Terminating>,
    decisions: DecisionLog,
}

impl ProcessConnector {
    /// A connector with no workers yet.
    pub fn new(cfg: ProcessConnectorConfig) -> Self {
        Self {
            cfg,
            set: ReplicaSet::new(),
            children: HashMap::new(),
            terminating: Vec::new(),
            decisions: DecisionLog::default(),
        }
    }

    /// OS process id of a live replica's worker.
    pub fn pid(&self, id: ReplicaId) -> Option<u32> {
        self.children.get(&id).map(|(c, _)| c.id())
    }

    /// Worker processes signalled but not yet reaped.
    pub fn terminating(&self) -> usize {
        self.terminating.len()
    }

    fn spawn(
        &mut self,
        now: f64,
        id: ReplicaId,
        role: Role,
        slot: u32,
    ) -> Result<(), ConnectorError> {
        let spec = match role {
            Role::Prefill => self.cfg.prefill.as_ref(),
            Role::Decode => self.cfg.decode.as_ref(),
        }
        .ok_or(ConnectorError::NoCommand(role))?;
        let mut cmd = Command::new(&spec.program);
        cmd.args(spec.args.iter().map(|a| spec.expand(a, role, id, slot)))
            .env("PLANNER_ROLE", role.as_str())
            .env("PLANNER_REPLICA_ID", id.to_string())
            .stdin(Stdio::null());
        for (k, v) in &spec.env {
            cmd.env(k, spec.expand(v, role, id, slot));
        }
        let io_err = |source| ConnectorError::Process { role, source };
        match &self.cfg.log_dir {
            Some(dir) => {
                let path = dir.join(format!("{}-{id}.log", role.as_str()));
                let log = std::fs::File::create(path).map_err(io_err)?;
                cmd.stdout(log.try_clone().map_err(io_err)?).stderr(log);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = cmd.spawn().map_err(io_err)?;
        self.children.insert(id, (child, now));
        Ok(())
    }

    /// Sends SIGTERM to a replica's worker and moves it to the terminating list.
    fn terminate(&mut self, now: f64, id: ReplicaId) -> Result<(), ConnectorError> {
        let Some((child, _)) = self.children.remove(&id) else {
            return Ok(());
        };
        let role = self.set.get(id).map_or(Role::Prefill, |r| r.role);
        signal_child(child.id(), libc::SIGTERM)
            .map_err(|source| ConnectorError::Process { role, source })?;
        self.terminating.push(Terminating {
            child,
            signalled_at: now,
        });
        Ok(())
    }

    /// Reaps terminated workers; SIGKILLs those past the grace period.
    fn reap(&mut self, now: f64) {
        let grace = self.cfg.stop_grace;
        self.terminating.retain_mut(|t| match t.child.try_wait() {
            Ok(Some(_)) | Err(_) => false,
            Ok(None) if now - t.signalled_at >= grace => {
                // Kill and reap; errors mean it is already gone.
                let _ = t.child.kill();
                let _ = t.child.wait();
                false
            }
            Ok(None) => true,
        });
    }

    /// Reaps the workers that exited by themselves and marks their replicas stopped.
    fn collect_exited(&mut self) {
        for id in self.exited() {
            if let Some((mut child, _)) = self.children.remove(&id) {
                let _ = child.wait();
            }
            self.set.stop(id, StopReason::Exited);
        }
    }

    /// Replicas whose worker exited by itself.
    fn exited(&mut self) -> Vec<ReplicaId> {
        let mut gone: Vec<ReplicaId> = self
            .children
            .iter_mut()
            .filter_map(|(&id, (child, _))| (!matches!(child.try_wait(), Ok(None))).then_some(id))
            .collect();
        gone.sort_unstable();
        gone
    }

    fn update_readiness(&mut self, now: f64) {
        let starting: Vec<Replica> = self
            .set
            .replicas()
            .iter()
            .filter(|r| r.state == ReplicaState::Starting)
            .copied()
            .collect();
        for r in starting {
            let spawned_at = self.children.get(&r.id).map_or(now, |(_, t)| *t);
            let ready = match &mut self.cfg.readiness {
                Readiness::After(delay) => now - spawned_at >= *delay,
                Readiness::Probe(probe) => probe(&r),
            };
            if ready {
                self.set.mark_ready(r.id);
            }
        }
    }

    /// SIGTERMs every worker and waits for all to exit, SIGKILLing any still running after
    /// the grace period (measured on the real clock). Used at shutdown.
    pub fn stop_all(&mut self) {
        let ids: Vec<ReplicaId> = self.set.replicas().iter().map(|r| r.id).collect();
        for id in ids {
            // A worker that cannot be signalled is killed below.
            let _ = self.terminate(0.0, id);
            self.set.stop(id, StopReason::Cancelled);
        }
        let start = std::time::Instant::now();
        while !self.terminating.is_empty() {
            let elapsed = start.elapsed().as_secs_f64();
            // Grace is counted on the real clock from now on, whatever simulated times were
            // recorded before.
            self.terminating
                .iter_mut()
                .for_each(|t| t.signalled_at = 0.0);
            self.reap(elapsed);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// Sends `sig` to our child `pid` (std only offers SIGKILL on a `Child` it still owns).
pub fn signal_child(pid: u32, sig: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; callers pass their
    // own unreaped child, so the pid cannot have been recycled for another process.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Connector for ProcessConnector {
    fn set_target(
        &mut self,
        now: f64,
        target: ReplicaTarget,
        in_flight: InFlight<'_>,
    ) -> Result<DecisionId, ConnectorError> {
        let decision = self.decisions.record(target);
        // Workers that died since the last poll no longer count toward the target: reconcile
        // starts their replacements now, not one decision later.
        self.collect_exited();
        for action in self.set.reconcile(now, target, in_flight) {
            match action {
                Action::Start { id, role, slot } => {
                    if let Err(e) = self.spawn(now, id, role, slot) {
                        self.set.stop(id, StopReason::Exited);
                        return Err(e);
                    }
                }
                Action::Cancel { id } => self.terminate(now, id)?,
                Action::Drain { .. } | Action::Undrain { .. } => {}
            }
        }
        self.poll(now, in_flight)?;
        Ok(decision)
    }

    fn poll(&mut self, now: f64, in_flight: InFlight<'_>) -> Result<(), ConnectorError> {
        self.collect_exited();
        self.update_readiness(now);
        for (id, reason) in self
            .set
            .finished_drains(now, self.cfg.drain_timeout, in_flight)
        {
            self.terminate(now, id)?;
            self.set.stop(id, reason);
        }
        self.reap(now);
        self.decisions.check(&self.set);
        Ok(())
    }

    fn take_events(&mut self) -> Vec<ReplicaEvent> {
        self.set.take_events()
    }

    fn replicas(&self) -> Vec<Replica> {
        self.set.replicas().to_vec()
    }

    fn counts(&self) -> ReplicaCounts {
        self.set.counts()
    }

    fn completed_decision(&self) -> Option<DecisionId> {
        self.decisions.completed()
    }
}

impl Drop for ProcessConnector {
    fn drop(&mut self) {
        // No orphans: kill and reap whatever is left.
        for (_, (mut child, _)) in self.children.drain() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for mut t in self.terminating.drain(..) {
            let _ = t.child.kill();
            let _ = t.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper_config(readiness: Readiness) -> ProcessConnectorConfig {
        ProcessConnectorConfig {
            prefill: Some(WorkerCommand::new("sleep", &["30"])),
            decode: Some(WorkerCommand::new("sleep", &["30"])),
            readiness,
            drain_timeout: 60.0,
            stop_grace: 5.0,
            log_dir: None,
        }
    }

    fn alive(pid: u32) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    /// Polls until `f` holds or a second passes (the kernel needs a moment to deliver signals).
    fn eventually(
        c: &mut ProcessConnector,
        now: f64,
        f: impl Fn(&ProcessConnector) -> bool,
    ) -> bool {
        for _ in 0..200 {
            c.poll(now, &|_| 0).unwrap();
            if f(c) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn spawns_waits_for_readiness_then_terminates_after_drain() {
        let mut c = ProcessConnector::new(sleeper_config(Readiness::After(10.0)));
        c.set_target(0.0, ReplicaTarget::new(1, 1), &|_| 0).unwrap();
        assert_eq!(c.counts().prefill.starting, 1);
        let pid = c.pid(0).expect("prefill worker spawned");
        assert!(alive(pid));
        c.poll(10.0, &|_| 0).unwrap();
        assert_eq!(c.counts().prefill.ready, 1);

        // Scale prefill to 0 while it holds a request: it drains and keeps running.
        let busy = |_| 1;
        c.set_target(20.0, ReplicaTarget::new(0, 1), &busy).unwrap();
        assert_eq!(c.counts().prefill.draining, 1);
        assert!(alive(pid));
        // Idle now: SIGTERM, and `sleep` exits on it.
        assert!(eventually(&mut c, 21.0, |c| c.terminating() == 0));
        assert_eq!(c.counts().prefill.draining, 0);
        let stopped = c.take_events().into_iter().any(|e| {
            e == ReplicaEvent::Stopped {
                id: 0,
                role: Role::Prefill,
                reason: StopReason::Drained,
            }
        });
        assert!(stopped);
        c.stop_all();
        assert!(c.replicas().is_empty());
    }

    #[test]
    fn a_worker_that_exits_is_reported() {
        let mut cfg = sleeper_config(Readiness::After(0.0));
        cfg.decode = Some(WorkerCommand::new("true", &[]));
        let mut c = ProcessConnector::new(cfg);
        c.set_target(0.0, ReplicaTarget::new(0, 1), &|_| 0).unwrap();
        assert!(eventually(&mut c, 1.0, |c| c.replicas().is_empty()));
        assert!(c.take_events().contains(&ReplicaEvent::Stopped {
            id: 0,
            role: Role::Decode,
            reason: StopReason::Exited
        }));
    }

    #[test]
    fn a_dead_worker_is_replaced_by_the_next_decision() {
        let mut cfg = sleeper_config(Readiness::After(0.0));
        cfg.decode = Some(WorkerCommand::new("sh", &["-c", "sleep 0.2"]));
        let mut c = ProcessConnector::new(cfg);
        c.set_target(0.0, ReplicaTarget::new(0, 1), &|_| 0).unwrap();
        let first = c.replicas()[0].id;
        let pid = c.pid(first).unwrap();
        // Wait for the exit itself (a zombie: nothing has reaped it), not for a poll.
        let zombie = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        };
        for _ in 0..2000 {
            if zombie() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(zombie(), "the worker did not exit");
        // The same target again, with no poll in between: the dead worker is replaced at once.
        c.set_target(1.0, ReplicaTarget::new(0, 1), &|_| 0).unwrap();
        let now: Vec<ReplicaId> = c.replicas().iter().map(|r| r.id).collect();
        assert_eq!(now.len(), 1, "{now:?}");
        assert_ne!(now[0], first);
        c.stop_all();
    }

    #[test]
    fn placeholders_probe_and_logs() {
        let dir = std::env::temp_dir().join(format!("planner-proc-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut prefill = WorkerCommand::new(
            "sh",
            &["-c", "echo $WHO {role} {slot} {port}; exec sleep 30"],
        );
        prefill.env.push(("WHO".into(), "worker-{id}".into()));
        prefill.port_base = 9000;
        let marker = dir.join("ready");
        let probe_path = marker.clone();
        let cfg = ProcessConnectorConfig {
            prefill: Some(prefill),
            decode: None,
            readiness: Readiness::Probe(Box::new(move |_| probe_path.exists())),
            drain_timeout: 60.0,
            stop_grace: 5.0,
            log_dir: Some(dir.clone()),
        };
        let mut c = ProcessConnector::new(cfg);
        c.set_target(0.0, ReplicaTarget::new(2, 0), &|_| 0).unwrap();
        c.poll(100.0, &|_| 0).unwrap();
        assert_eq!(c.counts().prefill.starting, 2, "probe not yet true");
        std::fs::write(&marker, b"").unwrap();
        c.poll(100.0, &|_| 0).unwrap();
        assert_eq!(c.counts().prefill.ready, 2);
        let log = dir.join("prefill-1.log");
        let want = "worker-1 prefill 1 9001";
        let mut text = String::new();
        for _ in 0..200 {
            text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(want) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(text.contains(want), "log: {text:?}");
        // Asking for decode without a command is an error.
        assert!(matches!(
            c.set_target(1.0, ReplicaTarget::new(2, 1), &|_| 0),
            Err(ConnectorError::NoCommand(Role::Decode))
        ));
        c.stop_all();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
