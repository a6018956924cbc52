//! A forecaster that learns the period of the load. Every observation, it fits
//! `level + a·sin(2πt/P) + b·cos(2πt/P)` by least squares over the recent history for every
//! candidate period `P` (a periodogram search), keeps the best fit, and forecasts from it.
//! A Holt trend model runs beside it; the seasonal fit is used only while its errors at the
//! planning horizon (forecasts made `horizon` steps earlier, scored when the value arrives)
//! are lower than Holt's, so a step or a ramp that a sinusoid happens to fit is not trusted
//! unless it has actually predicted well.

use std::collections::VecDeque;
use std::f64::consts::TAU;

use serde::{Deserialize, Serialize};

use super::{ErrorTracker, Forecaster, Holt};

/// Settings of [`Seasonal`]. Periods and horizons are in steps (adjustment intervals).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeasonalParams {
    /// Shortest period searched.
    pub min_period: f64,
    /// Longest period searched (also bounded by the history and `min_cycles`).
    pub max_period: f64,
    /// Whole periods that must be in the history before a period is considered.
    pub min_cycles: f64,
    /// Values kept and fitted.
    pub history: usize,
    /// Horizon (steps) at which the seasonal and trend models are compared.
    pub horizon: usize,
    /// Fraction of the history's variance the sinusoid must explain (R²) to be used: a
    /// flat, noisy load is fitted by a sinusoid of tiny amplitude, which is no evidence of a
    /// period.
    pub min_r2: f64,
    /// Holt level smoothing of the fallback.
    pub alpha: f64,
    /// Holt trend smoothing of the fallback.
    pub beta: f64,
    /// Trend damping of the fallback per step ahead (1: none; see [`Holt::damped`]).
    #[serde(default = "no_damping")]
    pub trend_damping: f64,
    /// Cap on the fallback's forecasts, as a multiple of the highest value in the history:
    /// a trend fitted to a few points (a step, the first rise of a cycle) may not promise
    /// more than this above anything seen yet. `None`: no cap.
    #[serde(default)]
    pub fallback_growth_cap: Option<f64>,
    /// When persistence (the latest value, as the forecast for every step ahead) competes
    /// with the two models: a model is used only while its errors at the planning horizon
    /// are lower than persistence's too, and persistence is forecast otherwise.
    #[serde(default)]
    pub persistence: Persistence,
    /// Judge a model against persistence by its latest `horizon` scored forecasts only
    /// (equal weights) rather than by its exponentially weighted history.
    #[serde(default)]
    pub judge_latest: bool,
    /// Cap the trend model's forecasts at the highest value seen plus this many of its
    /// own one-step RMS errors (on top of [`Self::fallback_growth_cap`]). `None`: no such cap.
    #[serde(default)]
    pub fallback_error_cap: Option<f64>,
}

/// When [`SeasonalParams::persistence`] competes with the seasonal and trend models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Persistence {
    /// Never: the seasonal model when it beats the trend model, the trend model otherwise.
    #[default]
    Never,
    /// While the history holds less than [`TURNS_MIN_CYCLES`] of the fitted period (or no
    /// period is in use): the warm-up, where a fit to less than a cycle and a trend fitted
    /// to the first rise have not yet been shown to beat the plainest forecast.
    WarmUp,
    /// Always.
    Always,
}

fn no_damping() -> f64 {
    1.0
}

impl Default for SeasonalParams {
    fn default() -> Self {
        Self {
            min_period: 4.0,
            max_period: 360.0,
            min_cycles: 0.75,
            history: 360,
            horizon: 4,
            min_r2: 0.5,
            alpha: 0.8,
            beta: 0.6,
            trend_damping: 1.0,
            fallback_growth_cap: None,
            persistence: Persistence::Never,
            judge_latest: false,
            fallback_error_cap: None,
        }
    }
}

