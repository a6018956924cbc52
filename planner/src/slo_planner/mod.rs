//! Our planner. Where Dynamo's v0.4 planner sizes each pool to 100% of its mean throughput
//! for the last interval's load, this one:
//! - sizes for a latency *percentile* (queueing model over the ISL/OSL samples, see
//!   [`crate::sizing`]);
//! - plans for the load expected when a new replica would be ready and until the next
//!   decision can land (trend or period-learning forecaster, horizon = start-up delay + one
//!   interval), plus a margin for forecast error;
//! - optionally keeps standing headroom for a sudden jump of the load
//!   ([`SloPlannerConfig::surge_ratio`]);
//! - adds capacity to clear a prefill backlog;
//! - between decisions, re-plans upwards at once when the arrivals surge, the prefill queue
//!   builds up or decode slows down ([`Planner::check`], see `emergency`);
//! - scales up at once but down only after `down_patience` intervals agree (hysteresis),
//!   unless the arrivals have fallen significantly and the forecast falls with them; a need
//!   whose forecast the arrivals since have refuted no longer holds the pools;
//! - leaves draining to the connector, which removes a replica only once it is idle.

mod corrections;
mod emergency;
mod hysteresis;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::forecast::{Forecaster, ForecasterKind, SeasonalParams};
use crate::observation::Observation;
use crate::plan::{Limits, Planner, SloTargets};
use crate::profile::PerfProfile;
use crate::replicas::{ReplicaTarget, Role};
use crate::sizing::{self, DecodeLimits};
use crate::stats;

use corrections::Corrections;
use emergency::Alarm;
use hysteresis::DownHysteresis;

/// Settings of [`SloPlanner`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SloPlannerConfig {
    /// Latency targets.
    pub targets: SloTargets,
    /// Fraction of requests each pool is sized to keep within its target at the planned
    /// rate. The planned rate is already the forecast peak over the lead window, so this
    /// need not exceed the goal (0.5 by default, the median request; see EVALUATION.md for
    /// the sweep).
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
    /// Poisson z-score of a fall of the arrivals below the busiest interval of the
    /// patience window beyond which a scale-down need not wait for `down_patience` (when
    /// the planned rate is below that busiest interval's rate too): a fall that large is
    /// the load going down, not noise. `None`: always wait.
    #[serde(default)]
    pub fall_z: Option<f64>,
    /// Poisson z-score beyond which the arrivals refute a need of the scale-down window:
    /// a need sized for a rate that every interval since has fallen this far short of, and
    /// above the rate planned now, no longer holds the pools (the window guards against
    /// noise in the arrivals, not for forecasts the arrivals have since refuted). `None`:
    /// every need holds for the whole window.
    #[serde(default)]
    pub refute_z: Option<f64>,
    /// Scale up only for the load forecast from one start-up delay on (when a replica
    /// asked for now could serve), keeping the replicas the whole window needs.
    #[serde(default)]
    pub start_window: bool,
    /// Poisson z-score beyond which arrivals short of the forecast for their interval
    /// refute the forecaster: the decision then plans for the rate observed. `None`: never.
    #[serde(default)]
    pub refute_forecast_z: Option<f64>,
    /// ISL/OSL samples kept for the request mix.
    pub sample_window: usize,
    /// Highest KV usage a decode replica may reach at the attainment quantile.
    pub kv_usage_limit: f64,
    /// Learn correction factors from observed latencies.
    pub correction: bool,
    /// Seconds between fast checks inside an interval (emergency scale-up on a surge of
    /// arrivals, a prefill backlog or slow decode); `None` disables them.
    pub check_interval: Option<f64>,
    /// Standing surge headroom: the largest sudden jump of the load, as a multiple of the
    /// current rate, that the pools should absorb until new replicas can start (one start-up
    /// delay). Each pool is kept at least at the size at which, at `surge_ratio` × the
    /// current rate, the median request still meets the targets (loaded, not overloaded).
    /// 1 disables it. It costs replicas at every load level, the peaks included.
    pub surge_ratio: f64,
}

impl Default for SloPlannerConfig {
    fn default() -> Self {
        Self {
            targets: SloTargets::default(),
            attainment: 0.5,
            interval: 10.0,
            startup_delay: 30.0,
            limits: Limits::default(),
            forecaster: ForecasterKind::Seasonal(SeasonalParams {
                alpha: 0.5,
                fallback_growth_cap: Some(FALLBACK_GROWTH_CAP),
                ..SeasonalParams::default()
            }),
            forecast_error_sigmas: 0.0,
            down_patience: 3,
            fall_z: Some(FALL_Z),
            refute_z: Some(FALL_Z),
            start_window: false,
            refute_forecast_z: None,
            sample_window: 2048,
            kv_usage_limit: 0.9,
            correction: true,
            check_interval: Some(1.0),
            surge_ratio: 1.0,
        }
    }
}

