//! Our planner. Where Dynamo's v0.4 planner sizes each pool to 100% of its mean throughput
//! for the last interval's load, this one:
//! - sizes for a latency *percentile* (queueing model over the ISL/OSL samples, see
//!   [`crate::sizing`]);
//! - plans for the load expected when a new replica would be ready and until the next
//!   decision can land (trend forecaster, horizon = start-up delay + one interval), plus a
//!   margin for forecast error;
//! - adds capacity to clear a prefill backlog;
//! - scales up at once but down only after `down_patience` intervals agree (hysteresis);
//! - leaves draining to the connector, which removes a replica only once it is idle.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::forecast::{Forecaster, ForecasterKind};
use crate::observation::Observation;
use crate::plan::{Limits, Planner, SloTargets};
use crate::profile::PerfProfile;
use crate::replicas::{ReplicaTarget, Role};
use crate::sizing::{self, DecodeLimits};
use crate::stats;

/// Settings of [`SloPlanner`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SloPlannerConfig {
    /// Latency targets.
    pub targets: SloTargets,
    /// Fraction of requests planned to meet each target (above the goal, for margin).
    pub attainment: f64,
    /// Seconds between decisions.
    pub interval: f64,
    /// Seconds from asking for a replica until it serves.
    pub startup_delay: f64,
    /// Replica bounds and GPU budget.
    pub limits: Limits,
    /// Arrival-rate forecaster.
    pub forecaster: ForecasterKind,
    /// Forecast-error margin, in RMS one-step errors added to the planned rate.
    pub forecast_error_sigmas: f64,
    /// Intervals in a row that must allow fewer replicas before scaling down.
    pub down_patience: u32,
    /// ISL/OSL samples kept for the request mix.
    pub sample_window: usize,
    /// Highest KV usage a decode replica may reach at the attainment quantile.
    pub kv_usage_limit: f64,
    /// Learn correction factors from observed latencies.
    pub correction: bool,
}

impl Default for SloPlannerConfig {
    fn default() -> Self {
        Self {
            targets: SloTargets::default(),
            attainment: 0.97,
            interval: 10.0,
            startup_delay: 30.0,
            limits: Limits::default(),
            forecaster: ForecasterKind::Holt {
                alpha: 0.5,
                beta: 0.3,
            },
            forecast_error_sigmas: 1.0,
            down_patience: 3,
            sample_window: 2048,
            kv_usage_limit: 0.9,
            correction: true,
        }
    }
}

/// Correction factors are clamped to this range: a wild observation must not make the
/// planner drop (or multiply) capacity.
const CORRECTION_RANGE: (f64, f64) = (0.7, 2.5);
/// Weight of a new correction observation.
const CORRECTION_WEIGHT: f64 = 0.3;
/// Fewest latency samples in an interval to update a correction factor.
const MIN_CORRECTION_SAMPLES: usize = 20;
/// The prefill correction is learned only below this modelled utilisation, where the
/// queueing model is not dominated by its own approximation error.
const CORRECTION_MAX_UTILISATION: f64 = 0.8;

/// Why the last decision came out as it did; for reports and debugging.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PlanDiagnostics {
    /// Observed arrival rate (req/s).
    pub observed_rate: f64,
    /// Rate planned for (req/s), forecast and margin included.
    pub planned_rate: f64,
    /// Prefill correction factor in use.
    pub prefill_correction: f64,
    /// Decode correction factor in use.
    pub decode_correction: f64,
    /// Replicas the sizing asked for, before hysteresis.
    pub needed: ReplicaTarget,
}

/// The percentile-aware, forecasting planner.
pub struct SloPlanner {
    cfg: SloPlannerConfig,
    profile: PerfProfile,
    rate: Box<dyn Forecaster>,
    isl: VecDeque<f64>,
    osl: VecDeque<f64>,
    corr_prefill: f64,
    corr_decode: f64,
    /// Needs computed in the last `down_patience` decisions, newest last.
    recent_needs: VecDeque<ReplicaTarget>,
    /// Whether the previous interval was free of transitions and backlog.
    was_calm: bool,
    diagnostics: PlanDiagnostics,
}

