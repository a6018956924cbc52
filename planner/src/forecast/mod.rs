//! Load forecasters: feed one value per adjustment interval, ask for the value some intervals
//! ahead. Constant and moving average are Dynamo's simplest predictors; Holt (double
//! exponential smoothing) and a local-linear-trend Kalman filter follow trends, which is what
//! lets a planner scale ahead of a ramp by the worker start-up time. [`Seasonal`] learns the
//! period of a periodic load and forecasts its turns, which trend models cannot.

mod seasonal;

use serde::{Deserialize, Serialize};

pub use seasonal::{Persistence, Seasonal, SeasonalParams};

/// A one-series forecaster.
pub trait Forecaster: Send {
    /// Feeds the value observed for the latest interval.
    fn observe(&mut self, value: f64);

    /// The value expected `steps` intervals after the latest observation (`steps = 1` is the
    /// next interval; fractional steps interpolate the trend). `None` before any observation.
    fn forecast(&self, steps: f64) -> Option<f64>;

    /// Root-mean-square of past one-step-ahead errors (exponentially weighted), 0 until the
    /// second observation.
    fn error_rms(&self) -> f64;

    /// Whether the forecast currently comes from a model that has been shown (on this
    /// series) to predict the load's turns, so that a forecast fall may be acted on at once
    /// rather than after a patience window. False for trend models.
    fn anticipates_turns(&self) -> bool {
        false
    }
}

/// Which forecaster to build, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ForecasterKind {
    /// The last observed value.
    Constant,
    /// Mean of the last `window` values.
    MovingAverage {
        /// Number of values averaged (≥ 1).
        window: usize,
    },
    /// Holt's linear trend method.
    Holt {
        /// Level smoothing in (0, 1].
        alpha: f64,
        /// Trend smoothing in (0, 1].
        beta: f64,
    },
    /// Local-linear-trend Kalman filter.
    Kalman {
        /// Process noise of the level.
        q_level: f64,
        /// Process noise of the trend.
        q_trend: f64,
        /// Measurement noise.
        r: f64,
        /// Observations before the trend is trusted; until then it forecasts the last value.
        min_points: usize,
    },
    /// Period-learning sinusoid fit with a Holt fallback.
    Seasonal(SeasonalParams),
}

impl ForecasterKind {
    /// Dynamo's Kalman defaults (`q_level=1.0, q_trend=0.1, r=10.0, min_points=5`).
    pub const DYNAMO_KALMAN: ForecasterKind = ForecasterKind::Kalman {
        q_level: 1.0,
        q_trend: 0.1,
        r: 10.0,
        min_points: 5,
    };

    /// Builds a fresh forecaster of this kind.
    pub fn build(self) -> Box<dyn Forecaster> {
        match self {
            ForecasterKind::Constant => Box::new(Constant::default()),
            ForecasterKind::MovingAverage { window } => Box::new(MovingAverage::new(window)),
            ForecasterKind::Holt { alpha, beta } => Box::new(Holt::new(alpha, beta)),
            ForecasterKind::Kalman {
                q_level,
                q_trend,
                r,
                min_points,
            } => Box::new(Kalman::new(q_level, q_trend, r, min_points)),
            ForecasterKind::Seasonal(params) => Box::new(Seasonal::new(params)),
        }
    }
}

/// Exponentially weighted RMS of one-step-ahead forecast errors.
#[derive(Debug, Clone, Default)]
struct ErrorTracker {
    mean_square: f64,
    count: u32,
}

impl ErrorTracker {
    /// Weight of the newest error once warmed up.
    const WEIGHT: f64 = 0.2;

    fn record(&mut self, predicted: Option<f64>, actual: f64) {
        let Some(p) = predicted else { return };
        let e2 = (actual - p) * (actual - p);
        self.count += 1;
        // Plain average for the first few errors so one early error does not dominate.
        let w = (1.0 / f64::from(self.count)).max(Self::WEIGHT);
        self.mean_square += w * (e2 - self.mean_square);
    }

    fn rms(&self) -> f64 {
        self.mean_square.sqrt()
    }
}

/// Forecasts the last observed value.
#[derive(Debug, Clone, Default)]
pub struct Constant {
    last: Option<f64>,
    errors: ErrorTracker,
}

impl Forecaster for Constant {
    fn observe(&mut self, value: f64) {
        self.errors.record(self.last, value);
        self.last = Some(value);
    }
    fn forecast(&self, _steps: f64) -> Option<f64> {
        self.last
    }
    fn error_rms(&self) -> f64 {
        self.errors.rms()
    }
}

