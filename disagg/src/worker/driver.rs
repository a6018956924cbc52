//! Runs the `sim` mock engine in real time: a planned pass takes its modelled duration on
//! the wall clock, then its outputs (tokens, hand-offs, finished requests) take effect.

use sim::engine::{Engine, Output};
use std::time::{Duration, Instant};

/// A mock engine stepping on the wall clock.
#[derive(Debug)]
pub struct EngineDriver {
    engine: Engine,
    pass_end: Option<Instant>,
    speedup: f64,
}

impl EngineDriver {
    /// Drives `engine`; modelled times are divided by `speedup`.
    pub fn new(engine: Engine, speedup: f64) -> Self {
        EngineDriver {
            engine,
            pass_end: None,
            speedup: speedup.max(1e-6),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, to enqueue requests or take its KV events.
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Finishes the pass in flight if it is due and starts the next one; returns outputs.
    pub fn step(&mut self, now: Instant, out: &mut Vec<Output>) {
        if let Some(end) = self.pass_end {
            if now < end {
                return;
            }
            self.engine.finish_pass(out);
            self.pass_end = None;
        }
        if let Some(stats) = self.engine.start_pass(out) {
            let secs = stats.duration_ms / 1000.0 / self.speedup;
            self.pass_end = Some(now + Duration::from_secs_f64(secs.max(0.0)));
        }
    }

    /// When the pass in flight ends.
    pub fn deadline(&self) -> Option<Instant> {
        self.pass_end
    }
}
