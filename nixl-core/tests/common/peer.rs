//! A `nixl-peer` child process driven over its stdin/stdout (one line per command).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use super::unhex;

/// A running `nixl-peer`: its metadata and the address of its registered buffer.
pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// The peer agent's metadata (as printed on its `MD` line).
    pub md: Vec<u8>,
    /// Address of its registered buffer (`ADDR` line).
    pub addr: u64,
}

impl Peer {
    /// Starts `nixl-peer NAME SIZE SEED` with extra environment, as `nobody` where
    /// `unprivileged`, and reads its `MD` and `ADDR` lines.
    pub fn spawn(
        name: &str,
        size: usize,
        seed: u64,
        env: &[(&str, &str)],
        unprivileged: bool,
    ) -> Peer {
        let prefix: &[&str] = if unprivileged {
            &[
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
            ]
        } else {
            &[]
        };
        Self::spawn_under(prefix, name, size, seed, env)
    }

    /// As [`Peer::spawn`], run through `prefix` (e.g. `ip netns exec NS`).
    pub fn spawn_under(
        prefix: &[&str],
        name: &str,
        size: usize,
        seed: u64,
        env: &[(&str, &str)],
    ) -> Peer {
        let exe = env!("CARGO_BIN_EXE_nixl-peer");
        let mut cmd = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.args([name, &size.to_string(), &seed.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn nixl-peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout)
                .lines()
                .map_while(std::io::Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut peer = Peer {
            child,
            stdin,
            lines,
            md: Vec::new(),
            addr: 0,
        };
        peer.md = unhex(&peer.expect("MD "));
        peer.addr = peer.expect("ADDR ").parse().unwrap();
        peer
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next line, which must start with `prefix`; returns the rest.
    pub fn expect(&mut self, prefix: &str) -> String {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("peer answered");
        assert!(
            line.starts_with(prefix),
            "expected {prefix:?}, got {line:?}"
        );
        line[prefix.len()..].to_string()
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
