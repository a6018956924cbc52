//! Two agents in one process: the most common NIXL test pattern.

mod common;

use common::*;
use nixl_core::*;

const MIB: usize = 1 << 20;

/// Two agents with one buffer each, `b`'s metadata loaded into `a`.
fn pair(len: usize, params: &Params) -> (Agent, Agent, Vec<u8>, Vec<u8>) {
    let a = agent_with("a", AgentConfig::default(), params);
    let b = agent_with("b", AgentConfig::default(), params);
    let abuf = filled(len, 1);
    let bbuf = filled(len, 2);
    register(&a, &abuf);
    register(&b, &bbuf);
    assert_eq!(a.load_remote_md(&b.local_md().unwrap()).unwrap(), "b");
    (a, b, abuf, bbuf)
}

fn write_and_read_64mib(params: &Params) {
    let (a, b, abuf, bbuf) = pair(64 * MIB, params);
    let len = abuf.len() as u64;
    let write = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&abuf), len)]),
            &dram(&[(addr(&bbuf), len)]),
            "b",
            Some(&OptArgs::with_notif("w")),
        )
        .unwrap();
    assert_eq!(run(&a, &write).unwrap(), Status::Success);
    let notifs = wait_notifs(&b, 1);
    assert_eq!(notifs["a"], vec![b"w".to_vec()]);
    assert!(bbuf == abuf, "WRITE delivered different bytes");

    // Put new content in b, READ it back into a.
    let fresh = filled(64 * MIB, 3);
    let staging = fresh.clone();
    register(&b, &staging);
    let read = a
        .create_xfer_req(
            XferOp::Read,
            &dram(&[(addr(&abuf), len)]),
            &dram(&[(addr(&staging), len)]),
            "b",
            Some(&OptArgs::with_notif("r")),
        )
        .err();
    // `staging` was registered after b's metadata was loaded: a must not see it yet.
    assert_eq!(read.unwrap().status(), Status::NotFound);
    a.load_remote_md(&b.local_md().unwrap()).unwrap();
    let read = a
        .create_xfer_req(
            XferOp::Read,
            &dram(&[(addr(&abuf), len)]),
            &dram(&[(addr(&staging), len)]),
            "b",
            Some(&OptArgs::with_notif("r")),
        )
        .unwrap();
    assert_eq!(run(&a, &read).unwrap(), Status::Success);
    assert!(abuf == fresh, "READ delivered different bytes");
    assert_eq!(wait_notifs(&b, 1)["a"], vec![b"r".to_vec()]);
}

#[test]
fn write_and_read_64_mib_same_process() {
    write_and_read_64mib(&Params::new());
}

#[test]
fn write_and_read_64_mib_over_tcp() {
    write_and_read_64mib(&tcp_params());
}