impl SloPlanner {
    /// A planner over `profile` with settings `cfg`.
    pub fn new(cfg: SloPlannerConfig, profile: PerfProfile) -> Self {
        Self {
            rate: cfg.forecaster.build(),
            cfg,
            profile,
            isl: VecDeque::new(),
            osl: VecDeque::new(),
            corr_prefill: 1.0,
            corr_decode: 1.0,
            recent_needs: VecDeque::new(),
            was_calm: false,
            diagnostics: PlanDiagnostics::default(),
        }
    }

    /// Details of the last decision.
    pub fn diagnostics(&self) -> PlanDiagnostics {
        self.diagnostics
    }

    fn remember_samples(&mut self, obs: &Observation) {
        let window = self.cfg.sample_window.max(1);
        for (store, fresh) in [(&mut self.isl, &obs.isl), (&mut self.osl, &obs.osl)] {
            store.extend(fresh.iter().copied());
            while store.len() > window {
                store.pop_front();
            }
        }
    }

    /// Rate to plan for: the highest forecast over the window in which this decision is the
    /// latest one in force — from now until a replica asked for at the next decision is
    /// ready — plus the forecast-error margin. The window is scanned (not only its ends) so
    /// that a peak inside it, which a seasonal forecaster can foresee, is planned for.
    fn planned_rate(&self, observed: f64) -> f64 {
        // An observation is the mean over the interval just ended, centred half an interval
        // back; forecast steps are whole intervals after it.
        let horizon = (self.cfg.startup_delay + self.cfg.interval) / self.cfg.interval + 0.5;
        let mut peak = self.rate.forecast(0.5).unwrap_or(observed);
        let mut step = 0.5;
        while step < horizon {
            step = (step + 0.5).min(horizon);
            peak = peak.max(self.rate.forecast(step).unwrap_or(observed));
        }
        let margin = self.cfg.forecast_error_sigmas * self.rate.error_rms();
        (peak + margin).max(0.0)
    }

    fn update_corrections(&mut self, obs: &Observation, isl: &[f64], osl: &[f64]) {
        let blend = |old: f64, new: f64| {
            let new = new.clamp(CORRECTION_RANGE.0, CORRECTION_RANGE.1);
            old + CORRECTION_WEIGHT * (new - old)
        };
        let rate = obs.arrival_rate();
        let ready_prefill = obs.replicas.prefill.ready;
        // TTFTs of requests that queued behind a backlog (after a cold start or a burst)
        // say nothing about the engine's speed; learn only from a pool in steady state.
        let backlog_per_replica = obs.queued_prefill_tokens() / f64::from(ready_prefill.max(1));
        let calm = !obs.replicas.in_transition()
            && backlog_per_replica <= 2.0 * f64::from(self.profile.prefill.max_batched_tokens);
        // The TTFTs seen now belong to requests that arrived up to an interval ago, so the
        // previous interval must have been calm too.
        let steady = calm && self.was_calm;
        self.was_calm = calm;
        if steady && obs.ttft.len() >= MIN_CORRECTION_SAMPLES && ready_prefill > 0 {
            let (queue, services) =
                sizing::prefill_queue(&self.profile.prefill, isl, rate, ready_prefill, 1.0);
            if queue.utilisation() < CORRECTION_MAX_UTILISATION {
                // The median: robust to the few requests that met a momentary queue.
                let predicted = queue.latency_quantile(&services, 0.5);
                let observed = stats::quantile(&obs.ttft, 0.5).unwrap_or(predicted);
                if predicted.is_finite() && predicted > 0.0 {
                    self.corr_prefill = blend(self.corr_prefill, observed / predicted);
                }
            }
        }
        if steady && obs.itl.len() >= MIN_CORRECTION_SAMPLES && !obs.decode.is_empty() {
            let decode = &self.profile.decode;
            let kv = obs.active_decode_kv_tokens() / obs.decode.len() as f64;
            let seqs = obs
                .decode
                .iter()
                .map(|d| f64::from(d.active_requests))
                .sum::<f64>()
                / obs.decode.len() as f64;
            let context = if seqs > 0.0 {
                kv / seqs
            } else {
                stats::mean_or(isl, 0.0) + stats::mean_or(osl, 0.0) / 2.0
            };
            let predicted = decode.itl(kv / decode.max_kv_tokens, context);
            if let Some(observed) = obs.mean_itl() {
                self.corr_decode = blend(self.corr_decode, observed / predicted);
            }
        }
    }

