//! VRAM bandwidth through nixl-core against the plain driver copy it should match:
//! VRAM -> VRAM (same process, two agents) vs a device-to-device `cuMemcpyAsync`, and pinned
//! DRAM <-> VRAM vs a pinned host <-> device `cuMemcpyAsync`. Prints a Markdown table for
//! BENCHMARKS.md with the card's name. Without a GPU it prints "skipped: no CUDA device".
//!
//! `cargo run --release -p nixl-core --example cuda-bw [-- SIZE...]`: sizes in MiB, or KiB with
//! a `k` suffix (default 64 256 1024).

use std::time::{Duration, Instant};

use nixl_core::backend::cuda::{self, mem::DeviceBuffer, mem::HostPinned, stream::Stream};
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
        let a = Agent::new("bw-a", AgentConfig::default()).unwrap();
        let b = Agent::new("bw-b", AgentConfig::default()).unwrap();
        a.create_backend("UCX", &Params::new()).unwrap();
        b.create_backend("UCX", &Params::new()).unwrap();
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

    /// Posts the request and polls it to completion, as an engine would.
    fn once(&self) -> Duration {
        let t = Instant::now();
        let mut s = self.a.post_xfer_req(&self.req, None).unwrap();
        while s == Status::InProg {
            s = self.a.xfer_status(&self.req).unwrap();
        }
        assert_eq!(s, Status::Success);
        t.elapsed()
    }
}

/// One plain copy on `stream`, waited for.
fn raw_once(stream: &Stream, dst: u64, src: u64, len: usize) -> Duration {
    let t = Instant::now();
    // SAFETY: both ranges are live allocations of at least `len` bytes owned by main.
    unsafe { stream.copy(dst, src, len as u64) }.unwrap();
    stream.sync().unwrap();
    t.elapsed()
}

/// Median times of nixl-core's WRITE and of the plain copy of the same bytes, measured in
/// turns (one warm-up each) so clock changes of the GPU weigh on both alike.
fn row(local: (MemType, u64), remote: (MemType, u64), len: usize) -> (Duration, Duration) {
    let write = Write::new(local, remote, len);
    let stream = Stream::take(0).unwrap();
    let (mut ours, mut plain) = (Vec::new(), Vec::new());
    for i in 0..=ITERS {
        let o = write.once();
        let p = raw_once(&stream, remote.1, local.1, len);
        if i > 0 {
            ours.push(o);
            plain.push(p);
        }
    }
    (median(ours), median(plain))
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
    for &len in &sizes {
        let src = DeviceBuffer::new(0, len).unwrap();
        let dst = DeviceBuffer::new(0, len).unwrap();
        let mut host = HostPinned::new(len).unwrap();
        host.as_mut_slice().fill(0x11);
        src.fill(0x22).unwrap();
        let rows = [
            (
                "VRAM -> VRAM",
                row(
                    (MemType::Vram, src.addr()),
                    (MemType::Vram, dst.addr()),
                    len,
                ),
            ),
            (
                "DRAM (pinned) -> VRAM",
                row(
                    (MemType::Dram, host.addr()),
                    (MemType::Vram, dst.addr()),
                    len,
                ),
            ),
            (
                "VRAM -> DRAM (pinned)",
                row(
                    (MemType::Vram, src.addr()),
                    (MemType::Dram, host.addr()),
                    len,
                ),
            ),
        ];
        for (path, (ours, theirs)) in rows {
            println!(
                "| {path} | {} | {:.1} | {:.1} | {:.0}% |",
                show(len),
                gbps(len, ours),
                gbps(len, theirs),
                100.0 * theirs.as_secs_f64() / ours.as_secs_f64()
            );
        }
    }
}
