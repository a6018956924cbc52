//! Descriptor-side costs through nixl-core's Rust API: prepping a
//! 2,000,000-entry list (local and remote), `make_xfer_req` with 41,000
//! indices, matching 4,096 ad-hoc descriptors against registrations, and
//! metadata encode/decode. Memory per prepped entry is printed (RSS delta).
//!
//! `cargo bench -p nixl-benches --bench descriptors`
// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nixl_benches::buffer::{Buffer, Segment};
use nixl_core::{Agent, AgentConfig, Desc, MemType, RegDesc, RegDescList, XferDescList, XferOp};
use std::time::Duration;

const ENTRIES: usize = 2_000_000;
const ENTRY: usize = 64;
const REGIONS: usize = 160;

fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        * 4096
}

/// An agent with `REGIONS` registered regions tiling `buf`.
fn agent(name: &str, buf: &Buffer) -> Agent {
    let a = Agent::new(name, AgentConfig::default()).expect("agent");
    a.create_backend("UCX", &Default::default())
        .expect("backend");
    let per = buf.len() / REGIONS;
    let reg = RegDescList::from_descs(
        MemType::Dram,
        (0..REGIONS)
            .map(|i| RegDesc::new((buf.addr() + i * per) as u64, per as u64, 0))
            .collect(),
    );
    // SAFETY: `buf` outlives the agent (dropped after it in every caller).
    unsafe { a.register_mem(&reg, None) }.expect("register");
    a
}

fn list(buf: &Buffer, n: usize, size: usize) -> XferDescList {
    XferDescList::from_descs(
        MemType::Dram,
        (0..n)
            .map(|i| Desc::new((buf.addr() + i * size) as u64, size as u64, 0))
            .collect(),
    )
}

fn descriptors(c: &mut Criterion) {
    let bytes = (ENTRIES * ENTRY).next_multiple_of(REGIONS * (64 << 10));
    let (lb, rb) = (
        Buffer::new(bytes, Segment::Malloc),
        Buffer::new(bytes, Segment::Malloc),
    );
    let (a, b) = (agent("desc-a", &lb), agent("desc-b", &rb));
    a.load_remote_md(&b.local_md().expect("md")).expect("load");
    let (ll, rl) = (list(&lb, ENTRIES, ENTRY), list(&rb, ENTRIES, ENTRY));

    let before = rss_bytes();
    let lp = a.prep_xfer_dlist(None, &ll, None).expect("prep local");
    let rp = a
        .prep_xfer_dlist(Some("desc-b"), &rl, None)
        .expect("prep remote");
    let per_entry = (rss_bytes().saturating_sub(before)) as f64 / (2 * ENTRIES) as f64;
    eprintln!(
        "prep_xfer_dlist: about {per_entry:.1} bytes of RSS per prepped entry (2 lists x {ENTRIES})"
    );

    let mut g = c.benchmark_group("prep");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(ENTRIES as u64));
    g.bench_function("local_2M", |bn| {
        bn.iter(|| a.prep_xfer_dlist(None, &ll, None).expect("prep"))
    });
    g.bench_function("remote_2M", |bn| {
        bn.iter(|| a.prep_xfer_dlist(Some("desc-b"), &rl, None).expect("prep"))
    });
    g.finish();

    let mut g = c.benchmark_group("make_xfer_req");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    let n = 41_000;
    let li: Vec<i32> = (0..n as i32).map(|i| i * 48).collect();
    let ri: Vec<i32> = nixl_benches::shuffled(ENTRIES, 3)
        .into_iter()
        .take(n)
        .map(|x| x as i32)
        .collect();
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("41k_of_2M", |bn| {
        bn.iter(|| {
            a.make_xfer_req(XferOp::Read, &lp, &li, &rp, &ri, None)
                .expect("make")
        })
    });
    g.finish();

    let mut g = c.benchmark_group("match");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    let m = 4096;
    let l = list(&lb, m, 32 << 10);
    let perm = nixl_benches::shuffled(m, 5);
    let r = XferDescList::from_descs(
        MemType::Dram,
        perm.iter()
            .map(|&p| Desc::new((rb.addr() + p * (32 << 10)) as u64, 32 << 10, 0))
            .collect(),
    );
    g.throughput(Throughput::Elements(m as u64));
    g.bench_function("create_xfer_req_4096_of_160_regions", |bn| {
        bn.iter(|| {
            a.create_xfer_req(XferOp::Write, &l, &r, "desc-b", None)
                .expect("create")
        })
    });
    g.finish();

    let mut g = c.benchmark_group("metadata");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    let md = b.local_md().expect("md");
    g.throughput(Throughput::Bytes(md.len() as u64));
    g.bench_function("encode_160_regions", |bn| {
        bn.iter(|| b.local_md().expect("md"))
    });
    g.bench_function("decode_load_160_regions", |bn| {
        bn.iter(|| a.load_remote_md(&md).expect("load"))
    });
    g.finish();

    drop((lp, rp));
    drop((a, b));
    drop((lb, rb));
}

criterion_group!(benches, descriptors);
criterion_main!(benches);
