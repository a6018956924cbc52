//! VRAM bandwidth through nixl-core against the plain driver copy it should match:
//! VRAM -> VRAM (same process, two agents) vs a device-to-device `cuMemcpyAsync`, and pinned
//! DRAM <-> VRAM vs a pinned host <-> device `cuMemcpyAsync`. Prints a Markdown table for
//! BENCHMARKS.md with the card's name. Without a GPU it prints "skipped: no CUDA device".
//!
//! `cargo run --release -p nixl-core --example cuda-bw [-- SIZE_MIB...]` (default 64 256 1024).

use std::time::{Duration, Instant};

use nixl_core::backend::cuda::{self, mem::DeviceBuffer, mem::HostPinned, stream::Stream};
use nixl_core::*;

const ITERS: usize = 10;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn gbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

/// Median time of `ITERS` raw copies on one stream (after one warm-up).
fn raw(dst: u64, src: u64, len: usize) -> Duration {
    let s = Stream::take(0).unwrap();
    let mut times = Vec::new();
    for i in 0..=ITERS {
        let t = Instant::now();
        // SAFETY: both ranges are live allocations of at least `len` bytes owned by main.
        unsafe { s.copy(dst, src, len as u64) }.unwrap();
        s.sync().unwrap();
        if i > 0 {
            times.push(t.elapsed());
        }
    }
    median(times)
}

fn reg(mem: MemType, addr: u64, len: usize) -> RegDescList {
    RegDescList::from_descs(mem, vec![RegDesc::new(addr, len as u64, 0)])
}

fn xfer(mem: MemType, addr: u64, len: usize) -> XferDescList {
    XferDescList::from_descs(mem, vec![Desc::new(addr, len as u64, 0)])
}

/// Median time of `ITERS` posts of one WRITE request (local -> remote), polled to completion.
fn nixl(local: (MemType, u64), remote: (MemType, u64), len: usize) -> Duration {
    let a = Agent::new("bw-a", AgentConfig::default()).unwrap();
    let b = Agent::new("bw-b", AgentConfig::default()).unwrap();
    a.create_backend("UCX", &Params::new()).unwrap();
    b.create_backend("UCX", &Params::new()).unwrap();
    // SAFETY: the buffers outlive both agents (dropped at the end of this function).
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
    let mut times = Vec::new();
    for i in 0..=ITERS {
        let t = Instant::now();
        let mut s = a.post_xfer_req(&req, None).unwrap();
        while s == Status::InProg {
            s = a.xfer_status(&req).unwrap();
        }
        assert_eq!(s, Status::Success);
        if i > 0 {
            times.push(t.elapsed());
        }
    }
    median(times)
}

fn main() {
    if !cuda::available() {
        println!("skipped: no CUDA device");
        return;
    }
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok())
        .map(|mib| mib << 20)
        .collect();
    let sizes = if sizes.is_empty() {
        vec![64 << 20, 256 << 20, 1 << 30]
    } else {
        sizes
    };
    let card = cuda::context::device_name(0).unwrap();
    println!("card: {card}; median of {ITERS} after one warm-up; GB/s = 1e9 bytes/s");
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
                nixl(
                    (MemType::Vram, src.addr()),
                    (MemType::Vram, dst.addr()),
                    len,
                ),
                raw(dst.addr(), src.addr(), len),
            ),
            (
                "DRAM (pinned) -> VRAM",
                nixl(
                    (MemType::Dram, host.addr()),
                    (MemType::Vram, dst.addr()),
                    len,
                ),
                raw(dst.addr(), host.addr(), len),
            ),
            (
                "VRAM -> DRAM (pinned)",
                nixl(
                    (MemType::Vram, src.addr()),
                    (MemType::Dram, host.addr()),
                    len,
                ),
                raw(host.addr(), src.addr(), len),
            ),
        ];
        for (path, ours, theirs) in rows {
            println!(
                "| {path} | {} MiB | {:.1} | {:.1} | {:.0}% |",
                len >> 20,
                gbps(len, ours),
                gbps(len, theirs),
                100.0 * theirs.as_secs_f64() / ours.as_secs_f64()
            );
        }
    }
}
