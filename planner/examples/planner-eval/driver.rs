//! The closed loop: a `sim::Simulation` in disaggregated mode, observed every planner
//! interval, its prefill/decode replica counts set from the planner's decisions.
//! Shared by the evaluation program and the closed-loop integration test.

use planner::{
    DecodeLoad, Observation, Planner, PrefillLoad, ReplicaCounts, ReplicaTarget, RoleCounts,
};
use sim::routing::OracleCost;
use sim::workload::Workload;
use sim::{PoolObservation, Report, Role, ServingMode, SimConfig, Simulation};

/// One planner tick.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Tick {
    /// End of the interval, s.
    pub time: f64,
    /// Observed arrival rate, req/s.
    pub rate: f64,
    /// Ready + starting replicas when observed.
    pub prefill: u32,
    /// Ready + starting replicas when observed.
    pub decode: u32,
    /// Decision taken.
    pub target: ReplicaTarget,
}

/// What one closed-loop run produced.
pub struct RunOutcome {
    /// The simulator's report.
    pub report: Report,
    /// Every tick (empty for a static run).
    pub ticks: Vec<Tick>,
}

impl RunOutcome {
    /// Replica-seconds over all pools.
    pub fn worker_seconds(&self) -> f64 {
        self.report.gpu_seconds.iter().map(|(_, s)| s).sum()
    }

    /// Fraction of requests within both targets.
    pub fn attainment(&self) -> f64 {
        self.report.good_requests as f64 / self.report.requests.max(1) as f64
    }

    /// Direction reversals of the target, summed over both roles: an increase followed
    /// (after any holds) by a decrease, or the other way round.
    pub fn oscillations(&self) -> usize {
        let series = |f: fn(&ReplicaTarget) -> u32| -> Vec<u32> {
            self.ticks.iter().map(|t| f(&t.target)).collect()
        };
        [series(|t| t.prefill), series(|t| t.decode)]
            .iter()
            .map(|s| reversals(s))
            .sum()
    }
}

/// Number of sign changes between consecutive non-zero steps of `xs`.
pub fn reversals(xs: &[u32]) -> usize {
    let steps: Vec<i64> = xs
        .windows(2)
        .map(|w| i64::from(w[1]) - i64::from(w[0]))
        .filter(|d| *d != 0)
        .collect();
    steps
        .windows(2)
        .filter(|w| (w[0] > 0) != (w[1] > 0))
        .count()
}

/// A disaggregated simulation config starting at `initial` replicas.
pub fn disagg_config(base: &SimConfig, initial: ReplicaTarget) -> SimConfig {
    let mut cfg = base.clone();
    let (kv_bytes_per_token, link_gbps) = match base.mode {
        ServingMode::Disaggregated {
            kv_bytes_per_token,
            link_gbps,
            ..
        } => (kv_bytes_per_token, link_gbps),
        ServingMode::Aggregated { .. } => (131_072.0, 64.0),
    };
    cfg.mode = ServingMode::Disaggregated {
        prefill_workers: initial.prefill as usize,
        decode_workers: initial.decode as usize,
        kv_bytes_per_token,
        link_gbps,
    };
    cfg
}

/// A simulation with load-aware routing in both pools (the same for every planner).
pub fn new_sim(cfg: SimConfig, workload: &Workload) -> Simulation {
    Simulation::new(
        cfg,
        workload.clone(),
        Box::new(OracleCost::default()),
        Some(Box::new(OracleCost::default())),
    )
}

/// Runs `workload` at a fixed split.
pub fn run_static(base: &SimConfig, workload: &Workload, split: ReplicaTarget) -> RunOutcome {
    let mut sim = new_sim(disagg_config(base, split), workload);
    sim.run_to_completion();
    RunOutcome {
        report: sim.report(),
        ticks: Vec::new(),
    }
}

