//! Host-memory tier and cross-worker prefix fetch: KV events per tier, block conservation
//! across tiers and pulls, determinism, and that every move is priced.

use router::TransferCost;
use sim::kv_event::{KvEvent, KvEventData, StorageTier, WorkerId};
use sim::routing::{Candidate, RoundRobin, RouteRequest, RoutingPolicy, policy_by_name};
use sim::workload::{ArrivalShape, SyntheticSpec, Workload};
use sim::{EngineConfig, Report, ServingMode, SimConfig, Simulation};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

fn load(seed: u64, rate: f64, secs: f64) -> Workload {
    SyntheticSpec {
        arrivals: ArrivalShape::Poisson { rate },
        duration_s: secs,
        input_length: 2048,
        output_length: 30,
        length_jitter: 0.5,
        prefix_groups: 12,
        shared_prefix_ratio: 0.6,
        seed,
        ..SyntheticSpec::default()
    }
    .generate()
}

fn cfg(workers: usize, gpu_blocks: usize, host_blocks: usize, fetch: bool) -> SimConfig {
    SimConfig {
        engine: EngineConfig {
            num_gpu_blocks: gpu_blocks,
            max_num_batched_tokens: 2048,
            host_blocks,
            fetch_from_peers: fetch,
            ..EngineConfig::default()
        },
        mode: ServingMode::Aggregated { workers },
        ..SimConfig::default()
    }
}

fn run(cfg: SimConfig, load: Workload, policy: Box<dyn RoutingPolicy>) -> Simulation {
    let mut sim = Simulation::new(cfg, load, policy, None);
    let mut steps = 0u64;
    while sim.step() {
        steps += 1;
        if steps.is_multiple_of(40) {
            sim.check_invariants();
        }
    }
    sim.check_invariants();
    sim
}

/// Every request ends once; moved blocks add up.
fn assert_conserved(sim: &Simulation) -> Report {
    let r = sim.report();
    assert_eq!(r.completed + r.rejected, r.requests);
    assert_eq!(r.rejected, 0);
    let m = r.kv_moves;
    let h = m.engines.host;
    assert!(
        h.offloaded <= m.engines.device_evictions,
        "offloads come from device evictions: {m:?}"
    );
    assert!(
        h.onboarded + h.dropped + h.discarded <= h.offloaded,
        "nothing leaves the host tier that did not enter it: {m:?}"
    );
    assert!(
        m.engines.fetched_blocks <= m.pulled_blocks,
        "only pulled blocks are used: {m:?}"
    );
    assert!(
        r.total_hit_rate() <= r.ideal_hit_rate + 1e-9,
        "reuse above the infinite cache: {} > {}",
        r.total_hit_rate(),
        r.ideal_hit_rate
    );
    r
}

/// Blocks per (worker, tier), as rebuilt from KV events.
type TierSets = HashMap<(WorkerId, StorageTier), HashSet<u64>>;

/// Rebuilds each worker's tiers from its KV events alone.
#[derive(Default)]
struct TierMirror {
    sets: Rc<RefCell<TierSets>>,
    inner: RoundRobin,
}

impl RoutingPolicy for TierMirror {
    fn name(&self) -> String {
        "tier-mirror".into()
    }
    fn choose(&mut self, r: &RouteRequest<'_>, c: &[Candidate]) -> usize {
        self.inner.choose(r, c)
    }
    fn wants_kv_events(&self) -> bool {
        true
    }
    fn on_kv_event(&mut self, worker: WorkerId, ev: &KvEvent) {
        let mut sets = self.sets.borrow_mut();
        let set = sets.entry((worker, ev.tier)).or_default();
        match &ev.data {
            KvEventData::Stored { blocks, .. } => {
                for b in blocks {
                    assert!(set.insert(b.external.0), "stored twice in {:?}", ev.tier);
                }
            }
            KvEventData::Removed { blocks } => {
                for b in blocks {
                    assert!(set.remove(&b.0), "removed but not held in {:?}", ev.tier);
                }
            }
            KvEventData::Cleared => set.clear(),
        }
    }
}

