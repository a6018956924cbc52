//! Dynamo's load-based scaling: every few seconds, estimate each engine's TTFT (prefill) or
//! ITL (decode) from its queue and KV load through the profile; add one replica when every
//! engine is over the target, remove one when every engine is under `sensitivity × target`,
//! and take no new action on a role while its previous one is still being enacted.

use serde::{Deserialize, Serialize};

use crate::observation::Observation;
use crate::plan::{Limits, Planner, SloTargets};
use crate::profile::PerfProfile;
use crate::replicas::{ReplicaTarget, Role};

/// Settings of [`LoadRulesPlanner`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoadRulesConfig {
    /// Latency targets.
    pub targets: SloTargets,
    /// Seconds between decisions (Dynamo: 5).
    pub interval: f64,
    /// Scale down only when every engine is below `sensitivity × target` (Dynamo: 0.8).
    pub sensitivity: f64,
    /// Replica bounds and GPU budget.
    pub limits: Limits,
}

impl Default for LoadRulesConfig {
    fn default() -> Self {
        Self {
            targets: SloTargets::default(),
            interval: 5.0,
            sensitivity: 0.8,
            limits: Limits::default(),
        }
    }
}

/// The ±1 load-based planner.
pub struct LoadRulesPlanner {
    cfg: LoadRulesConfig,
    profile: PerfProfile,
    // Last known request shape; intervals without traffic keep the previous one.
    avg_isl: f64,
    avg_osl: f64,
}

/// What the rule says for one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Up,
    Down,
    Hold,
}

impl LoadRulesPlanner {
    /// A planner over `profile` with settings `cfg`.
    pub fn new(cfg: LoadRulesConfig, profile: PerfProfile) -> Self {
        Self {
            cfg,
            profile,
            avg_isl: 0.0,
            avg_osl: 0.0,
        }
    }

    fn rule(&self, estimates: &[f64], target: f64, current: u32) -> Step {
        if estimates.is_empty() {
            return Step::Hold;
        }
        if estimates.iter().all(|&e| e > target) {
            Step::Up
        } else if current > 1 && estimates.iter().all(|&e| e < target * self.cfg.sensitivity) {
            Step::Down
        } else {
            Step::Hold
        }
    }

    /// Per-engine TTFT estimates: the queued plus one average prompt, chunked.
    fn prefill_estimates(&self, obs: &Observation) -> Vec<f64> {
        let uncached = 1.0 - obs.kv_hit_rate.unwrap_or(0.0).clamp(0.0, 0.95);
        obs.prefill
            .iter()
            .map(|p| {
                let tokens = (p.queued_tokens + self.avg_isl) * uncached;
                self.profile.prefill.chunked_time(tokens)
            })
            .collect()
    }

    /// Per-engine ITL estimates with one more average request on board.
    fn decode_estimates(&self, obs: &Observation) -> Vec<f64> {
        let decode = &self.profile.decode;
        let avg_len = self.avg_isl + self.avg_osl / 2.0;
        obs.decode
            .iter()
            .map(|d| {
                let kv = d.active_kv_tokens + d.queued_kv_tokens + avg_len;
                let seqs = f64::from(d.active_requests) + 1.0;
                decode.itl(kv / decode.max_kv_tokens, kv / seqs)
            })
            .collect()
    }
}

impl Planner for LoadRulesPlanner {
    fn name(&self) -> &str {
        "dynamo-load"
    }

    fn interval(&self) -> f64 {
        self.cfg.interval
    }

