//! Bad input gets a clear error and changes nothing.

mod common;

use common::*;
use nixl_core::testing::metadata::{AgentMetadata, RemoteRegion, Section};
use nixl_core::*;

#[test]
fn plugins_and_backends() {
    let a = Agent::new("p", AgentConfig::default()).unwrap();
    assert!(a.available_plugins().contains(&"UCX".to_string()));
    let (mems, params) = a.plugin_params("UCX").unwrap();
    assert!(mems.contains(&MemType::Dram));
    assert!(params.contains_key("transport"));
    assert_eq!(
        a.plugin_params("NOPE").unwrap_err().status(),
        Status::NotFound
    );
    assert_eq!(
        a.create_backend("NOPE", &Params::new())
            .unwrap_err()
            .status(),
        Status::NotFound
    );
    a.create_backend("UCX", &Params::new()).unwrap();
    assert_eq!(
        a.create_backend("UCX", &Params::new())
            .unwrap_err()
            .status(),
        Status::InvalidParam
    );
    let bad: Params = [("transport".to_string(), "pigeon".to_string())]
        .into_iter()
        .collect();
    let other = Agent::new("q", AgentConfig::default()).unwrap();
    assert_eq!(
        other.create_backend("UCX", &bad).unwrap_err().status(),
        Status::InvalidParam
    );
    assert_eq!(
        Agent::new("", AgentConfig::default()).unwrap_err().status(),
        Status::InvalidParam
    );
}

#[test]
fn registration_errors() {
    let a = agent("r");
    let buf = vec![0u8; 8192];
    let vram = RegDescList::from_descs(MemType::Vram, vec![RegDesc::new(addr(&buf), 8192, 0)]);
    // With the `cuda` feature "UCX" serves VRAM and refuses host memory registered as VRAM
    // (BACKEND, or NOT_SUPPORTED inside it without a GPU); without it no backend serves VRAM.
    let expected = if cfg!(feature = "cuda") {
        Status::Backend
    } else {
        Status::NotFound
    };
    assert_eq!(
        // SAFETY: `buf` outlives the agent (and the call fails anyway).
        unsafe { a.register_mem(&vram, None) }.unwrap_err().status(),
        expected
    );
    let wrap = reg_list(&[(u64::MAX - 10, 100)]);
    assert_eq!(
        // SAFETY: refused before anything is registered.
        unsafe { a.register_mem(&wrap, None) }.unwrap_err().status(),
        Status::InvalidParam
    );
    register(&a, &buf);
    // Deregistration must match exactly; a mismatch deregisters nothing.
    let mixed = reg_list(&[(addr(&buf), 8192), (addr(&buf), 4096)]);
    assert_eq!(
        a.deregister_mem(&mixed, None).unwrap_err().status(),
        Status::NotFound
    );
    a.deregister_mem(&reg_list(&[(addr(&buf), 8192)]), None)
        .unwrap();
    assert_eq!(
        a.deregister_mem(&reg_list(&[(addr(&buf), 8192)]), None)
            .unwrap_err()
            .status(),
        Status::NotFound
    );
}

