//! Invariants of whole simulations: determinism, conservation of requests
//! and tokens, block-manager consistency under pressure, KV events, scaling.

use sim::kv_event::{KvEvent, KvEventData, StorageTier, WorkerId};
use sim::routing::{Candidate, Random, RoundRobin, RouteRequest, RoutingPolicy};
use sim::workload::{ArrivalShape, SyntheticSpec, Workload};
use sim::{EngineConfig, Role, ServingMode, SimConfig, Simulation, WorkerState};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

fn shared_prefix_load(seed: u64, rate: f64, secs: f64) -> Workload {
    SyntheticSpec {
        arrivals: ArrivalShape::Poisson { rate },
        duration_s: secs,
        input_length: 2048,
        output_length: 40,
        length_jitter: 0.5,
        prefix_groups: 4,
        shared_prefix_ratio: 0.5,
        seed,
        ..SyntheticSpec::default()
    }
    .generate()
}

fn small_engine(blocks: usize) -> EngineConfig {
    EngineConfig {
        num_gpu_blocks: blocks,
        max_num_batched_tokens: 2048,
        ..EngineConfig::default()
    }
}

fn agg(workers: usize, blocks: usize) -> SimConfig {
    SimConfig {
        engine: small_engine(blocks),
        mode: ServingMode::Aggregated { workers },
        ..SimConfig::default()
    }
}

fn assert_conserved(sim: &Simulation) {
    let outcomes = sim.outcomes();
    let w = sim.workload();
    let mut generated = 0u64;
    for (o, spec) in outcomes.iter().zip(&w.requests) {
        if o.rejected {
            assert!(
                o.e2e_ms.is_none(),
                "request {} both rejected and finished",
                o.index
            );
            continue;
        }
        assert!(o.e2e_ms.is_some(), "request {} never finished", o.index);
        assert_eq!(
            o.tokens,
            spec.output_length.max(1),
            "request {} token count",
            o.index
        );
        assert!(o.ttft_ms.unwrap() >= 0.0 && o.e2e_ms.unwrap() >= o.ttft_ms.unwrap());
        generated += o.tokens as u64;
    }
    let r = sim.report();
    assert_eq!(
        r.completed + r.rejected,
        r.requests,
        "every request ends exactly once"
    );
    assert_eq!(r.output_tokens, generated, "token conservation");
}

#[test]
fn same_seed_gives_identical_report() {
    let run = |seed| {
        let mut sim = Simulation::new(
            agg(3, 512),
            shared_prefix_load(seed, 6.0, 20.0),
            Box::new(Random::new(seed)),
            None,
        );
        sim.run_to_completion();
        serde_json::to_string(&sim.report()).unwrap()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8), "a different seed changes the run");
}

#[test]
fn requests_and_tokens_are_conserved_under_memory_pressure() {
    // 160 blocks of 64 tokens hold ~5 of these prompts: forces preemption.
    let mut sim = Simulation::new(
        agg(2, 160),
        shared_prefix_load(1, 8.0, 15.0),
        Box::new(RoundRobin::default()),
        None,
    );
    let mut steps = 0;
    while sim.step() {
        steps += 1;
        if steps % 50 == 0 {
            sim.check_invariants();
        }
    }
    sim.check_invariants();
    assert!(sim.is_finished());
    assert_conserved(&sim);
    let r = sim.report();
    assert!(r.preemptions > 0, "the test must exercise preemption");
    assert_eq!(r.rejected, 0);
    assert!(r.prefix_hit_rate > 0.0 && r.prefix_hit_rate <= r.ideal_hit_rate + 1e-9);
}

#[test]
fn oversized_requests_are_rejected_not_lost() {
    let mut load = shared_prefix_load(2, 4.0, 5.0);
    load.requests[0].input_length = 64 * 100; // more than the 64-block cache
    load.requests[0].hash_ids = (1000..1013).collect();
    let mut sim = Simulation::new(agg(1, 64), load, Box::new(RoundRobin::default()), None);
    sim.run_to_completion();
    assert_conserved(&sim);
    assert_eq!(sim.report().rejected, 1);
}

/// Rebuilds each worker's cache from its KV events alone.
#[derive(Default)]
struct EventMirror {
    cached: Rc<RefCell<HashMap<WorkerId, HashSet<u64>>>>,
    last_id: HashMap<WorkerId, u64>,
    inner: RoundRobin,
}

