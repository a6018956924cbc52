//! Turning an engine's batch stream into indexed events for one worker.
//!
//! vLLM numbers its ZMQ messages (a per-publisher sequence number), not its events. This
//! assigns the per-worker monotonic event ids the index expects and reports batches
//! that never arrived, so the caller can ask for a replay or re-sync from a dump.

use super::vllm::EngineBatch;
use crate::index::{ApplyOutcome, Indexer, KvEvent};
use crate::worker::WorkerId;

/// What ingesting one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamReport {
    /// Engine sequence numbers skipped before this batch (`start..end`).
    pub lost_batches: Option<std::ops::Range<u64>>,
    /// Events applied.
    pub applied: usize,
    /// Stored events dropped because their parent block was unknown.
    pub parent_missing: usize,
}

/// One engine's event stream into the index.
#[derive(Debug, Clone)]
pub struct EngineStream {
    worker_id: u64,
    last_sequence: Option<u64>,
    next_event_id: u64,
}

impl EngineStream {
    /// A stream for engine `worker_id` (its DP rank comes from each batch).
    pub fn new(worker_id: u64) -> Self {
        EngineStream {
            worker_id,
            last_sequence: None,
            next_event_id: 0,
        }
    }

    /// Applies one batch that arrived with engine sequence number `sequence`.
    pub fn ingest(
        &mut self,
        index: &mut Indexer,
        sequence: u64,
        batch: EngineBatch,
    ) -> StreamReport {
        let mut report = StreamReport::default();
        if let Some(last) = self.last_sequence {
            if sequence <= last {
                return report; // A replayed batch we already have.
            }
            if sequence > last + 1 {
                report.lost_batches = Some(last + 1..sequence);
            }
        }
        self.last_sequence = Some(sequence);
        let worker = WorkerId::with_rank(self.worker_id, batch.dp_rank.unwrap_or(0));
        for (data, tier) in batch.events.into_iter().zip(batch.tiers) {
            let event = KvEvent {
                tier,
                event_id: self.next_event_id,
                data,
            };
            self.next_event_id += 1;
            match index.apply(worker, &event).outcome {
                ApplyOutcome::Applied => report.applied += 1,
                ApplyOutcome::ParentMissing => report.parent_missing += 1,
                ApplyOutcome::Duplicate => {}
            }
        }
        report
    }
}
