//! Today's Dynamo planner (`components/src/dynamo/planner/core/throughput_scaling.py` and
//! `load_scaling.py`), re-implemented from its published behaviour:
//! - **throughput scaling** every `throughput_interval`: predicted request count, ISL and OSL
//!   give a demand in req/s; one prefill engine serves `1 / wt(isl)` req/s, with `wt` the
//!   engine time of one prompt (chunked into `max_batched_tokens` passes), plus a floor of
//!   `ceil(wt / ttft_target)` engines when one prompt alone misses the target; one decode
//!   engine serves `b / (osl · itl(b))` req/s (Little's law) at the largest batch `b` whose
//!   step time meets the ITL target. No correction factors.
//! - **load scaling** (optional) every `load_interval`: Dynamo's ±1 rules
//!   ([`LoadRulesPlanner`]), with the throughput decision as a lower bound.
//!
//! Differences from Dynamo, kept because they are the same for every planner here: the
//! profile (not an online regression over forward-pass metrics) gives the engine times, so
//! the model is warm from the start; the request count is the arrivals the frontend saw
//! (Dynamo counts requests at its frontend too); Dynamo's default ARIMA predictor is not
//! ported (constant and Kalman are).

use serde::{Deserialize, Serialize};

use crate::baseline::{LoadRulesConfig, LoadRulesPlanner};
use crate::forecast::{Forecaster, ForecasterKind};
use crate::observation::Observation;
use crate::plan::{Limits, Planner, SloTargets};
use crate::profile::PerfProfile;
use crate::replicas::{ReplicaTarget, Role};

/// Settings of [`DynamoCurrentPlanner`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DynamoCurrentConfig {
    /// Latency targets.
    pub targets: SloTargets,
    /// Replica bounds and GPU budget.
    pub limits: Limits,
    /// Seconds between throughput decisions (Dynamo's default: 180).
    pub throughput_interval: f64,
    /// Seconds between load-rule decisions (Dynamo's default: 5).
    pub load_interval: f64,
    /// Run the load rules with the throughput decision as their lower bound (Dynamo's
    /// `enable_load_scaling`).
    pub load_scaling: bool,
    /// Scale-down sensitivity of the load rules (Dynamo's default: 0.8).
    pub sensitivity: f64,
    /// Predictor of request count, ISL and OSL.
    pub predictor: ForecasterKind,
}

impl Default for DynamoCurrentConfig {
    fn default() -> Self {
        Self {
            targets: SloTargets::default(),
            limits: Limits::default(),
            throughput_interval: 180.0,
            load_interval: 5.0,
            load_scaling: false,
            sensitivity: 0.8,
            predictor: ForecasterKind::Constant,
        }
    }
}

/// Traffic gathered over one throughput interval.
#[derive(Debug, Clone, Default)]
struct Window {
    elapsed: f64,
    requests: u64,
    isl_sum: f64,
    isl_n: usize,
    osl_sum: f64,
    osl_n: usize,
}

/// Today's Dynamo planner: throughput sizing, optionally under load rules.
pub struct DynamoCurrentPlanner {
    cfg: DynamoCurrentConfig,
    profile: PerfProfile,
    rules: LoadRulesPlanner,
    num_req: Box<dyn Forecaster>,
    isl: Box<dyn Forecaster>,
    osl: Box<dyn Forecaster>,
    window: Window,
    /// The last throughput decision (the load rules' lower bound).
    throughput: Option<ReplicaTarget>,
}

impl DynamoCurrentPlanner {
    /// A planner over `profile` with settings `cfg`.
    pub fn new(cfg: DynamoCurrentConfig, profile: PerfProfile) -> Self {
        let rules = LoadRulesPlanner::new(
            LoadRulesConfig {
                targets: cfg.targets,
                interval: cfg.load_interval,
                sensitivity: cfg.sensitivity,
                limits: cfg.limits,
            },
            profile.clone(),
        );
        Self {
            num_req: cfg.predictor.build(),
            isl: cfg.predictor.build(),
            osl: cfg.predictor.build(),
            cfg,
            profile,
            rules,
            window: Window::default(),
            throughput: None,
        }
    }

    /// Request rate one prefill engine serves at `isl` tokens, and the TTFT floor (engines)
    /// when one prompt alone exceeds the target.
    pub fn prefill_engine_rps(&self, isl: f64) -> (f64, u32) {
        let wt = self.profile.prefill.chunked_time(isl.max(1.0)).max(1e-6);
        let floor = if wt > self.cfg.targets.ttft {
            (wt / self.cfg.targets.ttft).ceil() as u32
        } else {
            1
        };
        (1.0 / wt, floor)
    }

    /// Request rate one decode engine serves within the ITL target at `isl`/`osl`.
    pub fn decode_engine_rps(&self, isl: f64, osl: f64) -> f64 {
        let osl = osl.max(1.0);
        let (batch, itl) = self
            .profile
            .decode
            .max_batch_within(self.cfg.targets.itl, isl + osl / 2.0);
        f64::from(batch) / (osl * itl.max(1e-6))
    }

