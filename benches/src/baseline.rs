//! Same-run limits: a one-thread memcpy of the same shape, and a raw loopback
//! TCP stream.

use crate::buffer::{Buffer, Segment};
use std::io::{Read, Write};
use std::time::Instant;

/// GB/s of copying `batch` blocks of `block` bytes from a contiguous source
/// to shuffled slots of a destination (one thread), best of `reps` runs.
pub fn memcpy_gbps(block: usize, batch: usize, seg: Segment, reps: usize) -> f64 {
    let total = block * batch;
    let src = Buffer::new(total, seg);
    let mut dst = Buffer::new(total, seg);
    let perm = crate::shuffled(batch, 0x5eed);
    let mut best = 0.0f64;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let (s, d) = (src.as_slice(), dst.as_mut_slice());
        for (i, &p) in perm.iter().enumerate() {
            d[p * block..(p + 1) * block].copy_from_slice(&s[i * block..(i + 1) * block]);
        }
        std::hint::black_box(&d[0]);
        best = best.max(crate::gbps(total as u64, t.elapsed().as_secs_f64()));
    }
    best
}

/// GB/s of one loopback TCP stream copying `total` bytes from one buffer into another of the
/// same size (as a transfer does; a small reused sink buffer would stay in cache and flatter
/// the limit), in `chunk`-byte writes: all bytes over all time of `reps` repetitions after a
/// warm-up, the same statistic as a benchmark point's bandwidth (a best-of figure would set a
/// lucky moment against an average).
pub fn tcp_gbps(total: usize, chunk: usize, reps: usize) -> f64 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    let total = total.max(1);
    let chunk = chunk.clamp(1, total);
    let sink = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut dst = Buffer::new(total, Segment::Malloc);
        let buf = dst.as_mut_slice();
        let mut at = 0;
        loop {
            match s.read(&mut buf[at..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => at += n,
            }
            if at == buf.len() {
                // A whole copy is in: acknowledge it, so the sender times delivery.
                at = 0;
                if s.write_all(&[1]).is_err() {
                    break;
                }
            }
        }
    });
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).ok();
    let data = Buffer::new(total, Segment::Malloc);
    let mut copy = || {
        for c in data.as_slice().chunks(chunk) {
            s.write_all(c).expect("send");
        }
        s.read_exact(&mut [0u8; 1]).expect("acknowledgement");
    };
    copy();
    let reps = reps.max(1);
    let t = Instant::now();
    for _ in 0..reps {
        copy();
    }
    let gbps = crate::gbps((total * reps) as u64, t.elapsed().as_secs_f64());
    drop(s);
    sink.join().ok();
    gbps
}