/// Forecasts the mean of the last `window` values.
#[derive(Debug, Clone)]
pub struct MovingAverage {
    window: usize,
    values: std::collections::VecDeque<f64>,
    errors: ErrorTracker,
}

impl MovingAverage {
    /// A moving average over `window` values (at least 1).
    pub fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            values: Default::default(),
            errors: ErrorTracker::default(),
        }
    }
}

impl Forecaster for MovingAverage {
    fn observe(&mut self, value: f64) {
        self.errors.record(self.forecast(1.0), value);
        if self.values.len() == self.window {
            self.values.pop_front();
        }
        self.values.push_back(value);
    }
    fn forecast(&self, _steps: f64) -> Option<f64> {
        if self.values.is_empty() {
            None
        } else {
            Some(self.values.iter().sum::<f64>() / self.values.len() as f64)
        }
    }
    fn error_rms(&self) -> f64 {
        self.errors.rms()
    }
}

/// Holt's double exponential smoothing: a level and a trend, each smoothed; optionally with
/// a damped trend (Gardner & McKenzie): the trend fades by `phi` per step ahead, so a trend
/// estimated from a few points (a step, the first rise of a cycle) is not extrapolated
/// undiminished over the whole planning horizon. `phi = 1` is the plain method.
#[derive(Debug, Clone)]
pub struct Holt {
    alpha: f64,
    beta: f64,
    phi: f64,
    state: Option<(f64, f64)>,
    errors: ErrorTracker,
}

impl Holt {
    /// Smoothing factors are clamped into (0, 1]; no damping.
    pub fn new(alpha: f64, beta: f64) -> Self {
        Self::damped(alpha, beta, 1.0)
    }

    /// Holt with the trend damped by `phi` per step, clamped into [0, 1] (0: no trend).
    pub fn damped(alpha: f64, beta: f64, phi: f64) -> Self {
        Self {
            alpha: alpha.clamp(1e-3, 1.0),
            beta: beta.clamp(1e-3, 1.0),
            phi: if phi.is_nan() {
                1.0
            } else {
                phi.clamp(0.0, 1.0)
            },
            state: None,
            errors: ErrorTracker::default(),
        }
    }

    /// `phi + phi² + … + phi^steps`, for fractional steps too.
    fn trend_steps(&self, steps: f64) -> f64 {
        if self.phi >= 1.0 {
            steps
        } else {
            self.phi * (1.0 - self.phi.powf(steps)) / (1.0 - self.phi)
        }
    }
}

impl Forecaster for Holt {
    fn observe(&mut self, value: f64) {
        self.errors.record(self.forecast(1.0), value);
        self.state = Some(match self.state {
            None => (value, 0.0),
            Some((level, trend)) => {
                let damped = self.phi * trend;
                let new_level = self.alpha * value + (1.0 - self.alpha) * (level + damped);
                let new_trend = self.beta * (new_level - level) + (1.0 - self.beta) * damped;
                (new_level, new_trend)
            }
        });
    }
    fn forecast(&self, steps: f64) -> Option<f64> {
        self.state
            .map(|(level, trend)| level + self.trend_steps(steps) * trend)
    }
    fn error_rms(&self) -> f64 {
        self.errors.rms()
    }
}

/// Local-linear-trend Kalman filter: state `(level, trend)`, transition
/// `level += trend`, observation of the level with noise `r`.
#[derive(Debug, Clone)]
pub struct Kalman {
    q_level: f64,
    q_trend: f64,
    r: f64,
    min_points: usize,
    x: [f64; 2],
    p: [[f64; 2]; 2],
    seen: usize,
    last: Option<f64>,
    errors: ErrorTracker,
}

impl Kalman {
    /// A filter with the given noises; the trend is used after `min_points` observations.
    pub fn new(q_level: f64, q_trend: f64, r: f64, min_points: usize) -> Self {
        Self {
            q_level: q_level.max(0.0),
            q_trend: q_trend.max(0.0),
            r: r.max(1e-9),
            min_points,
            x: [0.0, 0.0],
            // A vague prior: the first observation sets the level almost exactly.
            p: [[1e6, 0.0], [0.0, 1e6]],
            seen: 0,
            last: None,
            errors: ErrorTracker::default(),
        }
    }
}

