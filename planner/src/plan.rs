//! The planner interface, SLO targets, and the replica limits and GPU budget every planner
//! applies to its raw decision.

use serde::{Deserialize, Serialize};

use crate::observation::Observation;
use crate::replicas::ReplicaTarget;

/// Latency objectives. Times in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SloTargets {
    /// Time-to-first-token target.
    pub ttft: f64,
    /// Inter-token-latency target (per request mean).
    pub itl: f64,
}

impl Default for SloTargets {
    /// Dynamo v0.4's defaults: 0.5 s TTFT, 50 ms ITL.
    fn default() -> Self {
        Self {
            ttft: 0.5,
            itl: 0.05,
        }
    }
}

/// A replica-count planner. Deterministic: the same observations give the same decisions.
pub trait Planner {
    /// Short name for reports.
    fn name(&self) -> &str;

    /// Seconds between decisions; the caller hands in one [`Observation`] per interval.
    fn interval(&self) -> f64;

    /// The replica counts wanted after seeing `obs` (which covers the interval ending at
    /// `obs.time`).
    fn decide(&mut self, obs: &Observation) -> ReplicaTarget;

    /// Seconds between fast checks ([`Planner::check`]) inside an interval; `None` (the
    /// default) when the planner only decides once per interval.
    fn check_interval(&self) -> Option<f64> {
        None
    }

    /// A fast check between decisions. `obs` is partial: it covers the time since the last
    /// decision (`obs.interval` seconds, arrivals and their ISLs) and the replicas' current
    /// load, but holds no latencies or completions. Returns a new target only when the load
    /// cannot wait for the next decision; `None` keeps the last one.
    fn check(&mut self, _obs: &Observation) -> Option<ReplicaTarget> {
        None
    }
}

/// Replica bounds and an optional GPU budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Fewest prefill replicas.
    pub min_prefill: u32,
    /// Most prefill replicas.
    pub max_prefill: u32,
    /// Fewest decode replicas.
    pub min_decode: u32,
    /// Most decode replicas.
    pub max_decode: u32,
    /// GPUs per prefill replica.
    pub gpus_per_prefill: u32,
    /// GPUs per decode replica.
    pub gpus_per_decode: u32,
    /// Most GPUs in total, if bounded.
    pub gpu_budget: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            min_prefill: 1,
            max_prefill: 64,
            min_decode: 1,
            max_decode: 64,
            gpus_per_prefill: 1,
            gpus_per_decode: 1,
            gpu_budget: None,
        }
    }
}

impl Limits {
    /// Clamps each role into its bounds, then shrinks to the GPU budget the way Dynamo does:
    /// prefill scaled by `budget / total` and rounded, decode gets what is left.
    pub fn apply(&self, raw: ReplicaTarget) -> ReplicaTarget {
        let mut p = raw
            .prefill
            .clamp(self.min_prefill, self.max_prefill.max(self.min_prefill));
        let mut d = raw
            .decode
            .clamp(self.min_decode, self.max_decode.max(self.min_decode));
        if let Some(budget) = self.gpu_budget {
            let (gp, gd) = (self.gpus_per_prefill.max(1), self.gpus_per_decode.max(1));
            let total = p * gp + d * gd;
            if total > budget {
                let scale = f64::from(budget) / f64::from(total);
                p = ((f64::from(p) * scale).round() as u32).max(self.min_prefill);
                d = (budget.saturating_sub(p * gp) / gd).max(self.min_decode);
            }
        }
        ReplicaTarget::new(p, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_clamp_and_budget() {
        let limits = Limits {
            max_prefill: 6,
            gpu_budget: Some(8),
            ..Limits::default()
        };
        assert_eq!(
            limits.apply(ReplicaTarget::new(0, 0)),
            ReplicaTarget::new(1, 1)
        );
        assert_eq!(
            limits.apply(ReplicaTarget::new(3, 4)),
            ReplicaTarget::new(3, 4)
        );
        // 6 + 6 = 12 GPUs > 8: prefill round(6·8/12) = 4, decode the remaining 4.
        assert_eq!(
            limits.apply(ReplicaTarget::new(9, 6)),
            ReplicaTarget::new(4, 4)
        );
        let two_gpu_decode = Limits {
            gpus_per_decode: 2,
            ..limits
        };
        // 2 + 2·4 = 10 > 8: prefill round(2·0.8) = 2, decode (8 − 2)/2 = 3.
        assert_eq!(
            two_gpu_decode.apply(ReplicaTarget::new(2, 4)),
            ReplicaTarget::new(2, 3)
        );
    }
}
