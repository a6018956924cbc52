//! What a planner sees once per adjustment interval: traffic, latencies (as samples, so that
//! percentiles and not only means are available), and per-replica load.

use serde::{Deserialize, Serialize};

use crate::replicas::ReplicaCounts;
use crate::stats;

/// Load of one ready prefill replica at the end of the interval.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PrefillLoad {
    /// Prompt tokens waiting to be prefilled (queued, not yet scheduled).
    pub queued_tokens: f64,
    /// Requests being prefilled or waiting on this replica.
    pub active_requests: u32,
}

/// Load of one ready decode replica at the end of the interval.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DecodeLoad {
    /// KV tokens held by running sequences.
    pub active_kv_tokens: f64,
    /// KV tokens of sequences waiting to be scheduled.
    pub queued_kv_tokens: f64,
    /// Running sequences.
    pub active_requests: u32,
}

/// Observations over one adjustment interval `(time − interval, time]`. Times in seconds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Observation {
    /// End of the interval.
    pub time: f64,
    /// Length of the interval.
    pub interval: f64,
    /// Requests that arrived during the interval.
    pub num_requests: u64,
    /// Input lengths (tokens) of the requests that arrived.
    pub isl: Vec<f64>,
    /// Output lengths (tokens) of the requests that finished.
    pub osl: Vec<f64>,
    /// Time to first token of the requests whose first token came in the interval.
    pub ttft: Vec<f64>,
    /// Mean inter-token latency of each request that finished.
    pub itl: Vec<f64>,
    /// End-to-end duration of each request that finished.
    pub request_duration: Vec<f64>,
    /// Fraction of prompt tokens served from the prefix cache, when known.
    pub kv_hit_rate: Option<f64>,
    /// One entry per ready prefill replica.
    pub prefill: Vec<PrefillLoad>,
    /// One entry per ready decode replica.
    pub decode: Vec<DecodeLoad>,
    /// Replicas by role and state at the end of the interval.
    pub replicas: ReplicaCounts,
}

impl Observation {
    /// Arrivals per second.
    pub fn arrival_rate(&self) -> f64 {
        if self.interval > 0.0 {
            self.num_requests as f64 / self.interval
        } else {
            0.0
        }
    }

    /// Mean input length, or `None` with no arrivals.
    pub fn mean_isl(&self) -> Option<f64> {
        stats::mean(&self.isl)
    }

    /// Mean output length, or `None` with no completions.
    pub fn mean_osl(&self) -> Option<f64> {
        stats::mean(&self.osl)
    }

    /// Mean TTFT, or `None` without samples.
    pub fn mean_ttft(&self) -> Option<f64> {
        stats::mean(&self.ttft)
    }

    /// Mean ITL, or `None` without samples.
    pub fn mean_itl(&self) -> Option<f64> {
        stats::mean(&self.itl)
    }

    /// Mean request duration, or `None` without samples.
    pub fn mean_request_duration(&self) -> Option<f64> {
        stats::mean(&self.request_duration)
    }

    /// Total queued prefill tokens over ready prefill replicas.
    pub fn queued_prefill_tokens(&self) -> f64 {
        self.prefill.iter().map(|p| p.queued_tokens).sum()
    }

    /// Total active decode KV tokens over ready decode replicas.
    pub fn active_decode_kv_tokens(&self) -> f64 {
        self.decode.iter().map(|d| d.active_kv_tokens).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        let obs = Observation {
            time: 60.0,
            interval: 30.0,
            num_requests: 90,
            isl: vec![1000.0, 3000.0],
            prefill: vec![
                PrefillLoad {
                    queued_tokens: 100.0,
                    active_requests: 1,
                },
                PrefillLoad {
                    queued_tokens: 50.0,
                    active_requests: 2,
                },
            ],
            ..Default::default()
        };
        assert_eq!(obs.arrival_rate(), 3.0);
        assert_eq!(obs.mean_isl(), Some(2000.0));
        assert_eq!(obs.mean_osl(), None);
        assert_eq!(obs.queued_prefill_tokens(), 150.0);
        assert_eq!(Observation::default().arrival_rate(), 0.0);
    }
}
