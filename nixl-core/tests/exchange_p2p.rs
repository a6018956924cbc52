//! Metadata exchange through the peer-to-peer listener.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use nixl_core::testing::frame;
use nixl_core::*;

fn listening(name: &str) -> Agent {
    let config = AgentConfig {
        use_listen_thread: true,
        listen_port: 0,
        ..AgentConfig::default()
    };
    agent_with(name, config, &Params::new())
}

fn at(agent: &Agent) -> OptArgs {
    OptArgs {
        ip_addr: Some("127.0.0.1".into()),
        port: agent.listen_port().expect("listener runs"),
        ..OptArgs::default()
    }
}

/// Polls `check_remote_md` until it gives `want` (or 10 s pass).
fn eventually(agent: &Agent, name: &str, descs: &XferDescList, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent.check_remote_md(name, descs).is_ok() != want {
        assert!(
            Instant::now() < deadline,
            "check_remote_md({name}) never became {want}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until every exchange call `agent` queued so far has finished: exchange calls run in
/// call order on one worker per agent, so once a push queued now to a fresh listener has
/// arrived there, everything queued before it is done.
fn drained(agent: &Agent) {
    let witness = listening(&format!("witness-of-{}", agent.name()));
    agent.send_local_md(Some(&at(&witness))).unwrap();
    eventually(
        &witness,
        agent.name(),
        &XferDescList::new(MemType::Dram),
        true,
    );
}

#[test]
fn send_fetch_partial_and_invalidate() {
    let a = listening("pa");
    let b = listening("pb");
    let none = XferDescList::new(MemType::Dram);
    let (abuf, bbuf) = (filled(8192, 1), vec![0u8; 8192]);
    register(&a, &abuf);
    register(&b, &bbuf);

    // a pushes its metadata to b.
    a.send_local_md(Some(&at(&b))).unwrap();
    eventually(&b, "pa", &dram(&[(addr(&abuf), 8192)]), true);

    // b fetches a's... and a fetches b's, then writes into b.
    a.fetch_remote_md("pb", Some(&at(&b))).unwrap();
    eventually(&a, "pb", &dram(&[(addr(&bbuf), 8192)]), true);
    let req = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&abuf), 8192)]),
            &dram(&[(addr(&bbuf), 8192)]),
            "pb",
            Some(&OptArgs::with_notif("via-listener")),
        )
        .unwrap();
    assert_eq!(run(&a, &req).unwrap(), Status::Success);
    assert_eq!(wait_notifs(&b, 1)["pa"], vec![b"via-listener".to_vec()]);
    assert!(abuf == bbuf);

    // a tells b to forget it.
    a.invalidate_local_md(Some(&at(&b))).unwrap();
    eventually(&b, "pa", &none, false);

    // Partial: connection info only, then one region.
    let c = listening("pc");
    let cbuf = vec![0u8; 4096];
    register(&c, &cbuf);
    c.send_local_partial_md(&RegDescList::new(MemType::Dram), Some(&at(&a)))
        .unwrap();
    eventually(&a, "pc", &none, true);
    assert!(
        a.check_remote_md("pc", &dram(&[(addr(&cbuf), 4096)]))
            .is_err()
    );
    let with_conn = OptArgs {
        include_conn_info: true,
        ..at(&a)
    };
    c.send_local_partial_md(&reg_list(&[(addr(&cbuf), 4096)]), Some(&with_conn))
        .unwrap();
    eventually(&a, "pc", &dram(&[(addr(&cbuf), 4096)]), true);
}

#[test]
fn exchange_calls_need_an_address() {
    let a = listening("na");
    assert_eq!(
        a.send_local_md(None).unwrap_err().status(),
        Status::NotSupported
    );
    assert_eq!(
        a.fetch_remote_md("x", None).unwrap_err().status(),
        Status::NotSupported
    );
    assert_eq!(
        a.invalidate_local_md(None).unwrap_err().status(),
        Status::NotSupported
    );
    // An unreachable peer fails in the background; the call itself returns at once.
    let nowhere = OptArgs {
        ip_addr: Some("127.0.0.1".into()),
        port: 1,
        ..OptArgs::default()
    };
    let start = Instant::now();
    a.fetch_remote_md("ghost", Some(&nowhere)).unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    // NotFound is also the answer while the fetch is pending: wait until it has failed.
    drained(&a);
    assert_eq!(
        a.check_remote_md("ghost", &XferDescList::new(MemType::Dram))
            .unwrap_err()
            .status(),
        Status::NotFound
    );
}

