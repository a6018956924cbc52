//! A latency histogram updated with atomic adds only, encoded by prometheus-client.
//!
//! prometheus-client's own `Histogram` takes a mutex per observation, which every transfer to
//! one peer would share; values here are whole microseconds, so the sum is exact in a `u64`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds in µs: 10 µs doubling to about 10 s, like NIXL's defaults.
const BUCKETS: usize = 21;

fn upper(i: usize) -> u64 {
    10u64 << i
}

/// A shared handle on one histogram series.
#[derive(Clone, Debug, Default)]
pub(crate) struct MicrosHistogram(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    sum: AtomicU64,
    /// Per-bucket (not cumulative) counts; the last slot is `+Inf`.
    buckets: [AtomicU64; BUCKETS + 1],
}

impl MicrosHistogram {
    /// Records one value in microseconds.
    pub(crate) fn observe(&self, us: u64) {
        let i = (0..BUCKETS).find(|&i| us <= upper(i)).unwrap_or(BUCKETS);
        self.0.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.0.sum.fetch_add(us, Ordering::Relaxed);
    }
}

impl TypedMetric for MicrosHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for MicrosHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = (0..=BUCKETS)
            .map(|i| {
                let bound = if i < BUCKETS {
                    upper(i) as f64
                } else {
                    f64::INFINITY
                };
                (bound, self.0.buckets[i].load(Ordering::Relaxed))
            })
            .collect();
        // The count is the buckets' total, so a scrape racing an observation stays consistent.
        let count = buckets.iter().map(|b| b.1).sum();
        encoder.encode_histogram::<NoLabelSet>(
            self.0.sum.load(Ordering::Relaxed) as f64,
            count,
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_their_bucket() {
        let h = MicrosHistogram::default();
        for us in [0, 10, 11, 5_000, u64::MAX / 4] {
            h.observe(us);
        }
        let b: Vec<u64> =
            h.0.buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect();
        assert_eq!(b[0], 2, "0 and 10 are <= 10");
        assert_eq!(b[1], 1, "11 is <= 20");
        assert_eq!(b[9], 1, "5000 is <= 5120");
        assert_eq!(b[BUCKETS], 1, "huge values go to +Inf");
        assert_eq!(b.iter().sum::<u64>(), 5);
    }
}
