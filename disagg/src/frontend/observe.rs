//! What the planner sees each interval, gathered from request events and worker loads.

use super::fleet::Fleet;
use crate::proto::WorkerRole;
use planner::{DecodeLoad, Observation, PrefillLoad, ReplicaCounts};

/// Samples since the last observation.
#[derive(Debug, Default)]
pub struct ObsAcc {
    last: f64,
    arrivals: u64,
    isl: Vec<f64>,
    osl: Vec<f64>,
    ttft: Vec<f64>,
    itl: Vec<f64>,
    duration: Vec<f64>,
    cached: f64,
    prompt: f64,
}

impl ObsAcc {
    /// A request arrived.
    pub fn arrive(&mut self, isl: f64) {
        self.arrivals += 1;
        self.isl.push(isl);
    }

    /// A request got its first token.
    pub fn first_token(&mut self, ttft: f64) {
        self.ttft.push(ttft);
    }

    /// A prefill finished with `cached` of `prompt` tokens from the prefix cache.
    pub fn prefill(&mut self, cached: f64, prompt: f64) {
        self.cached += cached;
        self.prompt += prompt;
    }

    /// A request finished.
    pub fn finish(&mut self, osl: f64, mean_itl: f64, duration: f64) {
        self.osl.push(osl);
        if mean_itl > 0.0 {
            self.itl.push(mean_itl);
        }
        self.duration.push(duration);
    }

    /// The observation of the interval ending at `now`; starts a new interval.
    pub fn take(&mut self, now: f64, fleet: &Fleet, replicas: ReplicaCounts) -> Observation {
        let mut obs = Observation {
            time: now,
            interval: (now - self.last).max(1e-3),
            num_requests: self.arrivals,
            isl: std::mem::take(&mut self.isl),
            osl: std::mem::take(&mut self.osl),
            ttft: std::mem::take(&mut self.ttft),
            itl: std::mem::take(&mut self.itl),
            request_duration: std::mem::take(&mut self.duration),
            kv_hit_rate: (self.prompt > 0.0).then(|| self.cached / self.prompt),
            replicas,
            ..Observation::default()
        };
        for c in fleet.conns.values() {
            match c.role {
                WorkerRole::Prefill => obs.prefill.push(PrefillLoad {
                    queued_tokens: c.load.pending_prefill_tokens as f64,
                    active_requests: (c.load.waiting + c.load.running) as u32,
                }),
                WorkerRole::Decode => obs.decode.push(DecodeLoad {
                    active_kv_tokens: c.load.decode_kv_tokens as f64,
                    queued_kv_tokens: 0.0,
                    active_requests: c.load.running as u32,
                }),
            }
        }
        self.last = now;
        self.arrivals = 0;
        self.cached = 0.0;
        self.prompt = 0.0;
        obs
    }
}
