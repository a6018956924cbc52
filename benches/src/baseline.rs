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
/// the limit), in `chunk`-byte writes, best of `reps`.
pub fn tcp_gbps(total: usize, chunk: usize, reps: usize) -> f64 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    let chunk = chunk.clamp(1, total.max(1));
    let sink = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut dst = Buffer::new(total.max(1), Segment::Malloc);
        let buf = dst.as_mut_slice();
        let mut at = 0;
        loop {
            match s.read(&mut buf[at..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => at = (at + n) % buf.len(),
            }
        }
    });
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).ok();
    let data = Buffer::new(total, Segment::Malloc);
    let mut best = 0.0f64;
    // Warm-up, then timed repetitions; the ack is a 1-byte round trip so the
    // timing covers delivery, not just the send buffer.
    for rep in 0..=reps.max(1) {
        let t = Instant::now();
        for c in data.as_slice().chunks(chunk) {
            s.write_all(c).expect("send");
        }
        s.flush().ok();
        if rep > 0 {
            best = best.max(crate::gbps(total as u64, t.elapsed().as_secs_f64()));
        }
    }
    drop(s);
    sink.join().ok();
    best
}