impl Forecaster for Kalman {
    fn observe(&mut self, value: f64) {
        self.errors.record(self.forecast(1.0), value);
        let [l, b] = self.x;
        let p = self.p;
        // Predict: x = F x, P = F P Fᵀ + Q with F = [[1, 1], [0, 1]].
        let xp = [l + b, b];
        let p00 = p[0][0] + p[0][1] + p[1][0] + p[1][1] + self.q_level;
        let p01 = p[0][1] + p[1][1];
        let p10 = p[1][0] + p[1][1];
        let p11 = p[1][1] + self.q_trend;
        // Update with H = [1, 0].
        let s = p00 + self.r;
        let k0 = p00 / s;
        let k1 = p10 / s;
        let innovation = value - xp[0];
        self.x = [xp[0] + k0 * innovation, xp[1] + k1 * innovation];
        self.p = [
            [(1.0 - k0) * p00, (1.0 - k0) * p01],
            [p10 - k1 * p00, p11 - k1 * p01],
        ];
        self.seen += 1;
        self.last = Some(value);
    }
    fn forecast(&self, steps: f64) -> Option<f64> {
        if self.seen < self.min_points.max(1) {
            return self.last;
        }
        Some(self.x[0] + steps * self.x[1])
    }
    fn error_rms(&self) -> f64 {
        self.errors.rms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(f: &mut dyn Forecaster, values: impl IntoIterator<Item = f64>) {
        for v in values {
            f.observe(v);
        }
    }

    #[test]
    fn constant_and_moving_average() {
        let mut c = ForecasterKind::Constant.build();
        assert_eq!(c.forecast(1.0), None);
        feed(c.as_mut(), [3.0, 5.0]);
        assert_eq!(c.forecast(4.0), Some(5.0));
        assert_eq!(c.error_rms(), 2.0);

        let mut m = ForecasterKind::MovingAverage { window: 2 }.build();
        feed(m.as_mut(), [1.0, 3.0, 5.0]);
        assert_eq!(m.forecast(1.0), Some(4.0));
    }

    #[test]
    fn a_damped_trend_fades_over_the_horizon() {
        // After a jump the plain trend runs on for the whole horizon; damped by phi it adds
        // at most phi / (1 − phi) steps of the trend, however far ahead.
        let jump = [10.0, 10.0, 10.0, 20.0];
        let mut plain = Holt::new(0.5, 0.6);
        let mut damped = Holt::damped(0.5, 0.6, 0.5);
        feed(&mut plain, jump);
        feed(&mut damped, jump);
        let (level, trend) = damped.state.unwrap();
        assert!(trend > 0.0);
        assert!((damped.forecast(1.0).unwrap() - (level + 0.5 * trend)).abs() < 1e-12);
        assert!(damped.forecast(100.0).unwrap() <= level + trend + 1e-9);
        assert!(plain.forecast(4.0).unwrap() > damped.forecast(4.0).unwrap());
        // phi = 1 is the plain method.
        let mut one = Holt::damped(0.5, 0.6, 1.0);
        feed(&mut one, jump);
        assert_eq!(one.forecast(3.5), plain.forecast(3.5));
    }

    #[test]
    fn trend_models_extrapolate_a_ramp() {
        // A clean ramp 10, 12, 14, ...: after warm-up both trend models should forecast the
        // continuation within a few percent, while the constant model lags by steps × slope.
        let ramp = (0..30).map(|i| 10.0 + 2.0 * f64::from(i));
        for kind in [
            ForecasterKind::Holt {
                alpha: 0.5,
                beta: 0.3,
            },
            ForecasterKind::DYNAMO_KALMAN,
        ] {
            let mut f = kind.build();
            feed(f.as_mut(), ramp.clone());
            let last = 10.0 + 2.0 * 29.0;
            let ahead = f.forecast(3.0).unwrap();
            assert!(
                (ahead - (last + 6.0)).abs() < 0.5,
                "{kind:?} forecast {ahead}"
            );
        }
    }

    #[test]
    fn kalman_waits_for_min_points() {
        let mut f = ForecasterKind::DYNAMO_KALMAN.build();
        feed(f.as_mut(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(f.forecast(5.0), Some(4.0));
        f.observe(5.0);
        assert!(f.forecast(5.0).unwrap() > 6.0);
    }

    #[test]
    fn kalman_smooths_noise_on_a_flat_series() {
        let mut f = ForecasterKind::DYNAMO_KALMAN.build();
        // Alternating 8, 12 around 10: the forecast should stay near 10, not chase the swings.
        feed(
            f.as_mut(),
            (0..40).map(|i| if i % 2 == 0 { 8.0 } else { 12.0 }),
        );
        let v = f.forecast(1.0).unwrap();
        assert!((v - 10.0).abs() < 1.5, "forecast {v}");
        assert!(f.error_rms() > 1.0);
    }
}
