//! CI-sized routing check (seconds): every routing policy the report compares, on a
//! shared-prefix load over 8 workers. Invariants, not timings: each run is deterministic,
//! conserves requests and tokens, never beats the ideal infinite-cache hit rate, and the
//! KV-aware policies find more of the shared prefixes than round-robin.

use sim::routing::policy_by_name;
use sim::workload::{ArrivalShape, SyntheticSpec, Workload};
use sim::{EngineConfig, Report, ServingMode, SimConfig, Simulation};

fn load() -> Workload {
    SyntheticSpec {
        arrivals: ArrivalShape::Poisson { rate: 12.0 },
        duration_s: 20.0,
        input_length: 3000,
        output_length: 60,
        length_jitter: 0.5,
        prefix_groups: 16,
        shared_prefix_ratio: 0.7,
        seed: 21,
        ..SyntheticSpec::default()
    }
    .generate()
}

fn run(policy: &str, workload: &Workload) -> Report {
    let cfg = SimConfig {
        engine: EngineConfig {
            num_gpu_blocks: 2048,
            ..EngineConfig::default()
        },
        mode: ServingMode::Aggregated { workers: 8 },
        ..SimConfig::default()
    };
    let routing = policy_by_name(policy, &cfg.engine, 3).expect("known policy");
    let mut sim = Simulation::new(cfg, workload.clone(), routing, None);
    sim.run_to_completion();
    sim.check_invariants();
    sim.report()
}

#[test]
fn every_policy_is_deterministic_and_conserves_requests() {
    let workload = load();
    let tokens = workload.output_tokens();
    let mut hit = Vec::new();
    for policy in [
        "round-robin",
        "random",
        "oracle-cost",
        "dynamo",
        "ours",
        "ours:itl=4",
        "ours:reserve=0.2",
    ] {
        let a = run(policy, &workload);
        let b = run(policy, &workload);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap(),
            "{policy} is deterministic"
        );
        assert_eq!(a.requests, workload.requests.len(), "{policy}");
        assert_eq!((a.completed, a.rejected), (a.requests, 0), "{policy}");
        assert_eq!(a.output_tokens, tokens, "{policy}: every token generated");
        assert!(
            a.prefix_hit_rate <= a.ideal_hit_rate + 1e-12,
            "{policy}: hit rate {} above the ideal {}",
            a.prefix_hit_rate,
            a.ideal_hit_rate
        );
        hit.push((policy, a.prefix_hit_rate));
    }
    let rr = hit[0].1;
    for &(policy, h) in &hit[2..] {
        assert!(h > rr, "{policy} hit rate {h} vs round-robin {rr}");
    }
    assert!(policy_by_name("ours:itl=-1", &EngineConfig::default(), 0).is_none());
    assert!(policy_by_name("ours:reserve=x", &EngineConfig::default(), 0).is_none());
}
