//! VRAM bandwidth through nixl-core against the plain driver copy it should match:
//! VRAM -> VRAM (same process, two agents) vs a device-to-device `cuMemcpyAsync`, pinned
//! DRAM <-> VRAM vs a pinned host <-> device `cuMemcpyAsync`, and VRAM -> VRAM of another
//! process (a child of this one) through CUDA IPC vs the device-to-device copy. Prints a
//! Markdown table for BENCHMARKS.md with the card's name. Without a GPU it prints "skipped: no
//! CUDA device".
//!
//! `cargo run --release -p nixl-core --example cuda-bw [-- SIZE...]`: sizes in MiB, or KiB with
//! a `k` suffix (default 64 256 1024).

use std::io::{BufRead, BufReader, Read, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nixl_core::testing::cuda::{self, mem::DeviceBuffer, mem::HostPinned, stream::Stream};
use nixl_core::*;

const ITERS: usize = 20;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn gbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

fn reg(mem: MemType, addr: u64, len: usize) -> RegDescList {
    RegDescList::from_descs(mem, vec![RegDesc::new(addr, len as u64, 0)])
}

fn xfer(mem: MemType, addr: u64, len: usize) -> XferDescList {
    XferDescList::from_descs(mem, vec![Desc::new(addr, len as u64, 0)])
}

/// One WRITE request from `local` to `remote` between two agents of this process.
struct Write {
    req: XferRequest,
    a: Agent,
    _b: Agent,
}

impl Write {
    fn new(local: (MemType, u64), remote: (MemType, u64), len: usize) -> Write {
        let a = agent("bw-a");
        let b = agent("bw-b");
        // SAFETY: the buffers outlive both agents (main drops them after the row).
        unsafe {
            a.register_mem(&reg(local.0, local.1, len), None).unwrap();
            b.register_mem(&reg(remote.0, remote.1, len), None).unwrap();
        }
        a.load_remote_md(&b.local_md().unwrap()).unwrap();
        let req = a
            .create_xfer_req(
                XferOp::Write,
                &xfer(local.0, local.1, len),
                &xfer(remote.0, remote.1, len),
                "bw-b",
                None,
            )
            .unwrap();
        Write { req, a, _b: b }
    }
}

fn agent(name: &str) -> Agent {
    let a = Agent::new(name, AgentConfig::default()).unwrap();
    a.create_backend("UCX", &Params::new()).unwrap();
    a
}

/// Posts `req` and polls it to completion, as an engine would.
fn post_and_poll(agent: &Agent, req: &XferRequest) -> Duration {
    let t = Instant::now();
    let mut s = agent.post_xfer_req(req, None).unwrap();
    while s == Status::InProg {
        s = agent.xfer_status(req).unwrap();
    }
    assert_eq!(s, Status::Success);
    t.elapsed()
}

/// One plain copy on `stream`, waited for.
fn raw_once(stream: &Stream, dst: u64, src: u64, len: usize) -> Duration {
    let t = Instant::now();
    // SAFETY: both ranges are live allocations of at least `len` bytes owned by main.
    unsafe { stream.copy(dst, src, len as u64) }.unwrap();
    stream.sync().unwrap();
    t.elapsed()
}

/// Median times of `ours` and `plain`, measured in turns (one warm-up each) so clock changes
/// of the GPU weigh on both alike.
fn in_turns(ours: impl Fn() -> Duration, plain: impl Fn() -> Duration) -> (Duration, Duration) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..=ITERS {
        let (o, p) = (ours(), plain());
        if i > 0 {
            a.push(o);
            b.push(p);
        }
    }
    (median(a), median(b))
}

/// nixl-core's WRITE and the plain copy of the same bytes, in one process.
fn row(local: (MemType, u64), remote: (MemType, u64), len: usize) -> (Duration, Duration) {
    let write = Write::new(local, remote, len);
    let stream = Stream::take(0).unwrap();
    in_turns(
        || post_and_poll(&write.a, &write.req),
        || raw_once(&stream, remote.1, local.1, len),
    )
}