/// Runs `workload` under `planner`, starting at `initial` replicas.
pub fn run_planned(
    base: &SimConfig,
    workload: &Workload,
    initial: ReplicaTarget,
    planner: &mut dyn Planner,
) -> RunOutcome {
    let mut sim = new_sim(disagg_config(base, initial), workload);
    let interval_ms = planner.interval() * 1000.0;
    let mut arrivals_seen = 0usize;
    let mut ticks = Vec::new();
    let mut t = 0.0;
    while !sim.is_finished() {
        t += interval_ms;
        sim.run_until(t);
        let obs = sim.take_observation();
        let planner_obs = to_planner_observation(&obs, workload, &mut arrivals_seen);
        let target = planner.decide(&planner_obs);
        sim.set_replicas(Role::Prefill, target.prefill as usize);
        sim.set_replicas(Role::Decode, target.decode as usize);
        ticks.push(Tick {
            time: planner_obs.time,
            rate: planner_obs.arrival_rate(),
            prefill: planner_obs.replicas.prefill.committed(),
            decode: planner_obs.replicas.decode.committed(),
            target,
        });
    }
    RunOutcome {
        report: sim.report(),
        ticks,
    }
}

/// Converts the simulator's interval observation. ISL/OSL samples come from the workload's
/// requests that arrived in the interval (the frontend sees each request's prompt; the
/// requested output length stands in for the completed one). The simulator reports pool
/// totals, so per-replica loads are the pool's total split evenly over ready replicas.
pub fn to_planner_observation(
    obs: &sim::Observation,
    workload: &Workload,
    arrivals_seen: &mut usize,
) -> Observation {
    let mut isl = Vec::new();
    let mut osl = Vec::new();
    while let Some(r) = workload.requests.get(*arrivals_seen) {
        if r.arrival_ms > obs.end_ms {
            break;
        }
        isl.push(r.input_length as f64);
        osl.push(r.output_length as f64);
        *arrivals_seen += 1;
    }
    let prefill = obs.pool(Role::Prefill).cloned().unwrap_or_default();
    let decode = obs.pool(Role::Decode).cloned().unwrap_or_default();
    let mean_isl = obs.avg_isl;
    let per = |pool: &PoolObservation| pool.ready.max(1) as f64;
    let prefill_loads = (0..prefill.ready)
        .map(|_| PrefillLoad {
            queued_tokens: prefill.pending_prefill_tokens as f64 / per(&prefill),
            active_requests: ((prefill.running + prefill.queue_depth) as f64 / per(&prefill))
                .round() as u32,
        })
        .collect();
    let decode_loads = (0..decode.ready)
        .map(|_| DecodeLoad {
            active_kv_tokens: decode.decode_kv_tokens as f64 / per(&decode),
            queued_kv_tokens: decode.queue_depth as f64 * mean_isl / per(&decode),
            active_requests: (decode.running as f64 / per(&decode)).round() as u32,
        })
        .collect();
    let counts = |p: &PoolObservation| RoleCounts {
        ready: p.ready as u32,
        starting: p.starting as u32,
        draining: p.draining as u32,
    };
    let ttft: Vec<f64> = obs.ttft_ms.iter().map(|x| x / 1000.0).collect();
    let itl: Vec<f64> = obs.itl_ms.iter().map(|x| x / 1000.0).collect();
    // The simulator does not report request durations; TTFT + OSL × ITL estimates them.
    let mean_ttft = planner::stats::mean_or(&ttft, 0.0);
    let mean_itl = planner::stats::mean_or(&itl, 0.0);
    let request_duration = osl.iter().map(|o| mean_ttft + o * mean_itl).collect();
    Observation {
        time: obs.end_ms / 1000.0,
        interval: (obs.end_ms - obs.start_ms) / 1000.0,
        num_requests: obs.arrivals as u64,
        isl,
        osl,
        ttft,
        itl,
        request_duration,
        kv_hit_rate: Some(obs.kv_hit_rate()),
        prefill: prefill_loads,
        decode: decode_loads,
        replicas: ReplicaCounts {
            prefill: counts(&prefill),
            decode: counts(&decode),
        },
    }
}
