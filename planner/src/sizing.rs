//! Percentile-aware pool sizing: how many prefill replicas keep a fraction `attainment` of
//! requests under the TTFT target, and how many decode replicas keep that fraction under the
//! ITL target, for a given arrival rate and request mix (samples of ISL and OSL, not means).

use crate::profile::{DecodeProfile, PrefillProfile};
use crate::queueing::MgcQueue;
use crate::stats;

/// Raw moments of a sample: `E[x]`, `E[x²]`, `E[x³]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Moments {
    /// First raw moment.
    pub m1: f64,
    /// Second raw moment.
    pub m2: f64,
    /// Third raw moment.
    pub m3: f64,
}

impl Moments {
    /// Moments of `xs` (all zero when empty).
    pub fn of(xs: &[f64]) -> Self {
        if xs.is_empty() {
            return Self::default();
        }
        let n = xs.len() as f64;
        Self {
            m1: xs.iter().sum::<f64>() / n,
            m2: xs.iter().map(|x| x * x).sum::<f64>() / n,
            m3: xs.iter().map(|x| x * x * x).sum::<f64>() / n,
        }
    }
}

/// The M/G/c model of a prefill pool for the ISL mix `isl` at `rate` req/s, with profile
/// times scaled by `correction`; also returns each request's own latency (its prefill on an
/// idle engine). The servers drain the queue at the engine's batched rate
/// ([`PrefillProfile::batched_service`]): a queue forms only under load, and then the
/// engine packs prompts into full passes.
pub fn prefill_queue(
    profile: &PrefillProfile,
    isl: &[f64],
    rate: f64,
    servers: u32,
    correction: f64,
) -> (MgcQueue, Vec<f64>) {
    let services: Vec<f64> = isl.iter().map(|&x| profile.ttft(x) * correction).collect();
    let batched: Vec<f64> = isl
        .iter()
        .map(|&x| profile.batched_service(x) * correction)
        .collect();
    let queue = MgcQueue {
        rate,
        servers,
        mean_service: stats::mean_or(&batched, 0.0).max(1e-9),
        scv: stats::squared_cv(&batched),
    };
    (queue, services)
}

/// Fewest prefill replicas in `1..=max` for which at most `1 − attainment` of requests
/// exceed `ttft_target`; `max` when none suffices.
pub fn prefill_replicas(
    profile: &PrefillProfile,
    isl: &[f64],
    rate: f64,
    correction: f64,
    ttft_target: f64,
    attainment: f64,
    max: u32,
) -> u32 {
    if isl.is_empty() || rate <= 0.0 {
        return 1;
    }
    let allowed_miss = 1.0 - attainment;
    (1..=max.max(1))
        .find(|&c| {
            let (queue, services) = prefill_queue(profile, isl, rate, c, correction);
            queue.miss_fraction(&services, ttft_target) <= allowed_miss
        })
        .unwrap_or(max.max(1))
}

/// Steady-state load of one decode replica.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeState {
    /// Predicted ITL at the mean load (s), correction included.
    pub itl: f64,
    /// Mean running sequences.
    pub mean_seqs: f64,
    /// Mean KV tokens held.
    pub mean_kv: f64,
    /// Standard deviation of KV tokens held.
    pub sd_kv: f64,
    /// Typical context of a running sequence (KV-weighted), the profile's second axis.
    pub context: f64,
}

/// Load of one decode replica that receives `rate` req/s. A sequence stays for `OSL × ITL`
/// seconds holding on average `ISL + OSL/2` tokens, so the occupancy is an M/G/∞ compound
/// Poisson sum: its mean and variance follow from the ISL and OSL moments (ISL and OSL taken
/// as independent). ITL and occupancy depend on each other; a few fixed-point steps settle it.
pub fn decode_state(
    profile: &DecodeProfile,
    isl: Moments,
    osl: Moments,
    rate: f64,
    correction: f64,
) -> DecodeState {
    // E[OSL·K] and E[OSL·K²] with K = ISL + OSL/2.
    let e_osl_k = osl.m1 * isl.m1 + osl.m2 / 2.0;
    let e_osl_k2 = osl.m1 * isl.m2 + osl.m2 * isl.m1 + osl.m3 / 4.0;
    let context = if osl.m1 > 0.0 {
        e_osl_k / osl.m1
    } else {
        isl.m1
    };
    let mut itl = profile.itl(0.5, context) * correction;
    let mut state = DecodeState {
        itl,
        mean_seqs: 0.0,
        mean_kv: 0.0,
        sd_kv: 0.0,
        context,
    };
    for _ in 0..20 {
        let mean_kv = rate * itl * e_osl_k;
        let next_itl = profile.itl(mean_kv / profile.max_kv_tokens, context) * correction;
        state = DecodeState {
            itl: next_itl,
            mean_seqs: rate * itl * osl.m1,
            mean_kv,
            sd_kv: (rate * itl * e_osl_k2).max(0.0).sqrt(),
            context,
        };
        if (next_itl - itl).abs() < 1e-9 {
            break;
        }
        itl = next_itl;
    }
    state
}

/// Limits a decode replica must respect at the attainment quantile of its load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeLimits {
    /// Per-request ITL target (s).
    pub itl_target: f64,
    /// Fraction of requests that must meet it.
    pub attainment: f64,
    /// Highest KV usage allowed at that quantile (keeps clear of preemption).
    pub kv_usage_limit: f64,
}

