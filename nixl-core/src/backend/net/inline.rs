//! Same-host and same-process transfers completed inside `post`, with the posting thread
//! doing one share of the bytes and worker threads the others. No completion object, no
//! progress-thread hand-off and no blocking wake-up on the critical path: the caller spins
//! (bounded, then yields) for the helpers' shares, which a short transfer never waits for.
//! When the workers are busy (many threads posting at once), the caller takes back the
//! shares no worker has started and moves them itself instead of waiting in the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::executor::Executor;
use super::{Mover, memory};
use crate::backend::{ResolvedDesc, Target, XferJob, XferOp};
use crate::status::{NixlError, Result};

/// Helpers' shared state: parts still running and the first error.
struct Parts {
    remaining: AtomicUsize,
    first_error: parking_lot::Mutex<Option<NixlError>>,
}

impl Parts {
    /// Moves one share and counts it done.
    fn run(&self, mover: &Mover, target: &Target, op: XferOp, share: &Share) {
        if let Err(e) = mover.move_bytes(target, op, &share.local, &share.remote, &|| false) {
            self.first_error.lock().get_or_insert(e);
        }
        self.remaining.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One share of the bytes, moved by whichever thread claims it first.
struct Share {
    local: Vec<ResolvedDesc>,
    remote: Vec<ResolvedDesc>,
    claimed: AtomicBool,
}

impl Share {
    fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }
}

/// Moves `job`'s bytes before returning: split into at most `executor.threads()` shares of at
/// least `split_min` bytes; the caller runs the first share itself.
pub(super) fn run(
    mover: &Mover,
    executor: Option<&Arc<Executor>>,
    job: &XferJob,
    split_min: u64,
) -> Result<()> {
    let threads = executor.map_or(1, |e| e.threads());
    if threads <= 1 || job.total_bytes < 2 * split_min {
        return mover.move_bytes(&job.target, job.op, &job.local, &job.remote, &|| false);
    }
    let mut parts = memory::split(job, threads, split_min);
    let Some(executor) = executor.filter(|_| parts.len() > 1) else {
        return mover.move_bytes(&job.target, job.op, &job.local, &job.remote, &|| false);
    };
    let (mine_l, mine_r) = parts.remove(0);
    let state = Arc::new(Parts {
        remaining: AtomicUsize::new(parts.len()),
        first_error: parking_lot::Mutex::new(None),
    });
    let shares: Vec<Arc<Share>> = parts
        .into_iter()
        .map(|(local, remote)| {
            Arc::new(Share {
                local,
                remote,
                claimed: AtomicBool::new(false),
            })
        })
        .collect();
    for share in &shares {
        let (state, mover, share) = (state.clone(), mover.clone(), share.clone());
        let (target, op) = (job.target.clone(), job.op);
        executor.spawn(move || {
            if share.claim() {
                state.run(&mover, &target, op, &share);
            }
        });
    }
    let mine = mover.move_bytes(&job.target, job.op, &mine_l, &mine_r, &|| false);
    for share in shares.iter().filter(|s| s.claim()) {
        state.run(mover, &job.target, job.op, share);
    }
    let mut spins = 0u32;
    while state.remaining.load(Ordering::Acquire) != 0 {
        spins = spins.saturating_add(1);
        if spins < 4096 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    mine?;
    match state.first_error.lock().take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::super::NetBackend;
    use crate::backend::{Backend, BackendContext, MemType, ResolvedDesc, Target, XferJob, XferOp};
    use crate::desc::Desc;
    use crate::registry::Region;
    use crate::status::Status;

    fn region(buf: &[u8], key: u64) -> Region {
        Region {
            desc: Desc {
                addr: buf.as_ptr() as u64,
                len: buf.len() as u64,
                dev_id: 0,
            },
            key,
            meta: Vec::new().into(),
            public: Vec::new().into(),
        }
    }

    fn resolved(buf: &[u8], key: u64) -> ResolvedDesc {
        ResolvedDesc {
            addr: buf.as_ptr() as u64,
            len: buf.len() as u64,
            dev_id: 0,
            key,
        }
    }

    /// Every worker is stuck in another task: `post` must move the shares nobody started
    /// itself rather than wait for a worker (without that it never returns).
    #[test]
    fn caller_moves_the_shares_busy_workers_have_not_started() {
        let ctx = BackendContext {
            agent_name: "inline-steal".into(),
            config: Default::default(),
            notifs: Default::default(),
        };
        let params = [("num_threads", "2"), ("split_min_bytes", "4096")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let backend = NetBackend::new(&ctx, &params).expect("backend");
        let executor = backend.executor().expect("executor");
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = std::sync::Arc::new(parking_lot::Mutex::new(release_rx));
        for _ in 0..executor.threads() {
            let rx = release_rx.clone();
            executor.spawn(move || {
                let _ = rx.lock().recv_timeout(Duration::from_secs(30));
            });
        }

        let src: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 + 3) as u8).collect();
        let dst = vec![0u8; src.len()];
        backend.register(MemType::Dram, &region(&src, 1)).unwrap();
        backend.register(MemType::Dram, &region(&dst, 2)).unwrap();
        let job = XferJob {
            op: XferOp::Write,
            local_mem: MemType::Dram,
            remote_mem: MemType::Dram,
            local: vec![resolved(&src, 1)].into(),
            remote: vec![resolved(&dst, 2)].into(),
            target: Target::Loopback,
            notif: None,
            total_bytes: src.len() as u64,
        };
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let outcome = backend.post(job).map(|c| c.status());
                let _ = done_tx.send(outcome);
            });
            let outcome = done_rx.recv_timeout(Duration::from_secs(10));
            // Unblock the workers whatever happened, so the test ends either way.
            for _ in 0..executor.threads() {
                let _ = release_tx.send(());
            }
            let outcome =
                outcome.expect("post waited for busy workers instead of moving the bytes");
            assert!(matches!(outcome, Ok(Status::Success)), "{outcome:?}");
        });
        assert_eq!(dst, src);
        backend.shutdown();
    }
}
