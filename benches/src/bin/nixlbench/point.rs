//! One measured configuration and its result.

use serde::{Deserialize, Serialize};

/// A configuration to measure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    /// Workload label (`sweep`, `vllm`, ...).
    pub name: String,
    /// READ or WRITE.
    pub op: String,
    /// Descriptor size in bytes.
    pub block: usize,
    /// Descriptors per request (per thread).
    pub batch: usize,
    /// Threads posting on the one agent.
    pub threads: usize,
    /// Timed iterations per thread.
    pub iters: usize,
    /// Untimed iterations first.
    pub warmup: usize,
    /// Attach a notification to each request.
    pub notif: bool,
    /// Verify the data afterwards.
    pub check: bool,
    /// Seed of the remote shuffle and data pattern.
    pub seed: u64,
}

impl Point {
    /// Bytes per request per thread.
    pub fn request_bytes(&self) -> usize {
        self.block * self.batch
    }

    /// Bytes of buffer each side needs.
    pub fn buffer_bytes(&self) -> usize {
        self.request_bytes() * self.threads
    }
}

/// Measured outcome of a point on one library.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// Library label.
    pub lib: String,
    /// Aggregate GB/s over the timed phase (all threads).
    pub gbps: f64,
    /// Mean post→complete time per request, µs.
    pub avg_lat_us: f64,
    /// `make_xfer_req` time, mean and p99, µs.
    pub avg_prep_us: f64,
    /// p99 of the above.
    pub p99_prep_us: f64,
    /// `post_xfer_req` time, mean, µs.
    pub avg_post_us: f64,
    /// p99 of the above.
    pub p99_post_us: f64,
    /// post→complete, mean, µs.
    pub avg_tx_us: f64,
    /// p99 of the above.
    pub p99_tx_us: f64,
    /// Time to prepare both descriptor lists, µs.
    pub prep_lists_us: f64,
    /// Data verified (None when not checked).
    pub verified: Option<bool>,
    /// Every notification arrived (None when none were sent).
    pub notifs_ok: Option<bool>,
    /// Failure, if the point could not run.
    pub error: Option<String>,
}

impl Outcome {
    /// Joins the rounds of one point (`(iterations, outcome)` each, `bytes` per iteration):
    /// bandwidth over the summed wall time, means weighted by iterations, p99s the highest
    /// round's (an upper bound), checks failed if any round failed. `None` for no rounds.
    pub fn combine(rounds: &[(usize, Outcome)], bytes: usize) -> Option<Outcome> {
        let (_, first) = rounds.first()?;
        let iters: usize = rounds.iter().map(|(n, _)| n).sum();
        let wall: f64 = rounds
            .iter()
            .filter(|(_, o)| o.gbps > 0.0)
            .map(|(n, o)| (n * bytes) as f64 / 1e9 / o.gbps)
            .sum();
        let mean = |f: fn(&Outcome) -> f64| {
            rounds.iter().map(|(n, o)| *n as f64 * f(o)).sum::<f64>() / iters.max(1) as f64
        };
        let max = |f: fn(&Outcome) -> f64| rounds.iter().map(|(_, o)| f(o)).fold(0.0, f64::max);
        let all = |f: fn(&Outcome) -> Option<bool>| {
            rounds
                .iter()
                .filter_map(|(_, o)| f(o))
                .reduce(|a, b| a && b)
        };
        Some(Outcome {
            lib: first.lib.clone(),
            gbps: if wall > 0.0 {
                (iters * bytes) as f64 / 1e9 / wall
            } else {
                0.0
            },
            avg_lat_us: mean(|o| o.avg_lat_us),
            avg_prep_us: mean(|o| o.avg_prep_us),
            p99_prep_us: max(|o| o.p99_prep_us),
            avg_post_us: mean(|o| o.avg_post_us),
            p99_post_us: max(|o| o.p99_post_us),
            avg_tx_us: mean(|o| o.avg_tx_us),
            p99_tx_us: max(|o| o.p99_tx_us),
            prep_lists_us: mean(|o| o.prep_lists_us),
            verified: all(|o| o.verified),
            notifs_ok: all(|o| o.notifs_ok),
            error: rounds.iter().find_map(|(_, o)| o.error.clone()),
        })
    }
}

/// Mean and p99 of samples in seconds, returned in µs.
pub fn stats_us(samples: &mut [f64]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort_by(f64::total_cmp);
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let idx = ((samples.len() as f64 * 0.99).ceil() as usize).clamp(1, samples.len()) - 1;
    (mean * 1e6, samples[idx] * 1e6)
}

#[cfg(test)]
mod tests {
    use super::Outcome;

    fn round(gbps: f64, tx: f64, verified: Option<bool>) -> Outcome {
        Outcome {
            lib: "x".into(),
            gbps,
            avg_tx_us: tx,
            p99_tx_us: tx * 2.0,
            verified,
            ..Default::default()
        }
    }

    #[test]
    fn rounds_combine_over_summed_wall_time() {
        // 2 iterations of 1 GB at 1 GB/s (2 s) and 2 at 4 GB/s (0.5 s): 4 GB in 2.5 s.
        let rounds = [
            (2, round(1.0, 10.0, None)),
            (2, round(4.0, 30.0, Some(true))),
        ];
        let o = Outcome::combine(&rounds, 1_000_000_000).unwrap();
        assert!((o.gbps - 1.6).abs() < 1e-9, "{}", o.gbps);
        assert!((o.avg_tx_us - 20.0).abs() < 1e-9);
        assert_eq!(o.p99_tx_us, 60.0);
        assert_eq!(o.verified, Some(true));
        let failed = [
            (1, round(1.0, 1.0, Some(false))),
            (1, round(1.0, 1.0, None)),
        ];
        assert_eq!(Outcome::combine(&failed, 1).unwrap().verified, Some(false));
        assert!(Outcome::combine(&[], 1).is_none());
    }
}
