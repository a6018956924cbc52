//! The planning scenarios (sinusoidal and step loads), the planners compared on them, and the
//! result tables.

use std::fmt::Write as _;
use std::path::Path;

use planner::baseline::{DynamoSlaConfig, DynamoSlaPlanner, LoadRulesConfig, LoadRulesPlanner};
use planner::forecast::SeasonalParams;
use planner::{
    ForecasterKind, Limits, PerfProfile, Planner, ReplicaTarget, SloPlanner, SloPlannerConfig,
    SloTargets,
};
use sim::workload::{ArrivalShape, SyntheticSpec, Workload};
use sim::{EngineConfig, ServingMode, SimConfig, Sla};

use crate::driver::{self, RunOutcome};
use crate::plot;

/// Engine slowdown against the mocker's polynomial (a 4× slower GPU/model), chosen so that
/// 5–20 req/s at ISL 3000 needs a handful of replicas per pool, as in Dynamo's benchmark.
pub const SPEEDUP: f64 = 0.25;
/// Seconds from asking for a replica to it serving (Dynamo's fixed 30 s).
pub const STARTUP_S: f64 = 30.0;
/// Targets: TTFT 1 s, ITL 50 ms.
pub const TARGETS: SloTargets = SloTargets {
    ttft: 1.0,
    itl: 0.05,
};
/// Planner adjustment interval for the SLA planners, s.
pub const INTERVAL_S: f64 = 10.0;

/// Mocker-default engines at [`SPEEDUP`], disaggregated, Llama-3-8B-sized KV over 64 GB/s.
pub fn base_config() -> SimConfig {
    SimConfig {
        engine: EngineConfig {
            speedup_ratio: SPEEDUP,
            ..EngineConfig::default()
        },
        decode_engine: None,
        mode: ServingMode::Disaggregated {
            prefill_workers: 1,
            decode_workers: 1,
            kv_bytes_per_token: 131_072.0,
            link_gbps: 64.0,
        },
        startup_delay_ms: STARTUP_S * 1000.0,
        seed: 7,
        sla: Sla {
            ttft_ms: TARGETS.ttft * 1000.0,
            itl_ms: TARGETS.itl * 1000.0,
        },
        emit_kv_events: false,
    }
}

/// A named load.
pub struct Scenario {
    /// Short name (file names).
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// Requests.
    pub workload: Workload,
}

/// The sinusoidal (5 → 20 req/s, period 150 s) and 2× step loads at ISL/OSL 3000/150.
pub fn scenarios(short: bool) -> Vec<Scenario> {
    let spec = |arrivals, duration_s| SyntheticSpec {
        arrivals,
        duration_s,
        input_length: 3000,
        output_length: 150,
        seed: 11,
        ..SyntheticSpec::default()
    };
    let (sin_s, step_s, step_at) = if short {
        (150.0, 120.0, 60.0)
    } else {
        (600.0, 500.0, 200.0)
    };
    vec![
        Scenario {
            name: "sinusoid",
            description: "sinusoidal 5→20 req/s, period 150 s, ISL/OSL 3000/150",
            workload: spec(
                ArrivalShape::Sinusoidal {
                    mean: 12.5,
                    amplitude: 7.5,
                    period_s: 150.0,
                },
                sin_s,
            )
            .generate(),
        },
        Scenario {
            name: "step",
            description: "step 8→16 req/s, ISL/OSL 3000/150",
            workload: spec(
                ArrivalShape::Step {
                    before: 8.0,
                    after: 16.0,
                    at_s: step_at,
                },
                step_s,
            )
            .generate(),
        },
    ]
}

fn limits() -> Limits {
    Limits {
        max_prefill: 16,
        max_decode: 16,
        ..Limits::default()
    }
}

