//! Our policy: predict each candidate's time to first token from the shared
//! [`PerfModel`] and add a decode-pressure term.
//!
//! ```text
//! reused    = (cached_blocks + host_blocks + remote_blocks) · block_size
//! uncached  = ISL − reused
//! load      = onboard_s(host_blocks · block_size) + fetch_s(remote_blocks · block_size)
//! wait      = prefill_s(queued)                       (prefill work already routed there)
//! prefill   = prefill_s(queued + uncached) − wait     (this request's marginal prefill)
//! interfere = passes(queued + uncached) · decode_step_s(active requests, active KV)
//! TTFT      = wait + load + prefill + interfere + transfer_s
//! cost      = TTFT + itl_weight · decode_step_s(active + 1, active KV + prompt KV)
//!           + overflow_penalty_s · max(0, KV after / capacity − 1)
//!           + idle_reserve_s   (one-pass prompt on a worker with nothing in flight; default 0)
//! ```
//! `interfere` already charges a decode step to each of the prompt's passes (and to the
//! queued prompts' passes ahead of it): a long prompt sharing a worker with running decodes
//! pays one step per pass, so it prefers a worker with none.
//! Unlike Dynamo's linear block counts, this prices cache hits in seconds (prefill is
//! superlinear in tokens), charges queued work by its real drain time, includes KV
//! transfer, and sees when a worker's KV would overflow (forcing preemption). With a
//! [`crate::sched::TierIndex`] it also weighs a host-memory hit or a prefix pulled from
//! another worker (priced by [`TransferCost`]) against recomputing, so an idle worker that
//! fetches can beat a busy one that holds the cache.

use super::{Decision, Policy, RequestView, WorkerState, argmin_with_ties};
use crate::perf_model::PerfModel;
use crate::transfer_cost::TransferCost;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Predicted-TTFT routing.
#[derive(Debug, Clone)]
pub struct PredictedTtft {
    /// The engines' timing model.
    pub model: PerfModel,
    /// KV block size in tokens.
    pub block_size: u32,
    /// Seconds of cost per second of predicted decode step time (ITL) after admission.
    pub itl_weight: f64,
    /// Seconds of cost per unit of KV overflow (fraction of capacity beyond 100%).
    pub overflow_penalty_s: f64,
    /// Price of onboarding host-tier blocks and pulling remote ones.
    pub transfer: TransferCost,
    /// Seconds of cost for sending a prompt that fits in one prefill pass to a worker with
    /// nothing in flight: keeps decode-free workers for multi-pass prompts, each of whose
    /// passes would otherwise carry a decode step. 0 (the default) turns it off; an
    /// experiment measured in `sim/EVALUATION.md`, not a tuned setting.
    pub idle_reserve_s: f64,
    rng: ChaCha8Rng,
}

/// The pieces of one candidate's prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TtftBreakdown {
    /// Waiting for already-queued prefill work.
    pub wait_s: f64,
    /// Onboarding host-tier blocks and pulling remote ones.
    pub load_s: f64,
    /// This request's own prefill.
    pub prefill_s: f64,
    /// Decode steps interleaved with the prefill passes.
    pub interference_s: f64,
    /// KV transfer.
    pub transfer_s: f64,
    /// Decode step time after admitting the request.
    pub itl_s: f64,
    /// KV occupancy after admission, as a fraction of capacity.
    pub kv_fill: f64,
}

impl TtftBreakdown {
    /// The predicted time to first token.
    pub fn ttft_s(&self) -> f64 {
        self.wait_s + self.load_s + self.prefill_s + self.interference_s + self.transfer_s
    }
}

