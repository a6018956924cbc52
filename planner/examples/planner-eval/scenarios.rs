//! The planning scenarios (sinusoidal and step loads), the planners compared on them, and the
//! result tables.

use std::path::Path;

use planner::baseline::{
    DynamoCurrentConfig, DynamoCurrentPlanner, DynamoSlaConfig, DynamoSlaPlanner, LoadRulesConfig,
    LoadRulesPlanner,
};
use planner::forecast::{Persistence, SeasonalParams};
use planner::{
    ForecasterKind, Limits, PerfProfile, Planner, ReplicaTarget, SloPlanner, SloPlannerConfig,
    SloTargets,
};
use sim::workload::{ArrivalShape, SyntheticSpec, Workload};
use sim::{EngineConfig, ServingMode, SimConfig, Sla};

use crate::driver::{self, RunOutcome};
use crate::oracle::{Oracle, TrueRate};
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

/// Dynamo's planners compared: today's (throughput sizing, load rules on top) and v0.4's.
fn dynamo_planners(profile: &PerfProfile) -> Vec<Box<dyn Planner>> {
    let current = DynamoCurrentConfig {
        targets: TARGETS,
        limits: limits(),
        throughput_interval: INTERVAL_S,
        load_interval: 5.0,
        load_scaling: true,
        ..DynamoCurrentConfig::default()
    };
    let v04 = DynamoSlaConfig {
        targets: TARGETS,
        interval: INTERVAL_S,
        limits: limits(),
        correction: true,
        predictor: ForecasterKind::Constant,
    };
    let load = LoadRulesConfig {
        targets: TARGETS,
        limits: limits(),
        ..LoadRulesConfig::default()
    };
    let cur = |name: &'static str, cfg: DynamoCurrentConfig| -> Box<dyn Planner> {
        Box::new(NamedPlanner(
            name,
            DynamoCurrentPlanner::new(cfg, profile.clone()),
        ))
    };
    vec![
        cur("dynamo-current", current),
        cur(
            "dynamo-current (kalman)",
            DynamoCurrentConfig {
                predictor: ForecasterKind::DYNAMO_KALMAN,
                ..current
            },
        ),
        cur(
            "dynamo-current (throughput only)",
            DynamoCurrentConfig {
                load_scaling: false,
                ..current
            },
        ),
        cur(
            "dynamo-current (default 180 s interval)",
            DynamoCurrentConfig {
                throughput_interval: 180.0,
                ..current
            },
        ),
        Box::new(NamedPlanner(
            "dynamo-v0.4 (constant)",
            DynamoSlaPlanner::new(v04, profile.clone()),
        )),
        Box::new(NamedPlanner(
            "dynamo-v0.4 (kalman)",
            DynamoSlaPlanner::new(
                DynamoSlaConfig {
                    predictor: ForecasterKind::DYNAMO_KALMAN,
                    ..v04
                },
                profile.clone(),
            ),
        )),
        Box::new(NamedPlanner(
            "dynamo-v0.4 (no correction)",
            DynamoSlaPlanner::new(
                DynamoSlaConfig {
                    correction: false,
                    ..v04
                },
                profile.clone(),
            ),
        )),
        Box::new(LoadRulesPlanner::new(load, profile.clone())),
    ]
    .into_iter()
    .chain(BUDGETS.map(|gpus| {
        let name = Box::leak(format!("dynamo-current (budget {gpus} GPUs)").into_boxed_str());
        let limits = Limits {
            gpu_budget: Some(gpus),
            ..limits()
        };
        cur(name, DynamoCurrentConfig { limits, ..current })
    }))
    .collect()
}

/// GPU budgets of the cost frontier (the best static splits use 8 and 10 GPUs).
const BUDGETS: [u32; 3] = [7, 8, 9];

/// Our planner's settings for the evaluation (the crate's defaults at this scenario's
/// targets, interval and start-up delay).
pub fn ours_config() -> SloPlannerConfig {
    SloPlannerConfig {
        targets: TARGETS,
        interval: INTERVAL_S,
        startup_delay: STARTUP_S,
        limits: limits(),
        ..SloPlannerConfig::default()
    }
}

