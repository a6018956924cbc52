//! A small fixed pool of worker threads for transfers that do not complete inline.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, unbounded};

type Task = Box<dyn FnOnce() + Send>;

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
                        while let Ok(task) = rx.recv() {
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