/// Overlapping descriptors (NIXL accepts them, a peer may send them) are moved through raw
/// addresses, never as aliasing `&mut [u8]` (issue 17 §4; see `backend/net/memory.rs`). Bytes
/// outside an overlap are exact; each byte inside one comes from one of the overlapping sources
/// (which one is not promised: a split transfer moves its pieces on several threads).
fn overlapping_descriptors(params: &Params) {
    const LEN: usize = 16 << 10;
    const H: u64 = 4096;
    let (a, b, abuf, bbuf) = pair(LEN, params);
    let (a0, b0) = (addr(&abuf), addr(&bbuf));
    let before_b = bbuf.clone();

    // WRITE a[0, 8K) -> b[0, 8K) and a[8K, 16K) -> b[4K, 12K): b[4K, 8K) is written twice.
    let write = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(a0, 2 * H), (a0 + 2 * H, 2 * H)]),
            &dram(&[(b0, 2 * H), (b0 + H, 2 * H)]),
            "b",
            Some(&OptArgs::with_notif("w")),
        )
        .unwrap();
    assert_eq!(run(&a, &write).unwrap(), Status::Success);
    assert_eq!(wait_notifs(&b, 1)["a"], vec![b"w".to_vec()]);
    let h = H as usize;
    assert!(bbuf[..h] == abuf[..h], "first descriptor's own bytes");
    assert!(
        bbuf[2 * h..3 * h] == abuf[3 * h..],
        "second descriptor's own bytes"
    );
    assert!(
        bbuf[3 * h..] == before_b[3 * h..],
        "bytes no descriptor names changed"
    );
    for o in h..2 * h {
        let got = bbuf[o];
        assert!(
            got == abuf[o] || got == abuf[o + h],
            "byte {o} of the overlap is {got}, from neither source"
        );
    }

    // READ b[0, 8K) -> a[0, 8K) and b[8K, 16K) -> a[4K, 12K): a[4K, 8K) is filled twice.
    let after_b = bbuf.clone();
    let before_a = abuf.clone();
    let read = a
        .create_xfer_req(
            XferOp::Read,
            &dram(&[(a0, 2 * H), (a0 + H, 2 * H)]),
            &dram(&[(b0, 2 * H), (b0 + 2 * H, 2 * H)]),
            "b",
            None,
        )
        .unwrap();
    assert_eq!(run(&a, &read).unwrap(), Status::Success);
    assert!(
        abuf[..h] == after_b[..h],
        "first local descriptor's own bytes"
    );
    assert!(
        abuf[2 * h..3 * h] == after_b[3 * h..],
        "second local descriptor's own bytes"
    );
    assert!(
        abuf[3 * h..] == before_a[3 * h..],
        "bytes no descriptor names changed"
    );
    for o in h..2 * h {
        let got = abuf[o];
        assert!(
            got == after_b[o] || got == after_b[o + h],
            "byte {o} of the overlap is {got}, from neither source"
        );
    }
}

#[test]
fn overlapping_descriptors_same_process() {
    overlapping_descriptors(&Params::new());
}

#[test]
fn overlapping_descriptors_over_tcp() {
    overlapping_descriptors(&tcp_params());
}

fn prepped_shuffled(params: &Params) {
    const N: usize = 4096;
    const BLOCK: u64 = 4096;
    let (a, b, abuf, bbuf) = pair(N * BLOCK as usize, params);
    let blocks = |buf: &[u8]| {
        dram(
            &(0..N as u64)
                .map(|i| (addr(buf) + i * BLOCK, BLOCK))
                .collect::<Vec<_>>(),
        )
    };
    let local = a.prep_xfer_dlist(None, &blocks(&abuf), None).unwrap();
    let remote = a.prep_xfer_dlist(Some("b"), &blocks(&bbuf), None).unwrap();
    let lidx = shuffled(N, 7);
    let ridx = shuffled(N, 11);
    for round in 0..3 {
        let msg = format!("round-{round}");
        let req = a
            .make_xfer_req(
                XferOp::Write,
                &local,
                &lidx,
                &remote,
                &ridx,
                Some(&OptArgs::with_notif(msg.clone())),
            )
            .unwrap();
        assert_eq!(run(&a, &req).unwrap(), Status::Success);
        assert_eq!(wait_notifs(&b, 1)["a"], vec![msg.into_bytes()]);
    }
    for (&l, &r) in lidx.iter().zip(&ridx) {
        let (l, r) = (l as usize * BLOCK as usize, r as usize * BLOCK as usize);
        assert!(
            abuf[l..l + BLOCK as usize] == bbuf[r..r + BLOCK as usize],
            "block {l} -> {r}"
        );
    }
    // Identity indices merge into one descriptor; skip_desc_merge keeps them apart.
    let idx: Vec<i32> = (0..N as i32).collect();
    let merged = a
        .make_xfer_req(XferOp::Read, &local, &idx, &remote, &idx, None)
        .unwrap();
    assert_eq!(merged.desc_count(), 1);
    let opts = OptArgs {
        skip_desc_merge: true,
        ..OptArgs::default()
    };
    let separate = a
        .make_xfer_req(XferOp::Read, &local, &idx, &remote, &idx, Some(&opts))
        .unwrap();
    assert_eq!(separate.desc_count(), N);
    assert_eq!(run(&a, &merged).unwrap(), Status::Success);
    assert!(abuf == bbuf);
}

