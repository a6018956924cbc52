//! Positioned file I/O for one posted job, inline or on a small worker pool.

use parking_lot::Mutex;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, unbounded};

use crate::backend::{Completion, ResolvedDesc, SharedDescs, XferJob};
use crate::status::{NixlError, Result, err};
use crate::types::{MemType, XferOp};

/// Bytes handed to one `pread`/`pwrite` call at most (Linux caps a call just below 2 GiB).
const MAX_SYSCALL: usize = 1 << 30;
/// Work is split across pool threads in chunks of this many bytes.
const CHUNK: u64 = 4 << 20;

/// Which way the bytes flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    /// `pwrite` DRAM into the file.
    MemToFile { file_is_local: bool },
    /// `pread` the file into DRAM.
    FileToMem { file_is_local: bool },
}

impl Direction {
    /// Works out the direction from the job's memory types and operation.
    pub(super) fn of(job: &XferJob) -> Result<Direction> {
        let file_is_local = match (job.local_mem, job.remote_mem) {
            (MemType::Dram, MemType::File) => false,
            (MemType::File, MemType::Dram) => true,
            (l, r) => {
                return Err(err!(
                    NotSupported,
                    "the POSIX backend moves FILE <-> DRAM, not {l} -> {r}"
                ));
            }
        };
        // WRITE moves local -> remote, READ remote -> local.
        let into_file = match job.op {
            XferOp::Write => !file_is_local,
            XferOp::Read => file_is_local,
        };
        Ok(if into_file {
            Direction::MemToFile { file_is_local }
        } else {
            Direction::FileToMem { file_is_local }
        })
    }

    fn file_is_local(self) -> bool {
        match self {
            Direction::MemToFile { file_is_local } | Direction::FileToMem { file_is_local } => {
                file_is_local
            }
        }
    }
}

/// One job's descriptor pairs and direction.
pub(super) struct IoPlan {
    direction: Direction,
    local: SharedDescs,
    remote: SharedDescs,
}

/// A byte range of one descriptor pair.
#[derive(Clone, Copy)]
struct Piece {
    pair: usize,
    offset: u64,
    len: u64,
}

impl IoPlan {
    pub(super) fn new(direction: Direction, local: SharedDescs, remote: SharedDescs) -> Self {
        IoPlan {
            direction,
            local,
            remote,
        }
    }

    fn pair(&self, i: usize) -> (&ResolvedDesc, &ResolvedDesc) {
        if self.direction.file_is_local() {
            (&self.local[i], &self.remote[i])
        } else {
            (&self.remote[i], &self.local[i])
        }
    }

    /// Runs every pair on the calling thread and finishes the completion's single part.
    pub(super) fn run_all(&self, completion: &Completion) {
        let pieces = (0..self.local.len()).map(|pair| Piece {
            pair,
            offset: 0,
            len: self.local[pair].len,
        });
        completion.finish_part(self.run(completion, pieces));
    }

    fn run(&self, completion: &Completion, pieces: impl Iterator<Item = Piece>) -> Result<()> {
        if !completion.enter() {
            return Err(err!(Canceled, "the request was released"));
        }
        let result = pieces.into_iter().try_for_each(|p| {
            if completion.is_canceled() {
                return Err(err!(Canceled, "the request was released"));
            }
            self.run_piece(p)
        });
        completion.leave();
        result
    }

    fn run_piece(&self, p: Piece) -> Result<()> {
        let (file, mem) = self.pair(p.pair);
        let fd = super::fd::fd_of(file.dev_id)?;
        let file_off = file
            .addr
            .checked_add(p.offset)
            .filter(|o| {
                o.checked_add(p.len)
                    .is_some_and(|end| end <= i64::MAX as u64)
            })
            .ok_or_else(|| err!(InvalidParam, "file range at offset {} overflows", file.addr))?;
        let len = usize::try_from(p.len)
            .map_err(|_| err!(InvalidParam, "length {} does not fit in memory", p.len))?;
        let buf = (mem.addr + p.offset) as *mut u8;
        match self.direction {
            Direction::FileToMem { .. } => pread_exact(fd, buf, len, file_off),
            Direction::MemToFile { .. } => pwrite_all(fd, buf, len, file_off),
        }
    }

    /// Splits the job into at most `parts` runs of pieces of similar size.
    fn split(&self, parts: usize) -> Vec<Vec<Piece>> {
        let mut pieces = Vec::new();
        for pair in 0..self.local.len() {
            let len = self.local[pair].len;
            let mut offset = 0;
            while offset < len || (len == 0 && offset == 0) {
                let n = (len - offset).min(CHUNK);
                pieces.push(Piece {
                    pair,
                    offset,
                    len: n,
                });
                if n == 0 {
                    break;
                }
                offset += n;
            }
        }
        let parts = parts.clamp(1, pieces.len().max(1));
        let per = pieces.len().div_ceil(parts).max(1);
        pieces.chunks(per).map(<[Piece]>::to_vec).collect()
    }
}

