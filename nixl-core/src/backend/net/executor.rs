//! A small fixed pool of worker threads for transfers that do not complete inline.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, unbounded};

type Task = Box<dyn FnOnce() + Send>;

/// Polls this many times (about 50 µs) for the next task before sleeping: a blocking wake-up
/// costs tens of microseconds on an idle vCPU, and back-to-back transfers hand over sooner.
const SPIN_POLLS: u32 = 2000;

/// The next task: a bounded spin on the queue, then a blocking wait. `None` once closed.
fn next_task(rx: &Receiver<Task>) -> Option<Task> {
    for _ in 0..SPIN_POLLS {
        match rx.try_recv() {
            Ok(task) => return Some(task),
            Err(crossbeam_channel::TryRecvError::Empty) => std::hint::spin_loop(),
            Err(crossbeam_channel::TryRecvError::Disconnected) => return None,
        }
    }
    rx.recv().ok()
}

/// Worker threads fed by a channel; dropping the pool lets queued tasks finish and joins.
pub struct Executor {
    tx: Option<Sender<Task>>,
    workers: Vec<JoinHandle<()>>,
}

impl Executor {
    /// Starts `threads` workers named after `name`.
    pub fn new(name: &str, threads: usize) -> Self {
        let (tx, rx) = unbounded::<Task>();
        let workers = (0..threads.max(1))
            .map(|i| {
                let rx: Receiver<Task> = rx.clone();
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || {
                        while let Some(task) = next_task(&rx) {
                            task();
                        }
                    })
                    .expect("cannot spawn a transfer worker thread")
            })
            .collect();
        Executor {
            tx: Some(tx),
            workers,
        }
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Queues a task.
    pub fn spawn(&self, task: impl FnOnce() + Send + 'static) {
        if let Some(tx) = &self.tx {
            // Workers only stop after `tx` is dropped, so the send cannot fail here.
            let _ = tx.send(Box::new(task));
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.tx.take();
        let me = std::thread::current().id();
        for w in self.workers.drain(..) {
            // A worker may drop the last reference to its own pool; never join oneself.
            if w.thread().id() != me {
                let _ = w.join();
            }
        }
    }
}
