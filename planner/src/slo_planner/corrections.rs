//! Correction factors: how much slower (or faster) the engines are than the profile says,
//! learned from the latencies observed in steady intervals.

use crate::observation::Observation;
use crate::profile::PerfProfile;
use crate::sizing;
use crate::stats;

/// Correction factors are clamped to this range: a wild observation must not make the
/// planner drop (or multiply) capacity.
const CORRECTION_RANGE: (f64, f64) = (0.7, 2.5);
/// Weight of a new correction observation.
const CORRECTION_WEIGHT: f64 = 0.3;
/// Fewest latency samples in an interval to update a correction factor.
const MIN_CORRECTION_SAMPLES: usize = 20;
/// The prefill correction is learned only below this modelled utilisation, where the
/// queueing model is not dominated by its own approximation error.
const CORRECTION_MAX_UTILISATION: f64 = 0.8;

/// Observed-over-profiled latency ratios for each pool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Corrections {
    /// Prefill time multiplier.
    pub prefill: f64,
    /// Decode step-time multiplier.
    pub decode: f64,
    /// Whether the previous interval was free of transitions and backlog.
    was_calm: bool,
}

impl Default for Corrections {
    fn default() -> Self {
        Self {
            prefill: 1.0,
            decode: 1.0,
            was_calm: false,
        }
    }
}

impl Corrections {
    /// Blends in what `obs` says about the engines' speed, when the pools were steady.
    pub fn update(&mut self, profile: &PerfProfile, obs: &Observation, isl: &[f64], osl: &[f64]) {
        let blend = |old: f64, new: f64| {
            let new = new.clamp(CORRECTION_RANGE.0, CORRECTION_RANGE.1);
            old + CORRECTION_WEIGHT * (new - old)
        };
        let rate = obs.arrival_rate();
        let ready_prefill = obs.replicas.prefill.ready;
        // TTFTs of requests that queued behind a backlog (after a cold start or a burst)
        // say nothing about the engine's speed; learn only from a pool in steady state.
        let backlog_per_replica = obs.queued_prefill_tokens() / f64::from(ready_prefill.max(1));
        let calm = !obs.replicas.in_transition()
            && backlog_per_replica <= 2.0 * f64::from(profile.prefill.max_batched_tokens);
        // The TTFTs seen now belong to requests that arrived up to an interval ago, so the
        // previous interval must have been calm too.
        let steady = calm && self.was_calm;
        self.was_calm = calm;
        if steady && obs.ttft.len() >= MIN_CORRECTION_SAMPLES && ready_prefill > 0 {
            let (queue, services) =
                sizing::prefill_queue(&profile.prefill, isl, rate, ready_prefill, 1.0);
            if queue.utilisation() < CORRECTION_MAX_UTILISATION {
                // The median: robust to the few requests that met a momentary queue.
                let predicted = queue.latency_quantile(&services, 0.5);
                let observed = stats::quantile(&obs.ttft, 0.5).unwrap_or(predicted);
                if predicted.is_finite() && predicted > 0.0 {
                    self.prefill = blend(self.prefill, observed / predicted);
                }
            }
        }
        if steady && obs.itl.len() >= MIN_CORRECTION_SAMPLES && !obs.decode.is_empty() {
            let decode = &profile.decode;
            let kv = obs.active_decode_kv_tokens() / obs.decode.len() as f64;
            let seqs = obs
                .decode
                .iter()
                .map(|d| f64::from(d.active_requests))
                .sum::<f64>()
                / obs.decode.len() as f64;
            let context = if seqs > 0.0 {
                kv / seqs
            } else {
                stats::mean_or(isl, 0.0) + stats::mean_or(osl, 0.0) / 2.0
            };
            let predicted = decode.itl(kv / decode.max_kv_tokens, context);
            if let Some(observed) = obs.mean_itl() {
                self.decode = blend(self.decode, observed / predicted);
            }
        }
    }
}