/// Our planner: the default and the variants of the frontier.
fn our_planners(profile: &PerfProfile) -> Vec<Box<dyn Planner>> {
    let base = ours_config();
    let named = |name: String, cfg: SloPlannerConfig| -> Box<dyn Planner> {
        Box::new(NamedPlanner(
            Box::leak(name.into_boxed_str()),
            SloPlanner::new(cfg, profile.clone()),
        ))
    };
    let mut v = vec![named("ours".into(), base)];
    v.push(named(
        "ours (previous settings)".into(),
        SloPlannerConfig {
            attainment: 0.97,
            forecast_error_sigmas: 0.5,
            refute_z: None,
            forecaster: ForecasterKind::Seasonal(SeasonalParams::default()),
            ..base
        },
    ));
    v.push(named(
        "ours (holt forecaster)".into(),
        SloPlannerConfig {
            forecaster: ForecasterKind::Holt {
                alpha: 0.5,
                beta: 0.3,
            },
            ..base
        },
    ));
    v.push(named(
        "ours (no fast drain)".into(),
        SloPlannerConfig {
            fall_z: None,
            ..base
        },
    ));
    v.push(named(
        "ours (no refutation)".into(),
        SloPlannerConfig {
            refute_z: None,
            ..base
        },
    ));
    v.push(named(
        "ours (refuted forecast: observed rate)".into(),
        SloPlannerConfig {
            refute_forecast_z: Some(planner::slo_planner::FALL_Z),
            ..base
        },
    ));
    v.push(named(
        "ours (start window)".into(),
        SloPlannerConfig {
            start_window: true,
            ..base
        },
    ));
    v.push(named(
        "ours (no fast checks)".into(),
        SloPlannerConfig {
            check_interval: None,
            ..base
        },
    ));
    for sigmas in [0.5, 1.0] {
        v.push(named(
            format!("ours (margin {sigmas}σ)"),
            SloPlannerConfig {
                forecast_error_sigmas: sigmas,
                ..base
            },
        ));
    }
    // Below the median: the main cost knob (the frontier against today's Dynamo).
    for q in [0.2, 0.3, 0.4, 0.65, 0.8, 0.97] {
        v.push(named(
            format!("ours (quantile {:.0}%)", q * 100.0),
            SloPlannerConfig {
                attainment: q,
                ..base
            },
        ));
    }
    let ForecasterKind::Seasonal(params) = base.forecaster else {
        unreachable!("the default forecaster is the seasonal one")
    };
    for phi in [0.8, 0.6, 0.4] {
        v.push(named(
            format!("ours (damped trend {phi})"),
            SloPlannerConfig {
                forecaster: ForecasterKind::Seasonal(SeasonalParams {
                    trend_damping: phi,
                    ..params
                }),
                ..base
            },
        ));
    }
    // The period fit trusted only after a whole cycle of history (0.75 by default).
    v.push(named(
        "ours (period after 1 cycle)".into(),
        SloPlannerConfig {
            forecaster: ForecasterKind::Seasonal(SeasonalParams {
                min_cycles: 1.0,
                ..params
            }),
            ..base
        },
    ));
    // Persistence (the latest rate) competing with the period fit and the trend model by
    // their errors at the planning horizon: before the period has been seen to repeat, and
    // always.
    for (persistence, name) in [
        (Persistence::WarmUp, "ours (persistence in warm-up)"),
        (Persistence::Always, "ours (persistence always)"),
    ] {
        v.push(named(
            name.into(),
            SloPlannerConfig {
                forecaster: ForecasterKind::Seasonal(SeasonalParams {
                    persistence,
                    ..params
                }),
                ..base
            },
        ));
    }
    for (judge_latest, err_cap, name) in [
        (true, None, "ours (persistence in warm-up, latest errors)"),
        (false, Some(1.0), "ours (trend cap 1σ)"),
    ] {
        v.push(named(
            name.into(),
            SloPlannerConfig {
                forecaster: ForecasterKind::Seasonal(SeasonalParams {
                    persistence: if judge_latest {
                        Persistence::WarmUp
                    } else {
                        Persistence::Never
                    },
                    judge_latest,
                    fallback_error_cap: err_cap,
                    ..params
                }),
                ..base
            },
        ));
    }
    for (cap, name) in [
        (None, "ours (no trend cap)"),
        (Some(1.1), "ours (trend cap 1.1×)"),
    ] {
        v.push(named(
            name.into(),
            SloPlannerConfig {
                forecaster: ForecasterKind::Seasonal(SeasonalParams {
                    fallback_growth_cap: cap,
                    ..params
                }),
                ..base
            },
        ));
    }
    for patience in [1, 2] {
        v.push(named(
            format!("ours (patience {patience})"),
            SloPlannerConfig {
                down_patience: patience,
                ..base
            },
        ));
    }
    // A GPU budget: the cost knob both planners share (frontier against today's Dynamo).
    for gpus in BUDGETS {
        v.push(named(
            format!("ours (budget {gpus} GPUs)"),
            SloPlannerConfig {
                limits: Limits {
                    gpu_budget: Some(gpus),
                    ..base.limits
                },
                ..base
            },
        ));
    }
    for surge in [1.25, 1.5, 1.75, 2.0] {
        v.push(named(
            format!("ours (surge {surge}×)"),
            SloPlannerConfig {
                surge_ratio: surge,
                ..base
            },
        ));
    }
    v
}

