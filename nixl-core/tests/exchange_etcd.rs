//! Metadata exchange through a real etcd server (feature `etcd`). Each test starts its own
//! etcd on free loopback ports.
#![cfg(feature = "etcd")]

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nixl_core::*;

struct Etcd {
    child: Child,
    dir: std::path::PathBuf,
    url: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Etcd {
    /// Starts etcd, or returns None (after saying why) when it is not installed.
    fn start(test: &str) -> Option<Etcd> {
        if !test_support::have("etcd") {
            test_support::skip(
                "etcd",
                "the etcd server is not installed (Debian package etcd-server)",
            );
            return None;
        }
        let (client, peer) = (free_port(), free_port());
        let dir = std::env::temp_dir().join(format!("nixl-etcd-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new("etcd")
            .args(["--name", "t", "--data-dir"])
            .arg(&dir)
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("t={peer_url}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
            assert!(Instant::now() < deadline, "etcd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Etcd { child, dir, url })
    }

    /// How many watches the server holds (its `etcd_debugging_mvcc_watcher_total` gauge).
    fn watchers(&self) -> u64 {
        use std::io::{Read, Write};
        let host = self.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(host).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("etcd_debugging_mvcc_watcher_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .expect("etcd reports its watcher count") as u64
    }

    fn config(&self, namespace: &str) -> AgentConfig {
        AgentConfig {
            etcd_endpoints: vec![self.url.clone()],
            etcd_namespace: namespace.into(),
            etcd_watch_timeout: Duration::from_secs(3),
            etcd_lease_ttl: Duration::from_secs(2),
            ..AgentConfig::default()
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn eventually(agent: &Agent, name: &str, want: bool, within: Duration) {
    let deadline = Instant::now() + within;
    while agent
        .check_remote_md(name, &XferDescList::new(MemType::Dram))
        .is_ok()
        != want
    {
        assert!(
            Instant::now() < deadline,
            "check_remote_md({name}) never became {want}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn publish_fetch_transfer_and_invalidate() {
    let Some(etcd) = Etcd::start("pub") else {
        return;
    };
    let a = agent_with("ea", etcd.config("/nixl/agents/"), &Params::new());
    let b = agent_with("eb", etcd.config("/nixl/agents/"), &Params::new());
    let (abuf, bbuf) = (filled(4096, 1), vec![0u8; 4096]);
    register(&a, &abuf);
    register(&b, &bbuf);
    b.send_local_md(None).unwrap();
    a.fetch_remote_md("eb", None).unwrap();
    eventually(&a, "eb", true, Duration::from_secs(5));
    let req = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&abuf), 4096)]),
            &dram(&[(addr(&bbuf), 4096)]),
            "eb",
            Some(&OptArgs::with_notif("etcd")),
        )
        .unwrap();
    assert_eq!(run(&a, &req).unwrap(), Status::Success);
    assert_eq!(wait_notifs(&b, 1)["ea"], vec![b"etcd".to_vec()]);
    // b leaves: every peer that fetched it forgets it.
    b.invalidate_local_md(None).unwrap();
    eventually(&a, "eb", false, Duration::from_secs(5));
    // Partial metadata needs a label in a central store.
    assert_eq!(
        a.send_local_partial_md(&RegDescList::new(MemType::Dram), None)
            .unwrap_err()
            .status(),
        Status::InvalidParam
    );
    let labelled = OptArgs {
        metadata_label: Some("conn".into()),
        ..OptArgs::default()
    };
    a.send_local_partial_md(&RegDescList::new(MemType::Dram), Some(&labelled))
        .unwrap();
    b.fetch_remote_md("ea", Some(&labelled)).unwrap();
    eventually(&b, "ea", true, Duration::from_secs(5));
}

#[test]
fn fetch_before_publish_waits_for_the_key() {
    let Some(etcd) = Etcd::start("wait") else {
        return;
    };
    let a = agent_with("wa", etcd.config("/nixl/agents/"), &Params::new());
    let b = agent_with("wb", etcd.config("/nixl/agents/"), &Params::new());
    a.fetch_remote_md("wb", None).unwrap();
    // The fetch found no key and now watches for it: the server holds its watch (the only one).
    let deadline = Instant::now() + Duration::from_secs(10);
    while etcd.watchers() == 0 {
        assert!(
            Instant::now() < deadline,
            "the fetch never started watching"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        a.check_remote_md("wb", &XferDescList::new(MemType::Dram))
            .is_err()
    );
    b.send_local_md(None).unwrap();
    eventually(&a, "wb", true, Duration::from_secs(5));
}

#[test]
fn namespaces_are_isolated() {
    let Some(etcd) = Etcd::start("ns") else {
        return;
    };
    let a = agent_with("na", etcd.config("/team-a/"), &Params::new());
    let b = agent_with("nb", etcd.config("/team-b/"), &Params::new());
    let c = agent_with("nc", etcd.config("/team-a/"), &Params::new());
    b.send_local_md(None).unwrap();
    c.send_local_md(None).unwrap();
    a.fetch_remote_md("nb", None).unwrap();
    // The watch gives up after etcd_watch_timeout (3 s) without finding it. a's exchange calls
    // run in order, so once a later fetch (of c, in a's namespace) has arrived, it has.
    a.fetch_remote_md("nc", None).unwrap();
    eventually(&a, "nc", true, Duration::from_secs(10));
    assert_eq!(
        a.check_remote_md("nb", &XferDescList::new(MemType::Dram))
            .unwrap_err()
            .status(),
        Status::NotFound
    );
}

#[test]
fn a_killed_publisher_expires_by_lease() {
    let Some(etcd) = Etcd::start("lease") else {
        return;
    };
    let a = agent_with("la", etcd.config("/nixl/agents/"), &Params::new());
    let mut peer = Command::new(env!("CARGO_BIN_EXE_nixl-peer"))
        .args(["lp", "4096", "1"])
        .env("NIXL_ETCD_ENDPOINTS", &etcd.url)
        .env("NIXL_RS_ETCD_LEASE_TTL_S", "2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = peer.stdin.take().unwrap();
    let mut lines = BufReader::new(peer.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().starts_with("MD "));
    assert!(lines.next().unwrap().unwrap().starts_with("ADDR "));
    std::io::Write::write_all(&mut stdin, b"PUBLISH\n").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "PUBLISHED");
    a.fetch_remote_md("lp", None).unwrap();
    eventually(&a, "lp", true, Duration::from_secs(5));
    peer.kill().unwrap();
    peer.wait().unwrap();
    // The lease (2 s) expires, the key goes, and the watch invalidates the peer here.
    eventually(&a, "lp", false, Duration::from_secs(10));
}

#[test]
fn unreachable_etcd_is_a_clear_error_not_a_hang() {
    let config = AgentConfig {
        etcd_endpoints: vec![format!("http://127.0.0.1:{}", free_port())],
        ..AgentConfig::default()
    };
    let a = agent_with("ua", config, &Params::new());
    let start = Instant::now();
    let e = a.send_local_md(None).unwrap_err();
    assert_eq!(e.status(), Status::Backend, "{e}");
    assert!(e.message().contains("unreachable"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
}
