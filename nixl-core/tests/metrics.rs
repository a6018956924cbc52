//! Prometheus metrics: two agents move bytes, the endpoint is scraped over HTTP, and the
//! counters must equal what moved; the exposition must parse (and pass `promtool` if present).

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::peer::Peer;
use common::*;
use nixl_core::*;

/// Bytes each `nixl-peer` child registers.
const PEER_BYTES: usize = 4 << 20;

/// GETs `path` from the local endpoint (HTTP/1.0: never a chunked answer): (status line, body).
fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// One sample: name, labels, value.
type Sample = (String, HashMap<String, String>, f64);

/// Parses the text exposition, failing on any malformed line, a sample of an undeclared
/// family, or a missing `# EOF`.
fn parse(text: &str) -> Vec<Sample> {
    let mut families: Vec<String> = Vec::new();
    let mut samples = Vec::new();
    let mut eof = false;
    for line in text.lines() {
        assert!(!eof, "content after # EOF: {line}");
        if line == "# EOF" {
            eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            families.push(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        let labels: HashMap<String, String> = labels
            .split("\",")
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label in {line:?}"));
                (k.to_owned(), v.trim_end_matches('"').to_owned())
            })
            .collect();
        assert!(
            families.iter().any(|f| name.starts_with(f.as_str())),
            "sample {name} has no # TYPE"
        );
        samples.push((name.to_owned(), labels, value));
    }
    assert!(eof, "the exposition must end with # EOF");
    samples
}

/// The sum of `name` over samples whose labels include all of `want`.
fn sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

#[test]
fn counters_equal_the_bytes_moved() {
    let port = metrics::start(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    assert_ne!(port, 0);
    assert_eq!(metrics::exporter_port(), Some(port));
    // A second start reports the running endpoint instead of fighting over a port.
    assert_eq!(
        metrics::start(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap(),
        port
    );

    let a = agent("metrics-a");
    let b = agent("metrics-b");
    assert_eq!(a.metrics_port(), Some(port));
    let src = filled(1 << 16, 1);
    let dst = vec![0u8; 1 << 16];
    register(&a, &src);
    register(&b, &dst);
    a.load_remote_md(&b.local_md().unwrap()).unwrap();

    let (writes, w_len, reads, r_len) = (3u64, 4096u64, 2u64, 8192u64);
    let wreq = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&src), w_len)]),
            &dram(&[(addr(&dst), w_len)]),
            "metrics-b",
            None,
        )
        .unwrap();
    for _ in 0..writes {
        assert_eq!(run(&a, &wreq).unwrap(), Status::Success);
    }
    let rreq = a
        .create_xfer_req(
            XferOp::Read,
            &dram(&[(addr(&src), r_len)]),
            &dram(&[(addr(&dst), r_len)]),
            "metrics-b",
            None,
        )
        .unwrap();
    for _ in 0..reads {
        assert_eq!(run(&a, &rreq).unwrap(), Status::Success);
    }
    assert_eq!(&dst[..w_len as usize], &src[..w_len as usize]);

    let (status, body) = http_get(port, "/metrics");
    assert!(status.contains(" 200 "), "{status}");
    let s = parse(&body);
    let me = [
        ("agent_name", "metrics-a"),
        ("peer", "metrics-b"),
        ("backend", "UCX"),
        ("transport", "same-process"),
        ("mem_type", "DRAM"),
        ("remote_mem_type", "DRAM"),
    ];
    let with = |op: &'static str| {
        let mut v = me.to_vec();
        v.push(("op", op));
        v
    };
    assert_eq!(
        sum(&s, "agent_tx_bytes_total", &with("WRITE")),
        (writes * w_len) as f64
    );
    assert_eq!(
        sum(&s, "agent_tx_requests_num_total", &with("WRITE")),
        writes as f64
    );
    assert_eq!(
        sum(&s, "agent_rx_bytes_total", &with("READ")),
        (reads * r_len) as f64
    );
    assert_eq!(
        sum(&s, "agent_rx_requests_num_total", &with("READ")),
        reads as f64
    );
    assert_eq!(
        sum(&s, "agent_xfer_time_us_count", &me),
        (writes + reads) as f64
    );
    assert_eq!(
        sum(&s, "agent_xfer_post_time_us_count", &me),
        (writes + reads) as f64
    );
    let mut inf = me.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(
        sum(&s, "agent_xfer_time_us_bucket", &inf),
        (writes + reads) as f64
    );
    assert_eq!(sum(&s, "agent_xfer_in_flight", &me), 0.0);
    let a_only = [("agent_name", "metrics-a")];
    assert_eq!(
        sum(&s, "agent_memory_registered_total", &a_only),
        src.len() as f64
    );
    // NIXL's labels are there for existing dashboards.
    let tx = s
        .iter()
        .find(|(n, l, _)| n == "agent_tx_bytes_total" && l["agent_name"] == "metrics-a")
        .unwrap();
    for label in ["hostname", "category", "transport"] {
        assert!(tx.1.contains_key(label), "missing label {label}");
    }

    // A failed post is counted by status; deregistration is counted too.
    a.invalidate_remote_md("metrics-b").unwrap();
    assert_eq!(
        a.post_xfer_req(&wreq, None).unwrap_err().status(),
        Status::NotFound
    );
    b.deregister_mem(&reg_list(&[(addr(&dst), dst.len() as u64)]), None)
        .unwrap();
    let s = parse(&http_get(port, "/metrics").1);
    assert_eq!(
        sum(
            &s,
            "agent_memory_deregistered_total",
            &[("agent_name", "metrics-b")]
        ),
        dst.len() as f64
    );
    assert_eq!(
        sum(
            &s,
            "agent_errors_total",
            &[
                ("agent_name", "metrics-a"),
                ("status", "NIXL_ERR_NOT_FOUND")
            ]
        ),
        1.0
    );

    assert!(http_get(port, "/nope").0.contains(" 404 "));
    promtool_check(&body);
}