/// Every planner compared on `workload`, freshly built; the oracle first.
pub fn planners(profile: &PerfProfile, workload: &Workload) -> Vec<Box<dyn Planner>> {
    let oracle = || Oracle::new(workload, profile, TARGETS, INTERVAL_S, STARTUP_S, 16);
    let mut v: Vec<Box<dyn Planner>> = vec![Box::new(oracle())];
    for (u, name) in [
        (0.95, "oracle (95% capacity)"),
        (0.94, "oracle (94% capacity)"),
        (0.92, "oracle (92% capacity)"),
        (0.9, "oracle (90% capacity)"),
        (0.85, "oracle (85% capacity)"),
        (0.8, "oracle (80% capacity)"),
    ] {
        v.push(Box::new(oracle().with_utilisation(u, name)));
    }
    v.push(Box::new(NamedPlanner(
        "ours, told the true rate",
        SloPlanner::with_forecaster(
            ours_config(),
            profile.clone(),
            Box::new(TrueRate::new(workload, INTERVAL_S)),
        ),
    )));
    v.extend(dynamo_planners(profile));
    v.extend(our_planners(profile));
    v
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

/// One row of the results table (`results.json`).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Planner name.
    pub planner: String,
    /// Requests in the load.
    pub requests: usize,
    /// Requests completed.
    pub completed: usize,
    /// Fraction within both targets.
    pub attainment: f64,
    /// TTFT median, ms.
    pub ttft_p50_ms: f64,
    /// TTFT 99th percentile, ms.
    pub ttft_p99_ms: f64,
    /// ITL median, ms.
    pub itl_p50_ms: f64,
    /// ITL 99th percentile, ms.
    pub itl_p99_ms: f64,
    /// Replica-seconds of both pools.
    pub worker_seconds: f64,
    /// Direction reversals of the target.
    pub oscillations: usize,
    /// Preempted sequences.
    pub preemptions: u64,
    /// Requests missing a target, by arrival time in 50 s buckets.
    pub misses_per_50s: Vec<usize>,
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
/// `only`: when given, runs just the planners whose name contains one of these strings
/// (the oracle always runs: every ratio is against it).
pub fn run_all(profile: &PerfProfile, out_dir: &Path, short: bool, only: Option<&[String]>) {
    let base = base_config();
    let mut rows = Vec::new();
    for scenario in scenarios(short) {
        let started = std::time::Instant::now();
        let (split, static_out) = best_static(&base, &scenario.workload);
        let static_name = format!("best static {}P{}D", split.prefill, split.decode);
        rows.push(row(scenario.name, &static_name, &static_out));
        // The static splits around the best one, for the frontier.
        if only.is_none_or(|o| o.iter().any(|n| n == "static")) {
            for (dp, dd) in [
                (-1, -1),
                (-1, 0),
                (-1, 1),
                (0, -1),
                (0, 1),
                (1, -1),
                (1, 0),
                (1, 1),
            ] {
                let (p, d) = (split.prefill as i32 + dp, split.decode as i32 + dd);
                if p < 1 || d < 1 {
                    continue;
                }
                let near = ReplicaTarget::new(p as u32, d as u32);
                let out = driver::run_static(&base, &scenario.workload, near);
                rows.push(row(scenario.name, &format!("static {p}P{d}D"), &out));
            }
        }
        let mut plotted = Vec::new();
        for mut planner in planners(profile, &scenario.workload) {
            let name = planner.name().to_string();
            let wanted = |only: &[String]| only.iter().any(|o| name.contains(o.as_str()));
            if name != "oracle" && !only.is_none_or(wanted) {
                continue;
            }
            // Every planner starts from the best static split, so no run pays for a cold start.
            let out = driver::run_planned(&base, &scenario.workload, split, planner.as_mut());
            let ticks = serde_json::to_string(&out.ticks).expect("ticks serialise");
            let file = format!("ticks-{}-{}.json", scenario.name, slug(&name));
            std::fs::write(out_dir.join(file), ticks).expect("write ticks");
            rows.push(row(scenario.name, &name, &out));
            if PLOTTED.contains(&name.as_str()) {
                plotted.push((name, out.ticks));
            }
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
    let md = crate::tables::from_dir(out_dir).expect("tables from the results just written");
    std::fs::write(out_dir.join("results.md"), &md).expect("write results.md");
    print!("{md}");
}

/// Planners drawn in the replicas-over-time plots (one panel each).
const PLOTTED: [&str; 4] = ["oracle", "dynamo-current", "dynamo-v0.4 (constant)", "ours"];

/// File-name form of a planner name.
pub fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}
