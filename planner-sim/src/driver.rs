//! The closed loop: a `sim::Simulation` in disaggregated mode, observed every planner
//! interval, its prefill/decode replica counts set from the planner's decisions.
//! Shared by the evaluation program and the closed-loop integration test.

use planner::{
    DecodeLoad, Observation, Planner, PrefillLoad, ReplicaCounts, ReplicaTarget, RoleCounts,
};
use sim::routing::OracleCost;
use sim::workload::Workload;
use sim::{DrainChoice, PoolObservation, Report, Role, ServingMode, SimConfig, Simulation};

/// One planner tick.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
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
    /// Whether this was a fast check's emergency re-plan rather than a regular decision.
    pub emergency: bool,
}

/// What one closed-loop run produced.
pub struct RunOutcome {
    /// The simulator's report.
    pub report: Report,
    /// Every tick (empty for a static run).
    pub ticks: Vec<Tick>,
    /// Per-request outcomes, in arrival order.
    pub outcomes: Vec<sim::RequestOutcome>,
}

impl RunOutcome {
    /// Replica-seconds over all pools.
    pub fn worker_seconds(&self) -> f64 {
        self.report.gpu_seconds.iter().map(|(_, s)| s).sum()
    }

    /// Requests missing either target, by arrival time in buckets of `bucket_s` seconds.
    pub fn misses_by_arrival(&self, bucket_s: f64) -> Vec<usize> {
        let sla = self.report.sla;
        let mut buckets = Vec::new();
        for o in &self.outcomes {
            let i = (o.arrival_ms / 1000.0 / bucket_s) as usize;
            if buckets.len() <= i {
                buckets.resize(i + 1, 0);
            }
            let good = o.ttft_ms.is_some_and(|t| t <= sla.ttft_ms)
                && o.itl_ms.is_none_or(|t| t <= sla.itl_ms);
            buckets[i] += usize::from(!good);
        }
        buckets
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
        outcomes: sim.outcomes(),
    }
}

/// Runs `workload` under `planner`, starting at `initial` replicas. Between decisions the
/// planner's fast checks (if it has any) see the load every `check_interval` seconds.
pub fn run_planned(
    base: &SimConfig,
    workload: &Workload,
    initial: ReplicaTarget,
    planner: &mut dyn Planner,
) -> RunOutcome {
    let mut sim = new_sim(disagg_config(base, initial), workload);
    let interval_ms = planner.interval() * 1000.0;
    let check_ms = planner
        .check_interval()
        .map(|c| c * 1000.0)
        .filter(|&c| c > 0.0 && c < interval_ms);
    let mut ticks = Vec::new();
    let mut t = 0.0;
    while !sim.is_finished() {
        let start = t;
        t += interval_ms;
        if let Some(check_ms) = check_ms {
            let mut at = start + check_ms;
            while at < t - 1e-6 && !sim.is_finished() {
                sim.run_until(at);
                let obs = to_planner_observation(&partial_observation(&sim, workload, start));
                if let Some(target) = planner.check(&obs) {
                    enact(&mut sim, target);
                    ticks.push(tick(&obs, target, true));
                }
                at += check_ms;
            }
        }
        sim.run_until(t);
        let obs = sim.take_observation();
        let planner_obs = to_planner_observation(&obs);
        let target = planner.decide(&planner_obs);
        enact(&mut sim, target);
        ticks.push(tick(&planner_obs, target, false));
    }
    RunOutcome {
        report: sim.report(),
        ticks,
        outcomes: sim.outcomes(),
    }
}

/// Sets both pools; the same drain choice for every planner: the least busy replica goes
/// first.
fn enact(sim: &mut Simulation, target: ReplicaTarget) {
    for (role, n) in [
        (Role::Prefill, target.prefill),
        (Role::Decode, target.decode),
    ] {
        sim.set_replicas_with(role, n as usize, DrainChoice::LeastLoaded);
    }
}

fn tick(obs: &Observation, target: ReplicaTarget, emergency: bool) -> Tick {
    Tick {
        time: obs.time,
        rate: obs.arrival_rate(),
        prefill: obs.replicas.prefill.committed(),
        decode: obs.replicas.decode.committed(),
        target,
        emergency,
    }
}

/// What a fast check may see mid-interval without closing the simulator's observation
/// interval: the arrivals since `start_ms` (as a frontend counts them) and the pools' load
/// now. No latencies or completions.
fn partial_observation(sim: &Simulation, workload: &Workload, start_ms: f64) -> sim::Observation {
    let now = sim.now_ms();
    let reqs = &workload.requests;
    let from = reqs.partition_point(|r| r.arrival_ms < start_ms);
    let to = reqs.partition_point(|r| r.arrival_ms < now);
    let isl: Vec<usize> = reqs[from..to].iter().map(|r| r.input_length).collect();
    let avg_isl = if isl.is_empty() {
        0.0
    } else {
        isl.iter().sum::<usize>() as f64 / isl.len() as f64
    };
    sim::Observation {
        start_ms,
        end_ms: now,
        arrivals: isl.len(),
        avg_isl,
        isl,
        pools: sim
            .pools()
            .into_iter()
            .map(|r| sim.pool_observation(r))
            .collect(),
        ..Default::default()
    }
}

/// Converts the simulator's interval observation: ISL of the arrivals, output lengths and
/// end-to-end durations of the completions, and the load of every ready replica.
pub fn to_planner_observation(obs: &sim::Observation) -> Observation {
    let prefill = obs.pool(Role::Prefill).cloned().unwrap_or_default();
    let decode = obs.pool(Role::Decode).cloned().unwrap_or_default();
    let ready = |pool: &PoolObservation| {
        pool.replicas
            .iter()
            .filter(|r| !r.draining)
            .map(|r| r.load)
            .collect::<Vec<_>>()
    };
    // Requests held because no replica was ready are spread over the ready ones.
    let held_share = |pool: &PoolObservation| pool.held as f64 / pool.ready.max(1) as f64;
    let prefill_loads = ready(&prefill)
        .into_iter()
        .map(|l| PrefillLoad {
            queued_tokens: l.pending_prefill_tokens as f64 + held_share(&prefill) * obs.avg_isl,
            active_requests: (l.running + l.waiting) as u32,
        })
        .collect();
    let decode_loads = ready(&decode)
        .into_iter()
        .map(|l| DecodeLoad {
            active_kv_tokens: l.decode_kv_tokens as f64,
            queued_kv_tokens: (l.waiting as f64 + held_share(&decode)) * obs.avg_isl,
            active_requests: l.running as u32,
        })
        .collect();
    let counts = |p: &PoolObservation| RoleCounts {
        ready: p.ready as u32,
        starting: p.starting as u32,
        draining: p.draining as u32,
    };
    let secs = |xs: &[f64]| xs.iter().map(|x| x / 1000.0).collect::<Vec<f64>>();
    let floats = |xs: &[usize]| xs.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    Observation {
        time: obs.end_ms / 1000.0,
        interval: (obs.end_ms - obs.start_ms) / 1000.0,
        num_requests: obs.arrivals as u64,
        isl: floats(&obs.isl),
        osl: floats(&obs.completed_osl),
        ttft: secs(&obs.ttft_ms),
        itl: secs(&obs.itl_ms),
        request_duration: secs(&obs.e2e_ms),
        kv_hit_rate: Some(obs.kv_hit_rate()),
        prefill: prefill_loads,
        decode: decode_loads,
        replicas: ReplicaCounts {
            prefill: counts(&prefill),
            decode: counts(&decode),
        },
    }
}