#[test]
fn transports_and_peer_series() {
    let port = metrics::start(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let scrape = || parse(&http_get(port, "/metrics").1);

    // TCP, forced by the initiator's parameter: why, connections, notification time.
    let c = agent_with("metrics-c", AgentConfig::default(), &tcp_params());
    let d = agent("metrics-d");
    let src = filled(1 << 16, 2);
    let dst = vec![0u8; 1 << 16];
    register(&c, &src);
    register(&d, &dst);
    c.load_remote_md(&d.local_md().unwrap()).unwrap();
    let req = c
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&src), 4096)]),
            &dram(&[(addr(&dst), 4096)]),
            "metrics-d",
            Some(&OptArgs::with_notif("written")),
        )
        .unwrap();
    assert_eq!(run(&c, &req).unwrap(), Status::Success);
    wait_notifs(&d, 1);
    assert_eq!(&dst[..4096], &src[..4096]);
    let s = scrape();
    let c_d = [("agent_name", "metrics-c"), ("peer", "metrics-d")];
    let and = |extra: &[(&'static str, &'static str)]| {
        let mut v = c_d.to_vec();
        v.extend_from_slice(extra);
        v
    };
    assert_eq!(
        sum(
            &s,
            "agent_tx_bytes_total",
            &and(&[("transport", "tcp"), ("mem_type", "DRAM")])
        ),
        4096.0
    );
    assert_eq!(
        sum(
            &s,
            "agent_peer_transport",
            &and(&[("transport", "tcp"), ("reason", "forced")])
        ),
        1.0
    );
    assert_eq!(sum(&s, "agent_notif_send_time_us_count", &c_d), 1.0);
    let state = |s: &[Sample], agent: &'static str, name: &str, state: &'static str| {
        sum(s, name, &[("agent_name", agent), ("state", state)])
    };
    assert_eq!(
        state(&s, "metrics-c", "agent_connections", "idle"),
        1.0,
        "the connection went back to the pool"
    );
    assert_eq!(state(&s, "metrics-c", "agent_connections", "busy"), 0.0);
    assert_eq!(state(&s, "metrics-c", "agent_peers", "connected"), 1.0);

    // Loading the peer again counts a reconnect; the old handle's pool is gone.
    drop(req);
    c.invalidate_remote_md("metrics-d").unwrap();
    c.load_remote_md(&d.local_md().unwrap()).unwrap();
    let s = scrape();
    assert_eq!(sum(&s, "agent_peer_reconnects_total", &c_d), 1.0);
    assert_eq!(state(&s, "metrics-c", "agent_peers", "connected"), 1.0);
    assert_eq!(state(&s, "metrics-c", "agent_connections", "idle"), 0.0);

    // Another process on this host: cross-memory attach for a plain buffer, the shared
    // mapping for a memfd one.
    for (env, want) in [(&[][..], "cma"), (&[("NIXL_PEER_SHARED", "1")][..], "shm")] {
        let peer_name = format!("metrics-peer-{want}");
        let me_name = format!("metrics-me-{want}");
        let peer = Peer::spawn(&peer_name, PEER_BYTES, 4, env, false);
        let me = agent(&me_name);
        assert_eq!(me.load_remote_md(&peer.md).unwrap(), peer_name);
        let buf = vec![0u8; 8192];
        register(&me, &buf);
        let req = me
            .create_xfer_req(
                XferOp::Read,
                &dram(&[(addr(&buf), 8192)]),
                &dram(&[(peer.addr, 8192)]),
                &peer_name,
                None,
            )
            .unwrap();
        assert_eq!(run(&me, &req).unwrap(), Status::Success);
        let s = scrape();
        let mine = [
            ("agent_name", me_name.as_str()),
            ("peer", peer_name.as_str()),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut v = mine.to_vec();
            v.push(extra);
            v
        };
        assert_eq!(
            sum(&s, "agent_rx_bytes_total", &with(("transport", want))),
            8192.0,
            "a READ from a {want} peer"
        );
        assert_eq!(
            sum(&s, "agent_peer_transport", &with(("reason", "same-host"))),
            1.0
        );
    }
    promtool_check(&http_get(port, "/metrics").1);
}