#[test]
fn hostile_peers_are_dropped_and_harm_nobody() {
    let target = listening("victim");
    let port = target.listen_port().unwrap();
    // One peer stalls mid-frame, one sends garbage, one announces a huge frame.
    let mut staller = TcpStream::connect(("127.0.0.1", port)).unwrap();
    staller
        .write_all(b"NXMD\x01\x01\0\0\xff\0\0\0partial")
        .unwrap();
    let mut garbage = TcpStream::connect(("127.0.0.1", port)).unwrap();
    garbage.write_all(&[0x42; 64]).unwrap();
    let mut huge = TcpStream::connect(("127.0.0.1", port)).unwrap();
    huge.write_all(b"NXMD\x01\x01\0\0\xff\xff\xff\xff").unwrap();
    // A garbage metadata blob in a well-formed frame is refused too.
    let mut bad_md = TcpStream::connect(("127.0.0.1", port)).unwrap();
    bad_md.write_all(b"NXMD\x01\x01\0\0\x04\0\0\0junk").unwrap();
    // Meanwhile an honest peer is served at once.
    let honest = listening("honest");
    let start = Instant::now();
    honest.send_local_md(Some(&at(&target))).unwrap();
    eventually(&target, "honest", &XferDescList::new(MemType::Dram), true);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "the honest peer waited {:?}",
        start.elapsed()
    );
    assert_eq!(target.remote_agents(), vec!["honest".to_string()]);
}

#[test]
fn a_listener_with_a_secret_ignores_peers_without_it() {
    let with = |name: &str, secret: Option<&str>| {
        let config = AgentConfig {
            use_listen_thread: true,
            listen_port: 0,
            auth_secret: secret.map(|s| s.as_bytes().to_vec()),
            ..AgentConfig::default()
        };
        agent_with(name, config, &Params::new())
    };
    let guarded = with("guarded", Some("fleet-secret"));
    let member = with("member", Some("fleet-secret"));
    let outsider = with("outsider", None);
    let impostor = with("impostor", Some("guess"));
    outsider.send_local_md(Some(&at(&guarded))).unwrap();
    impostor.send_local_md(Some(&at(&guarded))).unwrap();
    member.send_local_md(Some(&at(&guarded))).unwrap();
    eventually(&guarded, "member", &XferDescList::new(MemType::Dram), true);
    // The outsider's push failed before sending anything (the listener asks for a secret).
    // The impostor's went out: once its attempt is done, and a connection driven by hand with
    // a wrong proof and a LOAD is refused and closed, the listener has served it to the end.
    drained(&outsider);
    drained(&impostor);
    let port = guarded.listen_port().unwrap();
    let mut forged = TcpStream::connect(("127.0.0.1", port)).unwrap();
    forged
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (cmd, _) = frame::read(&mut forged).unwrap().expect("a challenge");
    assert_eq!(cmd, frame::Command::Challenge);
    frame::write(&mut forged, frame::Command::Auth, &[0u8; 32]).unwrap();
    frame::write(
        &mut forged,
        frame::Command::Load,
        &impostor.local_md().unwrap(),
    )
    .unwrap();
    // An ERROR frame and then the end of the connection (or a reset: the LOAD was never read).
    while let Ok(Some((cmd, _))) = frame::read(&mut forged) {
        assert_eq!(
            cmd,
            frame::Command::Error,
            "the listener answered a forged peer"
        );
    }
    assert_eq!(guarded.remote_agents(), vec!["member".to_string()]);
    // An unauthenticated INVL cannot make it forget anyone, and fetching needs the secret too.
    let forged = AgentConfig {
        use_listen_thread: true,
        listen_port: 0,
        ..AgentConfig::default()
    };
    let member_twin = agent_with("member", forged, &Params::new());
    member_twin
        .invalidate_local_md(Some(&at(&guarded)))
        .unwrap();
    outsider
        .fetch_remote_md("guarded", Some(&at(&guarded)))
        .unwrap();
    // Both fail before sending a frame (no secret); wait until they have.
    drained(&member_twin);
    drained(&outsider);
    assert!(
        guarded
            .check_remote_md("member", &XferDescList::new(MemType::Dram))
            .is_ok()
    );
    assert!(
        outsider
            .check_remote_md("guarded", &XferDescList::new(MemType::Dram))
            .is_err()
    );
    member
        .fetch_remote_md("guarded", Some(&at(&guarded)))
        .unwrap();
    eventually(&member, "guarded", &XferDescList::new(MemType::Dram), true);
}