    /// Replicas needed at `rate` req/s, before limits and hysteresis.
    fn needed(&self, rate: f64, backlog_rate: f64, isl: &[f64], osl: &[f64]) -> ReplicaTarget {
        let limits = &self.cfg.limits;
        let prefill = sizing::prefill_replicas(
            &self.profile.prefill,
            isl,
            rate + backlog_rate,
            self.corr_prefill,
            self.cfg.targets.ttft,
            self.cfg.attainment,
            limits.max_prefill,
        );
        let decode_limits = DecodeLimits {
            itl_target: self.cfg.targets.itl,
            attainment: self.cfg.attainment,
            kv_usage_limit: self.cfg.kv_usage_limit,
        };
        let decode = sizing::decode_replicas(
            &self.profile.decode,
            isl,
            osl,
            rate,
            self.corr_decode,
            &decode_limits,
            limits.max_decode,
        );
        ReplicaTarget::new(prefill, decode)
    }

    /// Up at once; down only to the largest need of the last `down_patience` intervals (one
    /// interval when the forecaster anticipates turns), and only when all of them were below
    /// the current count.
    fn with_hysteresis(&mut self, need: ReplicaTarget, current: ReplicaTarget) -> ReplicaTarget {
        self.recent_needs.push_back(need);
        // A forecaster that has shown it predicts the turns already planned for the whole
        // window in which a removed replica could not come back: its fall is acted on at once.
        let patience = if self.rate.anticipates_turns() {
            1
        } else {
            self.cfg.down_patience.max(1) as usize
        };
        while self.recent_needs.len() > patience {
            self.recent_needs.pop_front();
        }
        let mut target = current;
        for role in Role::ALL {
            let (want, have) = (need.get(role), current.get(role));
            if want >= have {
                target.set(role, want);
            } else if self.recent_needs.len() == patience {
                let keep = self
                    .recent_needs
                    .iter()
                    .map(|n| n.get(role))
                    .max()
                    .unwrap_or(have);
                target.set(role, keep.min(have));
            }
        }
        target
    }
}

impl Planner for SloPlanner {
    fn name(&self) -> &str {
        "slo-forecast"
    }

    fn interval(&self) -> f64 {
        self.cfg.interval
    }

