//! The oracle bound: a planner that knows the future arrivals. At each decision it sizes the
//! pools for the highest arrival rate (over one-interval windows, stepped by half an
//! interval) between now and the moment the next decision's replicas could be ready
//! (start-up + one interval), with the profile's exact capacities: prefill at the measured
//! saturated token rate, decode at the largest batch within the ITL target (Little's law).
//! No forecast error, no correction, no hysteresis; only the start-up delay and the
//! capacity model remain.

use planner::{Observation, PerfProfile, Planner, ReplicaTarget, SloTargets};
use sim::workload::Workload;

/// Sizing for the true future load.
pub struct Oracle {
    arrivals_s: Vec<f64>,
    interval: f64,
    startup: f64,
    /// Prefill capacity of one engine, req/s at the mean ISL.
    prefill_rps: f64,
    /// Decode capacity of one engine, req/s within the ITL target.
    decode_rps: f64,
    max: u32,
    /// Fraction of each engine's capacity the sizing may use at the planned peak (1: all).
    utilisation: f64,
    name: &'static str,
}

impl Oracle {
    /// An oracle over `workload`'s arrivals.
    pub fn new(
        workload: &Workload,
        profile: &PerfProfile,
        targets: SloTargets,
        interval: f64,
        startup: f64,
        max: u32,
    ) -> Self {
        let reqs = &workload.requests;
        let n = reqs.len().max(1) as f64;
        let mean_isl = reqs.iter().map(|r| r.input_length as f64).sum::<f64>() / n;
        let mean_osl = reqs.iter().map(|r| r.output_length as f64).sum::<f64>() / n;
        let (batch, itl) = profile
            .decode
            .max_batch_within(targets.itl, mean_isl + mean_osl / 2.0);
        Self {
            arrivals_s: reqs.iter().map(|r| r.arrival_ms / 1000.0).collect(),
            prefill_rps: profile.prefill.saturated_rate() / mean_isl.max(1.0),
            decode_rps: f64::from(batch) / (mean_osl.max(1.0) * itl),
            interval,
            startup,
            max,
            utilisation: 1.0,
            name: "oracle",
        }
    }

    /// The same foresight, sizing each engine to `utilisation` of its capacity at the peak
    /// (headroom for the queueing that a fully used engine builds); named `name`.
    pub fn with_utilisation(mut self, utilisation: f64, name: &'static str) -> Self {
        self.utilisation = utilisation.clamp(0.05, 1.0);
        self.name = name;
        self
    }

    /// Arrivals per second in `[from, from + interval)`.
    fn rate_at(&self, from: f64) -> f64 {
        let a = self.arrivals_s.partition_point(|&t| t < from);
        let b = self
            .arrivals_s
            .partition_point(|&t| t < from + self.interval);
        (b - a) as f64 / self.interval
    }

    /// Peak rate over `[now, now + startup + interval]`.
    pub fn peak_rate(&self, now: f64) -> f64 {
        let mut peak: f64 = 0.0;
        let mut from = now;
        while from + self.interval <= now + self.startup + self.interval + 1e-9 {
            peak = peak.max(self.rate_at(from));
            from += self.interval / 2.0;
        }
        peak
    }

    /// Replicas that carry `rate` req/s at the profile's capacities.
    pub fn split_for(&self, rate: f64) -> ReplicaTarget {
        let n = |need: f64| (need.ceil() as u32).clamp(1, self.max);
        let rate = rate / self.utilisation;
        ReplicaTarget::new(n(rate / self.prefill_rps), n(rate / self.decode_rps))
    }
}

impl Planner for Oracle {
    fn name(&self) -> &str {
        self.name
    }

    fn interval(&self) -> f64 {
        self.interval
    }

    fn decide(&mut self, obs: &Observation) -> ReplicaTarget {
        self.split_for(self.peak_rate(obs.time))
    }
}

/// A forecaster that knows the future arrivals: the rate of the interval-long window centred
/// where the forecast asks (observations are fed once per interval, so their count gives
/// the time). Used to run our planner's sizing on the oracle's knowledge.
pub struct TrueRate {
    arrivals_s: Vec<f64>,
    interval: f64,
    observed: usize,
}

impl TrueRate {
    /// True rates of `workload`, for a planner deciding every `interval` seconds.
    pub fn new(workload: &Workload, interval: f64) -> Self {
        Self {
            arrivals_s: workload
                .requests
                .iter()
                .map(|r| r.arrival_ms / 1000.0)
                .collect(),
            interval,
            observed: 0,
        }
    }
}

impl planner::Forecaster for TrueRate {
    fn observe(&mut self, _value: f64) {
        self.observed += 1;
    }

    fn forecast(&self, steps: f64) -> Option<f64> {
        if self.observed == 0 {
            return None;
        }
        // The latest observation covers the interval ending now; its centre is half an
        // interval back, and `steps` counts intervals from there.
        let now = self.observed as f64 * self.interval;
        let centre = now - self.interval / 2.0 + steps * self.interval;
        let from = centre - self.interval / 2.0;
        let a = self.arrivals_s.partition_point(|&t| t < from);
        let b = self
            .arrivals_s
            .partition_point(|&t| t < from + self.interval);
        Some((b - a) as f64 / self.interval)
    }

    fn error_rms(&self) -> f64 {
        0.0
    }

    fn anticipates_turns(&self) -> bool {
        true
    }
}