/// Default cap on the trend fallback's forecasts, as a multiple of the highest rate seen:
/// before the period is learnt, a trend fitted to the first rise or to a step otherwise
/// promises far more than the load reaches (see EVALUATION.md, row "ours (no trend cap)").
pub const FALLBACK_GROWTH_CAP: f64 = 1.25;

/// Default [`SloPlannerConfig::fall_z`]: as strict as the fast checks' surge test (one-sided
/// 3σ), so a flat load triggers it on a few decisions in a thousand (see EVALUATION.md, row
/// "ours (no fast drain)").
pub const FALL_Z: f64 = 3.0;

/// Attainment at which the surge headroom is sized: the median request within the targets.
const SURGE_ATTAINMENT: f64 = 0.5;

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
    /// Emergency re-plans between decisions so far.
    pub emergencies: u32,
}

/// The percentile-aware, forecasting planner.
pub struct SloPlanner {
    cfg: SloPlannerConfig,
    profile: PerfProfile,
    rate: Box<dyn Forecaster>,
    isl: VecDeque<f64>,
    osl: VecDeque<f64>,
    corr: Corrections,
    hysteresis: DownHysteresis,
    /// Arrivals and length (s) of the last `down_patience` intervals, newest last.
    recent_arrivals: VecDeque<(f64, f64)>,
    /// Current rate estimated at the last decision (the surge headroom's base), once one
    /// has been taken; the fast checks compare against that decision.
    last_now_rate: Option<f64>,
    /// Rate the forecaster expected, at the last decision, for the interval after it.
    next_forecast: Option<f64>,
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
            corr: Corrections::default(),
            hysteresis: DownHysteresis::default(),
            recent_arrivals: VecDeque::new(),
            last_now_rate: None,
            next_forecast: None,
            diagnostics: PlanDiagnostics::default(),
        }
    }

    /// A planner whose arrival-rate forecasts come from `rate` instead of
    /// `cfg.forecaster` (e.g. one that knows the future, to measure the sizing alone).
    pub fn with_forecaster(
        cfg: SloPlannerConfig,
        profile: PerfProfile,
        rate: Box<dyn Forecaster>,
    ) -> Self {
        Self {
            rate,
            ..Self::new(cfg, profile)
        }
    }

    /// Replicas the sizing asks for at `rate` req/s over the request mix and corrections
    /// seen so far, with no forecast, backlog or hysteresis: what the load needed in
    /// hindsight when `rate` is the rate observed (for reports of planned vs needed).
    pub fn size_for_rate(&self, rate: f64) -> ReplicaTarget {
        let (isl, osl) = self.samples();
        let need = self.sized(rate.max(0.0), 0.0, self.cfg.attainment, &isl, &osl);
        self.cfg.limits.apply(need)
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

    fn samples(&self) -> (Vec<f64>, Vec<f64>) {
        (
            self.isl.iter().copied().collect(),
            self.osl.iter().copied().collect(),
        )
    }

    /// Rate to plan for: the highest forecast over the window in which this decision is the
    /// latest one in force — from now until a replica asked for at the next decision is
    /// ready — plus the forecast-error margin. The window is scanned (not only its ends) so
    /// that a peak inside it, which a seasonal forecaster can foresee, is planned for.
    fn planned_rate(&self, observed: f64) -> f64 {
        self.planned_rate_from(observed, 0.5)
    }

    /// [`Self::planned_rate`] over the part of the window from `first` steps on.
    fn planned_rate_from(&self, observed: f64, first: f64) -> f64 {
        // An observation is the mean over the interval just ended, centred half an interval
        // back; forecast steps are whole intervals after it. The last window that matters
        // ends when the next decision's replicas are ready (start-up + one interval from
        // now), so its centre is start-up + interval after the observation's centre.
        let horizon = (self.cfg.startup_delay + self.cfg.interval) / self.cfg.interval;
        let mut peak = self.rate.forecast(first).unwrap_or(observed);
        let mut step = first;
        while step < horizon {
            step = (step + 0.5).min(horizon);
            peak = peak.max(self.rate.forecast(step).unwrap_or(observed));
        }
        let margin = self.cfg.forecast_error_sigmas * self.rate.error_rms();
        (peak + margin).max(0.0)
    }

    /// Rates forecast for each of the next `down_patience` intervals (the window a need
    /// holds the pools for), next first.
    fn forecast_path(&self, observed: f64) -> Vec<f64> {
        (1..=self.cfg.down_patience.max(1))
            .map(|k| self.rate.forecast(f64::from(k)).unwrap_or(observed))
            .collect()
    }

    /// Replicas that keep `attainment` of the requests within the targets at `rate` req/s
    /// (plus `backlog_rate` for prefill), before limits and hysteresis.
    fn sized(
        &self,
        rate: f64,
        backlog_rate: f64,
        attainment: f64,
        isl: &[f64],
        osl: &[f64],
    ) -> ReplicaTarget {
        let limits = &self.cfg.limits;
        let prefill = sizing::prefill_replicas(
            &self.profile.prefill,
            isl,
            rate + backlog_rate,
            self.corr.prefill,
            self.cfg.targets.ttft,
            attainment,
            limits.max_prefill,
        );
        let decode_limits = DecodeLimits {
            itl_target: self.cfg.targets.itl,
            attainment,
            kv_usage_limit: self.cfg.kv_usage_limit,
        };
        let decode = sizing::decode_replicas(
            &self.profile.decode,
            isl,
            osl,
            rate,
            self.corr.decode,
            &decode_limits,
            limits.max_decode,
        );
        ReplicaTarget::new(prefill, decode)
    }

    /// What to run for `planned` req/s and the current queue: the SLO sizing, raised to the
    /// surge headroom around the current rate `now_rate`.
    fn needed(
        &self,
        planned: f64,
        now_rate: f64,
        obs: &Observation,
        isl: &[f64],
        osl: &[f64],
    ) -> ReplicaTarget {
        let mean_isl = stats::mean_or(isl, 1.0).max(1.0);
        // Queued prompts become extra arrivals spread over the time until replicas asked for
        // now are ready and one interval on: a backlog the present replicas clear before
        // then is no reason to start more (and a new replica takes new arrivals only).
        let backlog_rate =
            obs.queued_prefill_tokens() / mean_isl / (self.cfg.interval + self.cfg.startup_delay);
        let mut need = self.sized(planned, backlog_rate, self.cfg.attainment, isl, osl);
        if self.cfg.surge_ratio > 1.0 {
            let surge_rate = now_rate * self.cfg.surge_ratio;
            let surge = self.sized(surge_rate, 0.0, SURGE_ATTAINMENT, isl, osl);
            for role in Role::ALL {
                need.set(role, need.get(role).max(surge.get(role)));
            }
        }
        self.cfg.limits.apply(need)
    }

    fn remember_arrivals(&mut self, obs: &Observation) {
        self.recent_arrivals
            .push_back((obs.num_requests as f64, obs.interval));
        while self.recent_arrivals.len() > self.cfg.down_patience.max(1) as usize {
            self.recent_arrivals.pop_front();
        }
    }

    /// Whether the latest interval's arrivals fell more than [`SloPlannerConfig::fall_z`]
    /// Poisson standard deviations below the busiest interval of the patience window, and
    /// the `planned` rate lies below that interval's rate too (the forecast falls with the
    /// observations).
    fn load_fell(&self, planned: f64) -> bool {
        let (Some(z), Some(&(count, secs))) = (self.cfg.fall_z, self.recent_arrivals.back()) else {
            return false;
        };
        if secs <= 0.0 {
            return false;
        }
        let peak_rate = self
            .recent_arrivals
            .iter()
            .filter(|(_, s)| *s > 0.0)
            .map(|(n, s)| n / s)
            .fold(0.0, f64::max);
        // The peak's count scaled to the latest interval; the difference of two Poisson
        // counts has their sum as variance.
        let expected = peak_rate * secs;
        let fall = expected - count;
        fall > z * (expected + count).sqrt() && planned < peak_rate
    }

    /// Decisions that a scale-down must wait for: one when the forecaster has shown it
    /// predicts the turns (it already planned for the whole window in which a removed
    /// replica could not come back) or when the load has fallen significantly and the
    /// forecast with it ([`Self::load_fell`]), `down_patience` otherwise.
    fn patience(&self, planned: f64) -> usize {
        if self.rate.anticipates_turns() || self.load_fell(planned) {
            1
        } else {
            self.cfg.down_patience.max(1) as usize
        }
    }

    /// Whether the arrivals of the interval just ended fell more than
    /// [`SloPlannerConfig::refute_forecast_z`] Poisson standard deviations short of what the
    /// forecaster expected for it at the last decision.
    fn forecast_refuted(&self, obs: &Observation) -> bool {
        let (Some(z), Some(rate)) = (self.cfg.refute_forecast_z, self.next_forecast) else {
            return false;
        };
        let expected = rate.max(0.0) * obs.interval;
        let arrived = obs.num_requests as f64;
        expected - arrived > z * (expected + arrived).sqrt()
    }

    /// Which emergency, if any, the partial observation `obs` shows.
    fn alarm(&self, obs: &Observation) -> Alarm {
        let targets = self.cfg.targets;
        Alarm {
            surge: emergency::arrival_surge(
                obs.num_requests,
                obs.interval,
                self.diagnostics.planned_rate,
            ),
            backlog: emergency::prefill_wait(obs, &self.profile.prefill, self.corr.prefill)
                > emergency::BACKLOG_WAIT_FRACTION * targets.ttft,
            slow_decode: emergency::decode_itl(obs, &self.profile.decode, self.corr.decode)
                .is_some_and(|itl| itl > targets.itl),
        }
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
        self.remember_arrivals(obs);
        let (isl, osl) = self.samples();
        let observed = obs.arrival_rate();
        let refuted = self.forecast_refuted(obs);
        self.rate.observe(observed);
        if self.cfg.correction {
            self.corr.update(&self.profile, obs, &isl, &osl);
        }
        let (planned, now_rate) = if refuted {
            (observed, observed)
        } else {
            let now = self.rate.forecast(0.5).unwrap_or(observed).max(0.0);
            (self.planned_rate(observed), now)
        };
        self.next_forecast = self.rate.forecast(1.0);
        let mut need = self.needed(planned, now_rate, obs, &isl, &osl);
        // What runs now (starting replicas included); a planner taking over a running
        // deployment applies the same hysteresis to it as to its own decisions.
        let committed = obs.replicas.committed();
        let current = if committed.prefill + committed.decode > 0 {
            committed
        } else {
            need
        };
        if self.cfg.start_window {
            // A replica asked for now serves from one start-up on: scale up only for the
            // load expected from then; keep what runs for the whole window.
            let first = (self.cfg.startup_delay / self.cfg.interval + 0.5).max(0.5);
            let late = self.planned_rate_from(observed, first);
            let start = self.needed(late, now_rate, obs, &isl, &osl);
            for role in Role::ALL {
                let kept = need.get(role).min(current.get(role));
                need.set(role, start.get(role).max(kept));
            }
        }
        let patience = self.patience(planned);
        self.hysteresis
            .observe(obs.num_requests as f64, obs.interval);
        let path = self.forecast_path(observed);
        let target = self.cfg.limits.apply(self.hysteresis.apply(
            need,
            planned,
            path,
            current,
            patience,
            self.cfg.refute_z,
        ));
        self.last_now_rate = Some(now_rate);
        self.diagnostics = PlanDiagnostics {
            observed_rate: observed,
            planned_rate: planned,
            prefill_correction: self.corr.prefill,
            decode_correction: self.corr.decode,
            needed: need,
            emergencies: self.diagnostics.emergencies,
        };
        target
    }

    fn check_interval(&self) -> Option<f64> {
        self.cfg.check_interval.filter(|&c| c > 0.0)
    }

    /// Re-plans upwards only, and only on an [`Alarm`]: for the higher of the planned rate
    /// and the rate of the arrivals since the last decision, with the current backlog.
    fn check(&mut self, obs: &Observation) -> Option<ReplicaTarget> {
        let now_rate = self.last_now_rate?;
        if !self.alarm(obs).any() {
            return None;
        }
        let (isl, osl) = self.samples();
        let rate = self.diagnostics.planned_rate.max(obs.arrival_rate());
        // The surge headroom keeps its base from the last decision: a few seconds of
        // arrivals are too noisy to multiply.
        let mut need = self.needed(rate, now_rate, obs, &isl, &osl);
        let for_load = emergency::decode_replicas_for_load(
            obs,
            &self.profile.decode,
            self.corr.decode,
            self.cfg.targets.itl,
            self.cfg.limits.max_decode,
        );
        need.decode = need.decode.max(for_load);
        // Starting replicas count as capacity already asked for.
        let committed = obs.replicas.committed();
        let mut target = committed;
        for role in Role::ALL {
            target.set(role, committed.get(role).max(need.get(role)));
        }
        if target == committed {
            return None;
        }
        // No forecast path: a burst is the noise the window holds the pools for, so an
        // emergency need is never refuted.
        self.hysteresis.remember(need, rate, Vec::new());
        self.diagnostics.emergencies += 1;
        Some(self.cfg.limits.apply(target))
    }
}

#[cfg(test)]
mod tests;
