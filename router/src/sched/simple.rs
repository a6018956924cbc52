//! Cache-blind baselines: round-robin and seeded uniform random.

use super::{Decision, Policy, RequestView, WorkerState};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn decide(state: &WorkerState) -> Decision {
    Decision {
        worker: state.worker,
        cached_blocks: state.cached_blocks,
        cost: 0.0,
        predicted_ttft_s: None,
    }
}

/// Cycles through the candidates in the order given.
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    next: usize,
}

impl Policy for RoundRobin {
    fn select(&mut self, _: &RequestView<'_>, workers: &[WorkerState], _: f64) -> Decision {
        let pick = self.next % workers.len();
        self.next = self.next.wrapping_add(1);
        decide(&workers[pick])
    }
}

/// Picks a candidate uniformly at random from a seeded generator.
#[derive(Debug, Clone)]
pub struct RandomPolicy {
    rng: ChaCha8Rng,
}

impl RandomPolicy {
    /// A random policy with a fixed seed.
    pub fn new(seed: u64) -> Self {
        RandomPolicy {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

impl Policy for RandomPolicy {
    fn select(&mut self, _: &RequestView<'_>, workers: &[WorkerState], _: f64) -> Decision {
        decide(&workers[self.rng.random_range(0..workers.len())])
    }
}