#[test]
fn a_reloaded_peer_counts_on_the_same_series() {
    let port = metrics::start(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let (e, f) = (agent("metrics-e"), agent("metrics-f"));
    let src = filled(1 << 16, 3);
    let dst = vec![0u8; 1 << 16];
    register(&e, &src);
    register(&f, &dst);
    let write = |len: u64| {
        let req = e
            .create_xfer_req(
                XferOp::Write,
                &dram(&[(addr(&src), len)]),
                &dram(&[(addr(&dst), len)]),
                "metrics-f",
                None,
            )
            .unwrap();
        assert_eq!(run(&e, &req).unwrap(), Status::Success);
    };
    e.load_remote_md(&f.local_md().unwrap()).unwrap();
    write(4096);
    // A request made before the reload is released after it: it updates the old entry's set.
    let old = e
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&src), 512)]),
            &dram(&[(addr(&dst), 512)]),
            "metrics-f",
            None,
        )
        .unwrap();
    assert_eq!(run(&e, &old).unwrap(), Status::Success);
    e.invalidate_remote_md("metrics-f").unwrap();
    e.load_remote_md(&f.local_md().unwrap()).unwrap();
    write(1024);
    drop(old);
    write(2048);

    let s = parse(&http_get(port, "/metrics").1);
    let mine = [("agent_name", "metrics-e"), ("peer", "metrics-f")];
    let series = s
        .iter()
        .filter(|(n, l, _)| n == "agent_tx_bytes_total" && mine.iter().all(|(k, v)| l[*k] == *v))
        .count();
    assert_eq!(series, 1, "both incarnations land on one series");
    assert_eq!(
        sum(&s, "agent_tx_bytes_total", &mine),
        4096.0 + 512.0 + 1024.0 + 2048.0
    );
    assert_eq!(sum(&s, "agent_tx_requests_num_total", &mine), 4.0);
    assert_eq!(sum(&s, "agent_xfer_in_flight", &mine), 0.0);
}

#[test]
fn a_frozen_peer_counts_a_timeout() {
    let port = metrics::start(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let config = AgentConfig {
        peer_timeout: std::time::Duration::from_secs(1),
        ..AgentConfig::default()
    };
    let me = agent_with("metrics-thaw", config, &tcp_params());
    let peer = Peer::spawn(
        "metrics-frozen",
        PEER_BYTES,
        1,
        &[("NIXL_RS_TRANSPORT", "tcp")],
        false,
    );
    me.load_remote_md(&peer.md).unwrap();
    let big = vec![7u8; PEER_BYTES];
    register(&me, &big);
    let write = |len: usize| {
        let req = me
            .create_xfer_req(
                XferOp::Write,
                &dram(&[(addr(&big), len as u64)]),
                &dram(&[(peer.addr, len as u64)]),
                "metrics-frozen",
                None,
            )
            .unwrap();
        run(&me, &req)
    };
    assert_eq!(write(4096).unwrap(), Status::Success);
    peer.freeze();
    let err = write(big.len()).unwrap_err();
    peer.thaw();
    assert_eq!(err.status(), Status::RemoteDisconnect, "{err}");
    let s = parse(&http_get(port, "/metrics").1);
    let mine = [("agent_name", "metrics-thaw"), ("peer", "metrics-frozen")];
    assert_eq!(sum(&s, "agent_peer_timeouts_total", &mine), 1.0, "{err}");
    // Found gone, and dropped with the request that found it: counted in neither state.
    for state in ["connected", "disconnected"] {
        assert_eq!(
            sum(
                &s,
                "agent_peers",
                &[("agent_name", "metrics-thaw"), ("state", state)]
            ),
            0.0,
            "{state}"
        );
    }
}

/// `promtool check metrics` on the exposition, when Prometheus's tools are installed: no parse
/// error, and no lint finding but NIXL's histogram names ending in `_us`, kept for its
/// dashboards.
fn promtool_check(body: &str) {
    let Some(findings) = test_support::promtool_findings(body) else {
        test_support::skip(
            "prometheus",
            "promtool check metrics (promtool not installed; Debian package prometheus)",
        );
        return;
    };
    for line in &findings {
        let nixl_unit = line.ends_with("_us metric names should not contain abbreviated units");
        assert!(nixl_unit, "promtool check metrics: {line}\n{findings:?}");
    }
}