/// The planners compared, freshly built.
pub fn planners(profile: &PerfProfile) -> Vec<Box<dyn Planner>> {
    let dynamo = DynamoSlaConfig {
        targets: TARGETS,
        interval: INTERVAL_S,
        limits: limits(),
        correction: true,
        predictor: ForecasterKind::Constant,
    };
    let dynamo_kalman = DynamoSlaConfig {
        predictor: ForecasterKind::DYNAMO_KALMAN,
        ..dynamo
    };
    let load = LoadRulesConfig {
        targets: TARGETS,
        limits: limits(),
        ..LoadRulesConfig::default()
    };
    let ours = SloPlannerConfig {
        targets: TARGETS,
        interval: INTERVAL_S,
        startup_delay: STARTUP_S,
        limits: limits(),
        ..SloPlannerConfig::default()
    };
    let seasonal_cfg = SloPlannerConfig {
        forecaster: ForecasterKind::Seasonal(SeasonalParams::default()),
        forecast_error_sigmas: 0.5,
        ..ours
    };
    let named = |name: &'static str, cfg: SloPlannerConfig| -> Box<dyn Planner> {
        Box::new(NamedPlanner(name, SloPlanner::new(cfg, profile.clone())))
    };
    let seasonal = |name: &'static str, sigmas: f64| {
        named(
            name,
            SloPlannerConfig {
                forecast_error_sigmas: sigmas,
                ..seasonal_cfg
            },
        )
    };
    let surge = |name: &'static str, surge_ratio: f64| {
        named(
            name,
            SloPlannerConfig {
                surge_ratio,
                ..seasonal_cfg
            },
        )
    };
    let quantile = |name: &'static str, attainment: f64| {
        named(
            name,
            SloPlannerConfig {
                attainment,
                ..seasonal_cfg
            },
        )
    };
    vec![
        Box::new(NamedPlanner(
            "dynamo-v0.4 (constant)",
            DynamoSlaPlanner::new(dynamo, profile.clone()),
        )),
        Box::new(NamedPlanner(
            "dynamo-v0.4 (kalman)",
            DynamoSlaPlanner::new(dynamo_kalman, profile.clone()),
        )),
        Box::new(LoadRulesPlanner::new(load, profile.clone())),
        Box::new(NamedPlanner(
            "ours (holt 0.5/0.3)",
            SloPlanner::new(ours, profile.clone()),
        )),
        Box::new(NamedPlanner(
            "ours (holt 0.8/0.6)",
            SloPlanner::new(
                SloPlannerConfig {
                    forecaster: ForecasterKind::Holt {
                        alpha: 0.8,
                        beta: 0.6,
                    },
                    ..ours
                },
                profile.clone(),
            ),
        )),
        Box::new(NamedPlanner(
            "ours (kalman)",
            SloPlanner::new(
                SloPlannerConfig {
                    forecaster: ForecasterKind::Kalman {
                        q_level: 1.0,
                        q_trend: 0.5,
                        r: 2.0,
                        min_points: 3,
                    },
                    ..ours
                },
                profile.clone(),
            ),
        )),
        seasonal("ours (seasonal)", 0.5),
        seasonal("ours (seasonal, margin 0σ)", 0.0),
        seasonal("ours (seasonal, margin 1σ)", 1.0),
        named(
            "ours (seasonal, no fast checks)",
            SloPlannerConfig {
                check_interval: None,
                ..seasonal_cfg
            },
        ),
        named(
            "ours (seasonal, down patience 4)",
            SloPlannerConfig {
                down_patience: 4,
                ..seasonal_cfg
            },
        ),
        surge("ours (seasonal, surge 1.25×)", 1.25),
        surge("ours (seasonal, surge 1.5×)", 1.5),
        surge("ours (seasonal, surge 1.75×)", 1.75),
        surge("ours (seasonal, surge 2×)", 2.0),
        quantile("ours (seasonal, quantile 85%)", 0.85),
        quantile("ours (seasonal, quantile 70%)", 0.7),
        quantile("ours (seasonal, quantile 50%)", 0.5),
    ]
}