#[test]
fn descriptor_matching_errors() {
    let a = agent("da");
    let b = agent("db");
    let abuf = vec![1u8; 8192];
    let bbuf = vec![0u8; 8192];
    register(&a, &abuf);
    // Two adjacent registrations in b: a descriptor across the boundary is refused.
    // SAFETY: `bbuf` outlives the agents.
    unsafe {
        b.register_mem(
            &reg_list(&[(addr(&bbuf), 4096), (addr(&bbuf) + 4096, 4096)]),
            None,
        )
    }
    .unwrap();
    a.load_remote_md(&b.local_md().unwrap()).unwrap();
    let req = |l: (u64, u64), r: (u64, u64), agent: &str| {
        a.create_xfer_req(XferOp::Write, &dram(&[l]), &dram(&[r]), agent, None)
    };
    assert_eq!(
        req((addr(&abuf), 100), (addr(&bbuf), 100), "nobody")
            .unwrap_err()
            .status(),
        Status::NotFound
    );
    assert_eq!(
        req((addr(&abuf), 100), (addr(&bbuf) + 4000, 100), "db")
            .unwrap_err()
            .status(),
        Status::NotFound,
        "straddle"
    );
    assert_eq!(
        req((addr(&abuf) + 8000, 300), (addr(&bbuf), 300), "db")
            .unwrap_err()
            .status(),
        Status::NotFound,
        "local overrun"
    );
    assert_eq!(
        req((addr(&abuf), 100), (addr(&bbuf), 99), "db")
            .unwrap_err()
            .status(),
        Status::InvalidParam,
        "length mismatch"
    );
    let two = dram(&[(addr(&abuf), 10), (addr(&abuf) + 10, 10)]);
    assert_eq!(
        a.create_xfer_req(XferOp::Read, &two, &dram(&[(addr(&bbuf), 10)]), "db", None)
            .unwrap_err()
            .status(),
        Status::InvalidParam
    );
    let empty = XferDescList::new(MemType::Dram);
    assert_eq!(
        a.create_xfer_req(XferOp::Read, &empty, &empty, "db", None)
            .unwrap_err()
            .status(),
        Status::InvalidParam
    );
    // Prepped lists: indices are checked.
    let local = a
        .prep_xfer_dlist(None, &dram(&[(addr(&abuf), 4096)]), None)
        .unwrap();
    let remote = a
        .prep_xfer_dlist(Some("db"), &dram(&[(addr(&bbuf), 4096)]), None)
        .unwrap();
    for (l, r) in [
        (&[1][..], &[0][..]),
        (&[0], &[-1]),
        (&[0, 0], &[0]),
        (&[], &[]),
    ] {
        assert_eq!(
            a.make_xfer_req(XferOp::Write, &local, l, &remote, r, None)
                .unwrap_err()
                .status(),
            Status::InvalidParam,
            "{l:?} {r:?}"
        );
    }
    // Swapped roles are refused.
    assert_eq!(
        a.make_xfer_req(XferOp::Write, &remote, &[0], &local, &[0], None)
            .unwrap_err()
            .status(),
        Status::InvalidParam
    );
    assert_eq!(
        a.prep_xfer_dlist(Some("nobody"), &dram(&[(addr(&bbuf), 1)]), None)
            .unwrap_err()
            .status(),
        Status::NotFound
    );
    // Prepping checks every descriptor, also deep inside a long list in address order (the
    // stretch one registration covers is resolved in one pass): one byte past the local
    // registration, or across the two remote ones, is NOT_FOUND and names the descriptor.
    let blocks = |base: u64, n: u64, size: u64| -> Vec<(u64, u64)> {
        (0..n).map(|i| (base + i * size, size)).collect()
    };
    let mut l = blocks(addr(&abuf), 1024, 8);
    l[1023].1 = 9;
    let e = a.prep_xfer_dlist(None, &dram(&l), None).unwrap_err();
    assert_eq!(e.status(), Status::NotFound);
    assert!(e.message().contains(&l[1023].0.to_string()), "{e}");
    let mut r = blocks(addr(&bbuf), 1024, 8);
    r[511] = (addr(&bbuf) + 4090, 8);
    assert_eq!(
        a.prep_xfer_dlist(Some("db"), &dram(&r), None)
            .unwrap_err()
            .status(),
        Status::NotFound,
        "straddles b's two registrations"
    );
    r[511] = (addr(&bbuf) + 4088, 8);
    let both = a.prep_xfer_dlist(Some("db"), &dram(&r), None).unwrap();
    assert_eq!(
        both.len(),
        1024,
        "a list over two adjacent registrations preps"
    );
    assert!(bbuf.iter().all(|&x| x == 0), "nothing was written");
}

/// A metadata blob naming `target`'s real connection info but a region with a forged key.
fn forged_md(target: &Agent, name: &str, region: u64, len: u64) -> Vec<u8> {
    let real = AgentMetadata::decode(&target.local_md().unwrap()).unwrap();
    AgentMetadata {
        name: name.into(),
        partial: false,
        conns: real.conns,
        sections: vec![Section {
            backend: "UCX".into(),
            mem_type: MemType::Dram,
            regions: vec![RemoteRegion {
                desc: Desc::new(region, len, 0),
                key: 0x5eed,
                public: Vec::new(),
            }],
        }],
    }
    .encode()
}

