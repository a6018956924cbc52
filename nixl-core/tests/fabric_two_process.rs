//! The LIBFABRIC backend across two processes on libfabric's software providers
//! (`tcp;ofi_rxm` and `shm`): READ and WRITE with notifications and byte checks, many
//! descriptors, 8 threads, bad input, and a killed peer. Skips visibly without libfabric
//! (fails instead when `NIXL_RS_REQUIRE` lists `libfabric`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::*;
use nixl_core::*;

const SIZE: usize = 4 << 20;

/// Whether libfabric can be used here: the backend's own answer on an agent.
fn libfabric_present() -> bool {
    let a = Agent::new("probe", AgentConfig::default()).unwrap();
    match a.create_backend("LIBFABRIC", &Params::new()) {
        Ok(_) => true,
        Err(e) => {
            assert_eq!(e.status(), Status::NotSupported, "{e}");
            test_support::skip("libfabric", &e.to_string());
            false
        }
    }
}

/// A `nixl-peer` child on the LIBFABRIC backend.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    md: Vec<u8>,
    addr: u64,
}

impl Peer {
    fn spawn(name: &str, seed: u64, provider: &str) -> Peer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nixl-peer"))
            .args([name, &SIZE.to_string(), &seed.to_string()])
            .env("NIXL_PEER_BACKEND", "LIBFABRIC")
            .env("FI_PROVIDER", provider)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn nixl-peer");
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

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn expect(&mut self, prefix: &str) -> String {
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
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent_on(provider: &str) -> Agent {
    let a = Agent::new(
        "init",
        AgentConfig {
            peer_timeout: Duration::from_secs(3),
            ..AgentConfig::default()
        },
    )
    .unwrap();
    let params: Params = [("provider".to_string(), provider.to_string())].into();
    let b = a.create_backend("LIBFABRIC", &params).unwrap();
    let (_, effective) = a.backend_params(b).unwrap();
    assert!(
        effective["provider"].starts_with(provider),
        "provider reported: {effective:?}"
    );
    a
}

fn two_processes(provider: &str) {
    let me = agent_on(provider);
    let mut peer = Peer::spawn("tgt", 9, provider);
    assert_eq!(me.load_remote_md(&peer.md).unwrap(), "tgt");
    let buf = vec![0u8; SIZE];
    register(&me, &buf);
    let local = dram(&[(addr(&buf), SIZE as u64)]);
    let remote = dram(&[(peer.addr, SIZE as u64)]);

    // READ with a notification.
    let read = me
        .create_xfer_req(
            XferOp::Read,
            &local,
            &remote,
            "tgt",
            Some(&OptArgs::with_notif("read-done")),
        )
        .unwrap();
    assert_eq!(run(&me, &read).unwrap(), Status::Success);
    assert!(
        buf == filled(SIZE, 9),
        "{provider}: READ returned wrong bytes"
    );
    peer.send("WAIT_NOTIFS 1");
    let got = peer.expect("NOTIFS ");
    assert!(got.starts_with("init:read-done SUM"), "{got}");

    // WRITE; the peer checksums its buffer the moment the notification lands.
    let ours = filled(SIZE, 4);
    register(&me, &ours);
    let write = me
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&ours), SIZE as u64)]),
            &remote,
            "tgt",
            Some(&OptArgs::with_notif("written")),
        )
        .unwrap();
    assert_eq!(run(&me, &write).unwrap(), Status::Success);
    peer.send("WAIT_NOTIFS 1");
    assert_eq!(
        peer.expect("NOTIFS "),
        format!("init:written SUM {:016x}", checksum(&ours))
    );

    // Many descriptors, shuffled: 1024 READs of 4 KiB back into `buf`.
    let n = 1024;
    let order = shuffled(n, 5);
    let l: Vec<(u64, u64)> = order
        .iter()
        .map(|&i| (addr(&buf) + i as u64 * 4096, 4096))
        .collect();
    let r: Vec<(u64, u64)> = order
        .iter()
        .map(|&i| (peer.addr + i as u64 * 4096, 4096))
        .collect();
    let many = me
        .create_xfer_req(XferOp::Read, &dram(&l), &dram(&r), "tgt", None)
        .unwrap();
    assert_eq!(run(&me, &many).unwrap(), Status::Success);
    assert!(
        buf[..n * 4096] == ours[..n * 4096],
        "{provider}: many-descriptor READ"
    );

    // 8 threads, each READing its own slice with its own request.
    let threads_buf = vec![0u8; SIZE];
    register(&me, &threads_buf);
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (me, base, peer_addr) = (&me, addr(&threads_buf), peer.addr);
            s.spawn(move || {
                let slice = (SIZE / 8) as u64;
                let req = me
                    .create_xfer_req(
                        XferOp::Read,
                        &dram(&[(base + t * slice, slice)]),
                        &dram(&[(peer_addr + t * slice, slice)]),
                        "tgt",
                        None,
                    )
                    .unwrap();
                for _ in 0..4 {
                    assert_eq!(run(me, &req).unwrap(), Status::Success);
                }
            });
        }
    });
    assert!(threads_buf == ours, "{provider}: threaded READs");

    // Bad input: a range past the peer's registration, an oversized notification.
    let past = dram(&[(peer.addr + SIZE as u64 - 10, 20)]);
    let e = me
        .create_xfer_req(XferOp::Read, &dram(&[(addr(&buf), 20)]), &past, "tgt", None)
        .unwrap_err();
    assert_ne!(e.status(), Status::Success);
    let huge = vec![b'x'; 1 << 20];
    let big_notif = me.create_xfer_req(
        XferOp::Write,
        &local,
        &remote,
        "tgt",
        Some(&OptArgs::with_notif(huge)),
    );
    if let Ok(req) = big_notif {
        let e = run(&me, &req).unwrap_err();
        assert_eq!(e.status(), Status::InvalidParam, "{e}");
    }

    // Kill the target: the next post fails with REMOTE_DISCONNECT within the peer timeout
    // (plus slack).
    peer.child.kill().unwrap();
    peer.child.wait().unwrap();
    let start = Instant::now();
    let err = run(&me, &write).unwrap_err();
    assert_eq!(err.status(), Status::RemoteDisconnect, "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    eprintln!(
        "{provider}: killed peer -> {err} after {:?}",
        start.elapsed()
    );
}

#[test]
fn tcp_read_write_notif_many_threads_bad_input_killed_peer() {
    if libfabric_present() {
        two_processes("tcp");
    }
}

#[test]
fn shm_read_write_notif_many_threads_bad_input_killed_peer() {
    if libfabric_present() {
        two_processes("shm");
    }
}

#[test]
fn without_libfabric_the_backend_is_not_supported_and_says_what_to_install() {
    // A child process, since the library is loaded once per process.
    let out = Command::new(env!("CARGO_BIN_EXE_nixl-peer"))
        .args(["nolib", "4096", "1"])
        .env("NIXL_PEER_BACKEND", "LIBFABRIC")
        .env("NIXL_RS_LIBFABRIC", "/nonexistent/libfabric.so.1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NotSupported"), "{err}");
    assert!(err.contains("apt-get install libfabric1"), "{err}");
}