    /// The throughput decision for the window just closed, if it saw traffic.
    fn throughput_decision(&mut self) -> Option<ReplicaTarget> {
        let w = std::mem::take(&mut self.window);
        if w.elapsed <= 0.0 || w.isl_n == 0 || w.osl_n == 0 {
            return None;
        }
        self.num_req.observe(w.requests as f64);
        self.isl.observe(w.isl_sum / w.isl_n as f64);
        self.osl.observe(w.osl_sum / w.osl_n as f64);
        let next_req = self.num_req.forecast(1.0)?.max(0.0);
        let isl = self.isl.forecast(1.0)?.max(1.0);
        let osl = self.osl.forecast(1.0)?.max(1.0);
        let demand = next_req / w.elapsed;
        let (p_rps, p_floor) = self.prefill_engine_rps(isl);
        let d_rps = self.decode_engine_rps(isl, osl);
        let prefill = ((demand / p_rps).ceil() as u32).max(p_floor);
        let decode = (demand / d_rps).ceil() as u32;
        Some(self.cfg.limits.apply(ReplicaTarget::new(prefill, decode)))
    }
}

impl Planner for DynamoCurrentPlanner {
    fn name(&self) -> &str {
        "dynamo-current"
    }

    fn interval(&self) -> f64 {
        if self.cfg.load_scaling {
            self.cfg.load_interval
        } else {
            self.cfg.throughput_interval
        }
    }

    fn decide(&mut self, obs: &Observation) -> ReplicaTarget {
        let w = &mut self.window;
        w.elapsed += obs.interval;
        w.requests += obs.num_requests;
        w.isl_sum += obs.isl.iter().sum::<f64>();
        w.isl_n += obs.isl.len();
        w.osl_sum += obs.osl.iter().sum::<f64>();
        w.osl_n += obs.osl.len();
        if w.elapsed + 1e-9 >= self.cfg.throughput_interval {
            // A window without traffic keeps the previous decision, as in Dynamo.
            self.throughput = self.throughput_decision().or(self.throughput);
        }
        let committed = obs.replicas.committed();
        if !self.cfg.load_scaling {
            return self
                .throughput
                .unwrap_or_else(|| self.cfg.limits.apply(committed));
        }
        let mut target = self.rules.decide(obs);
        if let Some(bound) = self.throughput {
            for role in Role::ALL {
                target.set(role, target.get(role).max(bound.get(role)));
            }
        }
        self.cfg.limits.apply(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::polynomial_like_profile;

    fn obs(time: f64, interval: f64, num: u64) -> Observation {
        Observation {
            time,
            interval,
            num_requests: num,
            isl: vec![3000.0; num as usize],
            osl: vec![150.0; num as usize],
            ..Default::default()
        }
    }

    #[test]
    fn throughput_sizing_follows_littles_law() {
        let cfg = DynamoCurrentConfig {
            throughput_interval: 10.0,
            ..Default::default()
        };
        let profile = polynomial_like_profile();
        let mut p = DynamoCurrentPlanner::new(cfg, profile.clone());
        // 20 req/s of 3000-token prompts.
        let t = p.decide(&obs(10.0, 10.0, 200));
        let wt = profile.prefill.chunked_time(3000.0);
        assert_eq!(t.prefill, (20.0 * wt).ceil() as u32);
        let (b, itl) = profile.decode.max_batch_within(0.05, 3075.0);
        assert!(itl <= 0.05 && b > 1);
        assert_eq!(
            t.decode,
            (20.0 / (f64::from(b) / (150.0 * itl))).ceil() as u32
        );
    }

    #[test]
    fn throughput_waits_for_its_interval_and_bounds_the_load_rules() {
        let cfg = DynamoCurrentConfig {
            throughput_interval: 10.0,
            load_interval: 5.0,
            load_scaling: true,
            ..Default::default()
        };
        let mut p = DynamoCurrentPlanner::new(cfg, polynomial_like_profile());
        assert_eq!(p.interval(), 5.0);
        // First half: no throughput decision yet; the rules see no engines and hold at 1.
        assert_eq!(p.decide(&obs(5.0, 5.0, 100)), ReplicaTarget::new(1, 1));
        // Second half closes the 10-s window: 200 requests → 20 req/s → a lower bound > 1.
        let t = p.decide(&obs(10.0, 5.0, 100));
        assert!(t.prefill > 1 && t.decode >= 1, "{t:?}");
    }

    #[test]
    fn a_prompt_slower_than_the_target_sets_a_floor() {
        let cfg = DynamoCurrentConfig {
            targets: SloTargets {
                ttft: 0.01,
                itl: 0.05,
            },
            ..Default::default()
        };
        let p = DynamoCurrentPlanner::new(cfg, polynomial_like_profile());
        let (_, floor) = p.prefill_engine_rps(3000.0);
        assert!(floor >= 6, "{floor}");
    }
}