/// Run as a child (`NIXL_CUDA_BW_OWNER=LEN`): registers LEN bytes of VRAM, prints their address
/// and this agent's metadata, and stays until its stdin closes.
fn owner(len: usize) {
    let owner = agent("bw-owner");
    let buf = DeviceBuffer::new(0, len).unwrap();
    // SAFETY: `buf` outlives the agent.
    unsafe { owner.register_mem(&reg(MemType::Vram, buf.addr(), len), None) }.unwrap();
    let md = test_support::hex(&owner.local_md().unwrap());
    println!("ADDR {}\nMD {md}", buf.addr());
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// VRAM → VRAM of another process (a child running [`owner`]) through CUDA IPC, against a
/// plain device-to-device copy of the same bytes in this process.
fn ipc_rows(sizes: &[usize]) -> Vec<(String, usize, Duration, Duration)> {
    let max = *sizes.iter().max().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("NIXL_CUDA_BW_OWNER", max.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut field = |prefix: &str| {
        let line = lines.next().expect("the owner's output").unwrap();
        line.strip_prefix(prefix)
            .expect("the owner's field")
            .to_owned()
    };
    let remote: u64 = field("ADDR ").parse().unwrap();
    let hex = field("MD ");
    let md = test_support::unhex(&hex);
    let user = agent("bw-user");
    user.load_remote_md(&md).unwrap();
    let stream = Stream::take(0).unwrap();
    let mut rows = Vec::new();
    for &len in sizes {
        let (src, dst) = (
            DeviceBuffer::new(0, len).unwrap(),
            DeviceBuffer::new(0, len).unwrap(),
        );
        src.fill(0x33).unwrap();
        // SAFETY: `src` outlives its registration (deregistered below).
        unsafe { user.register_mem(&reg(MemType::Vram, src.addr(), len), None) }.unwrap();
        let req = user
            .create_xfer_req(
                XferOp::Write,
                &xfer(MemType::Vram, src.addr(), len),
                &xfer(MemType::Vram, remote, len),
                "bw-owner",
                None,
            )
            .unwrap();
        let (ours, plain) = in_turns(
            || post_and_poll(&user, &req),
            || raw_once(&stream, dst.addr(), src.addr(), len),
        );
        rows.push((
            "VRAM -> VRAM, other process (IPC)".to_owned(),
            len,
            ours,
            plain,
        ));
        drop(req);
        user.deregister_mem(&reg(MemType::Vram, src.addr(), len), None)
            .unwrap();
    }
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "the owner process failed");
    rows
}

/// "64k" is 64 KiB, "16" is 16 MiB.
fn parse_size(arg: &str) -> Option<usize> {
    match arg.strip_suffix(['k', 'K']) {
        Some(kib) => kib.parse::<usize>().ok().map(|n| n << 10),
        None => arg.parse::<usize>().ok().map(|n| n << 20),
    }
}

fn show(len: usize) -> String {
    if len >= 1 << 20 {
        format!("{} MiB", len >> 20)
    } else {
        format!("{} KiB", len >> 10)
    }
}

fn main() {
    if let Ok(len) = std::env::var("NIXL_CUDA_BW_OWNER") {
        return owner(len.parse().unwrap());
    }
    if !cuda::available() {
        println!("skipped: no CUDA device");
        return;
    }
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| parse_size(&a))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![64 << 20, 256 << 20, 1 << 30]
    } else {
        sizes
    };
    let card = cuda::context::device_name(0).unwrap();
    // Bring the GPU's clocks up before the first row.
    {
        let (a, b) = (
            DeviceBuffer::new(0, 256 << 20).unwrap(),
            DeviceBuffer::new(0, 256 << 20).unwrap(),
        );
        let stream = Stream::take(0).unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(500) {
            raw_once(&stream, b.addr(), a.addr(), a.len());
        }
    }
    println!(
        "card: {card}; median of {ITERS} after one warm-up, nixl-core and the plain copy in turns; GB/s = 1e9 bytes/s"
    );
    println!();
    println!("| path | size | nixl-core GB/s | cuMemcpyAsync GB/s | ratio |");
    println!("|---|---|---|---|---|");
    let mut rows = Vec::new();
    for &len in &sizes {
        let src = DeviceBuffer::new(0, len).unwrap();
        let dst = DeviceBuffer::new(0, len).unwrap();
        let mut host = HostPinned::new(len).unwrap();
        host.as_mut_slice().fill(0x11);
        src.fill(0x22).unwrap();
        let (v, h) = (MemType::Vram, MemType::Dram);
        for (path, from, to) in [
            ("VRAM -> VRAM", (v, src.addr()), (v, dst.addr())),
            ("DRAM (pinned) -> VRAM", (h, host.addr()), (v, dst.addr())),
            ("VRAM -> DRAM (pinned)", (v, src.addr()), (h, host.addr())),
        ] {
            let (ours, plain) = row(from, to, len);
            rows.push((path.to_owned(), len, ours, plain));
        }
    }
    rows.extend(ipc_rows(&sizes));
    for (path, len, ours, theirs) in rows {
        println!(
            "| {path} | {} | {:.1} | {:.1} | {:.0}% |",
            show(len),
            gbps(len, ours),
            gbps(len, theirs),
            100.0 * theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
}
