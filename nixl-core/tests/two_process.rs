//! Two processes on one host: cross-memory attach by default, TCP when forced, a dead or
//! frozen peer, and an unprivileged pair.

mod common;

use std::time::{Duration, Instant};

use common::peer::{self, Peer};
use common::*;
use nixl_core::*;

const SIZE: usize = 4 << 20;

fn write_read_then_kill(params: &Params, peer_env: &[(&str, &str)]) {
    let config = AgentConfig {
        peer_timeout: Duration::from_secs(3),
        ..AgentConfig::default()
    };
    let me = agent_with("init", config, params);
    let mut peer = Peer::spawn("tgt", SIZE, 9, peer_env, false);
    assert_eq!(me.load_remote_md(&peer.md).unwrap(), "tgt");
    let ex = peer::read_then_write_with_notifs(&me, &mut peer, "tgt", SIZE, 9, "two_process");
    let write = ex.write;

    // Kill the target: the next post fails with REMOTE_DISCONNECT within the bound.
    peer::kill_then_expect_disconnect(&me, &mut peer, &write);
    assert!(
        me.remote_agents().is_empty(),
        "the dead peer's metadata is dropped"
    );
}

#[test]
fn cross_memory_attach_write_read_notif_and_dead_peer() {
    write_read_then_kill(&Params::new(), &[]);
}

#[test]
fn tcp_write_read_notif_and_dead_peer() {
    write_read_then_kill(&tcp_params(), &[("NIXL_RS_TRANSPORT", "tcp")]);
}

#[test]
fn frozen_peer_times_out_with_remote_disconnect() {
    let config = AgentConfig {
        peer_timeout: Duration::from_secs(2),
        ..AgentConfig::default()
    };
    let me = agent_with("init", config, &tcp_params());
    let peer = Peer::spawn("frozen", SIZE, 1, &[("NIXL_RS_TRANSPORT", "tcp")], false);
    me.load_remote_md(&peer.md).unwrap();
    let big = vec![7u8; SIZE];
    register(&me, &big);
    peer.freeze();
    let start = Instant::now();
    let req = me
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&big), SIZE as u64)]),
            &dram(&[(peer.addr, SIZE as u64)]),
            "frozen",
            None,
        )
        .unwrap();
    let err = run(&me, &req).unwrap_err();
    peer.thaw();
    assert_eq!(err.status(), Status::RemoteDisconnect, "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn unprivileged_pair_of_processes() {
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    if root && !test_support::have("setpriv") {
        return test_support::skip(
            "setpriv",
            "running as root and setpriv is not installed, so no unprivileged user can be used",
        );
    }
    for env in [&[][..], &[("NIXL_RS_TRANSPORT", "tcp")][..]] {
        let mut target = Peer::spawn("utgt", SIZE, 3, env, root);
        let mut initiator = Peer::spawn("uini", SIZE, 8, env, root);
        initiator.send(&format!("LOAD {}", hex(&target.md)));
        assert_eq!(initiator.expect("LOADED "), "utgt");
        initiator.send(&format!("XFER WRITE utgt {} {SIZE} hello", target.addr));
        let done = initiator.expect("DONE ");
        assert!(done.starts_with("NIXL_SUCCESS"), "{done} ({env:?})");
        target.send("WAIT_NOTIFS 1");
        assert_eq!(
            target.expect("NOTIFS "),
            format!("uini:hello SUM {:016x}", checksum(&filled(SIZE, 8)))
        );
        // And back: the initiator reads the target's (now overwritten) buffer.
        initiator.send(&format!("XFER READ utgt {} {SIZE}", target.addr));
        let done = initiator.expect("DONE ");
        assert_eq!(
            done,
            format!("NIXL_SUCCESS SUM {:016x}", checksum(&filled(SIZE, 8)))
        );
    }
}

fn restart(params: &Params, peer_env: &[(&str, &str)]) {
    let me = agent_with("init", AgentConfig::default(), params);
    let ours = filled(SIZE, 6);
    register(&me, &ours);
    let first = Peer::spawn("rs", SIZE, 1, peer_env, false);
    me.load_remote_md(&first.md).unwrap();
    let old = me
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&ours), SIZE as u64)]),
            &dram(&[(first.addr, SIZE as u64)]),
            "rs",
            None,
        )
        .unwrap();
    assert_eq!(run(&me, &old).unwrap(), Status::Success);

    // A new process under the same name while the first still runs: refused.
    let mut second = Peer::spawn("rs", SIZE, 2, peer_env, false);
    assert_eq!(
        me.load_remote_md(&second.md).unwrap_err().status(),
        Status::NotAllowed
    );

    // The first one dies: the new incarnation loads (its predecessor is found gone), the old
    // handle is stale, and transfers to the new process work.
    drop(first);
    assert_eq!(me.load_remote_md(&second.md).unwrap(), "rs");
    assert_eq!(
        me.post_xfer_req(&old, None).unwrap_err().status(),
        Status::NotFound
    );
    let new = me
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&ours), SIZE as u64)]),
            &dram(&[(second.addr, SIZE as u64)]),
            "rs",
            Some(&OptArgs::with_notif("again")),
        )
        .unwrap();
    assert_eq!(run(&me, &new).unwrap(), Status::Success);
    second.send("WAIT_NOTIFS 1");
    assert_eq!(
        second.expect("NOTIFS "),
        format!("init:again SUM {:016x}", checksum(&ours))
    );
}

#[test]
fn restarted_peer_cross_memory_attach() {
    restart(&Params::new(), &[]);
}

#[test]
fn restarted_peer_tcp() {
    restart(&tcp_params(), &[("NIXL_RS_TRANSPORT", "tcp")]);
}

fn deregistered_peer_memory(params: &Params, peer_env: &[(&str, &str)]) {
    let me = agent_with("init", AgentConfig::default(), params);
    let ours = filled(SIZE, 12);
    register(&me, &ours);
    let mut peer = Peer::spawn("dr", SIZE, 5, peer_env, false);
    me.load_remote_md(&peer.md).unwrap();
    peer.send("SUM");
    let before = peer.expect("SUM ");
    peer.send("DEREG");
    assert_eq!(peer.expect("DEREGISTERED"), "");
    // Our metadata still lists the region; the target's live registrations do not.
    let req = me
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&ours), SIZE as u64)]),
            &dram(&[(peer.addr, SIZE as u64)]),
            "dr",
            None,
        )
        .unwrap();
    assert_eq!(run(&me, &req).unwrap_err().status(), Status::NotAllowed);
    peer.send("SUM");
    assert_eq!(
        peer.expect("SUM "),
        before,
        "deregistered memory was written"
    );
}

#[test]
fn deregistered_peer_memory_is_refused_cross_memory_attach() {
    deregistered_peer_memory(&Params::new(), &[]);
}

#[test]
fn deregistered_peer_memory_is_refused_tcp() {
    deregistered_peer_memory(&tcp_params(), &[("NIXL_RS_TRANSPORT", "tcp")]);
}