#[test]
fn prepped_4096_blocks_shuffled_same_process() {
    prepped_shuffled(&Params::new());
}

#[test]
fn prepped_4096_blocks_shuffled_over_tcp() {
    prepped_shuffled(&tcp_params());
}

#[test]
fn notifications_count_content_and_large_payloads() {
    let (a, b, _abuf, _bbuf) = pair(4096, &Params::new());
    let big: Vec<u8> = (0..6 * 1024).map(|i| i as u8).collect();
    for i in 0..10 {
        a.gen_notif("b", format!("n{i}").as_bytes(), None).unwrap();
    }
    a.gen_notif("b", &big, None).unwrap();
    a.gen_notif("b", b"", None).unwrap();
    let got = wait_notifs(&b, 12);
    let msgs = &got["a"];
    assert_eq!(msgs.len(), 12);
    for i in 0..10 {
        assert!(msgs.contains(&format!("n{i}").into_bytes()));
    }
    assert!(msgs.contains(&big));
    assert!(
        msgs.contains(&Vec::new()),
        "an empty notification still arrives"
    );
    // To self.
    a.gen_notif("a", b"me", None).unwrap();
    assert_eq!(wait_notifs(&a, 1)["a"], vec![b"me".to_vec()]);
    // To an unknown agent.
    assert_eq!(
        a.gen_notif("nobody", b"x", None).unwrap_err().status(),
        Status::NotFound
    );
}

#[test]
fn notifications_over_tcp_arrive_from_agents_never_loaded() {
    let (a, b, _abuf, _bbuf) = pair(4096, &tcp_params());
    let big = vec![0xabu8; 6 * 1024];
    a.gen_notif("b", &big, None).unwrap();
    // b never loaded a's metadata, yet the notification arrives keyed by a's name.
    assert!(b.remote_agents().is_empty());
    assert_eq!(wait_notifs(&b, 1)["a"], vec![big]);
}

#[test]
fn loopback_transfer_to_own_name() {
    let a = agent("solo");
    let src = filled(1 << 20, 5);
    let dst = vec![0u8; 1 << 20];
    register(&a, &src);
    register(&a, &dst);
    let req = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&src), 1 << 20)]),
            &dram(&[(addr(&dst), 1 << 20)]),
            "solo",
            Some(&OptArgs::with_notif("self")),
        )
        .unwrap();
    assert_eq!(run(&a, &req).unwrap(), Status::Success);
    assert!(src == dst);
    assert_eq!(wait_notifs(&a, 1)["solo"], vec![b"self".to_vec()]);
}

#[test]
fn repost_after_completion_and_notif_override() {
    let (a, b, abuf, bbuf) = pair(16 * MIB, &Params::new());
    let len = abuf.len() as u64;
    let req = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&abuf), len)]),
            &dram(&[(addr(&bbuf), len)]),
            "b",
            Some(&OptArgs::with_notif("first")),
        )
        .unwrap();
    assert_eq!(a.xfer_status(&req).unwrap_err().status(), Status::NotPosted);
    let status = a.post_xfer_req(&req, None).unwrap();
    if status == Status::InProg {
        // A 16 MiB transfer runs on worker threads; a second post while it runs is refused.
        match a.post_xfer_req(&req, None) {
            Err(e) => assert_eq!(e.status(), Status::RepostActive),
            Ok(s) => panic!("repost while in progress returned {s}"),
        }
    }
    while a.xfer_status(&req).unwrap() == Status::InProg {}
    assert_eq!(
        a.xfer_status(&req).unwrap(),
        Status::Success,
        "terminal status is sticky"
    );
    // Reposting with opts replaces the notification.
    let status = a
        .post_xfer_req(&req, Some(&OptArgs::with_notif("second")))
        .unwrap();
    assert!(status.is_ok());
    while a.xfer_status(&req).unwrap() == Status::InProg {}
    let got = wait_notifs(&b, 2);
    assert_eq!(got["a"], vec![b"first".to_vec(), b"second".to_vec()]);
}

