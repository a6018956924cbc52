//! What Prometheus metrics add to a request, through nixl-core's Rust API: the life cycle
//! nixlbench's points run (a request made once from prepped lists, then posted and polled to
//! completion again and again), with metrics off and on back to back in one process.
//!
//! The "off" agents are made before the process's endpoint starts (agents made while it runs
//! record, see `nixl_core::metrics`), the "on" agents after, with `capture_telemetry` as
//! `NIXL_TELEMETRY_ENABLE=y` sets it. Each group benches `off` then `on`. Cases: one 4 KiB
//! WRITE and 64 × 4 KiB to shuffled remote blocks between two agents in this process (the
//! same-process transport), one 4 KiB WRITE over the net backend (TCP over loopback), making and
//! releasing one 4 KiB WRITE (never posted), the whole life cycle (make, post, complete, release)
//! of one 4 KiB WRITE, and one 4 KiB WRITE while a
//! thread scrapes the endpoint every 50 ms (during both sides).
//!
//! `cargo bench -p nixl-benches --bench metrics` (benches/scripts/metrics-cost.sh runs it and
//! summarises criterion's estimates).
// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use nixl_benches::buffer::{Buffer, Segment};
use nixl_core::{
    Agent, AgentConfig, Desc, MemType, Params, PreppedDlist, RegDesc, RegDescList, Status,
    XferDescList, XferOp, XferRequest,
};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const BLOCK: usize = 4 << 10;
const MANY: usize = 64;
const SCRAPE_EVERY: Duration = Duration::from_millis(50);

fn register(agent: &Agent, buf: &Buffer) {
    let reg = RegDescList::from_descs(
        MemType::Dram,
        vec![RegDesc::new(buf.addr() as u64, buf.len() as u64, 0)],
    );
    // SAFETY: every buffer outlives its agent (a `Pair` drops its agents first).
    unsafe { agent.register_mem(&reg, None) }.expect("register");
}

/// Two agents in this process (initiator and target) and the initiator's prepped lists of
/// `MANY` blocks on each side.
struct Pair {
    init: Agent,
    _target: Agent,
    local: PreppedDlist,
    remote: PreppedDlist,
    _bufs: (Buffer, Buffer),
}

impl Pair {
    fn new(tag: &str, tcp: bool, metrics: bool) -> Pair {
        let config = AgentConfig {
            capture_telemetry: metrics,
            ..AgentConfig::default()
        };
        let mut params = Params::new();
        if tcp {
            params.insert("transport".into(), "tcp".into());
        }
        let (iname, tname) = (format!("mcost-{tag}-init"), format!("mcost-{tag}-target"));
        let init = Agent::new(&iname, config.clone()).expect("agent");
        let target = Agent::new(&tname, config).expect("agent");
        let bufs = (
            Buffer::new(MANY * BLOCK, Segment::Malloc),
            Buffer::new(MANY * BLOCK, Segment::Malloc),
        );
        for (a, b) in [(&init, &bufs.0), (&target, &bufs.1)] {
            a.create_backend("UCX", &params).expect("backend");
            register(a, b);
        }
        init.load_remote_md(&target.local_md().expect("md"))
            .expect("load");
        target
            .load_remote_md(&init.local_md().expect("md"))
            .expect("load");
        assert_eq!(
            init.metrics_port().is_some(),
            metrics,
            "{iname}: metrics should be {}",
            if metrics { "on" } else { "off" }
        );
        let list = |b: &Buffer| {
            XferDescList::from_descs(
                MemType::Dram,
                (0..MANY)
                    .map(|i| Desc::new((b.addr() + i * BLOCK) as u64, BLOCK as u64, 0))
                    .collect(),
            )
        };
        let local = init
            .prep_xfer_dlist(None, &list(&bufs.0), None)
            .expect("prep");
        let remote = init
            .prep_xfer_dlist(Some(&tname), &list(&bufs.1), None)
            .expect("prep");
        let pair = Pair {
            init,
            _target: target,
            local,
            remote,
            _bufs: bufs,
        };
        // One request per pair whatever criterion's filter runs, for the check at the end.
        let req = pair.request(1);
        run(&pair.init, &req);
        pair.init.release_xfer_req(req).expect("release");
        pair
    }

    /// A WRITE of the first `n` local blocks to `n` remote blocks in shuffled order.
    fn request(&self, n: usize) -> XferRequest {
        let (li, ri) = indices(n);
        self.make(&li, &ri)
    }

    /// A WRITE from the local blocks `li` to the remote blocks `ri`.
    fn make(&self, li: &[i32], ri: &[i32]) -> XferRequest {
        self.init
            .make_xfer_req(XferOp::Write, &self.local, li, &self.remote, ri, None)
            .expect("make")
    }
}