/// Renames a planner for the report.
struct NamedPlanner<P>(&'static str, P);

impl<P: Planner> Planner for NamedPlanner<P> {
    fn name(&self) -> &str {
        self.0
    }
    fn interval(&self) -> f64 {
        self.1.interval()
    }
    fn decide(&mut self, obs: &planner::Observation) -> ReplicaTarget {
        self.1.decide(obs)
    }
    fn check_interval(&self) -> Option<f64> {
        self.1.check_interval()
    }
    fn check(&mut self, obs: &planner::Observation) -> Option<ReplicaTarget> {
        self.1.check(obs)
    }
}

/// One row of the results table.
#[derive(serde::Serialize)]
struct Row {
    scenario: String,
    planner: String,
    requests: usize,
    completed: usize,
    attainment: f64,
    ttft_p50_ms: f64,
    ttft_p99_ms: f64,
    itl_p50_ms: f64,
    itl_p99_ms: f64,
    worker_seconds: f64,
    oscillations: usize,
    preemptions: u64,
    /// Requests missing a target, by arrival time in 50 s buckets.
    misses_per_50s: Vec<usize>,
}

fn row(scenario: &str, planner: &str, out: &RunOutcome) -> Row {
    let r = &out.report;
    Row {
        scenario: scenario.into(),
        planner: planner.into(),
        requests: r.requests,
        completed: r.completed,
        attainment: out.attainment(),
        ttft_p50_ms: r.ttft.p50,
        ttft_p99_ms: r.ttft.p99,
        itl_p50_ms: r.itl.p50,
        itl_p99_ms: r.itl.p99,
        worker_seconds: out.worker_seconds(),
        oscillations: out.oscillations(),
        preemptions: r.preemptions,
        misses_per_50s: out.misses_by_arrival(50.0),
    }
}

/// Cheapest static split meeting 95% attainment, by coordinate search: the fewest prefill
/// replicas with decode ample, then the fewest decode replicas with that prefill count.
fn best_static(base: &SimConfig, workload: &Workload) -> (ReplicaTarget, RunOutcome) {
    let ok = |split: ReplicaTarget| {
        let out = driver::run_static(base, workload, split);
        (out.attainment() >= 0.95, out)
    };
    let max = 16;
    let prefill = (1..=max)
        .find(|&p| ok(ReplicaTarget::new(p, max)).0)
        .unwrap_or(max);
    let mut last = None;
    for d in 1..=max {
        let (good, out) = ok(ReplicaTarget::new(prefill, d));
        if good || d == max {
            last = Some((ReplicaTarget::new(prefill, d), out));
            break;
        }
    }
    last.expect("the loop always ends with a split")
}

/// Runs every scenario under every planner; writes results and plots into `out_dir`.
pub fn run_all(profile: &PerfProfile, out_dir: &Path, short: bool) {
    let base = base_config();
    let mut rows = Vec::new();
    for scenario in scenarios(short) {
        let started = std::time::Instant::now();
        let (split, static_out) = best_static(&base, &scenario.workload);
        let static_name = format!("best static {}P{}D", split.prefill, split.decode);
        rows.push(row(scenario.name, &static_name, &static_out));
        let mut plotted = Vec::new();
        for mut planner in planners(profile) {
            let name = planner.name().to_string();
            // Every planner starts from the best static split, so no run pays for a cold start.
            let out = driver::run_planned(&base, &scenario.workload, split, planner.as_mut());
            let ticks = serde_json::to_string(&out.ticks).expect("ticks serialise");
            let file = format!("ticks-{}-{}.json", scenario.name, slug(&name));
            std::fs::write(out_dir.join(file), ticks).expect("write ticks");
            rows.push(row(scenario.name, &name, &out));
            plotted.push((name, out.ticks));
        }
        let png = out_dir.join(format!("{}.png", scenario.name));
        plot::replicas_vs_load(&png, scenario.description, &plotted).expect("plot");
        eprintln!(
            "{}: {} requests, {:.1}s wall",
            scenario.name,
            scenario.workload.requests.len(),
            started.elapsed().as_secs_f64()
        );
    }
    let json = serde_json::to_string_pretty(&rows).expect("rows serialise");
    std::fs::write(out_dir.join("results.json"), json).expect("write results.json");
    std::fs::write(out_dir.join("results.md"), table(&rows)).expect("write results.md");
    print!("{}", table(&rows));
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| scenario | planner | requests | SLA attainment | TTFT p50 / p99 (ms) | ITL p50 / p99 (ms) | worker-s | oscillations | preemptions |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {}/{} | {:.1}% | {:.0} / {:.0} | {:.1} / {:.1} | {:.0} | {} | {} |",
            r.scenario,
            r.planner,
            r.completed,
            r.requests,
            100.0 * r.attainment,
            r.ttft_p50_ms,
            r.ttft_p99_ms,
            r.itl_p50_ms,
            r.itl_p99_ms,
            r.worker_seconds,
            r.oscillations,
            r.preemptions
        );
    }
    s
}