    fn decide(&mut self, obs: &Observation) -> ReplicaTarget {
        self.remember_samples(obs);
        let isl: Vec<f64> = self.isl.iter().copied().collect();
        let osl: Vec<f64> = self.osl.iter().copied().collect();
        let observed = obs.arrival_rate();
        self.rate.observe(observed);
        if self.cfg.correction {
            self.update_corrections(obs, &isl, &osl);
        }
        let rate = self.planned_rate(observed);
        // Queued prompts become extra arrivals spread over the next interval.
        let mean_isl = stats::mean_or(&isl, 1.0).max(1.0);
        let backlog_rate = obs.queued_prefill_tokens() / mean_isl / self.cfg.interval;
        let need = self
            .cfg
            .limits
            .apply(self.needed(rate, backlog_rate, &isl, &osl));
        // What runs now (starting replicas included); a planner taking over a running
        // deployment applies the same hysteresis to it as to its own decisions.
        let committed = obs.replicas.committed();
        let current = if committed.prefill + committed.decode > 0 {
            committed
        } else {
            need
        };
        let smoothed = self.with_hysteresis(need, current);
        let target = self.cfg.limits.apply(smoothed);
        self.diagnostics = PlanDiagnostics {
            observed_rate: observed,
            planned_rate: rate,
            prefill_correction: self.corr_prefill,
            decode_correction: self.corr_decode,
            needed: need,
        };
        target
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::polynomial_like_profile;
    use crate::replicas::{ReplicaCounts, RoleCounts};

    fn obs_at(time: f64, rate: f64, current: ReplicaTarget) -> Observation {
        let interval = 10.0;
        let n = (rate * interval).round() as usize;
        Observation {
            time,
            interval,
            num_requests: n as u64,
            isl: vec![3000.0; n],
            osl: vec![150.0; n],
            replicas: ReplicaCounts {
                prefill: RoleCounts {
                    ready: current.prefill,
                    ..Default::default()
                },
                decode: RoleCounts {
                    ready: current.decode,
                    ..Default::default()
                },
            },
            ..Default::default()
        }
    }

    fn config() -> SloPlannerConfig {
        SloPlannerConfig {
            targets: SloTargets {
                ttft: 0.3,
                itl: 0.03,
            },
            correction: false,
            ..Default::default()
        }
    }

    /// Runs `rates` through a planner whose decisions are enacted at once.
    fn run(cfg: SloPlannerConfig, rates: &[f64]) -> Vec<ReplicaTarget> {
        let mut planner = SloPlanner::new(cfg, polynomial_like_profile());
        let mut current = ReplicaTarget::new(1, 1);
        rates
            .iter()
            .enumerate()
            .map(|(i, &r)| {
                current = planner.decide(&obs_at(10.0 * (i + 1) as f64, r, current));
                current
            })
            .collect()
    }

    #[test]
    fn a_ramp_is_provisioned_ahead_of_a_constant_forecast() {
        let ramp: Vec<f64> = (0..20).map(|i| 5.0 + 2.0 * f64::from(i)).collect();
        let trend = run(config(), &ramp);
        let flat = run(
            SloPlannerConfig {
                forecaster: ForecasterKind::Constant,
                forecast_error_sigmas: 0.0,
                ..config()
            },
            &ramp,
        );
        let ahead = trend
            .iter()
            .zip(&flat)
            .filter(|(t, f)| t.prefill > f.prefill)
            .count();
        assert!(ahead >= 5, "trend {trend:?}\nflat {flat:?}");
        assert!(trend.iter().zip(&flat).all(|(t, f)| t.prefill >= f.prefill));
    }

    #[test]
    fn scale_down_waits_for_patience_then_drops() {
        let mut rates = vec![30.0; 10];
        rates.extend(vec![3.0; 10]);
        let cfg = SloPlannerConfig {
            forecaster: ForecasterKind::Constant,
            forecast_error_sigmas: 0.0,
            ..config()
        };
        let plan = run(cfg, &rates);
        let high = plan[9].prefill;
        assert!(high >= 3, "{plan:?}");
        // First two low intervals: held. Third: down.
        assert_eq!(plan[10].prefill, high);
        assert_eq!(plan[11].prefill, high);
        assert!(plan[12].prefill < high, "{plan:?}");
        assert_eq!(plan[19].prefill, 1);
    }

    #[test]
    fn noisy_flat_load_does_not_oscillate() {
        // ±15% alternating noise around 20 req/s.
        let rates: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 17.0 } else { 23.0 })
            .collect();
        let plan = run(config(), &rates);
        let changes = plan[5..].windows(2).filter(|w| w[0] != w[1]).count();
        assert!(changes <= 1, "{plan:?}");
    }

    #[test]
    fn prefill_backlog_adds_capacity() {
        let mut planner = SloPlanner::new(config(), polynomial_like_profile());
        let mut o = obs_at(10.0, 10.0, ReplicaTarget::new(2, 1));
        let calm = planner.decide(&o);
        let mut planner = SloPlanner::new(config(), polynomial_like_profile());
        o.prefill = vec![crate::observation::PrefillLoad {
            queued_tokens: 600_000.0,
            active_requests: 100,
        }];
        let backlogged = planner.decide(&o);
        assert!(backlogged.prefill > calm.prefill, "{calm:?} {backlogged:?}");
    }

    #[test]
    fn prefill_correction_learns_a_slower_engine() {
        let mut planner = SloPlanner::new(
            SloPlannerConfig {
                correction: true,
                ..config()
            },
            polynomial_like_profile(),
        );
        let mut o = obs_at(10.0, 2.0, ReplicaTarget::new(4, 1));
        // At 2 req/s on 4 replicas there is no queueing; observed TTFT twice the profile's.
        o.ttft = vec![2.0 * polynomial_like_profile().prefill.ttft(3000.0); 30];
        for _ in 0..10 {
            planner.decide(&o);
        }
        let c = planner.diagnostics().prefill_correction;
        assert!((c - 2.0).abs() < 0.1, "correction {c}");
    }
}
