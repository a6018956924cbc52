//! Closed loop on the simulator (short): a profile measured from the mock engine, then a
//! step load under our planner and Dynamo's planners (v0.4 and today's). Checks invariants, not timings:
//! every request finishes exactly once with all its tokens, decisions respect the limits,
//! and the whole run is deterministic.

use planner::baseline::{
    DynamoCurrentConfig, DynamoCurrentPlanner, DynamoSlaConfig, DynamoSlaPlanner,
};
use planner::forecast::SeasonalParams;
use planner::{
    ForecasterKind, Limits, PerfProfile, Planner, ReplicaTarget, SloPlanner, SloPlannerConfig,
    SloTargets,
};
use planner_sim::{driver, profiler};
use sim::workload::{ArrivalShape, SyntheticSpec, Workload};
use sim::{EngineConfig, ServingMode, SimConfig, Sla};

fn base() -> SimConfig {
    SimConfig {
        engine: EngineConfig {
            speedup_ratio: 0.25,
            ..EngineConfig::default()
        },
        decode_engine: None,
        mode: ServingMode::Disaggregated {
            prefill_workers: 1,
            decode_workers: 1,
            kv_bytes_per_token: 131_072.0,
            link_gbps: 64.0,
        },
        startup_delay_ms: 10_000.0,
        seed: 3,
        sla: Sla {
            ttft_ms: 1000.0,
            itl_ms: 50.0,
        },
        emit_kv_events: false,
    }
}

/// A short sinusoid (period 40 s) for the period-learning forecaster.
fn sine_workload() -> Workload {
    SyntheticSpec {
        arrivals: ArrivalShape::Sinusoidal {
            mean: 3.5,
            amplitude: 2.0,
            period_s: 40.0,
        },
        duration_s: 90.0,
        input_length: 3000,
        output_length: 100,
        length_jitter: 0.2,
        seed: 6,
        ..SyntheticSpec::default()
    }
    .generate()
}

fn workload() -> Workload {
    SyntheticSpec {
        arrivals: ArrivalShape::Step {
            before: 2.0,
            after: 5.0,
            at_s: 30.0,
        },
        duration_s: 60.0,
        input_length: 3000,
        output_length: 100,
        length_jitter: 0.2,
        seed: 5,
        ..SyntheticSpec::default()
    }
    .generate()
}

const LIMITS: Limits = Limits {
    min_prefill: 1,
    max_prefill: 6,
    min_decode: 1,
    max_decode: 4,
    gpus_per_prefill: 1,
    gpus_per_decode: 1,
    gpu_budget: None,
};

fn planners(profile: &PerfProfile) -> Vec<Box<dyn Planner>> {
    let targets = SloTargets {
        ttft: 1.0,
        itl: 0.05,
    };
    vec![
        Box::new(SloPlanner::new(
            SloPlannerConfig {
                targets,
                interval: 5.0,
                startup_delay: 10.0,
                limits: LIMITS,
                ..SloPlannerConfig::default()
            },
            profile.clone(),
        )),
        Box::new(SloPlanner::new(
            SloPlannerConfig {
                targets,
                interval: 5.0,
                startup_delay: 10.0,
                limits: LIMITS,
                forecaster: ForecasterKind::Seasonal(SeasonalParams::default()),
                ..SloPlannerConfig::default()
            },
            profile.clone(),
        )),
        Box::new(DynamoSlaPlanner::new(
            DynamoSlaConfig {
                targets,
                interval: 5.0,
                limits: LIMITS,
                ..DynamoSlaConfig::default()
            },
            profile.clone(),
        )),
        Box::new(DynamoCurrentPlanner::new(
            DynamoCurrentConfig {
                targets,
                limits: LIMITS,
                throughput_interval: 10.0,
                load_interval: 5.0,
                load_scaling: true,
                ..DynamoCurrentConfig::default()
            },
            profile.clone(),
        )),
    ]
}

/// A summary that must be identical across repeated runs.
fn fingerprint(out: &driver::RunOutcome) -> String {
    let r = &out.report;
    format!(
        "{} {} {} {:.6} {:.6} {:.6} {:?}",
        r.completed,
        r.output_tokens,
        r.good_requests,
        r.ttft.p99,
        r.itl.p50,
        out.worker_seconds(),
        out.ticks.iter().map(|t| t.target).collect::<Vec<_>>()
    )
}

#[test]
fn measured_profile_is_sane() {
    let profile = profiler::measure(&base());
    // Prefill time grows with the prompt; decode ITL grows with KV usage.
    let p = &profile.prefill;
    assert!(p.ttft(8192.0) > p.ttft(1024.0));
    let d = &profile.decode;
    assert!(d.itl(0.6, 4096.0) > d.itl(0.05, 4096.0));
    let back = PerfProfile::from_json(&profile.to_json()).unwrap();
    assert_eq!(back, profile);
}

