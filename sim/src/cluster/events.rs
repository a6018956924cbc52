//! The discrete-event queue: a min-heap on (time, insertion order), so
//! events at equal times run in the order they were scheduled.

use crate::engine::RequestId;
use crate::kv_event::WorkerId;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Something that happens at a point of simulated time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A worker's pass ends.
    PassEnd(WorkerId),
    /// A prefilled request's KV cache reaches the decode pool.
    Handoff(RequestId),
    /// A starting replica becomes ready.
    WorkerReady(WorkerId),
}

#[derive(Debug)]
struct Entry {
    at_ms: f64,
    seq: u64,
    event: Event,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap.
        other
            .at_ms
            .total_cmp(&self.at_ms)
            .then(other.seq.cmp(&self.seq))
    }
}

/// Pending events.
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl EventQueue {
    pub(crate) fn push(&mut self, at_ms: f64, event: Event) {
        self.seq += 1;
        self.heap.push(Entry {
            at_ms,
            seq: self.seq,
            event,
        });
    }

    pub(crate) fn peek_time(&self) -> Option<f64> {
        self.heap.peek().map(|e| e.at_ms)
    }

    pub(crate) fn pop(&mut self) -> Option<(f64, Event)> {
        self.heap.pop().map(|e| (e.at_ms, e.event))
    }
}