/// Cycles of the fitted period the history must hold before the forecaster claims to
/// anticipate turns (see [`Forecaster::anticipates_turns`]).
pub const TURNS_MIN_CYCLES: f64 = 1.5;

/// Grid step of the period search, in steps.
const PERIOD_STEP: f64 = 0.25;

/// One least-squares sinusoid.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fit {
    period: f64,
    level: f64,
    sin: f64,
    cos: f64,
    rss: f64,
    /// Total sum of squares of the fitted values around their mean.
    tss: f64,
}

impl Fit {
    fn at(&self, t: f64) -> f64 {
        let w = TAU * t / self.period;
        self.level + self.sin * w.sin() + self.cos * w.cos()
    }
}

/// Least-squares fit of `y[i] ≈ level + s·sin(2π tᵢ/P) + c·cos(2π tᵢ/P)`, `tᵢ = t0 + i`.
fn fit_period(ys: &[f64], t0: f64, period: f64) -> Option<Fit> {
    // Normal equations of the 3-column design [1, sin, cos].
    let mut m = [[0.0f64; 3]; 3];
    let mut v = [0.0f64; 3];
    for (i, &y) in ys.iter().enumerate() {
        let w = TAU * (t0 + i as f64) / period;
        let x = [1.0, w.sin(), w.cos()];
        for r in 0..3 {
            v[r] += x[r] * y;
            for c in 0..3 {
                m[r][c] += x[r] * x[c];
            }
        }
    }
    let [level, sin, cos] = solve3(m, v)?;
    let mut fit = Fit {
        period,
        level,
        sin,
        cos,
        rss: 0.0,
        tss: 0.0,
    };
    let mean = ys.iter().sum::<f64>() / ys.len().max(1) as f64;
    fit.tss = ys.iter().map(|y| (y - mean).powi(2)).sum();
    fit.rss = ys
        .iter()
        .enumerate()
        .map(|(i, &y)| (y - fit.at(t0 + i as f64)).powi(2))
        .sum();
    Some(fit)
}

