//! Many threads on one agent while another thread loads and invalidates metadata.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use nixl_core::*;

const THREADS: usize = 8;
const BLOCK: usize = 64 << 10;

#[test]
fn eight_posting_threads_and_a_metadata_churner() {
    let a = Arc::new(agent("ca"));
    let b = agent("cb");
    let c = agent("cc");
    let src: Vec<Vec<u8>> = (0..THREADS).map(|t| filled(BLOCK, t as u64 + 1)).collect();
    let dst = vec![0u8; BLOCK * THREADS];
    let churn_buf = vec![0u8; 4096];
    for s in &src {
        register(&a, s);
    }
    register(&b, &dst);
    register(&c, &churn_buf);
    a.load_remote_md(&b.local_md().unwrap()).unwrap();
    let c_md = c.local_md().unwrap();
    let dst_addr = addr(&dst);

    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let churner = {
        let (a, stop, barrier) = (a.clone(), stop.clone(), barrier.clone());
        std::thread::spawn(move || {
            barrier.wait();
            let mut rounds = 0;
            while !stop.load(Ordering::Acquire) {
                a.load_remote_md(&c_md).unwrap();
                let _ = a.check_remote_md("cc", &XferDescList::new(MemType::Dram));
                a.invalidate_remote_md("cc").unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (a, barrier, src_addr) = (a.clone(), barrier.clone(), addr(&src[t]));
            std::thread::spawn(move || {
                barrier.wait();
                let local = dram(&[(src_addr, BLOCK as u64)]);
                let remote = dram(&[(dst_addr + (t * BLOCK) as u64, BLOCK as u64)]);
                let deadline = Instant::now() + Duration::from_millis(500);
                let mut posts = 0;
                while Instant::now() < deadline || posts < 20 {
                    let msg = format!("t{t}-{posts}");
                    let req = a
                        .create_xfer_req(
                            XferOp::Write,
                            &local,
                            &remote,
                            "cb",
                            Some(&OptArgs::with_notif(msg)),
                        )
                        .unwrap();
                    assert_eq!(run(&a, &req).unwrap(), Status::Success);
                    posts += 1;
                }
                posts
            })
        })
        .collect();
    let posts: Vec<usize> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    stop.store(true, Ordering::Release);
    let rounds = churner.join().unwrap();
    assert!(rounds > 0, "the churner ran");
    let total: usize = posts.iter().sum();
    let notifs = wait_notifs(&b, total);
    assert_eq!(
        notifs["ca"].len(),
        total,
        "one notification per post, none lost or duplicated"
    );
    for (t, s) in src.iter().enumerate() {
        assert!(
            dst[t * BLOCK..(t + 1) * BLOCK] == s[..],
            "thread {t}'s block"
        );
        for i in 0..posts[t] {
            assert!(notifs["ca"].contains(&format!("t{t}-{i}").into_bytes()));
        }
    }
}

#[test]
fn one_request_polled_by_many_threads() {
    let a = Arc::new(agent("pa"));
    let b = agent("pb");
    let src = filled(32 << 20, 3);
    let dst = vec![0u8; 32 << 20];
    register(&a, &src);
    register(&b, &dst);
    a.load_remote_md(&b.local_md().unwrap()).unwrap();
    let req = Arc::new(
        a.create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&src), src.len() as u64)]),
            &dram(&[(addr(&dst), dst.len() as u64)]),
            "pb",
            None,
        )
        .unwrap(),
    );
    a.post_xfer_req(&req, None).unwrap();
    let pollers: Vec<_> = (0..4)
        .map(|_| {
            let (a, req) = (a.clone(), req.clone());
            std::thread::spawn(move || {
                while a.xfer_status(&req).unwrap() == Status::InProg {}
                a.xfer_status(&req).unwrap()
            })
        })
        .collect();
    for p in pollers {
        assert_eq!(p.join().unwrap(), Status::Success);
    }
    assert!(src == dst);
}

#[test]
fn releasing_an_in_flight_request_stops_touching_memory() {
    let a = agent("ra");
    let b = agent_with("rb", AgentConfig::default(), &Params::new());
    let src = filled(64 << 20, 1);
    let mut dst = vec![0u8; 64 << 20];
    register(&a, &src);
    let dst_reg = reg_list(&[(addr(&dst), dst.len() as u64)]);
    // A write that outlives the release (or the agent) would change `dst` between the two
    // checksums: deregistering it at b waits for every copy into it still running, so the
    // second checksum sees all of them (no guessed sleep).
    let settled_after = |what: &str, dst: &[u8], b: &Agent| {
        let before = checksum(dst);
        b.deregister_mem(&dst_reg, None).unwrap();
        assert_eq!(checksum(dst), before, "{what}: dst changed afterwards");
    };
    for round in 0..6u8 {
        // Nothing runs into dst here (the last round ended with its deregistration).
        dst.fill(round.wrapping_mul(37) | 1);
        register(&b, &dst);
        if round > 0 {
            // Forget the deregistered region: a fresh load names only the new one.
            a.invalidate_remote_md("rb").unwrap();
        }
        a.load_remote_md(&b.local_md().unwrap()).unwrap();
        let req = a
            .create_xfer_req(
                XferOp::Write,
                &dram(&[(addr(&src), src.len() as u64)]),
                &dram(&[(addr(&dst), dst.len() as u64)]),
                "rb",
                None,
            )
            .unwrap();
        a.post_xfer_req(&req, None).unwrap();
        if round < 5 {
            a.release_xfer_req(req).unwrap();
            settled_after("release", &dst, &b);
        } else {
            // Dropping the agent with a transfer in flight is clean too: its shutdown
            // cancels and waits, and the request can still be released afterwards.
            drop(a);
            settled_after("agent drop", &dst, &b);
            drop(req);
            break;
        }
    }
}