    fn decide(&mut self, obs: &Observation) -> ReplicaTarget {
        if let Some(isl) = obs.mean_isl() {
            self.avg_isl = isl;
        }
        if let Some(osl) = obs.mean_osl() {
            self.avg_osl = osl;
        }
        let mut target = obs.replicas.committed();
        for role in Role::ALL {
            let counts = obs.replicas.get(role);
            // One action at a time per role.
            if counts.starting > 0 || counts.draining > 0 {
                continue;
            }
            let (estimates, slo) = match role {
                Role::Prefill => (self.prefill_estimates(obs), self.cfg.targets.ttft),
                Role::Decode => (self.decode_estimates(obs), self.cfg.targets.itl),
            };
            let current = counts.ready;
            let next = match self.rule(&estimates, slo, current) {
                Step::Up => current + 1,
                Step::Down => current - 1,
                Step::Hold => current,
            };
            target.set(role, next);
        }
        self.cfg.limits.apply(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::{DecodeLoad, PrefillLoad};
    use crate::profile::tests::polynomial_like_profile;
    use crate::replicas::{ReplicaCounts, RoleCounts};

    fn counts(p: u32, d: u32) -> ReplicaCounts {
        ReplicaCounts {
            prefill: RoleCounts {
                ready: p,
                ..Default::default()
            },
            decode: RoleCounts {
                ready: d,
                ..Default::default()
            },
        }
    }

    fn observation(prefill_queues: &[f64], decode_kv: &[f64]) -> Observation {
        Observation {
            time: 5.0,
            interval: 5.0,
            num_requests: 10,
            isl: vec![3000.0; 10],
            osl: vec![150.0; 10],
            prefill: prefill_queues
                .iter()
                .map(|&q| PrefillLoad {
                    queued_tokens: q,
                    active_requests: 1,
                })
                .collect(),
            decode: decode_kv
                .iter()
                .map(|&kv| DecodeLoad {
                    active_kv_tokens: kv,
                    queued_kv_tokens: 0.0,
                    active_requests: (kv / 3075.0) as u32,
                })
                .collect(),
            replicas: counts(prefill_queues.len() as u32, decode_kv.len() as u32),
            ..Default::default()
        }
    }

    fn planner() -> LoadRulesPlanner {
        let cfg = LoadRulesConfig {
            targets: SloTargets {
                ttft: 0.5,
                itl: 0.025,
            },
            ..Default::default()
        };
        LoadRulesPlanner::new(cfg, polynomial_like_profile())
    }

    #[test]
    fn all_over_scales_up_one_any_under_holds() {
        let mut p = planner();
        // 40k queued tokens ≈ 5 chunks ≈ 0.9 s on each engine: both over 0.5 s.
        let o = observation(&[40_000.0, 40_000.0], &[100_000.0]);
        assert_eq!(p.decide(&o).prefill, 3);
        // One engine idle: hold.
        let o = observation(&[40_000.0, 0.0], &[100_000.0]);
        assert_eq!(p.decide(&o).prefill, 2);
    }

    #[test]
    fn all_well_under_scales_down_one_but_not_below_one() {
        let mut p = planner();
        // One 3000-token prompt ≈ 66 ms ≪ 0.8 × 0.5 s; ~10% KV ⇒ ITL ≈ 11 ms ≪ 20 ms.
        let o = observation(&[0.0, 0.0, 0.0], &[100_000.0, 100_000.0]);
        assert_eq!(p.decide(&o), ReplicaTarget::new(2, 1));
        let o = observation(&[0.0], &[100_000.0]);
        assert_eq!(p.decide(&o), ReplicaTarget::new(1, 1));
    }

    #[test]
    fn decode_scales_up_when_every_engine_is_loaded() {
        let mut p = planner();
        // ~80% KV: ITL ≈ 32 ms > 25 ms on both engines.
        let o = observation(&[0.0], &[840_000.0, 840_000.0]);
        assert_eq!(p.decide(&o).decode, 3);
    }

    #[test]
    fn pending_action_blocks_a_new_one() {
        let mut p = planner();
        let mut o = observation(&[40_000.0, 40_000.0], &[840_000.0]);
        o.replicas.prefill.starting = 1;
        let t = p.decide(&o);
        // Prefill held at ready + starting; decode still free to act.
        assert_eq!(t, ReplicaTarget::new(3, 2));
    }
}
