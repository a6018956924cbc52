//! Waiting without polling: `Agent::wait_xfer`, `xfer_ready`, `wait_notifs`, `notif_ready`.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use common::*;
use nixl_core::*;

const MIB: usize = 1 << 20;

/// Wakes a parked thread: the smallest executor, enough to drive one future.
struct Unpark(Thread);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives `fut` to completion on this thread; counts how often it was polled.
fn block_on<F: Future>(fut: F) -> (F::Output, usize) {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return (v, polls);
        }
        std::thread::park_timeout(Duration::from_secs(30));
    }
}

fn pair(len: usize) -> (Agent, Agent, Vec<u8>, Vec<u8>) {
    let a = agent_with("a", AgentConfig::default(), &tcp_params());
    let b = agent_with("b", AgentConfig::default(), &tcp_params());
    let abuf = filled(len, 1);
    let bbuf = filled(len, 2);
    register(&a, &abuf);
    register(&b, &bbuf);
    a.load_remote_md(&b.local_md().unwrap()).unwrap();
    (a, b, abuf, bbuf)
}

#[test]
fn wait_xfer_blocks_until_done_and_moves_the_bytes() {
    let (a, b, abuf, bbuf) = pair(32 * MIB);
    let len = abuf.len() as u64;
    let req = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&abuf), len)]),
            &dram(&[(addr(&bbuf), len)]),
            "b",
            Some(&OptArgs::with_notif("w")),
        )
        .unwrap();
    assert_eq!(
        a.wait_xfer(&req, None).unwrap_err().status(),
        Status::NotPosted
    );
    a.post_xfer_req(&req, None).unwrap();
    assert_eq!(a.wait_xfer(&req, None).unwrap(), Status::Success);
    assert!(bbuf == abuf);
    assert!(b.wait_notifs(Some(Duration::from_secs(10))));
    let mut notifs = NotifMap::new();
    b.get_notifs(&mut notifs).unwrap();
    assert_eq!(notifs["a"], vec![b"w".to_vec()]);
    // Done stays done.
    assert_eq!(
        a.wait_xfer(&req, Some(Duration::ZERO)).unwrap(),
        Status::Success
    );
}

#[test]
fn the_future_resolves_after_the_transfer_with_few_polls() {
    let (a, _b, abuf, bbuf) = pair(64 * MIB);
    let len = abuf.len() as u64;
    let req = a
        .create_xfer_req(
            XferOp::Read,
            &dram(&[(addr(&abuf), len)]),
            &dram(&[(addr(&bbuf), len)]),
            "b",
            None,
        )
        .unwrap();
    assert!(a.xfer_ready(&req).is_err(), "not posted yet");
    a.post_xfer_req(&req, None).unwrap();
    let ((), polls) = block_on(a.xfer_ready(&req).unwrap());
    assert_eq!(a.xfer_status(&req).unwrap(), Status::Success);
    assert!(abuf == bbuf);
    // A woken future is polled again, not spun: a handful of polls (spurious unparks allowed).
    assert!(polls < 100, "{polls} polls");
}

#[test]
fn notification_waits_time_out_and_wake() {
    let (a, b, _abuf, _bbuf) = pair(4096);
    let start = Instant::now();
    assert!(!b.wait_notifs(Some(Duration::from_millis(20))));
    assert!(start.elapsed() >= Duration::from_millis(20));
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        a.gen_notif("b", b"hello", None).unwrap();
        a
    });
    let ((), _) = block_on(b.notif_ready());
    let mut notifs = NotifMap::new();
    b.get_notifs(&mut notifs).unwrap();
    assert_eq!(notifs["a"], vec![b"hello".to_vec()]);
    drop(sender.join().unwrap());
}

#[test]
fn a_wait_times_out_while_the_transfer_runs_then_release_is_safe() {
    let (a, _b, abuf, bbuf) = pair(256 * MIB);
    let len = abuf.len() as u64;
    let req = a
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&abuf), len)]),
            &dram(&[(addr(&bbuf), len)]),
            "b",
            None,
        )
        .unwrap();
    a.post_xfer_req(&req, None).unwrap();
    let status = a.wait_xfer(&req, Some(Duration::from_micros(1))).unwrap();
    assert!(matches!(status, Status::InProg | Status::Success));
    a.release_xfer_req(req).unwrap();
}

#[test]
fn cancel_wakes_a_waiter_and_returns_once_the_memory_is_left_alone() {
    // The waiting thread holds the request too, so dropping it elsewhere would not cancel:
    // `cancel_xfer_req` does, waking the waiter (CANCELED) and returning only once no byte of
    // the local buffer is written any more.
    let (a, _b, abuf, bbuf) = pair(256 * MIB);
    let len = abuf.len() as u64;
    let req = a
        .create_xfer_req(
            XferOp::Read,
            &dram(&[(addr(&abuf), len)]),
            &dram(&[(addr(&bbuf), len)]),
            "b",
            None,
        )
        .unwrap();
    a.post_xfer_req(&req, None).unwrap();
    let outcome = std::thread::scope(|s| {
        let waiter = s.spawn(|| a.wait_xfer(&req, None));
        a.cancel_xfer_req(&req).unwrap();
        let after = abuf.clone();
        let outcome = waiter.join().unwrap();
        assert!(
            abuf == after,
            "the transfer kept writing after cancel returned"
        );
        outcome
    });
    match outcome {
        Ok(Status::Success) => {}
        Err(e) => assert_eq!(e.status(), Status::Canceled),
        other => panic!("unexpected {other:?}"),
    }
    a.release_xfer_req(req).unwrap();
}
