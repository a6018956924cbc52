//! The orchestrating process: builds the sweep, runs every point on each
//! library alternately, measures same-run limits and writes the report.

use crate::args::{Args, Variant};
use crate::error::{BenchError, Result};
use crate::point::{Outcome, Point};
use crate::proto::Peer;
use crate::report::Row;
use nixl_benches::baseline;

fn iters_for(args: &Args, bytes: usize) -> (usize, usize) {
    let mut iters = args.num_iter;
    if bytes >= 1 << 20 {
        iters /= args.large_iter_factor;
    }
    let iters = iters.min(args.max_point_bytes / bytes.max(1)).max(3);
    (iters, args.warmup_iter.min(iters).max(1))
}

fn point(
    args: &Args,
    name: &str,
    op: &str,
    block: usize,
    batch: usize,
    threads: usize,
    notif: bool,
) -> Point {
    // Iterations follow each thread's request size, so many threads still run long enough
    // for their start skew not to dominate.
    let (iters, warmup) = iters_for(args, block * batch);
    Point {
        name: name.into(),
        op: op.into(),
        block,
        batch,
        threads,
        iters,
        warmup,
        notif,
        check: args.check,
        seed: 0x5eed ^ (block as u64) ^ ((batch as u64) << 20),
    }
}

/// The points of `--workload`.
pub fn points(args: &Args) -> Result<Vec<Point>> {
    let mut out = Vec::new();
    let mut add = |w: &str| -> Result<()> {
        match w {
            "sweep" => {
                let mut blocks = args.block_sizes.clone();
                if blocks.is_empty() {
                    let mut b = args.start_block.max(1);
                    while b <= args.max_block {
                        blocks.push(b);
                        b *= 2;
                    }
                }
                for block in blocks {
                    match args.request_bytes {
                        Some(total) => {
                            let batch = (total / block).max(1);
                            out.push(point(
                                args,
                                "sweep",
                                &args.op,
                                block,
                                batch,
                                args.threads,
                                args.notif,
                            ));
                        }
                        None => {
                            let mut batch = args.start_batch.max(1);
                            while batch <= args.max_batch {
                                out.push(point(
                                    args,
                                    "sweep",
                                    &args.op,
                                    block,
                                    batch,
                                    args.threads,
                                    args.notif,
                                ));
                                batch *= 2;
                            }
                        }
                    }
                }
            }
            "vllm" => out.push(point(args, "vllm", "READ", 32 << 10, 16384, 1, true)),
            "sglang" => out.push(point(args, "sglang", "WRITE", 2 << 10, 262_144, 1, true)),
            "trtllm" => {
                out.push(point(args, "trtllm", "WRITE", 512 << 20, 1, 1, true));
                out.push(point(args, "trtllm", "WRITE", 4 << 20, 128, 1, true));
            }
            "mt8" => {
                out.push(point(args, "mt1", "WRITE", 64 << 10, 64, 1, false));
                out.push(point(args, "mt8", "WRITE", 64 << 10, 8, 8, false));
            }
            "consumers" => {
                for w in ["vllm", "sglang", "trtllm", "mt8"] {
                    let mut sub = args.clone();
                    sub.workload = w.into();
                    out.extend(points(&sub)?);
                }
            }
            other => return Err(BenchError::Workload(other.into())),
        }
        Ok(())
    };
    for w in args.workload.split(',') {
        add(w)?;
    }
    Ok(out)
}

fn initiator(args: &Args, v: &Variant, buf_bytes: usize) -> Result<Peer> {
    let a = vec![
        "--role".to_string(),
        "initiator".into(),
        "--lib".into(),
        v.lib.display().to_string(),
        "--buf_bytes".into(),
        buf_bytes.to_string(),
        "--buffer".into(),
        args.segment.label().into(),
        "--backend".into(),
        v.backend.clone(),
        "--transport".into(),
        v.transport.clone(),
        "--params".into(),
        v.params.clone(),
    ];
    let mut env = vec![("UCX_MODULES", "^ib*")];
    if v.transport == "tcp" {
        env.extend([("UCX_TLS", "tcp"), ("NIXL_RS_TRANSPORT", "tcp")]);
    }
    env.extend(v.env.split(',').filter_map(|kv| kv.split_once('=')));
    let mut p = Peer::spawn_group(&a, &env)?;
    let hello = p.recv()?;
    if hello != "READY" {
        return Err(BenchError::peer(format!(
            "initiator for {} ({} on {}) said {hello:?}",
            v.name,
            v.backend,
            v.lib.display()
        )));
    }
    Ok(p)
}