/// Whether a replica in `state` meets `limits` at the attainment quantile: ITL at the
/// quantile KV usage, KV usage itself, and the running-sequence cap.
pub fn decode_state_ok(
    profile: &DecodeProfile,
    state: &DecodeState,
    limits: &DecodeLimits,
    correction: f64,
) -> bool {
    let z = stats::normal_quantile(limits.attainment).max(0.0);
    let usage_q = (state.mean_kv + z * state.sd_kv) / profile.max_kv_tokens;
    let seqs_q = state.mean_seqs + z * state.mean_seqs.sqrt();
    // The ITL target is on each request's *mean* ITL, i.e. on the step time averaged over
    // the request's lifetime T. For an M/G/∞ occupancy the average over a window of one
    // service time has variance 2/3 of the instantaneous one (∫∫(T−|s−u|) = 2T³/3).
    let averaged_usage_q =
        (state.mean_kv + z * state.sd_kv * (2.0f64 / 3.0).sqrt()) / profile.max_kv_tokens;
    let itl_q = profile.itl(averaged_usage_q, state.context) * correction;
    itl_q <= limits.itl_target
        && usage_q <= limits.kv_usage_limit
        && seqs_q <= f64::from(profile.max_num_seqs)
}

/// Fewest decode replicas in `1..=max` that meet `limits` when `rate` req/s is spread evenly
/// over them; `max` when none does.
pub fn decode_replicas(
    profile: &DecodeProfile,
    isl: &[f64],
    osl: &[f64],
    rate: f64,
    correction: f64,
    limits: &DecodeLimits,
    max: u32,
) -> u32 {
    if isl.is_empty() || osl.is_empty() || rate <= 0.0 {
        return 1;
    }
    let (isl_m, osl_m) = (Moments::of(isl), Moments::of(osl));
    (1..=max.max(1))
        .find(|&d| {
            let state = decode_state(profile, isl_m, osl_m, rate / f64::from(d), correction);
            decode_state_ok(profile, &state, limits, correction)
        })
        .unwrap_or(max.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::polynomial_like_profile;

    #[test]
    fn prefill_needs_grow_with_rate_and_tighter_targets() {
        let p = polynomial_like_profile().prefill;
        let isl = vec![3000.0; 100];
        let low = prefill_replicas(&p, &isl, 5.0, 1.0, 0.5, 0.95, 32);
        let high = prefill_replicas(&p, &isl, 40.0, 1.0, 0.5, 0.95, 32);
        assert!(high > low, "{low} {high}");
        // Capacity bound: 40 req/s × 66 ms = 2.6 Erlangs, so at least 3 replicas.
        assert!(high >= 3);
        let tight = prefill_replicas(&p, &isl, 40.0, 1.0, 0.1, 0.95, 32);
        assert!(tight > high);
        // A target below the bare service time cannot be met: the cap is returned.
        assert_eq!(prefill_replicas(&p, &isl, 5.0, 1.0, 0.01, 0.95, 7), 7);
    }

    #[test]
    fn prefill_tail_of_the_mix_matters_not_only_its_mean() {
        let p = polynomial_like_profile().prefill;
        // Same mean ISL (3000), one mix with a heavy tail of 12k-token prompts.
        let uniform = vec![3000.0; 100];
        let mut skewed = vec![1000.0; 80];
        skewed.extend(vec![11_000.0; 20]);
        let a = prefill_replicas(&p, &uniform, 14.0, 1.0, 0.3, 0.99, 32);
        let b = prefill_replicas(&p, &skewed, 14.0, 1.0, 0.3, 0.99, 32);
        assert!(b > a, "uniform {a}, skewed {b}");
    }

    #[test]
    fn decode_state_obeys_littles_law() {
        let d = polynomial_like_profile().decode;
        let isl = Moments::of(&[3000.0]);
        let osl = Moments::of(&[150.0]);
        let s = decode_state(&d, isl, osl, 10.0, 1.0);
        // Sequences = λ · OSL · ITL at the settled ITL (within the fixed point's tolerance).
        assert!((s.mean_seqs - 10.0 * 150.0 * s.itl).abs() / s.mean_seqs < 1e-3);
        assert!((s.context - 3075.0).abs() < 1e-9);
        assert!((s.mean_kv - s.mean_seqs * 3075.0).abs() / s.mean_kv < 1e-3);
    }

    #[test]
    fn decode_needs_grow_with_rate() {
        let d = polynomial_like_profile().decode;
        let limits = DecodeLimits {
            itl_target: 0.025,
            attainment: 0.95,
            kv_usage_limit: 0.9,
        };
        let isl = vec![3000.0; 10];
        let osl = vec![500.0; 10];
        let one = decode_replicas(&d, &isl, &osl, 2.0, 1.0, &limits, 16);
        let many = decode_replicas(&d, &isl, &osl, 40.0, 1.0, &limits, 16);
        assert_eq!(one, 1);
        assert!(many > 2, "{many}");
        // A slower engine (correction 1.5) needs more.
        let slower = decode_replicas(&d, &isl, &osl, 40.0, 1.5, &limits, 16);
        assert!(slower > many);
    }
}
