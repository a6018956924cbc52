//! The fast path between decisions. A step in the load shows in the arrivals and in the
//! prefill queue seconds after it happens, while the next regular decision may be up to an
//! interval away; with a start-up delay of a few intervals every second of reaction counts.
//! These tests say when a partial observation is an emergency; the planner then re-plans
//! upwards only (a scale-down always waits for a regular decision).

use crate::observation::Observation;
use crate::profile::{DecodeProfile, PrefillProfile};

/// Poisson z-score above which the arrivals since the last decision count as a surge over
/// the rate that decision planned for. At 3 a calm load at the planned rate raises a false
/// alarm on about 0.1% of the checks; a false alarm costs at most a replica started early.
pub(super) const SURGE_Z: f64 = 3.0;
/// Fewest seconds of arrivals before a surge is judged: a count over less is mostly noise.
pub(super) const MIN_ELAPSED_S: f64 = 1.0;
/// A prefill queue whose wait exceeds this fraction of the TTFT target is an emergency:
/// requests joining it now miss the target. (At half the target, Poisson bursts at a peak
/// raised alarms whose replicas came only after the burst had cleared.)
pub(super) const BACKLOG_WAIT_FRACTION: f64 = 1.0;

/// What a partial observation showed.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct Alarm {
    /// Arrivals significantly above the planned rate.
    pub surge: bool,
    /// Prefill queue wait above [`BACKLOG_WAIT_FRACTION`] of the TTFT target.
    pub backlog: bool,
    /// Decode replicas' predicted ITL at their current load above the target.
    pub slow_decode: bool,
}

impl Alarm {
    /// Whether anything calls for a re-plan before the next decision.
    pub fn any(&self) -> bool {
        self.surge || self.backlog || self.slow_decode
    }
}

/// Whether `arrivals` in `elapsed` seconds are more than [`SURGE_Z`] Poisson standard
/// deviations above `planned_rate` (plus one arrival, so that a handful of expected
/// arrivals cannot trigger it).
pub(super) fn arrival_surge(arrivals: u64, elapsed: f64, planned_rate: f64) -> bool {
    if elapsed < MIN_ELAPSED_S {
        return false;
    }
    let expected = planned_rate.max(0.0) * elapsed;
    arrivals as f64 > expected + SURGE_Z * expected.sqrt() + 1.0
}

/// Seconds a prompt joining the mean ready prefill replica waits for the queued work, at
/// the engine's batched rate (full passes). Infinite when work is queued and none is ready.
pub(super) fn prefill_wait(obs: &Observation, profile: &PrefillProfile, correction: f64) -> f64 {
    let queued = obs.queued_prefill_tokens();
    if queued <= 0.0 {
        return 0.0;
    }
    if obs.prefill.is_empty() {
        return f64::INFINITY;
    }
    let mbt = f64::from(profile.max_batched_tokens.max(1));
    let seconds_per_token = profile.ttft(mbt) / mbt * correction;
    queued / obs.prefill.len() as f64 * seconds_per_token
}

/// Predicted ITL of the mean ready decode replica at its current load, if any is ready and
/// running sequences.
pub(super) fn decode_itl(
    obs: &Observation,
    profile: &DecodeProfile,
    correction: f64,
) -> Option<f64> {
    let seqs: u32 = obs.decode.iter().map(|d| d.active_requests).sum();
    if obs.decode.is_empty() || seqs == 0 {
        return None;
    }
    let kv = obs.active_decode_kv_tokens();
    let per_replica = kv / obs.decode.len() as f64;
    let context = kv / f64::from(seqs);
    Some(profile.itl(per_replica / profile.max_kv_tokens, context) * correction)
}

/// Fewest decode replicas in `1..=max` over which the sequences running now would decode
/// within `itl_target` (at least the ready count: this only ever adds). The load keeps
/// growing during a surge, so this is a floor, not a plan.
pub(super) fn decode_replicas_for_load(
    obs: &Observation,
    profile: &DecodeProfile,
    correction: f64,
    itl_target: f64,
    max: u32,
) -> u32 {
    let ready = obs.decode.len() as u32;
    let seqs: u32 = obs.decode.iter().map(|d| d.active_requests).sum();
    if seqs == 0 {
        return ready;
    }
    let kv = obs.active_decode_kv_tokens();
    let context = kv / f64::from(seqs);
    (ready.max(1)..=max.max(ready))
        .find(|&d| {
            let usage = kv / f64::from(d) / profile.max_kv_tokens;
            profile.itl(usage, context) * correction <= itl_target
        })
        .unwrap_or(max.max(ready))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::DecodeLoad;
    use crate::profile::tests::polynomial_like_profile;

    #[test]
    fn decode_load_floor_spreads_a_heavy_load() {
        let profile = polynomial_like_profile().decode;
        let target = 0.03;
        let load = |kv_share: f64, seqs: u32| Observation {
            decode: vec![
                DecodeLoad {
                    active_kv_tokens: kv_share * profile.max_kv_tokens,
                    queued_kv_tokens: 0.0,
                    active_requests: seqs,
                };
                2
            ],
            ..Observation::default()
        };
        let light = load(0.05, 10);
        assert!(decode_itl(&light, &profile, 1.0).unwrap() <= target);
        assert_eq!(
            decode_replicas_for_load(&light, &profile, 1.0, target, 16),
            2
        );
        let heavy = load(0.85, 200);
        assert!(decode_itl(&heavy, &profile, 1.0).unwrap() > target);
        assert!(decode_replicas_for_load(&heavy, &profile, 1.0, target, 16) > 2);
        assert_eq!(decode_itl(&Observation::default(), &profile, 1.0), None);
    }

    #[test]
    fn a_surge_needs_significant_excess() {
        // 10 req/s planned, 2 s elapsed: 20 expected, threshold 20 + 3·4.47 + 1 ≈ 34.4.
        assert!(!arrival_surge(20, 2.0, 10.0));
        assert!(!arrival_surge(34, 2.0, 10.0));
        assert!(arrival_surge(35, 2.0, 10.0));
        // Too early to judge, however many.
        assert!(!arrival_surge(100, 0.5, 10.0));
        // Nothing planned: a single arrival is no surge, a few are.
        assert!(!arrival_surge(1, 2.0, 0.0));
        assert!(arrival_surge(2, 2.0, 0.0));
    }
}
