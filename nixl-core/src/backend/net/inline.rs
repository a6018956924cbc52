//! Same-host and same-process transfers completed inside `post`, with the posting thread
//! doing one share of the bytes and worker threads the others. No completion object, no
//! progress-thread hand-off and no blocking wake-up on the critical path: the caller spins
//! (bounded, then yields) for the helpers' shares, which a short transfer never waits for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::executor::Executor;
use super::{Mover, lock, memory};
use crate::backend::XferJob;
use crate::status::{NixlError, Result};

/// Helpers' shared state: parts still running and the first error.
struct Parts {
    remaining: AtomicUsize,
    first_error: std::sync::Mutex<Option<NixlError>>,
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
        first_error: std::sync::Mutex::new(None),
    });
    for (local, remote) in parts {
        let (state, mover, target, op) = (state.clone(), mover.clone(), job.target.clone(), job.op);
        executor.spawn(move || {
            if let Err(e) = mover.move_bytes(&target, op, &local, &remote, &|| false) {
                lock(&state.first_error).get_or_insert(e);
            }
            state.remaining.fetch_sub(1, Ordering::AcqRel);
        });
    }
    let mine = mover.move_bytes(&job.target, job.op, &mine_l, &mine_r, &|| false);
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
    match lock(&state.first_error).take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
