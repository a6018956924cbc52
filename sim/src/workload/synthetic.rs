//! Seeded synthetic loads: Poisson arrivals with a constant, sinusoidal or
//! step rate, and prompts drawn from shared-prefix groups.

use super::{RequestSpec, Workload};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Request rate over time (requests per second).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum ArrivalShape {
    /// Constant rate.
    Poisson {
        /// Requests per second.
        rate: f64,
    },
    /// `mean + amplitude · sin(2π t / period)`.
    Sinusoidal {
        /// Mean rate, req/s.
        mean: f64,
        /// Amplitude, req/s (at most `mean`).
        amplitude: f64,
        /// Period, s.
        period_s: f64,
    },
    /// `before` until `at_s`, then `after`.
    Step {
        /// Rate before the step, req/s.
        before: f64,
        /// Rate after the step, req/s.
        after: f64,
        /// Time of the step, s.
        at_s: f64,
    },
}

impl ArrivalShape {
    /// Rate at time `t_s`.
    pub fn rate_at(&self, t_s: f64) -> f64 {
        match *self {
            ArrivalShape::Poisson { rate } => rate,
            ArrivalShape::Sinusoidal {
                mean,
                amplitude,
                period_s,
            } => (mean + amplitude * (std::f64::consts::TAU * t_s / period_s).sin()).max(0.0),
            ArrivalShape::Step {
                before,
                after,
                at_s,
            } => {
                if t_s < at_s {
                    before
                } else {
                    after
                }
            }
        }
    }

    fn max_rate(&self) -> f64 {
        match *self {
            ArrivalShape::Poisson { rate } => rate,
            ArrivalShape::Sinusoidal {
                mean, amplitude, ..
            } => mean + amplitude.abs(),
            ArrivalShape::Step { before, after, .. } => before.max(after),
        }
    }
}

/// A synthetic workload description.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyntheticSpec {
    /// Arrival process.
    pub arrivals: ArrivalShape,
    /// Length of the load, s.
    pub duration_s: f64,
    /// Mean prompt tokens (drawn uniformly in ±`length_jitter`).
    pub input_length: usize,
    /// Mean output tokens (same jitter).
    pub output_length: usize,
    /// Relative jitter of lengths, 0 = fixed.
    pub length_jitter: f64,
    /// Number of shared-prefix groups (0 = no sharing).
    pub prefix_groups: usize,
    /// Fraction of each prompt that is its group's shared prefix.
    pub shared_prefix_ratio: f64,
    /// Tokens per hash id.
    pub trace_block_size: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for SyntheticSpec {
    /// 10 req/s Poisson for 60 s, ISL 3000 / OSL 150, no sharing.
    fn default() -> Self {
        SyntheticSpec {
            arrivals: ArrivalShape::Poisson { rate: 10.0 },
            duration_s: 60.0,
            input_length: 3000,
            output_length: 150,
            length_jitter: 0.0,
            prefix_groups: 0,
            shared_prefix_ratio: 0.0,
            trace_block_size: 512,
            seed: 0,
        }
    }
}

impl SyntheticSpec {
    /// Generates the workload (Poisson thinning for time-varying rates).
    pub fn generate(&self) -> Workload {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let max_rate = self.arrivals.max_rate();
        let mut requests = Vec::new();
        if max_rate <= 0.0 {
            return Workload::new(self.trace_block_size, requests);
        }
        let tb = self.trace_block_size;
        // Group prefixes use ids below this; unique suffix ids count up from it.
        let groups = self.prefix_groups as u64;
        let prefix_blocks =
            (self.input_length as f64 * self.shared_prefix_ratio / tb as f64) as u64;
        let mut next_unique = groups * prefix_blocks.max(1);
        let mut t = 0.0;
        loop {
            t += -(1.0 - rng.random::<f64>()).ln() / max_rate;
            if t >= self.duration_s {
                break;
            }
            if rng.random::<f64>() * max_rate > self.arrivals.rate_at(t) {
                continue;
            }
            let isl = jitter(&mut rng, self.input_length, self.length_jitter).max(1);
            let osl = jitter(&mut rng, self.output_length, self.length_jitter).max(1);
            let blocks = isl.div_ceil(tb) as u64;
            let mut hash_ids = Vec::with_capacity(blocks as usize);
            if groups > 0 && prefix_blocks > 0 {
                let g = rng.random_range(0..groups);
                hash_ids.extend((0..prefix_blocks.min(blocks)).map(|b| g * prefix_blocks + b));
            }
            while (hash_ids.len() as u64) < blocks {
                hash_ids.push(next_unique);
                next_unique += 1;
            }
            requests.push(RequestSpec {
                arrival_ms: t * 1000.0,
                input_length: isl,
                output_length: osl,
                hash_ids,
            });
        }
        Workload::new(tb, requests)
    }
}

fn jitter(rng: &mut ChaCha8Rng, mean: usize, rel: f64) -> usize {
    if rel <= 0.0 {
        return mean;
    }
    let f = 1.0 + rel * (2.0 * rng.random::<f64>() - 1.0);
    (mean as f64 * f).round() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_rate_is_roughly_right_and_seeded() {
        let spec = SyntheticSpec {
            duration_s: 200.0,
            ..SyntheticSpec::default()
        };
        let w = spec.generate();
        let n = w.requests.len() as f64;
        assert!((n - 2000.0).abs() < 200.0, "{n} arrivals for 2000 expected");
        assert_eq!(w, spec.generate());
    }

    #[test]
    fn step_rate_changes_and_groups_share_prefixes() {
        let spec = SyntheticSpec {
            arrivals: ArrivalShape::Step {
                before: 2.0,
                after: 20.0,
                at_s: 50.0,
            },
            duration_s: 100.0,
            prefix_groups: 2,
            shared_prefix_ratio: 0.5,
            input_length: 4096,
            ..SyntheticSpec::default()
        };
        let w = spec.generate();
        let early = w
            .requests
            .iter()
            .filter(|r| r.arrival_ms < 50_000.0)
            .count();
        let late = w.requests.len() - early;
        assert!(late > 5 * early, "early {early} late {late}");
        let firsts: std::collections::BTreeSet<u64> =
            w.requests.iter().map(|r| r.hash_ids[0]).collect();
        assert_eq!(firsts.len(), 2, "two groups share their first block");
        assert!(w.requests.iter().all(|r| r.hash_ids.len() == 8));
    }
}
