//! The line protocol between the benchmark's processes (over child pipes).

use crate::error::{BenchError, Result};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

pub use test_support::hex;

/// Decodes [`hex`] from a peer's line.
pub fn unhex(s: &str) -> Result<Vec<u8>> {
    test_support::try_unhex(s)
        .ok_or_else(|| BenchError::peer(format!("not hex ({} chars)", s.len())))
}

/// A spawned copy of this binary in another role, spoken to by lines.
pub struct Peer {
    child: Child,
    tx: ChildStdin,
    rx: BufReader<ChildStdout>,
    /// Whether the child leads its own process group (`spawn_group`): only then can it pause.
    leads_group: bool,
}

impl Peer {
    /// Spawns this executable with `args` and extra environment, in this process's group.
    pub fn spawn(args: &[String], env: &[(&str, &str)]) -> Result<Peer> {
        Self::start(Self::command(args, env)?, false)
    }

    /// Like `spawn`, but in a new process group, which the processes it starts join, so that
    /// `pause` stops all of them.
    pub fn spawn_group(args: &[String], env: &[(&str, &str)]) -> Result<Peer> {
        let mut cmd = Self::command(args, env)?;
        cmd.process_group(0);
        Self::start(cmd, true)
    }

    fn command(args: &[String], env: &[(&str, &str)]) -> Result<Command> {
        let exe = std::env::current_exe().map_err(BenchError::io("finding my executable"))?;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Ok(cmd)
    }

    fn start(mut cmd: Command, leads_group: bool) -> Result<Peer> {
        let mut child = cmd.spawn().map_err(BenchError::io("spawn"))?;
        // Both are piped by `command`.
        let (Some(tx), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(BenchError::peer("a peer without pipes"));
        };
        let rx = BufReader::new(stdout);
        Ok(Peer {
            child,
            tx,
            rx,
            leads_group,
        })
    }

    /// Sends one line.
    pub fn send(&mut self, line: &str) -> Result<()> {
        writeln!(self.tx, "{line}")
            .and_then(|()| self.tx.flush())
            .map_err(BenchError::io("send"))
    }

    /// Receives one line (an `ERR ...` line becomes an error).
    pub fn recv(&mut self) -> Result<String> {
        let mut s = String::new();
        let n = self.rx.read_line(&mut s).map_err(BenchError::io("recv"))?;
        if n == 0 {
            return Err(BenchError::peer("peer process exited"));
        }
        let s = s.trim_end().to_string();
        match s.strip_prefix("ERR ") {
            Some(e) => Err(BenchError::peer(e)),
            None => Ok(s),
        }
    }

    /// Sends a line and returns the reply.
    pub fn ask(&mut self, line: &str) -> Result<String> {
        self.send(line)?;
        self.recv()
    }

    /// Stops the peer's process group (SIGSTOP) while another library is measured: an idle
    /// library whose progress threads poll would otherwise take CPU from the one running.
    pub fn pause(&self) {
        self.signal_group(libc::SIGSTOP);
    }

    /// Lets a paused peer's process group run again.
    pub fn resume(&self) {
        self.signal_group(libc::SIGCONT);
    }

    fn signal_group(&self, signal: i32) {
        if !self.leads_group {
            return;
        }
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a process group this process created; no memory involved.
            unsafe { libc::kill(-pgid, signal) };
        }
    }

    /// Asks the peer to quit and waits for it.
    pub fn quit(mut self) {
        self.resume();
        let _ = self.send("QUIT");
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    /// A peer dropped while paused (the orchestrator stopped on an error) must run again to
    /// see its stdin close and exit.
    fn drop(&mut self) {
        self.resume();
    }
}

/// Reads lines from this process's stdin and answers each on stdout.
pub fn serve(mut handle: impl FnMut(&str) -> Result<Option<String>>) {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line == "QUIT" {
            break;
        }
        let reply = match handle(&line) {
            Ok(Some(r)) => r,
            Ok(None) => "OK".into(),
            Err(e) => format!("ERR {}", e.to_string().replace('\n', " ")),
        };
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
}