/// The first `n` local block indices and `n` remote ones in shuffled order.
fn indices(n: usize) -> (Vec<i32>, Vec<i32>) {
    let li = (0..n as i32).collect();
    let ri = nixl_benches::shuffled(n, 7)
        .into_iter()
        .map(|x| x as i32)
        .collect();
    (li, ri)
}

/// Posts `req` and polls it to completion, as nixlbench's timed loop does.
fn run(a: &Agent, req: &XferRequest) {
    let mut st = a.post_xfer_req(req, None).expect("post");
    while st == Status::InProg {
        std::hint::spin_loop();
        st = a.xfer_status(req).expect("status");
    }
    assert_eq!(st, Status::Success);
}

/// Benches re-posting one request of `n` blocks on the off pair, then on the on pair.
fn repost(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    pairs: [&Pair; 2],
    n: usize,
) {
    for (label, p) in ["off", "on"].into_iter().zip(pairs) {
        let req = p.request(n);
        g.bench_function(label, |b| b.iter(|| run(&p.init, &req)));
        p.init.release_xfer_req(req).expect("release");
    }
}

/// A thread that GETs `/metrics` every `SCRAPE_EVERY` until dropped; counts good answers.
struct Scraper {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scraper {
    fn start(port: u16) -> Scraper {
        let (stop, answered) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (s, n) = (stop.clone(), answered.clone());
        let thread = std::thread::spawn(move || {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            while !s.load(Ordering::Relaxed) {
                if scrape(addr).is_some_and(|body| body.contains("agent_tx_bytes_total")) {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(SCRAPE_EVERY);
            }
        });
        Scraper {
            stop,
            answered,
            thread: Some(thread),
        }
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn scrape(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

fn metrics_cost(c: &mut Criterion) {
    // Off first: the endpoint does not run yet.
    let off = Pair::new("off", false, false);
    let off_tcp = Pair::new("off-tcp", true, false);
    let port = nixl_core::metrics::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .expect("metrics endpoint");
    let on = Pair::new("on", false, true);
    let on_tcp = Pair::new("on-tcp", true, true);
    eprintln!("metrics endpoint: http://127.0.0.1:{port}/metrics");

    let mut g = c.benchmark_group("metrics_same_process_4k_repost");
    repost(&mut g, [&off, &on], 1);
    g.finish();

    let mut g = c.benchmark_group("metrics_same_process_64x4k_repost");
    repost(&mut g, [&off, &on], MANY);
    g.finish();

    let mut g = c.benchmark_group("metrics_tcp_4k_repost");
    repost(&mut g, [&off_tcp, &on_tcp], 1);
    g.finish();

    // Making alone: what metrics add when a request is made (its handles fetched).
    let mut g = c.benchmark_group("metrics_same_process_4k_make_release");
    let (li, ri) = indices(1);
    for (label, p) in ["off", "on"].into_iter().zip([&off, &on]) {
        g.bench_function(label, |b| {
            b.iter(|| p.init.release_xfer_req(p.make(&li, &ri)).expect("release"))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("metrics_same_process_4k_make_post_release");
    for (label, p) in ["off", "on"].into_iter().zip([&off, &on]) {
        g.bench_function(label, |b| {
            b.iter(|| {
                let req = p.request(1);
                run(&p.init, &req);
                p.init.release_xfer_req(req).expect("release");
            })
        });
    }
    g.finish();

    let scraper = Scraper::start(port);
    let mut g = c.benchmark_group("metrics_same_process_4k_repost_scraped");
    repost(&mut g, [&off, &on], 1);
    g.finish();
    let answered = scraper.answered.load(Ordering::Relaxed);
    drop(scraper);
    eprintln!("scrapes answered during the scraped group: {answered}");

    // The on agents recorded and the off agents did not: the A/B compared what it says.
    let text = nixl_core::metrics::encode().expect("encode");
    let series = |agent: &str| {
        text.lines()
            .filter(|l| {
                l.starts_with("agent_tx_requests_num_total{")
                    && l.contains(&format!("agent_name=\"{agent}\""))
            })
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    for agent in ["mcost-on-init", "mcost-on-tcp-init"] {
        let lines = series(agent);
        assert!(!lines.is_empty(), "{agent} recorded no requests");
        for l in lines {
            eprintln!("{l}");
        }
    }
    for agent in ["mcost-off-init", "mcost-off-tcp-init"] {
        assert!(
            series(agent).is_empty(),
            "{agent} recorded with metrics off"
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = metrics_cost
}
criterion_main!(benches);