#[test]
fn telemetry_when_enabled_and_refused_when_not() {
    let config = AgentConfig {
        capture_telemetry: true,
        ..AgentConfig::default()
    };
    let a = agent_with("ta", config, &Params::new());
    let b = agent("tb");
    let (src, dst) = (filled(8192, 1), vec![0u8; 8192]);
    register(&a, &src);
    register(&b, &dst);
    a.load_remote_md(&b.local_md().unwrap()).unwrap();
    let req = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&src), 4096), (addr(&src) + 4096, 4096)]),
            &dram(&[(addr(&dst), 4096), (addr(&dst) + 4096, 4096)]),
            "tb",
            None,
        )
        .unwrap();
    assert_eq!(
        a.xfer_telemetry(&req).unwrap_err().status(),
        Status::NotPosted
    );
    run(&a, &req).unwrap();
    let t = a.xfer_telemetry(&req).unwrap().expect("complete");
    assert_eq!((t.total_bytes, t.desc_count), (8192, 2));
    assert!(t.start_time_us > 1_600_000_000_000_000);
    assert!(
        t.xfer_duration_us < 10_000_000,
        "{} µs for 8 KiB",
        t.xfer_duration_us
    );
    if std::env::var_os("NIXL_TELEMETRY_ENABLE").is_none() {
        let plain = agent("tc");
        plain.load_remote_md(&b.local_md().unwrap()).unwrap();
        let src2 = filled(4096, 2);
        register(&plain, &src2);
        let req = plain
            .create_xfer_req(
                XferOp::Write,
                &dram(&[(addr(&src2), 4096)]),
                &dram(&[(addr(&dst), 4096)]),
                "tb",
                None,
            )
            .unwrap();
        run(&plain, &req).unwrap();
        assert_eq!(
            plain.xfer_telemetry(&req).unwrap_err().status(),
            Status::NoTelemetry
        );
    }
}

#[test]
fn stale_requests_are_refused_after_invalidate_and_reload() {
    let (a, b, abuf, bbuf) = pair(4096, &Params::new());
    let make = || {
        a.create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&abuf), 4096)]),
            &dram(&[(addr(&bbuf), 4096)]),
            "b",
            None,
        )
    };
    let old = make().unwrap();
    let prepped = a
        .prep_xfer_dlist(Some("b"), &dram(&[(addr(&bbuf), 4096)]), None)
        .unwrap();
    a.invalidate_remote_md("b").unwrap();
    assert_eq!(
        a.invalidate_remote_md("b").unwrap_err().status(),
        Status::NotFound
    );
    assert_eq!(
        a.post_xfer_req(&old, None).unwrap_err().status(),
        Status::NotFound
    );
    assert_eq!(make().unwrap_err().status(), Status::NotFound);
    a.load_remote_md(&b.local_md().unwrap()).unwrap();
    assert_eq!(
        a.post_xfer_req(&old, None).unwrap_err().status(),
        Status::NotFound,
        "old handle stays stale"
    );
    let local = a
        .prep_xfer_dlist(None, &dram(&[(addr(&abuf), 4096)]), None)
        .unwrap();
    assert_eq!(
        a.make_xfer_req(XferOp::Write, &local, &[0], &prepped, &[0], None)
            .unwrap_err()
            .status(),
        Status::NotFound
    );
    assert_eq!(run(&a, &make().unwrap()).unwrap(), Status::Success);
}

