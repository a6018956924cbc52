//! What the TTFT p99 tail of a kvtier run consists of (sim/EVALUATION.md, kvtier section).
//!
//! Replays a trace on 8 aggregated workers with Dynamo's mocker defaults, a host tier of
//! `--host-tier X` times the GPU blocks and peer fetch on, once per policy, and splits the
//! TTFT of every request at or above the p99 into: its own prefill compute on an idle engine
//! (the uncached part, in 8,192-token passes), its own loads (onboard + pull, as the engine
//! prices them), and the rest (queueing behind other work, decode steps and other requests'
//! loads in the same passes).
//!
//! ```text
//! cargo run --release -p sim --example kvtier_tail -- TRACE [HOST_TIER] [POLICY...]
//! ```

use sim::routing::policy_by_name;
use sim::workload::load_mooncake;
use sim::{EngineConfig, ServingMode, SimConfig, Simulation, Sla};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let trace = args
        .next()
        .ok_or("usage: kvtier_tail TRACE [HOST_TIER] [POLICY...]")?;
    let host_tier: f64 = args.next().map_or(Ok(4.0), |s| s.parse())?;
    let mut policies: Vec<String> = args.collect();
    if policies.is_empty() {
        policies = vec!["dynamo".into(), "ours".into()];
    }
    let workload = load_mooncake(std::path::Path::new(&trace), 512)?;
    let defaults = EngineConfig::default();
    let engine = EngineConfig {
        host_blocks: (host_tier * defaults.num_gpu_blocks as f64).round() as usize,
        fetch_from_peers: true,
        ..defaults
    };
    let cfg = SimConfig {
        engine: engine.clone(),
        decode_engine: None,
        mode: ServingMode::Aggregated { workers: 8 },
        startup_delay_ms: 0.0,
        seed: 0,
        sla: Sla {
            ttft_ms: 2000.0,
            itl_ms: 50.0,
        },
        emit_kv_events: true,
    };
    let chunk = engine.max_num_batched_tokens;
    // The request's own prefill on an idle engine: its uncached tokens in full passes.
    let own_ms = |uncached: usize| {
        let mut left = uncached;
        let mut ms = 0.0;
        while left > 0 {
            let n = left.min(chunk);
            ms += engine.perf_model.prefill_ms(n);
            left -= n;
        }
        ms
    };
    // The ideal reuse of each request: its leading trace blocks that any earlier request
    // had (an infinite cache shared by all workers).
    let mut seen = std::collections::HashSet::new();
    let ideal: Vec<usize> = workload
        .requests
        .iter()
        .map(|r| {
            let n = r.hash_ids.iter().take_while(|h| seen.contains(*h)).count();
            seen.extend(r.hash_ids.iter().copied());
            (n * workload.trace_block_size).min(r.input_length)
        })
        .collect();
    println!("host tier {host_tier}x, fetch on; TTFT >= p99, means (ms) and what share of TTFT");
    println!(
        "policy      p99 ms  tail n  ISL     reused  own prefill  own load  rest (queue, decode, others' loads)  ideal reused  own prefill at ideal"
    );
    for name in &policies {
        let policy = policy_by_name(name, &engine, 0).ok_or(format!("unknown policy {name}"))?;
        let mut sim = Simulation::new(cfg.clone(), workload.clone(), policy, None);
        sim.run_to_completion();
        let outcomes = sim.outcomes();
        let mut ttfts: Vec<f64> = outcomes.iter().filter_map(|o| o.ttft_ms).collect();
        ttfts.sort_by(f64::total_cmp);
        let p99 = ttfts[((ttfts.len() as f64 * 0.99).ceil() as usize).min(ttfts.len()) - 1];
        let (mut n, mut isl, mut reused, mut own, mut load, mut ttft) =
            (0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let (mut ideal_reused, mut ideal_own) = (0.0, 0.0);
        for o in &outcomes {
            let Some(t) = o.ttft_ms.filter(|&t| t >= p99) else {
                continue;
            };
            let prompt = workload.requests[o.index].input_length;
            let r = (o.cached_tokens + o.host_tokens + o.fetched_tokens) as usize;
            n += 1;
            isl += prompt as f64;
            reused += r as f64;
            own += own_ms(prompt.saturating_sub(r));
            load += (engine.transfer.onboard_s(o.host_tokens as f64)
                + engine.transfer.fetch_s(o.fetched_tokens as f64))
                * 1e3;
            ttft += t;
            ideal_reused += ideal[o.index] as f64;
            ideal_own += own_ms(prompt - ideal[o.index]);
        }
        let k = f64::from(n.max(1));
        let rest = (ttft - own - load) / k;
        println!(
            "{name:<10} {p99:>7.0} {n:>7} {:>6.0} {:>7.0}  {:>6.0} ({:>2.0}%)  {:>4.0} ({:>2.0}%)  {:>5.0} ({:>2.0}%)  {:>12.0}  {:>8.0}",
            isl / k,
            reused / k,
            own / k,
            100.0 * own / ttft,
            load / k,
            100.0 * load / ttft,
            rest,
            100.0 * rest * k / ttft,
            ideal_reused / k,
            ideal_own / k,
        );
    }
    Ok(())
}
