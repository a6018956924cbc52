//! The initiator process: spawns its target, then runs points on request.

use crate::args::Args;
use crate::error::{BenchError, Result};
use crate::point::{Outcome, Point, stats_us};
use crate::proto::{Peer, hex, serve, unhex};
use crate::session::Session;
use nixl_benches::pattern;
use nixl_capi_client::{MemType, OptArgs, PreppedList, XferList, XferOp, XferState};
use std::sync::Barrier;
use std::time::{Duration, Instant};

struct Pair {
    sess: Session,
    target: Peer,
    remote_name: String,
    remote_addr: usize,
    notifs_sent: usize,
}

/// Runs the initiator role until `QUIT`.
pub fn run(args: &Args) -> Result<()> {
    let mut targs = vec![
        "--role".to_string(),
        "target".into(),
        "--lib".into(),
        args.lib.display().to_string(),
        "--buf_bytes".into(),
        args.buf_bytes.to_string(),
        "--buffer".into(),
        args.segment.label().into(),
        "--backend".into(),
        args.backend.clone(),
    ];
    targs.extend([
        "--transport".into(),
        args.transport.clone(),
        "--params".into(),
        args.params.clone(),
    ]);
    let mut target = Peer::spawn(&targs, &[])?;
    let ready = target.recv()?;
    let f: Vec<&str> = ready.split_whitespace().collect();
    let ["READY", tname, taddr, tmd] = f[..] else {
        return Err(BenchError::peer(format!("bad target hello {ready:?}")));
    };
    let name = format!("nixlbench-init-{}", std::process::id());
    let sess = Session::open(args, &name)?;
    let remote_name = sess.agent.load_remote_md(&unhex(tmd)?)?;
    if remote_name != tname {
        return Err(BenchError::peer(format!(
            "target calls itself {remote_name}, announced {tname}"
        )));
    }
    target.ask(&format!("LOAD {}", hex(&sess.agent.local_md()?)))?;
    let mut pair = Pair {
        sess,
        target,
        remote_name,
        remote_addr: taddr.parse()?,
        notifs_sent: 0,
    };
    println!("READY");
    serve(|line| {
        let json = line
            .strip_prefix("POINT ")
            .ok_or_else(|| BenchError::peer("expected POINT"))?;
        let point: Point = serde_json::from_str(json)?;
        let out = run_point(&mut pair, &point).unwrap_or_else(|e| Outcome {
            error: Some(e.to_string()),
            ..Default::default()
        });
        Ok(Some(format!("RESULT {}", serde_json::to_string(&out)?)))
    });
    pair.target.quit();
    Ok(())
}

fn lists(pair: &Pair, p: &Point) -> Result<(PreppedList, PreppedList, f64)> {
    let (api, n, b) = (&pair.sess.api, p.threads * p.batch, p.block);
    let local_base = pair.sess.buf.addr();
    let ll = XferList::from_descs(
        api,
        MemType::Dram,
        (0..n).map(|g| (local_base + g * b, b, 0)),
    )?;
    let rl = XferList::from_descs(
        api,
        MemType::Dram,
        (0..n).map(|g| (pair.remote_addr + g * b, b, 0)),
    )?;
    let t = Instant::now();
    let lp = pair.sess.agent.prep_local(&ll)?;
    let rp = pair
        .sess
        .agent
        .prep_xfer_dlist(&pair.remote_name, &rl, None)?;
    Ok((lp, rp, t.elapsed().as_secs_f64()))
}

/// Index arrays of thread `t`: local blocks in order, remote slots shuffled.
fn indices(p: &Point, perm: &[usize], t: usize) -> (Vec<i32>, Vec<i32>) {
    let base = t * p.batch;
    let l = (0..p.batch).map(|i| (base + i) as i32).collect();
    let r = perm.iter().map(|&x| (base + x) as i32).collect();
    (l, r)
}