#[test]
fn metadata_loading_is_additive_idempotent_and_guarded() {
    let a = agent("ma");
    let b = agent("mb");
    let (b1, b2) = (filled(4096, 1), filled(4096, 2));
    register(&b, &b1);
    register(&b, &b2);
    // Connection info only, then one registration at a time.
    let conn_only = b
        .local_partial_md(&RegDescList::new(MemType::Dram), None)
        .unwrap();
    assert_eq!(a.load_remote_md(&conn_only).unwrap(), "mb");
    assert!(
        a.check_remote_md("mb", &XferDescList::new(MemType::Dram))
            .is_ok()
    );
    assert_eq!(
        a.check_remote_md("mb", &dram(&[(addr(&b1), 4096)]))
            .unwrap_err()
            .status(),
        Status::NotFound
    );
    let part = b
        .local_partial_md(&reg_list(&[(addr(&b1), 4096)]), None)
        .unwrap();
    a.load_remote_md(&part).unwrap();
    a.load_remote_md(&part).unwrap();
    assert!(a.check_remote_md("mb", &dram(&[(addr(&b1), 4096)])).is_ok());
    assert!(
        a.check_remote_md("mb", &dram(&[(addr(&b2), 4096)]))
            .is_err()
    );
    // Partial metadata of an unregistered range is refused.
    assert_eq!(
        b.local_partial_md(&reg_list(&[(addr(&b1), 10)]), None)
            .unwrap_err()
            .status(),
        Status::NotFound
    );
    // Its own metadata is refused.
    assert_eq!(
        a.load_remote_md(&a.local_md().unwrap())
            .unwrap_err()
            .status(),
        Status::InvalidParam
    );
    // A second incarnation under the same name is refused while the loaded one still answers...
    let b_again = agent("mb");
    let err = a.load_remote_md(&b_again.local_md().unwrap()).unwrap_err();
    assert_eq!(err.status(), Status::NotAllowed);
    // ...and accepted once the loaded one is gone, without an explicit invalidate.
    drop(b);
    assert_eq!(
        a.load_remote_md(&b_again.local_md().unwrap()).unwrap(),
        "mb"
    );
    assert!(
        a.check_remote_md("mb", &dram(&[(addr(&b1), 4096)]))
            .is_err(),
        "the old registrations went with it"
    );
}

#[test]
fn transfers_to_a_dropped_agent_report_remote_disconnect() {
    let (a, b, abuf, bbuf) = pair(4096, &Params::new());
    let req = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&abuf), 4096)]),
            &dram(&[(addr(&bbuf), 4096)]),
            "b",
            None,
        )
        .unwrap();
    drop(b);
    assert_eq!(
        a.post_xfer_req(&req, None).unwrap_err().status(),
        Status::RemoteDisconnect
    );
    assert!(
        a.remote_agents().is_empty(),
        "a disconnected peer's metadata is dropped"
    );
}

#[test]
fn telemetry_times_the_transfer_not_the_polling() {
    let config = AgentConfig {
        capture_telemetry: true,
        ..AgentConfig::default()
    };
    // Over TCP the transfer runs on worker threads, so the post returns before it ends.
    let a = agent_with("tpa", config, &tcp_params());
    let b = agent_with("tpb", AgentConfig::default(), &tcp_params());
    let (src, dst) = (filled(1 << 20, 1), vec![0u8; 1 << 20]);
    register(&a, &src);
    register(&b, &dst);
    a.load_remote_md(&b.local_md().unwrap()).unwrap();
    let req = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&src), 1 << 20)]),
            &dram(&[(addr(&dst), 1 << 20)]),
            "tpb",
            None,
        )
        .unwrap();
    for _ in 0..3 {
        let posted = a.post_xfer_req(&req, None).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(400));
        while a.xfer_status(&req).unwrap() == Status::InProg {}
        let t = a.xfer_telemetry(&req).unwrap().expect("complete");
        assert!(
            t.xfer_duration_us < 350_000,
            "post said {posted}; {} µs counts the 400 ms before the status was polled",
            t.xfer_duration_us
        );
    }
    assert!(src == dst);
}
