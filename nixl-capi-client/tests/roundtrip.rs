//! Runs the binding against real NIXL and against our `libnixl_capi.so`
//! when present. A library that is absent is reported as "skipped: ..." (a failure when
//! `NIXL_RS_REQUIRE` names `nixl-real` or `nixl-ours`; CI names both).
//!
//! Real NIXL's library comes from `NIXL_REAL_LIB`: its `libnixl_capi.so`, or the folder
//! holding it, as printed by `bash .ci/real-nixl.sh`.

// The nixl-ffi implementation, linked in for builds where the `linked` feature is on.
use nixl_ffi as _;

use nixl_capi_client::*;
use std::path::PathBuf;
use std::sync::Arc;

fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: set once before any library is loaded or thread reads it.
        unsafe { std::env::set_var("UCX_MODULES", "^ib*") };
    });
}

/// `(label, path)` of every library to test; missing ones print a skip line.
fn libraries() -> Vec<(&'static str, PathBuf)> {
    setup();
    let mut out = Vec::new();
    let real = std::env::var_os("NIXL_REAL_LIB").map(|p| {
        let p = PathBuf::from(p);
        if p.is_dir() {
            p.join("libnixl_capi.so")
        } else {
            p
        }
    });
    match real {
        Some(p) if p.is_file() => out.push(("real NIXL", p)),
        Some(p) => test_support::skip(
            "nixl-real",
            &format!("real NIXL: no {} (NIXL_REAL_LIB)", p.display()),
        ),
        None => test_support::skip(
            "nixl-real",
            "real NIXL: NIXL_REAL_LIB is not set (set it to the folder `bash .ci/real-nixl.sh` prints)",
        ),
    }
    let ours = lib_from_env().or_else(|| {
        // The one cargo built for this test run (nixl-ffi is a dev-dependency) lies beside the
        // test binary, in `deps/`; else the last `cargo build`'s.
        let deps = std::env::current_exe()
            .ok()?
            .parent()?
            .join("libnixl_capi.so");
        let t = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| PathBuf::from("../target"), PathBuf::from);
        std::iter::once(deps)
            .chain(["release", "debug"].map(|p| t.join(p).join("libnixl_capi.so")))
            .find(|p| p.exists())
    });
    match ours {
        Some(p) if p.exists() => out.push(("ours", p)),
        _ => test_support::skip(
            "nixl-ours",
            "our libnixl_capi.so not built (cargo build --release -p nixl-ffi, or set NIXL_CAPI_LIB)",
        ),
    }
    out
}

fn buf_list(api: &Arc<Api>, bufs: &[Vec<u8>]) -> XferList {
    XferList::from_descs(
        api,
        MemType::Dram,
        bufs.iter().map(|b| (b.as_ptr() as usize, b.len(), 0)),
    )
    .unwrap()
}

fn register(agent: &Agent, api: &Arc<Api>, bufs: &[Vec<u8>]) -> RegList {
    let mut reg = RegList::new(api, MemType::Dram).unwrap();
    for b in bufs {
        reg.add(b.as_ptr() as usize, b.len(), 0, &[]).unwrap();
    }
    agent.register(&reg, None).unwrap();
    reg
}