fn run_point(pair: &mut Pair, p: &Point) -> Result<Outcome> {
    let op = if p.op == "READ" {
        XferOp::Read
    } else {
        XferOp::Write
    };
    let (lp, rp, prep_lists) = lists(pair, p)?;
    let perm = nixl_benches::shuffled(p.batch, p.seed);
    let mut opt = OptArgs::new(&pair.sess.api)?;
    if p.notif {
        opt.notif(format!("nixlbench-{}", p.seed).as_bytes())?;
    }
    let agent = &pair.sess.agent;

    // make_xfer_req cost, measured apart from the data path.
    let (li, ri) = indices(p, &perm, 0);
    let mut prep = Vec::new();
    for _ in 0..p.iters.clamp(1, 50) {
        let t = Instant::now();
        let req = agent.make_xfer_req(op, &lp, &li, &rp, &ri, Some(&opt))?;
        prep.push(t.elapsed().as_secs_f64());
        drop(req);
    }

    let barrier = Barrier::new(p.threads + 1);
    let (mut posts, mut txs, wall) = std::thread::scope(|sc| -> Result<_> {
        let handles: Vec<_> = (0..p.threads)
            .map(|t| {
                let (lp, rp, opt, perm, barrier) = (&lp, &rp, &opt, &perm, &barrier);
                sc.spawn(move || -> Result<(Vec<f64>, Vec<f64>, Instant, Instant)> {
                    let (li, ri) = indices(p, perm, t);
                    let made = agent.make_xfer_req(op, lp, &li, rp, &ri, Some(opt));
                    let mut req = match made {
                        Ok(r) => r,
                        Err(e) => {
                            barrier.wait();
                            return Err(e.into());
                        }
                    };
                    let mut warm = Ok(());
                    for _ in 0..p.warmup {
                        warm = req.run(None);
                        if warm.is_err() {
                            break;
                        }
                    }
                    barrier.wait();
                    warm?;
                    let (mut post, mut tx) =
                        (Vec::with_capacity(p.iters), Vec::with_capacity(p.iters));
                    let start = Instant::now();
                    for _ in 0..p.iters {
                        let t1 = Instant::now();
                        let st = req.post(None)?;
                        let t2 = Instant::now();
                        if st == XferState::InProgress {
                            req.wait()?;
                        }
                        post.push((t2 - t1).as_secs_f64());
                        tx.push(t1.elapsed().as_secs_f64());
                    }
                    Ok((post, tx, start, Instant::now()))
                })
            })
            .collect();
        barrier.wait();
        let (mut posts, mut txs) = (Vec::new(), Vec::new());
        let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
        for h in handles {
            let (post, tx, start, end) = h
                .join()
                .map_err(|_| BenchError::peer("a worker thread panicked"))??;
            posts.extend(post);
            txs.extend(tx);
            first = Some(first.map_or(start, |f| f.min(start)));
            last = Some(last.map_or(end, |l| l.max(end)));
        }
        // Each worker times itself: the main thread may wake late from the barrier.
        let wall = match (first, last) {
            (Some(f), Some(l)) => (l - f).as_secs_f64(),
            _ => 0.0,
        };
        Ok((posts, txs, wall))
    })?;

    let mut out = Outcome {
        prep_lists_us: prep_lists * 1e6,
        ..Default::default()
    };
    let bytes = (p.buffer_bytes() * p.iters) as u64;
    out.gbps = nixl_benches::gbps(bytes, wall);
    (out.avg_prep_us, out.p99_prep_us) = stats_us(&mut prep);
    (out.avg_post_us, out.p99_post_us) = stats_us(&mut posts);
    (out.avg_tx_us, out.p99_tx_us) = stats_us(&mut txs);
    out.avg_lat_us = out.avg_tx_us;
    if p.check {
        out.verified = Some(verify(pair, p, op, &lp, &rp, &perm, &opt)?);
    }
    if p.notif {
        pair.notifs_sent += p.threads * (p.warmup + p.iters + usize::from(p.check));
        let sent = pair.notifs_sent;
        out.notifs_ok = Some(await_notifs(pair, sent)?);
    }
    Ok(out)
}

/// Moves fresh data once per thread and checks it landed in the right slots.
fn verify(
    pair: &mut Pair,
    p: &Point,
    op: XferOp,
    lp: &PreppedList,
    rp: &PreppedList,
    perm: &[usize],
    opt: &OptArgs,
) -> Result<bool> {
    let seed = p.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let (n, b) = (p.threads * p.batch, p.block);
    // Local block g (thread t, position i) travels to/from slot t*batch + perm[i].
    let slot = |g: usize| (g / p.batch) * p.batch + perm[g % p.batch];
    match op {
        XferOp::Read => {
            pair.target.ask(&format!("FILL {b} {n} {seed}"))?;
            pair.sess.buf.as_mut_slice()[..n * b].fill(0);
        }
        XferOp::Write => {
            let buf = pair.sess.buf.as_mut_slice();
            for g in 0..n {
                pattern::fill(&mut buf[g * b..(g + 1) * b], seed, slot(g));
            }
        }
    }
    for t in 0..p.threads {
        let (li, ri) = indices(p, perm, t);
        let mut req = pair
            .sess
            .agent
            .make_xfer_req(op, lp, &li, rp, &ri, Some(opt))?;
        req.run(None)?;
    }
    Ok(match op {
        XferOp::Read => {
            let buf = pair.sess.buf.as_slice();
            (0..n).all(|g| pattern::check(&buf[g * b..(g + 1) * b], seed, slot(g)))
        }
        XferOp::Write => pair.target.ask(&format!("CHECK {b} {n} {seed}")).is_ok(),
    })
}

fn await_notifs(pair: &mut Pair, sent: usize) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = pair.target.ask("NOTIFS")?;
        let got: usize = r
            .strip_prefix("COUNT ")
            .ok_or_else(|| BenchError::peer(format!("bad NOTIFS reply {r:?}")))?
            .parse()?;
        if got >= sent {
            return Ok(true);
        }
        if Instant::now() > deadline {
            eprintln!("nixlbench: {got} of {sent} notifications arrived");
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
