//! Per-interval samples (ISL/OSL of arrivals, E2E of completions), per-replica
//! loads, and choosing which replica drains.

use sim::routing::RoundRobin;
use sim::workload::{ArrivalShape, SyntheticSpec};
use sim::{DrainChoice, EngineConfig, Role, ServingMode, SimConfig, Simulation, WorkerState};

fn load(secs: f64, rate: f64) -> sim::workload::Workload {
    SyntheticSpec {
        arrivals: ArrivalShape::Poisson { rate },
        duration_s: secs,
        input_length: 1024,
        output_length: 30,
        length_jitter: 0.5,
        seed: 3,
        ..SyntheticSpec::default()
    }
    .generate()
}

fn agg(workers: usize) -> SimConfig {
    SimConfig {
        engine: EngineConfig {
            num_gpu_blocks: 1024,
            max_num_batched_tokens: 2048,
            ..EngineConfig::default()
        },
        mode: ServingMode::Aggregated { workers },
        startup_delay_ms: 2_000.0,
        ..SimConfig::default()
    }
}

#[test]
fn samples_match_the_workload_and_the_outcomes() {
    let workload = load(20.0, 6.0);
    let mut sim = Simulation::new(
        agg(2),
        workload.clone(),
        Box::new(RoundRobin::default()),
        None,
    );
    let (mut isl, mut osl, mut e2e, mut gen_tokens) = (vec![], vec![], vec![], 0usize);
    let mut t = 0.0;
    while !sim.is_finished() {
        t += 1_000.0;
        sim.run_until(t);
        let o = sim.take_observation();
        assert_eq!(o.isl.len(), o.arrivals);
        assert_eq!(o.e2e_ms.len(), o.completed);
        assert_eq!(o.completed_osl.len(), o.completed);
        isl.extend(o.isl);
        osl.extend(o.osl);
        e2e.extend(o.e2e_ms);
        gen_tokens += o.completed_osl.iter().sum::<usize>();
        let pool = &o.pools[0];
        let r = &pool.replicas;
        assert_eq!(r.len(), pool.ready + pool.draining);
        let sum = |f: fn(&sim::ReplicaLoad) -> usize| r.iter().map(f).sum::<usize>();
        assert_eq!(sum(|x| x.load.running), pool.running);
        assert_eq!(sum(|x| x.load.waiting) + pool.held, pool.queue_depth);
        assert_eq!(
            sum(|x| x.load.pending_prefill_tokens),
            pool.pending_prefill_tokens
        );
    }
    let want_isl: Vec<usize> = workload.requests.iter().map(|r| r.input_length).collect();
    let want_osl: Vec<usize> = workload
        .requests
        .iter()
        .map(|r| r.output_length.max(1))
        .collect();
    assert_eq!(isl, want_isl);
    assert_eq!(osl, want_osl);
    assert_eq!(gen_tokens, want_osl.iter().sum::<usize>());
    let mut from_outcomes: Vec<f64> = sim.outcomes().iter().filter_map(|o| o.e2e_ms).collect();
    from_outcomes.sort_by(f64::total_cmp);
    e2e.sort_by(f64::total_cmp);
    assert_eq!(e2e, from_outcomes);
}

#[test]
fn least_loaded_drains_the_idle_replica_and_explicit_drain_works() {
    // Worker 0 serves a burst alone until worker 1 is ready (2 s); at 2.5 s their loads
    // differ, and the least-loaded choice must drain the quieter one whichever it is.
    let mut sim = Simulation::new(
        agg(1),
        load(4.0, 40.0),
        Box::new(RoundRobin::default()),
        None,
    );
    sim.set_replicas(Role::Aggregated, 2);
    sim.run_until(2_500.0);
    let loads: Vec<usize> = sim
        .pool_observation(Role::Aggregated)
        .replicas
        .iter()
        .map(|r| r.load.pending_prefill_tokens + r.load.decode_kv_tokens)
        .collect();
    assert_eq!(loads.len(), 2);
    assert_ne!(loads[0], loads[1], "the test needs unequal loads");
    let busiest = if loads[0] >= loads[1] { 0 } else { 1 };
    let quietest = 1 - busiest;
    sim.set_replicas_with(Role::Aggregated, 1, DrainChoice::LeastLoaded);
    let states = sim.worker_states();
    assert_ne!(
        states[quietest].2,
        WorkerState::Ready,
        "{states:?} {loads:?}"
    );
    assert_eq!(
        states[busiest].2,
        WorkerState::Ready,
        "{states:?} {loads:?}"
    );
    // An explicit drain of the last ready worker is allowed and finishes its work.
    assert!(sim.drain(busiest as u64));
    assert!(!sim.drain(busiest as u64), "already draining");
    sim.set_replicas(Role::Aggregated, 1);
    sim.run_to_completion();
    let report = sim.report();
    assert_eq!(report.completed, report.requests);
}