fn forged_keys_are_refused_by_the_target(params: &Params) {
    let a = agent_with("fa", AgentConfig::default(), params);
    let b = agent_with("fb", AgentConfig::default(), params);
    let abuf = vec![0xeeu8; 4096];
    let secret = vec![0u8; 4096];
    register(&a, &abuf);
    register(&b, &secret);
    a.load_remote_md(&forged_md(&b, "fb", addr(&secret), 4096))
        .unwrap();
    let req = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&abuf), 4096)]),
            &dram(&[(addr(&secret), 4096)]),
            "fb",
            None,
        )
        .unwrap();
    let err = run(&a, &req).unwrap_err();
    assert_eq!(err.status(), Status::NotAllowed, "{err}");
    assert!(
        secret.iter().all(|&x| x == 0),
        "the target's memory was touched"
    );
    let read = a
        .create_xfer_req(
            XferOp::Read,
            &dram(&[(addr(&abuf), 4096)]),
            &dram(&[(addr(&secret), 4096)]),
            "fb",
            None,
        )
        .unwrap();
    assert_eq!(run(&a, &read).unwrap_err().status(), Status::NotAllowed);
}

#[test]
fn forged_keys_are_refused_same_process() {
    forged_keys_are_refused_by_the_target(&Params::new());
}

#[test]
fn forged_keys_are_refused_over_tcp() {
    forged_keys_are_refused_by_the_target(&tcp_params());
}

#[test]
fn deregistered_target_memory_is_refused_even_with_old_metadata() {
    for params in [Params::new(), tcp_params()] {
        let a = agent_with("oa", AgentConfig::default(), &params);
        let b = agent_with("ob", AgentConfig::default(), &params);
        let abuf = vec![0x11u8; 4096];
        let bbuf = vec![0u8; 4096];
        register(&a, &abuf);
        register(&b, &bbuf);
        a.load_remote_md(&b.local_md().unwrap()).unwrap();
        b.deregister_mem(&reg_list(&[(addr(&bbuf), 4096)]), None)
            .unwrap();
        let req = a
            .create_xfer_req(
                XferOp::Write,
                &dram(&[(addr(&abuf), 4096)]),
                &dram(&[(addr(&bbuf), 4096)]),
                "ob",
                None,
            )
            .unwrap();
        assert_eq!(run(&a, &req).unwrap_err().status(), Status::NotAllowed);
        assert!(bbuf.iter().all(|&x| x == 0));
    }
}

#[test]
fn deregistering_local_memory_invalidates_prepared_requests() {
    let a = agent("la");
    let b = agent("lb");
    let abuf = vec![1u8; 4096];
    let bbuf = vec![0u8; 4096];
    register(&a, &abuf);
    register(&b, &bbuf);
    a.load_remote_md(&b.local_md().unwrap()).unwrap();
    let req = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&abuf), 4096)]),
            &dram(&[(addr(&bbuf), 4096)]),
            "lb",
            None,
        )
        .unwrap();
    a.deregister_mem(&reg_list(&[(addr(&abuf), 4096)]), None)
        .unwrap();
    assert_eq!(
        a.post_xfer_req(&req, None).unwrap_err().status(),
        Status::NotFound
    );
    assert!(bbuf.iter().all(|&x| x == 0));
    // Registering the same range again makes a new registration; the old request stays refused.
    register(&a, &abuf);
    assert_eq!(
        a.post_xfer_req(&req, None).unwrap_err().status(),
        Status::NotFound
    );
}

#[test]
fn garbage_metadata_is_an_error() {
    let a = agent("ga");
    let b = agent("gb");
    let good = b.local_md().unwrap();
    assert!(a.load_remote_md(&[]).is_err());
    assert!(a.load_remote_md(b"nixlSerDes|Agent").is_err());
    for cut in 0..good.len() {
        assert!(
            a.load_remote_md(&good[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    // Random bytes (deterministic xorshift), and single-byte corruptions of a real blob.
    let mut rng = test_support::XorShift::new(0x1234_5678_9abc_def0);
    let mut x = 0;
    for round in 0..2000 {
        let len = (round % 300) + 1;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x = rng.next();
                x as u8
            })
            .collect();
        let _ = a.load_remote_md(&bytes);
        let mut corrupt = good.clone();
        corrupt[round % good.len()] ^= x as u8 | 1;
        let _ = a.load_remote_md(&corrupt);
    }
    // A corrupted byte inside a field (a port, a key) can still make a well-formed blob, which
    // then occupies the name; after invalidating it, the good blob loads.
    let _ = a.invalidate_remote_md("gb");
    assert_eq!(a.load_remote_md(&good).unwrap(), "gb");
}