impl PredictedTtft {
    /// A policy with default weights (`itl_weight` 64: an ITL second weighs like 64 s of
    /// TTFT, i.e. about one 64-token answer's worth of decode).
    pub fn new(model: PerfModel, block_size: u32, seed: u64) -> Self {
        PredictedTtft {
            model,
            block_size: block_size.max(1),
            itl_weight: 64.0,
            overflow_penalty_s: 10.0,
            transfer: TransferCost::default(),
            idle_reserve_s: 0.0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Predicts the request's timeline on one candidate.
    pub fn predict(&self, request: &RequestView<'_>, w: &WorkerState) -> TtftBreakdown {
        let bs = f64::from(self.block_size);
        let uncached =
            (f64::from(request.prompt_tokens) - f64::from(reused_blocks(w)) * bs).max(0.0);
        let load_s = self.transfer.onboard_s(f64::from(w.host_blocks) * bs)
            + self.transfer.fetch_s(f64::from(w.remote_blocks) * bs);
        let queued = w.active_prefill_tokens as f64;
        let wait_s = self.model.prefill_s(queued, 1);
        let prefill_s = self.model.prefill_s(queued + uncached, 1) - wait_s;
        let active_kv = w.active_blocks as f64 * bs;
        let passes = self.model.prefill_passes(queued + uncached);
        let interference_s = passes * self.model.decode_step_s(w.active_requests, active_kv);
        let new_blocks =
            (request.sequence.len() as f64 - f64::from(w.active_overlap_blocks)).max(0.0);
        let kv_after = active_kv + new_blocks * bs;
        TtftBreakdown {
            wait_s,
            load_s,
            prefill_s,
            interference_s,
            transfer_s: w.transfer_s,
            itl_s: self.model.decode_step_s(w.active_requests + 1, kv_after),
            kv_fill: kv_after / self.model.kv_capacity_tokens.max(1) as f64,
        }
    }

    /// The policy's cost of one candidate.
    pub fn cost(&self, request: &RequestView<'_>, w: &WorkerState) -> (f64, TtftBreakdown) {
        let p = self.predict(request, w);
        let overflow = (p.kv_fill - 1.0).max(0.0);
        let uncached =
            f64::from(request.prompt_tokens) - f64::from(reused_blocks(w) * self.block_size);
        let reserve = if w.active_requests == 0 && self.model.prefill_passes(uncached) <= 1.0 {
            self.idle_reserve_s
        } else {
            0.0
        };
        (
            p.ttft_s() + self.itl_weight * p.itl_s + self.overflow_penalty_s * overflow + reserve,
            p,
        )
    }
}

/// Leading prompt blocks that need no prefill on `w`: on its device, in its host tier or
/// pulled from a peer.
fn reused_blocks(w: &WorkerState) -> u32 {
    w.cached_blocks + w.host_blocks + w.remote_blocks
}

impl Policy for PredictedTtft {
    fn select(
        &mut self,
        request: &RequestView<'_>,
        workers: &[WorkerState],
        _now: f64,
    ) -> Decision {
        let scored: Vec<(f64, TtftBreakdown)> =
            workers.iter().map(|w| self.cost(request, w)).collect();
        let costs: Vec<f64> = scored.iter().map(|s| s.0).collect();
        let pick = argmin_with_ties(&costs, workers, &mut self.rng);
        let w = &workers[pick];
        Decision {
            worker: w.worker,
            cached_blocks: reused_blocks(w),
            cost: costs[pick],
            predicted_ttft_s: Some(scored[pick].1.ttft_s()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::SequenceHash;
    use crate::sched::RequestId;
    use crate::worker::WorkerId;

    fn request(seq: &[SequenceHash]) -> RequestView<'_> {
        RequestView {
            id: RequestId(1),
            prompt_tokens: seq.len() as u32 * 64,
            sequence: seq,
            expected_output_tokens: None,
        }
    }

    #[test]
    fn cache_hit_beats_idle_cold_worker_until_the_queue_costs_more() {
        let seq: Vec<SequenceHash> = (0..128).map(SequenceHash).collect(); // 8,192 tokens
        let mut policy = PredictedTtft::new(PerfModel::default(), 64, 1);
        let cold = WorkerState {
            worker: WorkerId::new(1),
            ..Default::default()
        };
        let warm = WorkerState {
            worker: WorkerId::new(2),
            cached_blocks: 120,
            active_prefill_tokens: 2_000,
            ..Default::default()
        };
        assert_eq!(
            policy.select(&request(&seq), &[cold, warm], 0.0).worker,
            warm.worker
        );
        let swamped = WorkerState {
            active_prefill_tokens: 40_000,
            ..warm
        };
        let decision = policy.select(&request(&seq), &[cold, swamped], 0.0);
        assert_eq!(decision.worker, cold.worker);
        let expected = PerfModel::default().prefill_s(8_192.0, 1);
        assert!((decision.predicted_ttft_s.unwrap() - expected).abs() < 1e-9);
    }

    #[test]
    fn idle_worker_that_fetches_beats_busy_holder_and_recompute() {
        let seq: Vec<SequenceHash> = (0..128).map(SequenceHash).collect(); // 8,192 tokens
        let model = PredictedTtft::new(PerfModel::default(), 64, 1);
        let mut policy = model.clone();
        let busy_holder = WorkerState {
            worker: WorkerId::new(1),
            cached_blocks: 120,
            active_prefill_tokens: 30_000,
            ..Default::default()
        };
        let idle_cold = WorkerState {
            worker: WorkerId::new(2),
            ..Default::default()
        };
        let idle_fetch = WorkerState {
            worker: WorkerId::new(3),
            remote_blocks: 120,
            ..Default::default()
        };
        let idle_host = WorkerState {
            worker: WorkerId::new(4),
            host_blocks: 120,
            ..Default::default()
        };
        let parts = |w: &WorkerState| model.predict(&request(&seq), w);
        // Recompute costs the full prompt; the holder's queue costs more than that.
        assert!(parts(&busy_holder).ttft_s() > parts(&idle_cold).ttft_s());
        // Pulling 120 blocks (2.5 GB at 50 GB/s ≈ 50 ms) beats prefilling them (≈ 0.16 s).
        let fetch = parts(&idle_fetch);
        let t = TransferCost::default();
        assert!((fetch.load_s - t.fetch_s(120.0 * 64.0)).abs() < 1e-12);
        assert!(fetch.ttft_s() < parts(&idle_cold).ttft_s());
        let d = policy.select(&request(&seq), &[busy_holder, idle_cold, idle_fetch], 0.0);
        assert_eq!(d.worker, idle_fetch.worker);
        assert_eq!(
            d.cached_blocks, 120,
            "fetched blocks are booked as not prefilled"
        );
        // A host hit skips the network latency: cheaper still.
        assert!(parts(&idle_host).load_s < fetch.load_s);
        assert_eq!(
            policy
                .select(&request(&seq), &[idle_fetch, idle_host], 0.0)
                .worker,
            idle_host.worker
        );
        // Without tier information the policy is unchanged.
        assert_eq!(parts(&idle_cold).load_s, 0.0);
    }

    #[test]
    fn idle_reserve_keeps_decode_free_workers_for_multi_pass_prompts() {
        let short: Vec<SequenceHash> = (0..16).map(SequenceHash).collect(); // 1,024 tokens
        let long: Vec<SequenceHash> = (100..500).map(SequenceHash).collect(); // 25,600 tokens
        let idle = WorkerState {
            worker: WorkerId::new(1),
            ..Default::default()
        };
        let decoding = WorkerState {
            worker: WorkerId::new(2),
            active_requests: 2,
            active_blocks: 400,
            ..Default::default()
        };
        let mut policy = PredictedTtft::new(PerfModel::default(), 64, 1);
        // By default both prompts prefer the idle worker: no decode step in their passes.
        let pick = |p: &mut PredictedTtft, seq: &[SequenceHash]| {
            p.select(&request(seq), &[idle, decoding], 0.0).worker
        };
        assert_eq!(pick(&mut policy, &short), idle.worker);
        assert_eq!(pick(&mut policy, &long), idle.worker);
        let (_, busy) = policy.cost(&request(&long), &decoding);
        assert!(busy.interference_s >= 4.0 * policy.model.decode_step_s(1, 0.0));
        // Reserved: the one-pass prompt joins the decoding worker, the four-pass one does
        // not, and the reserve is cost only (the predicted TTFT is unchanged).
        policy.idle_reserve_s = 0.2;
        assert_eq!(pick(&mut policy, &short), decoding.worker);
        assert_eq!(pick(&mut policy, &long), idle.worker);
        let (cost, parts) = policy.cost(&request(&short), &idle);
        policy.idle_reserve_s = 0.0;
        let (plain, plain_parts) = policy.cost(&request(&short), &idle);
        assert!((cost - plain - 0.2).abs() < 1e-12 && parts == plain_parts);
    }

    #[test]
    fn transfer_and_kv_overflow_are_priced() {
        let seq: Vec<SequenceHash> = (0..16).map(SequenceHash).collect();
        let policy = PredictedTtft::new(PerfModel::default(), 64, 1);
        let near = WorkerState {
            worker: WorkerId::new(1),
            ..Default::default()
        };
        let far = WorkerState {
            transfer_s: 0.5,
            ..near
        };
        let (near_cost, _) = policy.cost(&request(&seq), &near);
        let (far_cost, far_parts) = policy.cost(&request(&seq), &far);
        assert!((far_cost - near_cost - 0.5).abs() < 1e-12 && far_parts.transfer_s == 0.5);
        let full = WorkerState {
            active_blocks: 16_384,
            active_requests: 10,
            ..near
        };
        let (_, parts) = policy.cost(&request(&seq), &full);
        assert!(parts.kv_fill > 1.0);
    }
}
