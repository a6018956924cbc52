//! Hardened remote access: shared-secret authentication and forged peers speaking our wire
//! protocol from a raw socket.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use nixl_core::testing::ConnInfo;
use nixl_core::testing::ResolvedDesc;
use nixl_core::testing::metadata::AgentMetadata;
use nixl_core::testing::proto::{self, Header, Kind, NO_NOTIF};
use nixl_core::*;

fn with_secret(name: &str, secret: Option<&str>) -> Agent {
    let config = AgentConfig {
        auth_secret: secret.map(|s| s.as_bytes().to_vec()),
        ..AgentConfig::default()
    };
    agent_with(name, config, &tcp_params())
}

#[test]
fn only_agents_that_know_the_secret_reach_memory() {
    let target = with_secret("vault", Some("open sesame"));
    let data = vec![0u8; 4096];
    register(&target, &data);
    let md = target.local_md().unwrap();
    for (name, secret, want) in [
        ("stranger", None, Err(Status::NotAllowed)),
        ("guesser", Some("open says me"), Err(Status::NotAllowed)),
        ("friend", Some("open sesame"), Ok(())),
    ] {
        let a = with_secret(name, secret);
        let src = vec![0x5au8; 4096];
        register(&a, &src);
        a.load_remote_md(&md).unwrap();
        let req = a
            .create_xfer_req(
                XferOp::Write,
                &dram(&[(addr(&src), 4096)]),
                &dram(&[(addr(&data), 4096)]),
                "vault",
                None,
            )
            .unwrap();
        let got = run(&a, &req).map(drop).map_err(|e| e.status());
        assert_eq!(got, want, "{name}");
        if want.is_err() {
            assert!(data.iter().all(|&b| b == 0), "{name} wrote into the vault");
            let _ = a.gen_notif("vault", b"let me in", None);
        }
    }
    assert!(data.iter().all(|&b| b == 0x5a), "the friend's write landed");
    // Only the friend's notifications could arrive; the refused ones never did.
    let mut notifs = NotifMap::new();
    target.get_notifs(&mut notifs).unwrap();
    assert!(!notifs.contains_key("stranger") && !notifs.contains_key("guesser"));
}

/// Connects to `target`'s control listener like a peer would, up to the HELLO answer.
fn raw_peer(target: &Agent, proof: &[u8]) -> (TcpStream, nixl_core::Result<()>) {
    let md = AgentMetadata::decode(&target.local_md().unwrap()).unwrap();
    let info = ConnInfo::decode(&md.conns[0].1).unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", info.port)).unwrap();
    let challenge = proto::read_header(&mut s).unwrap();
    assert_eq!(challenge.kind, Kind::Challenge);
    let name = b"mallory";
    let hello = Header::new(
        Kind::Hello,
        name.len() as u64,
        info.instance,
        proof.len() as u64,
    )
    .encode();
    proto::write_all_slices(&mut s, &[&hello, name, proof]).unwrap();
    let answer = proto::read_status(&mut s, Kind::HelloAck).unwrap();
    (s, answer)
}

#[test]
fn forged_requests_from_a_raw_socket_are_refused() {
    let target = with_secret("target", None);
    let secret_data = vec![0u8; 8192];
    register(&target, &secret_data);
    let (mut s, hello) = raw_peer(&target, &[]);
    hello.unwrap();
    let victim = addr(&secret_data);
    // WRITE with a guessed key: refused, nothing written, connection still in step.
    let forged = [ResolvedDesc {
        addr: victim,
        len: 4096,
        dev_id: 0,
        key: 0xdead_beef,
    }];
    let descs = proto::encode_descs(&forged);
    let header = Header::new(Kind::Write, 1, 4096, NO_NOTIF).encode();
    proto::write_all_slices(&mut s, &[&header, &descs, &[0xff; 4096]]).unwrap();
    let answer = proto::read_status(&mut s, Kind::Resp).unwrap();
    assert_eq!(answer.unwrap_err().status(), Status::NotAllowed);
    // READ with a guessed key: refused, no data follows.
    let header = Header::new(Kind::Read, 1, 4096, 0).encode();
    proto::write_all_slices(&mut s, &[&header, &descs]).unwrap();
    assert_eq!(
        proto::read_status(&mut s, Kind::Resp)
            .unwrap()
            .unwrap_err()
            .status(),
        Status::NotAllowed
    );
    // Lengths that do not add up, and garbage: the connection is dropped.
    let header = Header::new(Kind::Write, 1, 9999, NO_NOTIF).encode();
    proto::write_all_slices(&mut s, &[&header, &descs]).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "no answer to a malformed frame, just a closed connection"
    );
    assert!(
        secret_data.iter().all(|&b| b == 0),
        "forged requests wrote into registered memory"
    );

    // The target still serves honest peers.
    let honest = with_secret("honest", None);
    let src = filled(4096, 4);
    register(&honest, &src);
    honest.load_remote_md(&target.local_md().unwrap()).unwrap();
    let req = honest
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&src), 4096)]),
            &dram(&[(victim, 4096)]),
            "target",
            None,
        )
        .unwrap();
    assert_eq!(run(&honest, &req).unwrap(), Status::Success);
    assert!(secret_data[..4096] == src[..]);
}

#[test]
fn a_raw_peer_without_the_secret_is_refused_at_hello() {
    let target = with_secret("locked", Some("k"));
    let (mut s, hello) = raw_peer(&target, &[]);
    assert_eq!(hello.unwrap_err().status(), Status::NotAllowed);
    let (_, hello) = raw_peer(&target, &[7u8; 32]);
    assert_eq!(hello.unwrap_err().status(), Status::NotAllowed);
    // Nothing more is read from a refused connection.
    let _ = s.write_all(&[0u8; 32]);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

#[test]
fn random_frames_after_a_valid_hello_never_hurt_the_target() {
    let target = with_secret("fuzzed", None);
    let data = vec![0u8; 4096];
    register(&target, &data);
    // Deterministic xorshift stream; each connection gets one garbage burst, sometimes behind
    // a valid header so the payload parsers see it too.
    let mut rng = test_support::XorShift::new(0x9e37_79b9_7f4a_7c15);
    let mut next = || rng.next();
    for round in 0..300 {
        let (mut s, hello) = raw_peer(&target, &[]);
        hello.unwrap();
        let len = (next() % 200) as usize;
        let mut burst: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 {
            let kind = [Kind::Write, Kind::Read, Kind::Notif][round % 3];
            let mut h = Header::new(kind, next() % 8, next() % 64, next() % 16)
                .encode()
                .to_vec();
            h.append(&mut burst);
            burst = h;
        }
        let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(50)));
        let _ = s.write_all(&burst);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    assert!(
        data.iter().all(|&b| b == 0),
        "garbage wrote into registered memory"
    );
    let honest = with_secret("after", None);
    let src = filled(4096, 9);
    register(&honest, &src);
    honest.load_remote_md(&target.local_md().unwrap()).unwrap();
    let req = honest
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&src), 4096)]),
            &dram(&[(addr(&data), 4096)]),
            "fuzzed",
            None,
        )
        .unwrap();
    assert_eq!(run(&honest, &req).unwrap(), Status::Success);
}
