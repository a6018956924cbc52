//! A simple built-in autoscaler for the `sim` command: Dynamo's load-based
//! ±1 rules (reference §4.3, throughput mode). Real planners live in the
//! `planner` crate and drive [`crate::Simulation`] directly.

use crate::cluster::Observation;
use crate::engine::Role;

/// Decides replica counts from one interval's observation.
pub trait Autoscaler {
    /// Name for tables.
    fn name(&self) -> String;
    /// New replica count per pool (only pools to change).
    fn decide(&mut self, obs: &Observation) -> Vec<(Role, usize)>;
}

/// ±1 per interval: up when queued prefill exceeds `scale_up_queue` prompts'
/// worth per replica or KV use exceeds `kv_high`; down when nothing is queued
/// and KV use is under `kv_low`.
#[derive(Clone, Debug)]
pub struct LoadRules {
    /// Pending prefill tokens per ready replica that trigger a scale-up.
    pub scale_up_pending_tokens: f64,
    /// KV use (active / capacity) above which to add a replica.
    pub kv_high: f64,
    /// KV use below which (with an empty queue) to remove one.
    pub kv_low: f64,
    /// Fewest replicas per pool.
    pub min_replicas: usize,
    /// Most replicas per pool.
    pub max_replicas: usize,
}

impl Default for LoadRules {
    fn default() -> Self {
        LoadRules {
            scale_up_pending_tokens: 16_384.0,
            kv_high: 0.6,
            kv_low: 0.2,
            min_replicas: 1,
            max_replicas: 16,
        }
    }
}

impl Autoscaler for LoadRules {
    fn name(&self) -> String {
        "load-rules".into()
    }

    fn decide(&mut self, obs: &Observation) -> Vec<(Role, usize)> {
        let mut out = Vec::new();
        for p in &obs.pools {
            let Some(role) = p.role else { continue };
            if p.starting > 0 {
                continue; // Wait for the previous decision to take effect.
            }
            let n = p.ready;
            let kv = if p.capacity_kv_blocks > 0 {
                p.active_kv_blocks as f64 / p.capacity_kv_blocks as f64
            } else {
                0.0
            };
            let pending = p.pending_prefill_tokens as f64 / n.max(1) as f64;
            let want = if role != Role::Decode && pending > self.scale_up_pending_tokens
                || kv > self.kv_high
            {
                n + 1
            } else if p.queue_depth == 0 && kv < self.kv_low && pending < 1.0 {
                n.saturating_sub(1)
            } else {
                n
            };
            let want = want.clamp(self.min_replicas, self.max_replicas);
            if want != n {
                out.push((role, want));
            }
        }
        out
    }
}