/// Solves a 3×3 system by Gaussian elimination with partial pivoting.
fn solve3(mut m: [[f64; 3]; 3], mut v: [f64; 3]) -> Option<[f64; 3]> {
    for col in 0..3 {
        let pivot = (col..3).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-9 {
            return None;
        }
        m.swap(col, pivot);
        v.swap(col, pivot);
        let pivot_row = m[col];
        for row in col + 1..3 {
            let f = m[row][col] / pivot_row[col];
            for (x, p) in m[row].iter_mut().zip(pivot_row).skip(col) {
                *x -= f * p;
            }
            v[row] -= f * v[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let tail: f64 = (row + 1..3).map(|k| m[row][k] * x[k]).sum();
        x[row] = (v[row] - tail) / m[row][row];
    }
    Some(x)
}

/// Horizon-`k` error tracker: scores each forecast `k` steps after it was made.
#[derive(Debug, Clone, Default)]
struct HorizonErrors {
    pending: VecDeque<Option<f64>>,
    errors: ErrorTracker,
    /// Squared errors of the latest `k` scored forecasts, newest last.
    latest: VecDeque<f64>,
}

impl HorizonErrors {
    /// Scores the forecast made `horizon` steps ago against `actual`, then files `next`
    /// (the forecast for `horizon` steps after this observation).
    fn observe(&mut self, horizon: usize, actual: f64, next: Option<f64>) {
        if self.pending.len() >= horizon.max(1) {
            let made = self.pending.pop_front().flatten();
            self.errors.record(made, actual);
            if let Some(m) = made {
                self.latest.push_back((actual - m) * (actual - m));
                while self.latest.len() > horizon.max(1) {
                    self.latest.pop_front();
                }
            }
        }
        self.pending.push_back(next);
    }

    fn rms(&self) -> Option<f64> {
        (self.errors.count > 0).then(|| self.errors.rms())
    }

    /// RMS of the latest `horizon` scored forecasts (equal weights).
    fn latest_rms(&self) -> Option<f64> {
        (!self.latest.is_empty())
            .then(|| (self.latest.iter().sum::<f64>() / self.latest.len() as f64).sqrt())
    }
}

/// The period-learning forecaster (see the module documentation).
#[derive(Debug, Clone)]
pub struct Seasonal {
    params: SeasonalParams,
    values: VecDeque<f64>,
    /// Index of the next observation (time axis of the fits).
    t: u64,
    fit: Option<Fit>,
    fallback: Holt,
    seasonal_errors: HorizonErrors,
    fallback_errors: HorizonErrors,
    /// Horizon errors of persistence (the latest value).
    level_errors: HorizonErrors,
    /// One-step errors of the forecast actually given.
    errors: ErrorTracker,
}

/// The model a forecast comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    Seasonal,
    Trend,
    Level,
}

impl Seasonal {
    /// A forecaster with `params`.
    pub fn new(params: SeasonalParams) -> Self {
        Self {
            params,
            values: VecDeque::new(),
            t: 0,
            fit: None,
            fallback: Holt::damped(params.alpha, params.beta, params.trend_damping),
            seasonal_errors: HorizonErrors::default(),
            fallback_errors: HorizonErrors::default(),
            level_errors: HorizonErrors::default(),
            errors: ErrorTracker::default(),
        }
    }

    /// The period (in steps) of the fit in use, if the seasonal model is in use.
    pub fn period(&self) -> Option<f64> {
        (self.model() == Model::Seasonal).then(|| self.fit.map(|f| f.period))?
    }

    /// Whether the seasonal fit explains enough of the history and has predicted better
    /// than the trend model at the horizon.
    fn seasonal_beats_trend(&self) -> bool {
        match (
            self.fit,
            self.seasonal_errors.rms(),
            self.fallback_errors.rms(),
        ) {
            (Some(fit), Some(s), Some(f)) => {
                fit.tss > 0.0 && 1.0 - fit.rss / fit.tss >= self.params.min_r2 && s < f
            }
            _ => false,
        }
    }

    /// Whether the history holds [`TURNS_MIN_CYCLES`] of the fitted period.
    fn cycles_seen(&self) -> bool {
        self.fit
            .is_some_and(|f| self.values.len() as f64 >= TURNS_MIN_CYCLES * f.period)
    }

    /// The model the forecasts come from now.
    fn model(&self) -> Model {
        let (model, errors) = if self.seasonal_beats_trend() {
            (Model::Seasonal, &self.seasonal_errors)
        } else {
            (Model::Trend, &self.fallback_errors)
        };
        let compete = match self.params.persistence {
            Persistence::Never => false,
            Persistence::WarmUp => !(model == Model::Seasonal && self.cycles_seen()),
            Persistence::Always => true,
        };
        let judged = if self.params.judge_latest {
            (errors.latest_rms(), self.level_errors.latest_rms())
        } else {
            (errors.rms(), self.level_errors.rms())
        };
        match judged {
            (Some(m), Some(l)) if compete && l < m => Model::Level,
            _ => model,
        }
    }

    fn seasonal_forecast(&self, steps: f64) -> Option<f64> {
        // The latest observation has index t − 1.
        self.fit.map(|f| f.at(self.t as f64 - 1.0 + steps).max(0.0))
    }

    /// The trend model's forecast, capped at [`SeasonalParams::fallback_growth_cap`] times
    /// the highest value in the history.
    fn capped_fallback(&self, steps: f64) -> Option<f64> {
        let forecast = self.fallback.forecast(steps)?;
        let highest = self.values.iter().copied().fold(0.0, f64::max);
        let cap = self
            .params
            .fallback_growth_cap
            .map_or(f64::INFINITY, |c| c.max(1.0) * highest);
        let error_cap = self
            .params
            .fallback_error_cap
            .map_or(f64::INFINITY, |z| highest + z * self.fallback.error_rms());
        Some(forecast.min(cap).min(error_cap))
    }

    /// Best fit over the candidate periods, by residual sum of squares.
    fn refit(&mut self) {
        let n = self.values.len();
        let p = &self.params;
        let longest = p.max_period.min(n as f64 / p.min_cycles.max(0.5));
        let ys: Vec<f64> = self.values.iter().copied().collect();
        let t0 = (self.t - n as u64) as f64;
        let mut best: Option<Fit> = None;
        let mut period = p.min_period.max(2.0 + PERIOD_STEP);
        while period <= longest {
            if let Some(fit) = fit_period(&ys, t0, period)
                && best.is_none_or(|b| fit.rss < b.rss)
            {
                best = Some(fit);
            }
            period += PERIOD_STEP;
        }
        self.fit = best;
    }
}

impl Forecaster for Seasonal {
    fn observe(&mut self, value: f64) {
        self.errors.record(self.forecast(1.0), value);
        self.fallback.observe(value);
        self.values.push_back(value);
        while self.values.len() > self.params.history.max(4) {
            self.values.pop_front();
        }
        self.t += 1;
        self.refit();
        let h = self.params.horizon.max(1);
        let seasonal_next = self.seasonal_forecast(h as f64);
        // The trend model is scored uncapped (its own accuracy, whatever the cap).
        let fallback_next = self.fallback.forecast(h as f64);
        self.seasonal_errors.observe(h, value, seasonal_next);
        self.fallback_errors.observe(h, value, fallback_next);
        self.level_errors.observe(h, value, Some(value));
    }

    fn forecast(&self, steps: f64) -> Option<f64> {
        match self.model() {
            Model::Seasonal => self.seasonal_forecast(steps),
            Model::Trend => self.capped_fallback(steps),
            Model::Level => self.values.back().copied(),
        }
    }

    fn error_rms(&self) -> f64 {
        self.errors.rms()
    }

    /// True once the seasonal model is in use and the history holds at least
    /// [`TURNS_MIN_CYCLES`] of its period: a fit over less than a cycle and a half has not
    /// seen the load repeat, and a step or a ramp can be fitted by a long sinusoid.
    fn anticipates_turns(&self) -> bool {
        self.model() == Model::Seasonal && self.cycles_seen()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_is_capped_above_the_highest_value_seen() {
        let params = SeasonalParams {
            fallback_growth_cap: Some(1.25),
            ..SeasonalParams::default()
        };
        let mut capped = Seasonal::new(params);
        let mut free = Seasonal::new(SeasonalParams::default());
        for v in [8.0, 8.0, 8.0, 16.0] {
            capped.observe(v);
            free.observe(v);
        }
        // The step's trend runs on without the cap; with it, 1.25 × 16 is the most.
        assert!(free.forecast(4.0).unwrap() > 20.0);
        assert_eq!(capped.forecast(4.0), Some(20.0));
        assert_eq!(
            capped.forecast(0.5),
            free.forecast(0.5).map(|f| f.min(20.0))
        );
    }

    #[test]
    fn the_fallback_is_capped_by_its_own_errors() {
        let params = SeasonalParams {
            fallback_error_cap: Some(1.0),
            ..SeasonalParams::default()
        };
        let mut f = Seasonal::new(params);
        for v in [8.0, 8.0, 9.0, 8.0, 16.0] {
            f.observe(v);
        }
        // At most one RMS one-step error of the trend model above the highest value seen.
        let cap = 16.0 + f.fallback.error_rms();
        assert!(f.fallback.forecast(4.0).unwrap() > cap);
        assert_eq!(f.forecast(4.0), Some(cap));
    }

    /// A flat load with pseudo-random noise (a 64-bit LCG), `n` values.
    fn flat_noise(n: usize) -> Vec<f64> {
        let mut x: u64 = 12345;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                16.0 + (x >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn persistence_stands_in_for_a_trend_that_predicts_worse() {
        // On flat noise the trend model chases the noise four steps ahead; persistence
        // predicts better at that horizon and, when it competes, is what is forecast.
        let values = flat_noise(80);
        let last = *values.last().unwrap();
        let mut never = Seasonal::new(SeasonalParams::default());
        let mut warm_up = Seasonal::new(SeasonalParams {
            persistence: Persistence::WarmUp,
            ..SeasonalParams::default()
        });
        for &v in &values {
            never.observe(v);
            warm_up.observe(v);
        }
        assert!(warm_up.level_errors.rms() < warm_up.fallback_errors.rms());
        assert_eq!(warm_up.forecast(4.0), Some(last));
        assert_ne!(never.forecast(4.0), Some(last));
    }

    #[test]
    fn persistence_in_warm_up_leaves_a_learnt_period_in_use() {
        let mut f = Seasonal::new(SeasonalParams {
            persistence: Persistence::WarmUp,
            ..SeasonalParams::default()
        });
        for i in 0..40 {
            f.observe(sine(i, 15.0) + if i % 3 == 0 { 0.3 } else { -0.15 });
        }
        let p = f.period().expect("seasonal model in use");
        assert!((p - 15.0).abs() < 0.5, "period {p}");
        assert!(f.anticipates_turns());
    }

    fn sine(i: usize, period: f64) -> f64 {
        12.5 + 7.5 * (TAU * i as f64 / period).sin()
    }

    #[test]
    fn learns_the_period_and_forecasts_the_turn() {
        let mut f = Seasonal::new(SeasonalParams::default());
        // Small deterministic "noise" so the fit is not exact.
        for i in 0..40 {
            f.observe(sine(i, 15.0) + if i % 3 == 0 { 0.3 } else { -0.15 });
        }
        let p = f.period().expect("seasonal model in use");
        assert!(f.anticipates_turns());
        assert!((p - 15.0).abs() < 0.5, "period {p}");
        // Four steps ahead of the latest point (i = 39), the sine is at i = 43.
        for h in [1.0, 4.0, 7.0] {
            let want = sine(39 + h as usize, 15.0);
            let got = f.forecast(h).unwrap();
            assert!((got - want).abs() < 0.8, "h={h}: {got} vs {want}");
        }
        // A trend model, by contrast, extrapolates the current slope past the turn.
        let mut holt = Holt::new(0.8, 0.6);
        for i in 0..40 {
            holt.observe(sine(i, 15.0));
        }
        let want = sine(46, 15.0);
        assert!((holt.forecast(7.0).unwrap() - want).abs() > 2.0);
    }

    #[test]
    fn flat_noise_is_not_a_period() {
        let mut f = Seasonal::new(SeasonalParams::default());
        for v in flat_noise(80) {
            f.observe(v);
        }
        assert_eq!(f.period(), None);
        assert!(!f.anticipates_turns());
    }

    #[test]
    fn a_step_is_left_to_the_trend_model() {
        let mut f = Seasonal::new(SeasonalParams::default());
        for i in 0..60 {
            f.observe(if i < 30 { 8.0 } else { 16.0 } + if i % 2 == 0 { 0.4 } else { -0.4 });
        }
        assert_eq!(f.period(), None);
        assert!(!f.anticipates_turns());
        let v = f.forecast(4.0).unwrap();
        assert!((v - 16.0).abs() < 1.5, "forecast {v}");
    }

    #[test]
    fn solve3_solves() {
        let m = [[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]];
        let x = [1.0, -2.0, 0.5];
        let v = [
            2.0 * x[0] + x[1],
            x[0] + 3.0 * x[1] + x[2],
            x[1] + 4.0 * x[2],
        ];
        let got = solve3(m, v).unwrap();
        for k in 0..3 {
            assert!((got[k] - x[k]).abs() < 1e-12);
        }
        assert_eq!(solve3([[0.0; 3]; 3], [1.0; 3]), None);
    }
}
