//! What the frontend replays: the built-in synthetic load (shared-prefix groups), its short CI
//! variant, or a Mooncake-format trace, time-scaled.

use crate::cli::ConfigError;
use sim::workload::{ArrivalShape, SyntheticSpec, Workload, load_mooncake};
use std::path::Path;

/// The built-in load: about a minute, a few hundred requests in 8 shared-prefix groups
/// (half of each prompt shared), with a step up in the arrival rate half-way so the planner
/// has something to react to.
pub fn builtin() -> Workload {
    SyntheticSpec {
        arrivals: ArrivalShape::Step {
            before: 3.0,
            after: 7.0,
            at_s: 25.0,
        },
        duration_s: 55.0,
        input_length: 2048,
        output_length: 96,
        length_jitter: 0.5,
        prefix_groups: 8,
        shared_prefix_ratio: 0.5,
        trace_block_size: 512,
        seed: 7,
    }
    .generate()
}

/// The CI variant: a few seconds, a few dozen requests, same shape.
pub fn quick() -> Workload {
    SyntheticSpec {
        arrivals: ArrivalShape::Poisson { rate: 10.0 },
        duration_s: 4.0,
        input_length: 1024,
        output_length: 24,
        length_jitter: 0.5,
        prefix_groups: 4,
        shared_prefix_ratio: 0.5,
        trace_block_size: 512,
        seed: 11,
    }
    .generate()
}

/// A Mooncake trace (`timestamp` ms, `input_length`, `output_length`, `hash_ids` of 512-token
/// blocks), its arrival times divided by `speedup`, cut to `max_requests` when given.
pub fn mooncake(
    path: &Path,
    speedup: f64,
    max_requests: Option<usize>,
) -> Result<Workload, ConfigError> {
    let mut w = load_mooncake(path, 512)?;
    if let Some(n) = max_requests {
        w = w.truncate(n);
    }
    if let Some(first) = w.requests.first().map(|r| r.arrival_ms) {
        for r in &mut w.requests {
            r.arrival_ms -= first;
        }
    }
    Ok(w.speed_up(speedup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_is_a_few_hundred_requests_with_shared_prefixes() {
        let w = builtin();
        assert!(
            (200..500).contains(&w.requests.len()),
            "{}",
            w.requests.len()
        );
        let firsts: std::collections::BTreeSet<u64> =
            w.requests.iter().map(|r| r.hash_ids[0]).collect();
        assert_eq!(firsts.len(), 8);
        let q = quick();
        assert!((20..80).contains(&q.requests.len()), "{}", q.requests.len());
        assert!(q.requests.last().unwrap().arrival_ms < 4_000.0);
    }
}