impl RoutingPolicy for EventMirror {
    fn name(&self) -> String {
        "mirror".into()
    }
    fn choose(&mut self, r: &RouteRequest<'_>, c: &[Candidate]) -> usize {
        self.inner.choose(r, c)
    }
    fn wants_kv_events(&self) -> bool {
        true
    }
    fn on_kv_event(&mut self, worker: WorkerId, ev: &KvEvent) {
        if let Some(&prev) = self.last_id.get(&worker) {
            assert_eq!(ev.event_id, prev + 1, "event ids are consecutive");
        } else {
            assert_eq!(ev.event_id, 0);
        }
        self.last_id.insert(worker, ev.event_id);
        assert_eq!(ev.tier, StorageTier::Device, "no host tier configured");
        let mut cached = self.cached.borrow_mut();
        let set = cached.entry(worker).or_default();
        match &ev.data {
            KvEventData::Stored { parent, blocks } => {
                if let Some(p) = parent {
                    assert!(set.contains(&p.0), "stored block's parent is cached");
                }
                for b in blocks {
                    assert!(set.insert(b.external.0), "block stored twice");
                }
            }
            KvEventData::Removed { blocks } => {
                for h in blocks {
                    assert!(set.remove(&h.0), "removed block was not stored");
                }
            }
            KvEventData::Cleared => set.clear(),
        }
    }
}

#[test]
fn kv_events_mirror_engine_cache() {
    let load = shared_prefix_load(3, 8.0, 15.0);
    let mirror = EventMirror::default();
    let view = Rc::clone(&mirror.cached);
    let mut sim = Simulation::new(agg(2, 200), load, Box::new(mirror), None);
    let mut steps = 0;
    while sim.step() {
        steps += 1;
        // Between events the router's picture equals the engine's cache.
        if steps % 25 == 0 {
            for w in 0..2u64 {
                let seen = view.borrow().get(&w).map_or(0, |s| s.len());
                assert_eq!(seen, sim.engine(w).unwrap().blocks().cached(), "worker {w}");
            }
        }
    }
    assert_conserved(&sim);
    let mirrored_something = view.borrow().values().map(|s| s.len()).sum::<usize>() > 0;
    assert!(mirrored_something);
}

#[test]
fn disaggregated_mode_conserves_and_pays_transfer() {
    let cfg = |gbps| SimConfig {
        engine: small_engine(1024),
        mode: ServingMode::Disaggregated {
            prefill_workers: 2,
            decode_workers: 2,
            kv_bytes_per_token: 1e6,
            link_gbps: gbps,
        },
        ..SimConfig::default()
    };
    let load = shared_prefix_load(4, 4.0, 10.0);
    let mut fast = Simulation::new(
        cfg(1000.0),
        load.clone(),
        Box::new(RoundRobin::default()),
        None,
    );
    fast.run_to_completion();
    assert_conserved(&fast);
    let mut slow = Simulation::new(cfg(1.0), load, Box::new(RoundRobin::default()), None);
    slow.run_to_completion();
    assert_conserved(&slow);
    // 1e6 B/token over 1 GB/s is 1 ms per prompt token: TTFT grows by ~ISL ms.
    assert!(slow.report().ttft.p50 > fast.report().ttft.p50 + 500.0);
    let decode_requests: u64 = slow
        .report()
        .workers
        .iter()
        .filter(|w| w.role == Role::Decode)
        .map(|w| w.requests)
        .sum();
    assert!(decode_requests > 0);
}

#[test]
fn scaling_up_waits_for_startup_and_draining_finishes_work() {
    let mut cfg = agg(1, 2048);
    cfg.startup_delay_ms = 4_000.0;
    let mut sim = Simulation::new(
        cfg,
        shared_prefix_load(5, 6.0, 30.0),
        Box::new(RoundRobin::default()),
        None,
    );
    sim.run_until(2_000.0);
    sim.set_replicas(Role::Aggregated, 3);
    assert_eq!(sim.replicas(Role::Aggregated), 3);
    let obs = sim.take_observation();
    assert_eq!(
        (
            obs.pool(Role::Aggregated).unwrap().ready,
            obs.pool(Role::Aggregated).unwrap().starting
        ),
        (1, 2)
    );
    sim.run_until(5_000.0);
    let before_ready: u64 = sim
        .report()
        .workers
        .iter()
        .skip(1)
        .map(|w| w.requests)
        .sum();
    assert_eq!(before_ready, 0, "starting replicas get no requests");
    sim.run_until(6_500.0);
    assert_eq!(sim.pool_observation(Role::Aggregated).ready, 3);
    sim.run_until(15_000.0);
    let used: u64 = sim
        .report()
        .workers
        .iter()
        .skip(1)
        .map(|w| w.requests)
        .sum();
    assert!(used > 0, "ready replicas take requests");
    sim.set_replicas(Role::Aggregated, 1);
    let routed_at_drain: Vec<u64> = sim.report().workers.iter().map(|w| w.requests).collect();
    sim.run_to_completion();
    assert_conserved(&sim);
    let states = sim.worker_states();
    assert_eq!(
        states
            .iter()
            .filter(|s| s.2 == WorkerState::Removed)
            .count(),
        2
    );
    let after: Vec<u64> = sim.report().workers.iter().map(|w| w.requests).collect();
    assert_eq!(
        after[1..],
        routed_at_drain[1..],
        "draining replicas take no new requests"
    );
    let obs = sim.take_observation();
    assert!(obs.pools[0].gpu_seconds > 0.0 && obs.completed > 0);
}