fn roundtrip(label: &str, path: &PathBuf) {
    let api = Arc::new(Api::load(path).unwrap_or_else(|e| panic!("{label}: {e}")));
    let a = Agent::with_config(&api, "capi-a", &AgentConfig::default()).unwrap();
    let b = Agent::with_config(&api, "capi-b", &AgentConfig::default()).unwrap();
    let plugins = a.available_plugins().unwrap();
    assert!(
        plugins.iter().any(|p| p == "UCX"),
        "{label}: plugins {plugins:?}"
    );
    let _ = a.plugin_params("UCX").unwrap();
    let _ba = a.create_backend("UCX", &[]).unwrap();
    let _bb = b.create_backend("UCX", &[]).unwrap();

    let n = 8;
    let src: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8 + 1; 4096]).collect();
    let dst: Vec<Vec<u8>> = (0..n).map(|_| vec![0u8; 4096]).collect();
    let ra = register(&a, &api, &src);
    let rb = register(&b, &api, &dst);

    // Garbage metadata is an error carrying a code, not a crash.
    let err = a.load_remote_md(b"not metadata").unwrap_err();
    assert!(err.code < 0, "{label}: {err}");
    assert!(!a.check_remote_md("capi-b", None).unwrap());
    let name = a.load_remote_md(&b.local_md().unwrap()).unwrap();
    assert_eq!(name, "capi-b");
    assert_eq!(b.load_remote_md(&a.local_md().unwrap()).unwrap(), "capi-a");
    assert!(a.check_remote_md("capi-b", None).unwrap());

    // Prepped WRITE a -> b in shuffled order, with a notification.
    let local = a.prep_local(&buf_list(&api, &src)).unwrap();
    let remote = a
        .prep_xfer_dlist("capi-b", &buf_list(&api, &dst), None)
        .unwrap();
    assert_eq!(remote.len(), n);
    let perm: Vec<i32> = vec![3, 0, 7, 5, 1, 6, 2, 4];
    let idx: Vec<i32> = (0..n as i32).collect();
    let mut opt = OptArgs::new(&api).unwrap();
    opt.notif(b"done-1").unwrap();
    let mut req = a
        .make_xfer_req(XferOp::Write, &local, &idx, &remote, &perm, Some(&opt))
        .unwrap();
    req.run(None).unwrap();
    for (i, &p) in perm.iter().enumerate() {
        assert_eq!(dst[p as usize][0], i as u8 + 1, "{label}: block {i}");
        assert!(dst[p as usize].iter().all(|&x| x == i as u8 + 1));
    }
    let mut map = NotifMap::new(&api).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while map.from_agent("capi-a").unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{label}: no notification"
        );
        b.get_notifs(&mut map, None).unwrap();
    }
    assert_eq!(map.from_agent("capi-a").unwrap(), vec![b"done-1".to_vec()]);
    map.clear().unwrap();
    drop(req);

    // Ad-hoc READ b -> a of one block.
    let back = vec![vec![0u8; 4096]];
    let rback = register(&a, &api, &back);
    let l = buf_list(&api, &back);
    let r =
        XferList::from_descs(&api, MemType::Dram, [(dst[3].as_ptr() as usize, 4096, 0)]).unwrap();
    let mut rd = a
        .create_xfer_req(XferOp::Read, &l, &r, "capi-b", None)
        .unwrap();
    rd.run(None).unwrap();
    assert_eq!(back[0], dst[3]);
    drop(rd);

    // Out-of-range index is refused with an error code.
    assert!(
        a.make_xfer_req(XferOp::Write, &local, &[0], &remote, &[99], None)
            .is_err()
    );

    // gen_notif round trip.
    a.gen_notif("capi-b", b"hello", None).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while map.from_agent("capi-a").unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{label}: no gen_notif"
        );
        b.get_notifs(&mut map, None).unwrap();
    }
    assert_eq!(map.from_agent("capi-a").unwrap(), vec![b"hello".to_vec()]);

    drop((local, remote));
    a.invalidate_remote_md("capi-b").unwrap();
    assert!(!a.check_remote_md("capi-b", None).unwrap());
    a.deregister(&ra, None).unwrap();
    a.deregister(&rback, None).unwrap();
    b.deregister(&rb, None).unwrap();
    println!("{label}: ok ({})", path.display());
}

#[test]
fn roundtrip_on_every_available_library() {
    let libs = libraries();
    for (label, path) in &libs {
        roundtrip(label, path);
    }
}

#[test]
fn missing_library_is_a_load_error() {
    let err = Api::load("/nonexistent/libnixl_capi.so").unwrap_err();
    assert!(err.to_string().contains("/nonexistent"));
}

#[cfg(feature = "linked")]
#[test]
fn roundtrip_on_linked_nixl_ffi() {
    setup();
    let api = Arc::new(Api::linked());
    let a = Agent::with_config(&api, "linked-a", &AgentConfig::default()).unwrap();
    // Metadata needs a backend peers can reach (NIXL: INVALID_PARAM without one).
    assert!(a.local_md().is_err());
    let _backend = a.create_backend("UCX", &[]).unwrap();
    let md = a.local_md().unwrap();
    assert!(!md.is_empty());
    println!(
        "linked nixl-ffi: agent and metadata ok ({} bytes)",
        md.len()
    );
}

/// `Api::start_metrics`: ours serves `/metrics` on the port it reports (port 0 asked); real
/// NIXL lacks the extension, so the binding says `None` and calls nothing.
#[test]
fn start_metrics_through_the_extension_where_there_is_one() {
    use std::io::{Read, Write};
    for (label, path) in &libraries() {
        let api = Api::load(path).unwrap();
        match (*label, api.start_metrics(0, true)) {
            ("real NIXL", None) => {}
            ("ours", Some(Ok(port))) => {
                assert_ne!(port, 0);
                let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                write!(s, "GET /metrics HTTP/1.0\r\n\r\n").unwrap();
                let mut answer = String::new();
                s.read_to_string(&mut answer).unwrap();
                assert!(
                    answer.starts_with("HTTP/1.") && answer.contains(" 200 "),
                    "{answer}"
                );
                assert!(answer.ends_with("# EOF\n"), "{answer}");
                // Started once: asked again, the same port.
                assert_eq!(api.start_metrics(0, true).unwrap().unwrap(), port);
            }
            (label, other) => panic!("{label}: start_metrics gave {other:?}"),
        }
    }
}