/// Runs the whole benchmark and returns the rows.
pub fn run(args: &Args) -> Result<Vec<Row>> {
    let pts = points(args)?;
    let buf_bytes = pts.iter().map(Point::buffer_bytes).max().unwrap_or(4096);
    let libs = args.all_variants()?;
    for v in &libs {
        if !v.lib.exists() {
            return Err(BenchError::NoLibrary(v.lib.clone()));
        }
    }
    let tcp_limit = libs.iter().any(|v| v.transport == "tcp");
    let mut peers = Vec::new();
    for v in &libs {
        peers.push((v.name.clone(), initiator(args, v, buf_bytes)?));
    }
    // When libraries are compared, each runs alone: the others' processes are stopped, so an
    // idle library's polling threads take no CPU from the one being measured (NIXL's UCX
    // progress threads poll about half a core each on this machine).
    let compared = peers.len() > 1;
    if compared {
        peers.iter().for_each(|(_, p)| p.pause());
    }
    let pb = if args.no_progress {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new((pts.len() * libs.len()) as u64)
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut rows = Vec::new();
    for (k, p) in pts.iter().enumerate() {
        // The limits are measured in every round, beside the libraries, not once per shape: on
        // a shared machine they drift within a run (loopback TCP by 2x), and a ratio is only
        // fair against the same moments. The row shows their mean over the rounds.
        let measure_limits = || {
            let memcpy = (!args.no_baseline)
                .then(|| baseline::memcpy_gbps(p.block, p.batch * p.threads, args.segment, 3));
            let tcp = (tcp_limit && !args.no_baseline).then(|| {
                let total = p.buffer_bytes().min(256 << 20);
                baseline::tcp_gbps(total, p.block.clamp(64 << 10, 4 << 20), 3)
            });
            (memcpy, tcp)
        };
        let mut limits = Vec::new();
        // Rounds alternate between the libraries (and which goes first), so drift and bursts
        // of load on a shared machine do not favour one; one library alone needs one round.
        let rounds = if compared {
            args.rounds.min(p.iters).max(1)
        } else {
            1
        };
        let mut outs: Vec<Vec<(usize, Outcome)>> = vec![Vec::new(); peers.len()];
        for round in 0..rounds {
            let mut part = p.clone();
            part.iters = p.iters / rounds + usize::from(round < p.iters % rounds);
            // Data is checked once, after the last round.
            part.check = p.check && round + 1 == rounds;
            let order: Vec<usize> = if (k + round) % 2 == 0 {
                (0..peers.len()).collect()
            } else {
                (0..peers.len()).rev().collect()
            };
            limits.push(measure_limits());
            for i in order {
                let (name, peer) = &mut peers[i];
                pb.set_message(format!(
                    "{} {} {}x{}B {} ({}/{rounds})",
                    name,
                    p.op,
                    p.batch,
                    p.block,
                    p.name,
                    round + 1
                ));
                let json = serde_json::to_string(&part)?;
                if compared {
                    peer.resume();
                }
                let reply = peer.ask(&format!("POINT {json}"));
                if compared {
                    peer.pause();
                }
                let reply = reply?;
                let body = reply
                    .strip_prefix("RESULT ")
                    .ok_or_else(|| BenchError::peer(format!("bad reply {reply:?}")))?;
                let mut o: Outcome = serde_json::from_str(body)?;
                o.lib = name.clone();
                outs[i].push((part.iters, o));
            }
        }
        pb.inc(peers.len() as u64);
        let limit = mean(limits.iter().filter_map(|l| l.0));
        let tcp = mean(limits.iter().filter_map(|l| l.1));
        let outs: Vec<Option<Outcome>> = outs
            .into_iter()
            .map(|r| Outcome::combine(&r, p.buffer_bytes()))
            .collect();
        for o in outs.into_iter().flatten() {
            let row = Row {
                point: p.clone(),
                outcome: o,
                memcpy_gbps: limit,
                tcp_gbps: tcp,
            };
            pb.suspend(|| println!("{}", row.table_line()));
            rows.push(row);
        }
    }
    pb.finish_and_clear();
    for (_, p) in peers {
        p.quit();
    }
    Ok(rows)
}

/// The mean of some values, `None` for none.
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}