#[test]
fn observations_cover_every_request_once() {
    let mut sim = Simulation::new(
        agg(2, 1024),
        shared_prefix_load(6, 5.0, 20.0),
        Box::new(RoundRobin::default()),
        None,
    );
    let (mut arrivals, mut completed, mut ttfts) = (0, 0, 0);
    let mut t = 0.0;
    while !sim.is_finished() {
        t += 1_000.0;
        sim.run_until(t);
        let o = sim.take_observation();
        assert!((o.end_ms - o.start_ms - 1_000.0).abs() < 1e-9);
        arrivals += o.arrivals;
        completed += o.completed;
        ttfts += o.ttft_ms.len();
    }
    let n = sim.workload().requests.len();
    assert_eq!((arrivals, completed, ttfts), (n, n, n));
}

#[test]
fn router_crate_policies_use_kv_events_to_find_cached_prefixes() {
    let load = SyntheticSpec {
        arrivals: ArrivalShape::Poisson { rate: 4.0 },
        duration_s: 20.0,
        input_length: 2048,
        output_length: 20,
        prefix_groups: 8,
        shared_prefix_ratio: 0.75,
        seed: 9,
        ..SyntheticSpec::default()
    }
    .generate();
    let cfg = agg(4, 4096);
    let hit = |policy: Box<dyn RoutingPolicy>| {
        let mut sim = Simulation::new(cfg.clone(), load.clone(), policy, None);
        sim.run_to_completion();
        assert_conserved(&sim);
        sim.report().prefix_hit_rate
    };
    let rr = hit(Box::<RoundRobin>::default());
    let dynamo = hit(Box::new(sim::router_adapter::dynamo(64, 0)));
    let ours = hit(Box::new(sim::router_adapter::predicted_ttft(
        64,
        4096 * 64,
        2048,
        0,
    )));
    assert!(dynamo > rr + 0.05, "dynamo {dynamo} vs round-robin {rr}");
    assert!(ours > rr + 0.05, "ours {ours} vs round-robin {rr}");
}

#[test]
fn prefill_passes_say_where_a_long_prompts_ttft_went() {
    // One worker with the mocker's defaults (8,192 batched tokens): a short request is
    // decoding when a 20,000-token prompt arrives, so each of the prompt's passes also
    // carries one decode token (8,191 prompt tokens a pass: 3 passes) and its decode step.
    use sim::workload::RequestSpec;
    let spec = |arrival_ms: f64, input_length: usize, output_length: usize, first: u64| {
        let ids = input_length.div_ceil(512) as u64;
        RequestSpec {
            arrival_ms,
            input_length,
            output_length,
            hash_ids: (first..first + ids).collect(),
        }
    };
    let workload = Workload {
        trace_block_size: 512,
        requests: vec![spec(0.0, 1_000, 200, 1), spec(100.0, 20_000, 5, 100)],
    };
    let engine = EngineConfig::default();
    let cfg = SimConfig {
        engine: engine.clone(),
        mode: ServingMode::Aggregated { workers: 1 },
        ..SimConfig::default()
    };
    let mut sim = Simulation::new(cfg, workload, Box::new(RoundRobin::default()), None);
    sim.run_to_completion();
    let out = sim.outcomes();
    let perf = &engine.perf_model;
    let cap = engine.num_gpu_blocks * engine.block_size;

    // The short prompt, alone on an idle engine: one pass, its own first decode step.
    let short = out[0].prefill_passes;
    assert_eq!((short.passes, short.own_tokens), (1, 1_000));
    assert!((short.prefill_ms - perf.prefill_ms(1_000)).abs() < 1e-9);
    assert!((short.decode_ms - perf.decode_ms(1, 1_000, cap)).abs() < 1e-9);
    assert!((out[0].ttft_ms.unwrap() - short.pass_ms).abs() < 1e-9);

    // The long prompt: 8,191 + 8,191 + 3,618 tokens, a decode step in every pass.
    let long = out[1].prefill_passes;
    assert_eq!((long.passes, long.own_tokens), (3, 20_000));
    let own = 2.0 * perf.prefill_ms(8_191) + perf.prefill_ms(20_000 - 2 * 8_191);
    assert!((long.prefill_ms - own).abs() < 1e-9);
    assert!(long.decode_ms >= 3.0 * perf.decode_ms(1, 0, cap));
    assert_eq!(long.load_ms, 0.0);
    assert!((long.pass_ms - (long.prefill_ms + long.decode_ms)).abs() < 1e-9);
    // Before its first pass it only waited for the decode step in flight at its arrival.
    let queued = out[1].ttft_ms.unwrap() - long.pass_ms;
    assert!(
        (0.0..=perf.decode_ms(1, 1_200, cap)).contains(&queued),
        "queued {queued} ms"
    );
}
