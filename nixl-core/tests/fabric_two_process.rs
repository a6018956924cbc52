//! The LIBFABRIC backend across two processes on libfabric's software providers
//! (`tcp;ofi_rxm` and `shm`): READ and WRITE with notifications and byte checks, many
//! descriptors, 8 threads, bad input, and a killed peer. Skips visibly without libfabric
//! (fails instead when `NIXL_RS_REQUIRE` lists `libfabric`).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::peer::{self, Peer};
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

fn agent_on(provider: &str) -> Agent {
    agent_with(provider, &[])
}

fn agent_with(provider: &str, extra: &[(&str, &str)]) -> Agent {
    let a = Agent::new(
        "init",
        AgentConfig {
            peer_timeout: Duration::from_secs(3),
            ..AgentConfig::default()
        },
    )
    .unwrap();
    let mut params: Params = [("provider".to_string(), provider.to_string())].into();
    params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let b = a.create_backend("LIBFABRIC", &params).unwrap();
    let (_, effective) = a.backend_params(b).unwrap();
    assert!(
        effective["provider"].starts_with(provider),
        "provider reported: {effective:?}"
    );
    for (k, v) in extra {
        assert_eq!(&effective[*k], v, "{k} reported: {effective:?}");
    }
    a
}

/// Both agents with two endpoints and small RMAs (each request spread over both endpoints):
/// READ and WRITE with notifications and byte checks, many descriptors, 8 threads.
fn two_endpoints(provider: &str) {
    let me = agent_with(
        provider,
        &[("num_endpoints", "2"), ("chunk_bytes", "65536")],
    );
    let env = [
        ("NIXL_PEER_BACKEND", "LIBFABRIC"),
        ("FI_PROVIDER", provider),
        ("NIXL_PEER_PARAMS", "num_endpoints=2,chunk_bytes=65536"),
    ];
    let mut peer = Peer::spawn("tgt", SIZE, 9, &env, false);
    assert_eq!(me.load_remote_md(&peer.md).unwrap(), "tgt");
    let what = format!("{provider}, two endpoints");
    let peer::Exchanged {
        buf: _buf, ours, ..
    } = peer::read_then_write_with_notifs(&me, &mut peer, "tgt", SIZE, 9, &what);
    // 1024 shuffled 4 KiB descriptors read back, and 8 threads with their own requests.
    let n = 1024;
    let order = shuffled(n, 7);
    let at = |base: u64| -> Vec<(u64, u64)> {
        order
            .iter()
            .map(|&i| (base + i as u64 * 4096, 4096))
            .collect()
    };
    let back = vec![0u8; SIZE];
    register(&me, &back);
    let many = me
        .create_xfer_req(
            XferOp::Read,
            &dram(&at(addr(&back))),
            &dram(&at(peer.addr)),
            "tgt",
            Some(&OptArgs::with_notif("many")),
        )
        .unwrap();
    assert_eq!(run(&me, &many).unwrap(), Status::Success);
    assert!(
        back[..n * 4096] == ours[..n * 4096],
        "{what}: many-descriptor READ"
    );
    peer.send("WAIT_NOTIFS 1");
    assert!(
        peer.expect("NOTIFS ").starts_with("init:many SUM"),
        "{what}"
    );
    let _threads_buf = threaded_reads(&me, peer.addr, &ours, &what);
    peer.send("EXIT");
}

fn two_processes(provider: &str) {
    let me = agent_on(provider);
    let env = [
        ("NIXL_PEER_BACKEND", "LIBFABRIC"),
        ("FI_PROVIDER", provider),
    ];
    let mut peer = Peer::spawn("tgt", SIZE, 9, &env, false);
    assert_eq!(me.load_remote_md(&peer.md).unwrap(), "tgt");
    let peer::Exchanged { buf, ours, write } =
        peer::read_then_write_with_notifs(&me, &mut peer, "tgt", SIZE, 9, provider);
    let local = dram(&[(addr(&buf), SIZE as u64)]);
    let remote = dram(&[(peer.addr, SIZE as u64)]);

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

    let _threads_buf = threaded_reads(&me, peer.addr, &ours, provider);

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
    let (err, took) = peer::kill_then_expect_disconnect(&me, &mut peer, &write);
    eprintln!("{provider}: killed peer -> {err} after {took:?}");
    // Deregistering the memory of that transfer returns (bounded by twice the peer timeout,
    // even where the provider never hands the operation back).
    let start = Instant::now();
    me.deregister_mem(&reg_list(&[(addr(&ours), SIZE as u64)]), None)
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{provider}: deregistration took {:?}",
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
fn tcp_two_endpoints_read_write_notif_many_threads() {
    if libfabric_present() {
        two_endpoints("tcp");
    }
}

#[test]
fn shm_two_endpoints_read_write_notif_many_threads() {
    if libfabric_present() {
        two_endpoints("shm");
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

/// Two network namespaces joined by a veth pair (10.198.S.1 and .2); removed on drop.
struct TwoHosts {
    names: [String; 2],
}

impl TwoHosts {
    fn make(tag: &str, subnet: u32) -> std::result::Result<TwoHosts, String> {
        let ip = test_support::ip;
        let hosts = TwoHosts {
            names: [format!("{tag}-a"), format!("{tag}-b")],
        };
        let [a, b] = &hosts.names;
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        ip(&[
            "link", "add", "fa0", "netns", a, "type", "veth", "peer", "name", "fb0", "netns", b,
        ])?;
        for (ns, dev, host) in [(a, "fa0", 1), (b, "fb0", 2)] {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("10.198.{subnet}.{host}/24"),
                "dev",
                dev,
            ])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        // `link set up` returns before the veth pair has a carrier; a connection tried before
        // then fails, and the provider does not retry it within the peer timeout.
        for (ns, dev) in [(a, "fa0"), (b, "fb0")] {
            wait_for_carrier(ns, dev)?;
        }
        Ok(hosts)
    }
}

/// Waits (up to 10 s) until `dev` in namespace `ns` reports a carrier (`LOWER_UP`).
fn wait_for_carrier(ns: &str, dev: &str) -> std::result::Result<(), String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = Command::new("ip")
            .args(["-n", ns, "link", "show", "dev", dev])
            .output()
            .map_err(|e| format!("ip link show: {e}"))?;
        if String::from_utf8_lossy(&out.stdout).contains("LOWER_UP") {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("{dev} in {ns} has no carrier after 10 s"));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = test_support::ip(&["netns", "del", n]);
        }
    }
}