#[test]
fn events_say_which_tier_holds_each_block_and_blocks_are_conserved() {
    let mirror = TierMirror::default();
    let view = Rc::clone(&mirror.sets);
    let mut sim = Simulation::new(
        cfg(2, 200, 400, false),
        load(3, 8.0, 15.0),
        Box::new(mirror),
        None,
    );
    let mut steps = 0;
    while sim.step() {
        steps += 1;
        if steps % 25 == 0 {
            sim.check_invariants();
            let sets = view.borrow();
            for w in 0..2u64 {
                let e = sim.engine(w).unwrap();
                let n = |t| sets.get(&(w, t)).map_or(0, HashSet::len);
                assert_eq!(n(StorageTier::Device), e.blocks().cached(), "worker {w}");
                assert_eq!(n(StorageTier::Host), e.host_tier().len(), "worker {w}");
                let host: HashSet<u64> = e.host_tier().hashes().collect();
                assert_eq!(
                    sets.get(&(w, StorageTier::Host))
                        .cloned()
                        .unwrap_or_default(),
                    host
                );
            }
        }
    }
    let r = assert_conserved(&sim);
    let h = r.kv_moves.engines.host;
    assert!(
        h.offloaded > 0 && h.onboarded > 0,
        "the test must move blocks: {h:?}"
    );
    assert!(r.host_hit_rate > 0.0);
    assert_eq!(r.fetched_hit_rate, 0.0, "fetch is off");
}

#[test]
fn host_tier_raises_the_hit_rate_of_a_small_cache() {
    let hit = |host| {
        let sim = run(
            cfg(2, 200, host, false),
            load(4, 8.0, 15.0),
            Box::new(RoundRobin::default()),
        );
        assert_conserved(&sim)
    };
    let (none, four) = (hit(0), hit(800));
    assert_eq!(none.host_hit_rate, 0.0);
    assert_eq!(
        none.kv_moves.engines.host.offloaded, 0,
        "no tier, no offload"
    );
    assert!(
        four.total_hit_rate() > none.total_hit_rate() + 0.05,
        "{} vs {}",
        four.total_hit_rate(),
        none.total_hit_rate()
    );
}

#[test]
fn fetch_pulls_prefixes_that_other_workers_hold() {
    let go = |fetch| {
        let sim = run(
            cfg(4, 1024, 0, fetch),
            load(5, 6.0, 15.0),
            Box::new(RoundRobin::default()),
        );
        assert_conserved(&sim)
    };
    let (off, on) = (go(false), go(true));
    assert_eq!((off.kv_moves.pulls, off.fetched_hit_rate), (0, 0.0));
    assert!(on.kv_moves.pulls > 0 && on.kv_moves.engines.fetched_blocks > 0);
    assert!(
        on.total_hit_rate() > off.total_hit_rate() + 0.1,
        "round-robin scatters groups; fetch recovers them: {} vs {}",
        on.total_hit_rate(),
        off.total_hit_rate()
    );
}

#[test]
fn tiers_and_fetch_are_deterministic() {
    let once = || {
        let engine = cfg(3, 300, 600, true).engine;
        let policy = policy_by_name("ours+fetch", &engine, 1).unwrap();
        let sim = run(cfg(3, 300, 600, true), load(6, 8.0, 12.0), policy);
        assert_conserved(&sim);
        serde_json::to_string(&sim.report()).unwrap()
    };
    assert_eq!(once(), once());
}

#[test]
fn moves_are_priced_by_bandwidth() {
    let ttft = |bytes_per_s: f64| {
        let mut c = cfg(4, 1024, 0, true);
        c.engine.transfer = TransferCost {
            peer_bytes_per_s: bytes_per_s,
            host_bytes_per_s: bytes_per_s,
            ..TransferCost::default()
        };
        let sim = run(c, load(7, 4.0, 12.0), Box::new(RoundRobin::default()));
        assert_conserved(&sim).ttft.p90
    };
    // At 1 GB/s a 1,200-token prefix takes ~0.4 s to pull; at 1 TB/s nothing.
    let (slow, fast) = (ttft(1e9), ttft(1e12));
    assert!(slow > fast + 100.0, "slow {slow} ms vs fast {fast} ms");
}
