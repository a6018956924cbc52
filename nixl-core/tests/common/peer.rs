//! A `nixl-peer` child process, for tests that need a second process on this host.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use super::unhex;

/// Bytes the peer registers.
pub const SIZE: usize = 4 << 20;

/// A `nixl-peer` child process driven over its stdin/stdout.
pub struct Peer {
    /// The process.
    pub child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// Its agent's metadata.
    pub md: Vec<u8>,
    /// The address of its registered buffer of [`SIZE`] bytes.
    pub addr: u64,
}

impl Peer {
    /// Starts `nixl-peer NAME SIZE SEED` with `env`, as `nobody` when `unprivileged`.
    pub fn spawn(name: &str, seed: u64, env: &[(&str, &str)], unprivileged: bool) -> Peer {
        let exe = env!("CARGO_BIN_EXE_nixl-peer");
        let mut cmd = if unprivileged {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", exe]);
            c
        } else {
            Command::new(exe)
        };
        cmd.args([name, &SIZE.to_string(), &seed.to_string()])
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

    /// The next line, which must start with `prefix`, without it.
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
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
