//! What the TTFT p99 tail of a kvtier run consists of (sim/EVALUATION.md, kvtier section).
//!
//! Replays a trace on 8 aggregated workers with Dynamo's mocker defaults, a host tier of
//! `--host-tier X` times the GPU blocks and peer fetch on, once per policy, and splits the
//! TTFT of every request at or above the p99 into: its own prefill compute on an idle engine
//! (the uncached part, in 8,192-token passes), its own loads (onboard + pull, as the engine
//! prices them), and the rest (queueing behind other work, decode steps and other requests'
//! loads in the same passes).
//!
//! A second table splits the same TTFTs by what the engine charged for the passes that
//! computed each prompt ([`sim::engine::PrefillPasses`]): time before and between them
//! (queue), their prefill compute beyond the prompt's own on an idle engine (chunks batched
//! with other prompts or shortened by decode tokens), their decode steps beyond the prompt's
//! own first one, and their loads. It also says how often a worker with nothing in flight
//! existed when a tail request arrived, and what the p99 of all requests would be with
//! each part removed from every request (each request alone; knock-on effects ignored).
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
        "policy            p99 ms  tail n  ISL     reused  own prefill  own load  rest (queue, decode, others' loads)  ideal reused  own prefill at ideal"
    );
    let mut parts = Vec::new();
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
        parts.push((
            name.clone(),
            p99,
            passes_split(&engine, &workload, &outcomes, p99),
        ));
        println!(
            "{name:<16} {p99:>7.0} {n:>7} {:>6.0} {:>7.0}  {:>6.0} ({:>2.0}%)  {:>4.0} ({:>2.0}%)  {:>5.0} ({:>2.0}%)  {:>12.0}  {:>8.0}",
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
    println!();
    println!("the same tail by what its passes were made of (means, ms)");
    println!(
        "policy            passes  queue  own prefill  batched prefill  own 1st step  others' decode  loads  idle worker at arrival / taken"
    );
    for (name, _, s) in &parts {
        println!(
            "{name:<16} {:>7.1} {:>6.1} {:>12.0} {:>16.1} {:>13.1} {:>15.1} {:>6.1}  {:>4.0}% / {:.0}%",
            s.passes,
            s.queue,
            s.own_prefill,
            s.batched_prefill,
            s.own_step,
            s.others_decode,
            s.loads,
            100.0 * s.idle_available,
            100.0 * s.idle_taken,
        );
    }
    println!();
    println!("TTFT p99 (ms) of all requests with one part removed from each (knock-on ignored)");
    println!(
        "policy            as run  no queue  no others' decode  no batched prefill  none of the three"
    );
    for (name, p99, s) in &parts {
        let [a, b, c, d] = s.p99_without;
        println!("{name:<16} {p99:>7.0} {a:>9.0} {b:>18.0} {c:>19.0} {d:>18.0}");
    }
    Ok(())
}

/// Means over the tail (TTFT >= p99) of the parts of its passes, and counterfactual p99s.
#[derive(Default)]
struct PassSplit {
    passes: f64,
    queue: f64,
    own_prefill: f64,
    batched_prefill: f64,
    own_step: f64,
    others_decode: f64,
    loads: f64,
    idle_available: f64,
    idle_taken: f64,
    /// p99 without queue / others' decode / batched prefill / all three.
    p99_without: [f64; 4],
}

fn passes_split(
    engine: &EngineConfig,
    workload: &sim::workload::Workload,
    outcomes: &[sim::RequestOutcome],
    p99: f64,
) -> PassSplit {
    let cap = engine.num_gpu_blocks * engine.block_size;
    let chunk = engine.max_num_batched_tokens;
    // Parts of one request's TTFT: (queue, batched prefill, others' decode).
    let parts = |o: &sim::RequestOutcome| {
        let p = o.prefill_passes;
        let ttft = o.ttft_ms.unwrap_or(0.0);
        let mut left = p.own_tokens as usize;
        let mut own = 0.0;
        while left > 0 {
            let n = left.min(chunk);
            own += engine.perf_model.prefill_ms(n);
            left -= n;
        }
        let prompt = workload.requests[o.index].input_length;
        let own_step = engine.perf_model.decode_ms(1, prompt, cap);
        (
            ttft - p.pass_ms,
            p.prefill_ms - own,
            p.decode_ms - own_step,
            own,
            own_step,
        )
    };
    // Requests in flight per worker: [arrival, arrival + e2e].
    let busy_at = |t: f64, worker: sim::kv_event::WorkerId, me: usize| {
        outcomes.iter().any(|o| {
            o.index != me
                && o.worker == Some(worker)
                && o.arrival_ms <= t
                && o.e2e_ms.is_some_and(|e| o.arrival_ms + e > t)
        })
    };
    let workers: std::collections::BTreeSet<_> = outcomes.iter().filter_map(|o| o.worker).collect();
    let mut s = PassSplit::default();
    let mut n = 0.0_f64;
    for o in outcomes
        .iter()
        .filter(|o| o.ttft_ms.is_some_and(|t| t >= p99))
    {
        let (queue, batched, others, own, own_step) = parts(o);
        n += 1.0;
        s.passes += f64::from(o.prefill_passes.passes);
        s.queue += queue;
        s.own_prefill += own;
        s.batched_prefill += batched;
        s.own_step += own_step;
        s.others_decode += others;
        s.loads += o.prefill_passes.load_ms;
        let t = o.arrival_ms;
        if workers.iter().any(|&w| !busy_at(t, w, o.index)) {
            s.idle_available += 1.0;
        }
        if o.worker.is_some_and(|w| !busy_at(t, w, o.index)) {
            s.idle_taken += 1.0;
        }
    }
    for v in [
        &mut s.passes,
        &mut s.queue,
        &mut s.own_prefill,
        &mut s.batched_prefill,
        &mut s.own_step,
        &mut s.others_decode,
        &mut s.loads,
        &mut s.idle_available,
        &mut s.idle_taken,
    ] {
        *v /= n.max(1.0);
    }
    let masks = [
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
        [1.0, 1.0, 1.0],
    ];
    for (slot, m) in s.p99_without.iter_mut().zip(masks) {
        let mut t: Vec<f64> = outcomes
            .iter()
            .filter_map(|o| {
                let ttft = o.ttft_ms?;
                let (queue, batched, others, _, _) = parts(o);
                Some(ttft - m[0] * queue - m[1] * others - m[2] * batched)
            })
            .collect();
        t.sort_by(f64::total_cmp);
        *slot = t[((t.len() as f64 * 0.99).ceil() as usize).min(t.len()) - 1];
    }
    s
}
