//! Disaggregated prefill/decode: pick a prefill worker by KV overlap, a decode worker by
//! load and KV-transfer cost, and decide whether to skip the remote prefill and prefill
//! on the decode worker instead.
//!
//! Two local-prefill rules are offered for comparison:
//! * [`LocalPrefillRule::DynamoIsl`]: Dynamo's `IslBounding` — local iff the decode
//!   worker's effective ISL (prompt minus its cached prefix) is `< 2048` tokens **and**
//!   `< 0.7` of the prompt;
//! * [`LocalPrefillRule::Model`]: ours — local iff the predicted local TTFT plus the
//!   stall it inflicts on the decode worker's running requests does not exceed the
//!   predicted remote TTFT (prefill queue + prefill + KV transfer).

use super::{Decision, KvRouter, Policy, PredictedTtft, RequestId, RequestView, WorkerState};
use crate::perf_model::PerfModel;
use crate::worker::WorkerId;

/// When to prefill on the decode worker instead of a prefill worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LocalPrefillRule {
    /// Always prefill remotely (Dynamo's default today).
    Never,
    /// Dynamo's `IslBounding` rule.
    DynamoIsl {
        /// Effective-ISL bound in tokens (Dynamo: 2048).
        max_effective_isl: u32,
        /// Effective-ISL / ISL bound (Dynamo: 0.7).
        max_ratio: f64,
    },
    /// Our model-based comparison.
    Model {
        /// Seconds of cost per second of decode stall summed over running requests.
        stall_weight: f64,
    },
}

impl LocalPrefillRule {
    /// Dynamo's `IslBounding` defaults.
    pub const DYNAMO_DEFAULT: Self = LocalPrefillRule::DynamoIsl {
        max_effective_isl: 2048,
        max_ratio: 0.7,
    };
}

/// The outcome of routing one request in disaggregated mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DisaggDecision {
    /// The prefill worker, or `None` when the decode worker prefills locally.
    pub prefill: Option<Decision>,
    /// The decode worker.
    pub decode: Decision,
    /// Predicted TTFT of the remote path (prefill worker + transfer).
    pub remote_ttft_s: f64,
    /// Predicted TTFT of prefilling on the decode worker.
    pub local_ttft_s: f64,
}

/// Routing across a prefill pool and a decode pool.
#[derive(Debug, Clone)]
pub struct DisaggRouter<P, D> {
    /// The prefill pool (KV-overlap aware).
    pub prefill: KvRouter<P>,
    /// The decode pool.
    pub decode: KvRouter<D>,
    /// When to prefill locally.
    pub rule: LocalPrefillRule,
    /// Timing model for TTFT predictions and transfers.
    pub model: PerfModel,
    /// Transfer-time multiplier between a prefill and a decode worker (1 = the model's
    /// link; smaller for the same node / NVLink domain, larger across racks).
    pub link_factor: fn(WorkerId, WorkerId) -> f64,
}

fn uniform_link(_: WorkerId, _: WorkerId) -> f64 {
    1.0
}

impl<P: Policy, D: Policy> DisaggRouter<P, D> {
    /// A disaggregated router over two pools with a uniform network.
    pub fn new(
        prefill: KvRouter<P>,
        decode: KvRouter<D>,
        rule: LocalPrefillRule,
        model: PerfModel,
    ) -> Self {
        DisaggRouter {
            prefill,
            decode,
            rule,
            model,
            link_factor: uniform_link,
        }
    }

    /// Routes one request and books its load on the chosen pools.
    pub fn route(&mut self, request: &RequestView<'_>, now: f64) -> Option<DisaggDecision> {
        let predictor = PredictedTtft::new(self.model, self.decode.block_size(), 0);
        let bs = f64::from(self.prefill.block_size());
        let prefill_workers = self.prefill.workers().to_vec();
        let prefill_states = self.prefill.worker_states(request, &prefill_workers, now);
        let prefill_pick = (!prefill_states.is_empty())
            .then(|| self.prefill.policy.select(request, &prefill_states, now));

        let decode_workers = self.decode.workers().to_vec();
        let mut decode_states = self.decode.worker_states(request, &decode_workers, now);
        if decode_states.is_empty() {
            return None;
        }
        for state in &mut decode_states {
            // The decode worker pulls only the blocks it does not already cache.
            let missing =
                (f64::from(request.prompt_tokens) - f64::from(state.cached_blocks) * bs).max(0.0);
            let link = prefill_pick.map_or(1.0, |p| (self.link_factor)(p.worker, state.worker));
            state.transfer_s = self.model.transfer_s(missing) * link;
        }
        let decode_pick = self.decode.policy.select(request, &decode_states, now);
        let decode_state = decode_states
            .iter()
            .find(|s| s.worker == decode_pick.worker)
            .copied()
            .unwrap_or_default();

        let remote_ttft_s = match prefill_pick {
            Some(p) => {
                let state = prefill_states
                    .iter()
                    .find(|s| s.worker == p.worker)
                    .copied()
                    .unwrap_or_default();
                predictor.predict(request, &state).ttft_s() + decode_state.transfer_s
            }
            None => f64::INFINITY,
        };
        let local_state = WorkerState {
            transfer_s: 0.0,
            ..decode_state
        };
        let local = predictor.predict(request, &local_state);
        let local_ttft_s = local.ttft_s();
        let go_local = prefill_pick.is_none()
            || self.prefers_local(
                request,
                &decode_state,
                local.prefill_s,
                local_ttft_s,
                remote_ttft_s,
            );

        let decode = Decision {
            cached_blocks: decode_state.cached_blocks,
            ..decode_pick
        };
        if go_local {
            self.decode.book(request, &decode, now);
        } else {
            let p = prefill_pick.expect("remote path has a prefill worker");
            self.prefill.book(request, &p, now);
            // The decode worker computes nothing: book it with no prefill work.
            let full = Decision {
                cached_blocks: request.sequence.len() as u32,
                ..decode
            };
            let whole = RequestView {
                prompt_tokens: request.prompt_tokens.min(full.cached_blocks * bs as u32),
                ..*request
            };
            self.decode.book(&whole, &full, now);
        }
        Some(DisaggDecision {
            prefill: if go_local { None } else { prefill_pick },
            decode,
            remote_ttft_s,
            local_ttft_s,
        })
    }

    fn prefers_local(
        &self,
        request: &RequestView<'_>,
        decode: &WorkerState,
        local_prefill_s: f64,
        local_ttft_s: f64,
        remote_ttft_s: f64,
    ) -> bool {
        match self.rule {
            LocalPrefillRule::Never => false,
            LocalPrefillRule::DynamoIsl {
                max_effective_isl,
                max_ratio,
            } => {
                let isl = f64::from(request.prompt_tokens);
                let effective = (isl
                    - f64::from(decode.cached_blocks) * f64::from(self.decode.block_size()))
                .max(0.0);
                effective < f64::from(max_effective_isl) && isl > 0.0 && effective / isl < max_ratio
            }
            LocalPrefillRule::Model { stall_weight } => {
                let stall = local_prefill_s * f64::from(decode.active_requests);
                local_ttft_s + stall_weight * stall <= remote_ttft_s
            }
        }
    }

    /// The first token was produced: the prefill side is done.
    pub fn on_first_token(&mut self, request: RequestId, now: f64) {
        self.prefill.on_finish(request, now);
        self.decode.on_first_token(request, now);
    }

    /// The request finished.
    pub fn on_finish(&mut self, request: RequestId, now: f64) {
        self.prefill.on_finish(request, now);
        self.decode.on_finish(request, now);
    }
}

#[cfg(test)]
mod tests;
