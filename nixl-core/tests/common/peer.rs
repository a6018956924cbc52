//! A `nixl-peer` child process driven over its stdin/stdout (one line per command).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use nixl_core::*;

use super::{addr, checksum, dram, filled, register, run, unhex};

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

    /// Stops it (SIGSTOP), returning once every thread of it has stopped.
    pub fn freeze(&self) {
        freeze(self.pid());
    }

    /// Resumes it after [`Peer::freeze`].
    pub fn thaw(&self) {
        thaw(self.pid());
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

/// What [`read_then_write_with_notifs`] leaves: the buffer READ into (the peer's pattern), our
/// own pattern, and the WRITE request (registered, reusable, e.g. against a killed peer).
pub struct Exchanged {
    /// Holds the peer's `SIZE`-byte pattern after the READ.
    pub buf: Vec<u8>,
    /// Our pattern (seed 4), now also in the peer's buffer.
    pub ours: Vec<u8>,
    /// The WRITE of `ours` to the peer's buffer, with notification "written".
    pub write: XferRequest,
}

/// READs the peer's pattern (seed `peer_seed`) with a notification the peer sees only after
/// the data, then WRITEs our own pattern and checks the peer's checksum taken the moment the
/// notification landed. `what` labels failures.
pub fn read_then_write_with_notifs(
    me: &Agent,
    peer: &mut Peer,
    name: &str,
    size: usize,
    peer_seed: u64,
    what: &str,
) -> Exchanged {
    let buf = vec![0u8; size];
    register(me, &buf);
    let remote = dram(&[(peer.addr, size as u64)]);
    let read = me
        .create_xfer_req(
            XferOp::Read,
            &dram(&[(addr(&buf), size as u64)]),
            &remote,
            name,
            Some(&OptArgs::with_notif("read-done")),
        )
        .unwrap();
    assert_eq!(run(me, &read).unwrap(), Status::Success, "{what}");
    assert!(
        buf == filled(size, peer_seed),
        "{what}: READ returned wrong bytes"
    );
    peer.send("WAIT_NOTIFS 1");
    let got = peer.expect("NOTIFS ");
    assert!(got.starts_with("init:read-done SUM"), "{what}: {got}");

    let ours = filled(size, 4);
    register(me, &ours);
    let write = me
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&ours), size as u64)]),
            &remote,
            name,
            Some(&OptArgs::with_notif("written")),
        )
        .unwrap();
    assert_eq!(run(me, &write).unwrap(), Status::Success, "{what}");
    peer.send("WAIT_NOTIFS 1");
    assert_eq!(
        peer.expect("NOTIFS "),
        format!("init:written SUM {:016x}", checksum(&ours)),
        "{what}"
    );
    Exchanged { buf, ours, write }
}

/// Kills the peer, then runs `req` (a transfer to it) again: it must fail with
/// REMOTE_DISCONNECT within 10 s. Returns the error and how long it took.
pub fn kill_then_expect_disconnect(
    me: &Agent,
    peer: &mut Peer,
    req: &XferRequest,
) -> (NixlError, Duration) {
    peer.kill();
    let start = Instant::now();
    let err = run(me, req).unwrap_err();
    assert_eq!(err.status(), Status::RemoteDisconnect, "{err}");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    (err, took)
}

/// Stops our child `pid` (SIGSTOP) and returns once it has stopped. `kill` only queues the
/// signal: a peer thread already serving a request could otherwise still answer it, and a
/// test of a frozen peer would see the transfer succeed.
pub fn freeze(pid: i32) {
    // SAFETY: signals and waits for our own child; WUNTRACED reports the stop without
    // reaping it.
    unsafe {
        assert_eq!(libc::kill(pid, libc::SIGSTOP), 0, "SIGSTOP {pid}");
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, libc::WUNTRACED), pid);
        assert!(
            libc::WIFSTOPPED(status),
            "child {pid} did not stop: {status:#x}"
        );
    }
}

/// Resumes a child stopped by [`freeze`].
pub fn thaw(pid: i32) {
    // SAFETY: signals our own child.
    unsafe { libc::kill(pid, libc::SIGCONT) };
}
