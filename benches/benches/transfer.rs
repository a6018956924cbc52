//! Transfers through nixl-core's Rust API: same process, same host (two
//! processes, cross-memory attach) and forced TCP, across descriptor sizes.
//! Every request moves 16 MiB to remote blocks in a shuffled order.
//!
//! `cargo bench -p nixl-benches --bench transfer`
// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nixl_benches::buffer::{Buffer, Segment};
use nixl_core::{
    Agent, AgentConfig, Desc, MemType, Params, RegDesc, RegDescList, Status, XferDescList, XferOp,
    XferRequest,
};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const REQUEST: usize = 16 << 20;
const SIZES: [usize; 4] = [4 << 10, 64 << 10, 1 << 20, 16 << 20];

fn params(tcp: bool) -> Params {
    let mut p = Params::new();
    if tcp {
        p.insert("transport".into(), "tcp".into());
    }
    p
}

fn register(agent: &Agent, buf: &Buffer) {
    let reg = RegDescList::from_descs(
        MemType::Dram,
        vec![RegDesc::new(buf.addr() as u64, buf.len() as u64, 0)],
    );
    // SAFETY: every buffer outlives its agent in this file (agents dropped first).
    unsafe { agent.register_mem(&reg, None) }.expect("register");
}

/// A target: another agent in this process, or a `nixl-target` child.
struct Target {
    name: String,
    addr: usize,
    _local: Option<(Agent, Buffer)>,
    child: Option<Child>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            if let Some(stdin) = c.stdin.as_mut() {
                let _ = writeln!(stdin, "QUIT");
            }
            let _ = c.wait();
        }
    }
}

fn in_process_target(tcp: bool) -> Target {
    let agent = Agent::new("bench-target", AgentConfig::default()).expect("agent");
    agent.create_backend("UCX", &params(tcp)).expect("backend");
    let buf = Buffer::new(REQUEST, Segment::Malloc);
    register(&agent, &buf);
    Target {
        name: "bench-target".into(),
        addr: buf.addr(),
        _local: Some((agent, buf)),
        child: None,
    }
}

fn child_target(initiator: &Agent) -> Target {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nixl-target"))
        .args([REQUEST.to_string(), "malloc".into()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn nixl-target");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("hello");
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.first(), Some(&"READY"), "{line}");
    let md = test_support::unhex(f[3]);
    initiator.load_remote_md(&md).expect("load target metadata");
    let ours = test_support::hex(&initiator.local_md().expect("md"));
    let stdin = child.stdin.as_mut().expect("stdin");
    writeln!(stdin, "LOAD {ours}").expect("send");
    let (name, addr) = (f[1].to_string(), f[2].parse().unwrap());
    let mut ack = String::new();
    out.read_line(&mut ack).expect("ack");
    Target {
        name,
        addr,
        _local: None,
        child: Some(child),
    }
}

fn request(a: &Agent, local: &Buffer, t: &Target, block: usize, op: XferOp) -> XferRequest {
    let n = REQUEST / block;
    let perm = nixl_benches::shuffled(n, 7);
    let l = XferDescList::from_descs(
        MemType::Dram,
        (0..n)
            .map(|i| Desc::new((local.addr() + i * block) as u64, block as u64, 0))
            .collect(),
    );
    let r = XferDescList::from_descs(
        MemType::Dram,
        perm.iter()
            .map(|&p| Desc::new((t.addr + p * block) as u64, block as u64, 0))
            .collect(),
    );
    a.create_xfer_req(op, &l, &r, &t.name, None)
        .expect("request")
}

fn run(a: &Agent, req: &XferRequest) {
    let mut st = a.post_xfer_req(req, None).expect("post");
    while st == Status::InProg {
        st = a.xfer_status(req).expect("status");
    }
}

fn group(c: &mut Criterion, label: &str, kind: &str, ops: &[XferOp]) {
    let tcp = kind == "tcp";
    let a = Agent::new("bench-init", AgentConfig::default()).expect("agent");
    a.create_backend("UCX", &params(tcp)).expect("backend");
    let local = Buffer::new(REQUEST, Segment::Malloc);
    register(&a, &local);
    let t = if kind == "two_process" {
        child_target(&a)
    } else {
        let t = in_process_target(tcp);
        let (ta, _) = t._local.as_ref().expect("local target");
        a.load_remote_md(&ta.local_md().expect("md")).expect("load");
        ta.load_remote_md(&a.local_md().expect("md")).expect("load");
        t
    };
    let mut g = c.benchmark_group(label);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Bytes(REQUEST as u64));
    for &op in ops {
        for block in SIZES {
            let req = request(&a, &local, &t, block, op);
            g.bench_with_input(
                BenchmarkId::new(format!("{op:?}"), block),
                &block,
                |b, _| b.iter(|| run(&a, &req)),
            );
            a.release_xfer_req(req).expect("release");
        }
    }
    g.finish();
    drop(a);
    drop(t);
}

fn transfers(c: &mut Criterion) {
    group(c, "same_process", "same_process", &[XferOp::Write]);
    group(
        c,
        "two_process",
        "two_process",
        &[XferOp::Write, XferOp::Read],
    );
    group(c, "tcp", "tcp", &[XferOp::Write, XferOp::Read]);
}

criterion_group!(benches, transfers);
criterion_main!(benches);
