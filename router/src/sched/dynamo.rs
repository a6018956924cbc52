//! Dynamo's KV-router cost function, reproduced as the baseline policy:
//!
//! ```text
//! prefill_tokens[w] = active_prefill_tokens[w] + (ISL − cached_blocks[w] · block_size)
//! decode_blocks[w]  = active_blocks[w] + (full_blocks − active_overlap_blocks[w])
//! logit[w]          = overlap_weight · prefill_tokens[w] / block_size + decode_blocks[w]
//! ```
//! At temperature 0 the lowest logit wins, ties to the smallest tree, then seeded random.
//! At temperature `T > 0` a worker is sampled with probability ∝ `exp(−(logit/(max−min))/T)`.

use super::{Decision, Policy, RequestView, WorkerState, argmin_with_ties};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Dynamo's cost-based selection.
#[derive(Debug, Clone)]
pub struct DynamoCost {
    /// KV block size in tokens.
    pub block_size: u32,
    /// Weight of the prefill term (Dynamo's default 1.0; 0 for decode routing).
    pub overlap_weight: f64,
    /// Softmax temperature (0 = deterministic argmin).
    pub temperature: f64,
    /// Whether the request's own uncached tokens count as prefill load (Dynamo default true).
    pub track_prefill_tokens: bool,
    rng: ChaCha8Rng,
}

impl DynamoCost {
    /// Dynamo's defaults (weight 1, temperature 0) for `block_size`, with a seeded tie-breaker.
    pub fn new(block_size: u32, seed: u64) -> Self {
        DynamoCost {
            block_size: block_size.max(1),
            overlap_weight: 1.0,
            temperature: 0.0,
            track_prefill_tokens: true,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Sets the overlap weight.
    pub fn with_overlap_weight(mut self, weight: f64) -> Self {
        self.overlap_weight = weight;
        self
    }

    /// Sets the softmax temperature.
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// The logit of one candidate.
    pub fn logit(&self, request: &RequestView<'_>, w: &WorkerState) -> f64 {
        let bs = f64::from(self.block_size);
        let own = if self.track_prefill_tokens {
            (f64::from(request.prompt_tokens) - f64::from(w.cached_blocks) * bs).max(0.0)
        } else {
            0.0
        };
        let prefill_tokens = w.active_prefill_tokens as f64 + own;
        let full_blocks = request.sequence.len() as f64;
        let decode_blocks =
            w.active_blocks as f64 + (full_blocks - f64::from(w.active_overlap_blocks)).max(0.0);
        self.overlap_weight * prefill_tokens / bs + decode_blocks
    }

    fn sample(&mut self, logits: &[f64]) -> usize {
        let (min, max) = logits
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &l| {
                (lo.min(l), hi.max(l))
            });
        if max - min <= 0.0 {
            return self.rng.random_range(0..logits.len());
        }
        let scaled: Vec<f64> = logits
            .iter()
            .map(|l| -(l / (max - min)) / self.temperature)
            .collect();
        let top = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = scaled.iter().map(|s| (s - top).exp()).collect();
        let mut draw = self.rng.random::<f64>() * weights.iter().sum::<f64>();
        for (i, weight) in weights.iter().enumerate() {
            draw -= weight;
            if draw <= 0.0 {
                return i;
            }
        }
        weights.len() - 1
    }
}

impl Policy for DynamoCost {
    fn select(
        &mut self,
        request: &RequestView<'_>,
        workers: &[WorkerState],
        _now: f64,
    ) -> Decision {
        let logits: Vec<f64> = workers.iter().map(|w| self.logit(request, w)).collect();
        let pick = if self.temperature > 0.0 {
            self.sample(&logits)
        } else {
            argmin_with_ties(&logits, workers, &mut self.rng)
        };
        let w = &workers[pick];
        Decision {
            worker: w.worker,
            cached_blocks: w.cached_blocks,
            cost: logits[pick],
            predicted_ttft_s: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::SequenceHash;
    use crate::sched::RequestId;
    use crate::worker::WorkerId;

    fn state(id: u64, prefill_blocks: u64, decode_blocks: u64) -> WorkerState {
        WorkerState {
            worker: WorkerId::new(id),
            active_prefill_tokens: prefill_blocks * 16,
            active_blocks: decode_blocks,
            ..Default::default()
        }
    }

    #[test]
    fn reproduces_the_documented_worked_example() {
        // Dynamo docs: (prefill, decode) blocks (8,10), (5,5), (2,9) → costs 18, 10, 11.
        let mut policy = DynamoCost::new(16, 0);
        let request = RequestView {
            id: RequestId(0),
            prompt_tokens: 0,
            sequence: &[],
            expected_output_tokens: None,
        };
        let workers = [state(1, 8, 10), state(2, 5, 5), state(3, 2, 9)];
        let costs: Vec<f64> = workers.iter().map(|w| policy.logit(&request, w)).collect();
        assert_eq!(costs, vec![18.0, 10.0, 11.0]);
        assert_eq!(
            policy.select(&request, &workers, 0.0).worker,
            WorkerId::new(2)
        );
    }

    #[test]
    fn overlap_lowers_cost_and_ties_go_to_the_smaller_tree() {
        let seq = [
            SequenceHash(1),
            SequenceHash(2),
            SequenceHash(3),
            SequenceHash(4),
        ];
        let request = RequestView {
            id: RequestId(0),
            prompt_tokens: 64,
            sequence: &seq,
            expected_output_tokens: None,
        };
        let mut policy = DynamoCost::new(16, 0);
        let cold = WorkerState {
            worker: WorkerId::new(1),
            tree_size: 5,
            ..Default::default()
        };
        let warm = WorkerState {
            worker: WorkerId::new(2),
            cached_blocks: 3,
            tree_size: 50,
            ..Default::default()
        };
        assert_eq!(policy.logit(&request, &warm), 1.0 + 4.0);
        assert_eq!(
            policy.select(&request, &[cold, warm], 0.0).worker,
            WorkerId::new(2)
        );
        let twin = WorkerState {
            worker: WorkerId::new(3),
            tree_size: 2,
            ..cold
        };
        assert_eq!(
            policy.select(&request, &[cold, twin], 0.0).worker,
            WorkerId::new(3)
        );
    }

    #[test]
    fn temperature_samples_every_worker_but_prefers_cheap_ones() {
        let request = RequestView {
            id: RequestId(0),
            prompt_tokens: 0,
            sequence: &[],
            expected_output_tokens: None,
        };
        let workers = [state(1, 0, 0), state(2, 0, 40)];
        let mut policy = DynamoCost::new(16, 9).with_temperature(0.5);
        let mut counts = [0; 2];
        for _ in 0..2_000 {
            let pick = policy.select(&request, &workers, 0.0).worker.id as usize - 1;
            counts[pick] += 1;
        }
        // p(cheap) = 1 / (1 + e^-2) ≈ 0.88.
        assert!(
            counts[1] > 100 && counts[0] > 1_600 && counts[0] < 1_900,
            "{counts:?}"
        );
    }
}