/// The tcp provider between two network namespaces on this machine (the project's own test
/// hosts): each side's libfabric sees only its veth (`FI_TCP_IFACE`), so the endpoint
/// addresses in the metadata are the veth addresses and the bytes cross the veth pair.
#[test]
fn tcp_across_two_network_namespaces() {
    if !libfabric_present() {
        return;
    }
    if !test_support::is_root() {
        return test_support::skip("root", "network namespaces need root");
    }
    if !test_support::have("ip") {
        return test_support::skip("ip", "iproute2 (`ip`) is not installed");
    }
    let pid = std::process::id();
    let tag = format!("nf{}", pid % 100_000);
    let hosts = match TwoHosts::make(&tag, pid % 250 + 1) {
        Ok(h) => h,
        Err(e) => {
            return test_support::skip(
                "netns",
                &format!("cannot create network namespaces here: {e}"),
            );
        }
    };
    let [a, b] = &hosts.names;
    let on = |ns: &str, dev: &str, name: &str, seed: u64| {
        let env = [
            ("NIXL_PEER_BACKEND", "LIBFABRIC"),
            ("FI_PROVIDER", "tcp"),
            ("FI_TCP_IFACE", dev),
            // The namespaces share a kernel: no cross-memory attach shortcut for the
            // metadata's other transports either.
            ("NIXL_RS_TRANSPORT", "tcp"),
        ];
        Peer::spawn_under(&["ip", "netns", "exec", ns], name, SIZE, seed, &env)
    };
    let mut init = on(a, "fa0", "ns-init", 2);
    let mut written = on(b, "fb0", "ns-w", 3);
    let mut read = on(b, "fb0", "ns-r", 5);
    for t in [&written, &read] {
        let md = hex(&t.md);
        init.send(&format!("LOAD {md}"));
        init.expect("LOADED ");
    }
    // WRITE with a notification: the target checksums when the notification lands.
    init.send(&format!("XFER WRITE ns-w {} {SIZE} across", written.addr));
    let done = init.expect("DONE ");
    assert!(
        done.starts_with("NIXL_SUCCESS"),
        "WRITE across namespaces: {done}"
    );
    written.send("WAIT_NOTIFS 1");
    assert_eq!(
        written.expect("NOTIFS "),
        format!("ns-init:across SUM {:016x}", checksum(&filled(SIZE, 2)))
    );
    // READ: the initiator's buffer becomes the other target's pattern.
    init.send(&format!("XFER READ ns-r {} {SIZE}", read.addr));
    assert_eq!(
        init.expect("DONE "),
        format!("NIXL_SUCCESS SUM {:016x}", checksum(&filled(SIZE, 5)))
    );
    read.send("SUM");
    assert_eq!(
        read.expect("SUM "),
        format!("{:016x}", checksum(&filled(SIZE, 5)))
    );
    drop((init, written, read));
    drop(hosts);
}

/// 8 threads, each READing its own slice of the peer's buffer with its own request, 4 times;
/// the slices must together be `ours`. Returns the (still registered) local buffer.
fn threaded_reads(me: &Agent, peer_addr: u64, ours: &[u8], what: &str) -> Vec<u8> {
    let threads_buf = vec![0u8; SIZE];
    register(me, &threads_buf);
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let base = addr(&threads_buf);
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
    assert!(threads_buf == ours, "{what}: threaded READs");
    threads_buf
}