#[test]
fn profile_capacities_match_what_the_simulator_delivers() {
    let profile = profiler::measure(&base());
    let b = profiler::biases(&base(), &profile, 0.05);
    // Decode throughput at the exact point agrees with the simulator; the old stored-grid
    // interpolation overstated it.
    let exact = b.decode_thpt_exact / b.decode_thpt_sim;
    assert!((exact - 1.0).abs() < 0.02, "exact/sim {exact}");
    assert!(b.decode_thpt_grid > 1.05 * b.decode_thpt_sim);
    // The saturated engine outruns the lone-prompt estimate, and the profile carries it.
    assert!(b.prefill_saturated_sim > b.prefill_saturated_old);
    assert_eq!(profile.prefill.saturated_rate(), b.prefill_saturated_sim);
}

#[test]
fn planned_runs_conserve_requests_and_are_deterministic() {
    let profile = profiler::measure(&base());
    for load in [workload(), sine_workload()] {
        check_planned_runs(&profile, &load);
    }
}

fn check_planned_runs(profile: &PerfProfile, load: &Workload) {
    let profile = profile.clone();
    let expected_tokens = load.output_tokens();
    for i in 0..planners(&profile).len() {
        let mut first = planners(&profile).remove(i);
        let mut second = planners(&profile).remove(i);
        let a = driver::run_planned(&base(), load, ReplicaTarget::new(1, 1), first.as_mut());
        let b = driver::run_planned(&base(), load, ReplicaTarget::new(1, 1), second.as_mut());
        // No request lost or duplicated: each finished exactly once, in workload order.
        let indices: Vec<usize> = a.outcomes.iter().map(|o| o.index).collect();
        assert_eq!(indices, (0..load.requests.len()).collect::<Vec<_>>());
        assert!(a.outcomes.iter().all(|o| o.e2e_ms.is_some() && !o.rejected));
        let r = &a.report;
        assert_eq!(r.requests, load.requests.len(), "{}", first.name());
        assert_eq!(
            r.completed,
            r.requests,
            "{}: every request finishes",
            first.name()
        );
        assert_eq!(r.rejected, 0);
        assert_eq!(
            r.output_tokens,
            expected_tokens,
            "{}: every token generated",
            first.name()
        );
        assert!(!a.ticks.is_empty());
        for t in &a.ticks {
            assert!((1..=6).contains(&t.target.prefill) && (1..=4).contains(&t.target.decode));
        }
        assert_eq!(
            fingerprint(&a),
            fingerprint(&b),
            "{} is deterministic",
            first.name()
        );
    }
}

#[test]
fn reversals_count_direction_changes() {
    assert_eq!(driver::reversals(&[1, 2, 2, 3, 2, 2, 3]), 2);
    assert_eq!(driver::reversals(&[1, 1, 1]), 0);
    assert_eq!(driver::reversals(&[3, 2, 1, 1]), 0);
}

#[test]
fn fast_checks_scale_up_before_the_next_decision_after_a_step() {
    let profile = profiler::measure(&base());
    let load = SyntheticSpec {
        arrivals: ArrivalShape::Step {
            before: 1.0,
            after: 6.0,
            at_s: 30.0,
        },
        duration_s: 50.0,
        input_length: 3000,
        output_length: 100,
        seed: 5,
        ..SyntheticSpec::default()
    }
    .generate();
    let run = |check_interval| {
        let mut planner = SloPlanner::new(
            SloPlannerConfig {
                targets: SloTargets {
                    ttft: 1.0,
                    itl: 0.05,
                },
                interval: 5.0,
                startup_delay: 10.0,
                limits: LIMITS,
                check_interval,
                ..SloPlannerConfig::default()
            },
            profile.clone(),
        );
        driver::run_planned(&base(), &load, ReplicaTarget::new(1, 1), &mut planner)
    };
    // When the prefill pool is first asked to grow after the step, and by an emergency?
    let first_rise = |out: &driver::RunOutcome| {
        let before = out.ticks.iter().rfind(|t| t.time <= 30.0).unwrap().target;
        out.ticks
            .iter()
            .find(|t| t.time > 30.0 && t.target.prefill > before.prefill)
            .map(|t| (t.time, t.emergency))
            .expect("the step is reacted to")
    };
    let (fast_at, by_emergency) = first_rise(&run(Some(1.0)));
    let (slow_at, _) = first_rise(&run(None));
    assert!(by_emergency && fast_at < 35.0, "{fast_at}");
    assert!(slow_at >= 35.0 && fast_at < slow_at, "{fast_at} {slow_at}");
    assert!(run(None).ticks.iter().all(|t| !t.emergency));
}