fn os_error(what: &str, fd: i32, len: usize, off: u64, e: std::io::Error) -> NixlError {
    err!(
        Backend,
        "{what} of {len} bytes at offset {off} of fd {fd} failed: {e}"
    )
}

/// Reads exactly `len` bytes at `off`; a file that ends early is an error, not a short copy.
pub(crate) fn pread_exact(fd: i32, buf: *mut u8, len: usize, off: u64) -> Result<()> {
    let short = |done: usize| {
        err!(
            Backend,
            "short read: fd {fd} ends at offset {}, {} bytes short of the {len} requested at offset {off}",
            off + done as u64,
            len - done
        )
    };
    positioned_loop("pread", fd, len, off, short, |done, want, at| {
        // SAFETY: `buf..buf+len` is DRAM registered with this agent; the caller of
        // `register_mem` promised it stays valid and writable while transfers may run, and
        // the request's completion keeps release waiting until this call returns.
        unsafe { libc::pread(fd, buf.add(done).cast(), want, at) }
    })
}

/// Writes all `len` bytes at `off`.
pub(crate) fn pwrite_all(fd: i32, buf: *const u8, len: usize, off: u64) -> Result<()> {
    let stuck = |done: usize| {
        err!(
            Backend,
            "pwrite to fd {fd} wrote nothing at offset {}",
            off + done as u64
        )
    };
    positioned_loop("pwrite", fd, len, off, stuck, |done, want, at| {
        // SAFETY: `buf..buf+len` is registered DRAM, valid for reads (see `pread_exact`).
        unsafe { libc::pwrite(fd, buf.add(done).cast(), want, at) }
    })
}

/// Repeats a positioned syscall `call(done, want, file_offset)` until `len` bytes are moved,
/// in pieces of at most `MAX_SYSCALL`, retrying EINTR. A call that moves nothing (end of
/// file, a full device) fails with `nothing_moved(done)`.
fn positioned_loop(
    what: &str,
    fd: i32,
    len: usize,
    off: u64,
    nothing_moved: impl Fn(usize) -> NixlError,
    mut call: impl FnMut(usize, usize, libc::off_t) -> isize,
) -> Result<()> {
    let mut done = 0usize;
    while done < len {
        let want = (len - done).min(MAX_SYSCALL);
        let n = call(done, want, (off + done as u64) as libc::off_t);
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(os_error(what, fd, len, off, e));
        }
        if n == 0 {
            return Err(nothing_moved(done));
        }
        done += n as usize;
    }
    Ok(())
}

type Task = Box<dyn FnOnce() + Send>;

/// Worker threads, started on first use and stopped by `shutdown`.
pub(super) struct Pool {
    threads: usize,
    tx: Mutex<Option<Sender<Task>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    started: OnceLock<()>,
}

impl Pool {
    pub(super) fn new(threads: usize) -> Self {
        Pool {
            threads,
            tx: Mutex::new(None),
            workers: Mutex::new(Vec::new()),
            started: OnceLock::new(),
        }
    }

    fn start(&self) {
        self.started.get_or_init(|| {
            let (tx, rx) = unbounded::<Task>();
            let mut workers = self.workers.lock();
            for i in 0..self.threads {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("nixl-posix-{i}"))
                    .spawn(move || {
                        while let Ok(task) = rx.recv() {
                            task();
                        }
                    });
                if let Ok(handle) = spawned {
                    workers.push(handle);
                }
            }
            *self.tx.lock() = Some(tx);
        });
    }

    /// Splits `plan` across the workers and returns its completion.
    pub(super) fn submit(&self, plan: IoPlan) -> Arc<Completion> {
        self.start();
        let parts = plan.split(self.threads);
        let completion = Arc::new(Completion::new(parts.len()));
        let plan = Arc::new(plan);
        let tx = self.tx.lock().clone();
        for pieces in parts {
            let (c, p) = (completion.clone(), plan.clone());
            let task = move || {
                let result = p.run(&c, pieces.into_iter());
                c.finish_part(result);
            };
            match &tx {
                Some(tx) if !self.workers.lock().is_empty() => {
                    // Workers hold the receiver until `shutdown` drops the sender.
                    let _ = tx.send(Box::new(task));
                }
                // No worker could be started (or the backend is shut down): run inline.
                _ => task(),
            }
        }
        completion
    }

    /// Lets queued work finish and joins the workers.
    pub(super) fn shutdown(&self) {
        self.tx.lock().take();
        let workers = std::mem::take(&mut *self.workers.lock());
        let me = std::thread::current().id();
        for w in workers {
            if w.thread().id() != me {
                let _ = w.join();
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown();
    }
}
