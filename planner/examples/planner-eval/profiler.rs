//! Measures a planner profile from the mock engine, the way Dynamo's pre-deployment profiler
//! does on GPUs: prefill TTFT of lone requests against ISL, and decode step time against KV
//! usage and context with a fixed batch in flight. The simulator is treated as a black box:
//! only requests in, latencies and pool snapshots out.

use planner::interp::Grid2d;
use planner::{DecodeProfile, PerfProfile, PrefillProfile, ReplicaTarget};
use sim::workload::{RequestSpec, Workload};
use sim::{Role, SimConfig};

use crate::driver::disagg_config;

/// Prompt lengths measured for prefill.
const PREFILL_ISL: [usize; 11] = [
    128, 256, 512, 1024, 2048, 3000, 4096, 6144, 8192, 12_288, 16_384,
];
/// KV usages (fraction of capacity) on the decode grid.
const DECODE_USAGE: [f64; 10] = [0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9];
/// Context lengths on the decode grid.
const DECODE_CONTEXT: [f64; 6] = [512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16_384.0];
/// Output tokens per decode-profiling request.
const DECODE_OSL: usize = 256;
/// Seconds between lone prefill requests (no overlap).
const PREFILL_GAP_S: f64 = 20.0;

/// Distinct hash ids so that no request hits another's prefix cache.
fn unique_hashes(next: &mut u64, isl: usize, trace_block: usize) -> Vec<u64> {
    let n = isl.div_ceil(trace_block);
    let ids = (*next..*next + n as u64).collect();
    *next += n as u64;
    ids
}

fn request(next: &mut u64, arrival_ms: f64, isl: usize, osl: usize, tb: usize) -> RequestSpec {
    RequestSpec {
        arrival_ms,
        input_length: isl,
        output_length: osl,
        hash_ids: unique_hashes(next, isl, tb),
    }
}

/// TTFT (s) of lone requests at each ISL, on one prefill replica.
fn measure_prefill(base: &SimConfig) -> Vec<(f64, f64)> {
    let tb = 512;
    let mut next = 0;
    let requests = PREFILL_ISL
        .iter()
        .enumerate()
        .map(|(i, &isl)| request(&mut next, i as f64 * PREFILL_GAP_S * 1000.0, isl, 2, tb))
        .collect();
    let workload = Workload::new(tb, requests);
    let mut sim = crate::driver::new_sim(disagg_config(base, ReplicaTarget::new(1, 1)), &workload);
    let mut points = Vec::new();
    for (i, &isl) in PREFILL_ISL.iter().enumerate() {
        sim.run_until((i as f64 + 1.0) * PREFILL_GAP_S * 1000.0);
        let obs = sim.take_observation();
        let ttft = obs
            .ttft_ms
            .first()
            .copied()
            .expect("lone request finished prefill");
        points.push((isl as f64, ttft / 1000.0));
    }
    points
}

/// Decode step time (s) with `batch` requests of context ≈ `context` in flight on one
/// decode replica, over the steady window where all of them decode: in that window the pool
/// emits `batch` tokens per step, so step time = batch × window / tokens.
fn measure_decode_cell(base: &SimConfig, batch: usize, context: f64) -> Option<f64> {
    let tb = 512;
    let isl = (context as usize).saturating_sub(DECODE_OSL / 2).max(1);
    let mut next = 0;
    let requests = (0..batch)
        .map(|_| request(&mut next, 0.0, isl, DECODE_OSL, tb))
        .collect();
    let workload = Workload::new(tb, requests);
    // Many prefill replicas so the decode batch fills quickly.
    let mut sim = crate::driver::new_sim(disagg_config(base, ReplicaTarget::new(32, 1)), &workload);
    let step_ms = 100.0;
    let mut t = 0.0;
    let (mut window_ms, mut tokens) = (0.0, 0u64);
    let mut previous_full = false;
    while !sim.is_finished() {
        t += step_ms;
        sim.run_until(t);
        let obs = sim.take_observation();
        let decode = obs.pool(Role::Decode)?;
        let full = decode.running == batch && decode.queue_depth == 0;
        if full && previous_full {
            window_ms += step_ms;
            tokens += obs.output_tokens;
        }
        previous_full = full;
    }
    (tokens > 0).then(|| batch as f64 * window_ms / tokens as f64 / 1000.0)
}

/// Measures the whole profile for engines configured as in `base`.
pub fn measure(base: &SimConfig) -> PerfProfile {
    let engine = base
        .decode_engine
        .clone()
        .unwrap_or_else(|| base.engine.clone());
    let capacity = (engine.num_gpu_blocks * engine.block_size) as f64;
    let prefill = PrefillProfile::from_ttft_points(
        &measure_prefill(base),
        1,
        base.engine.max_num_batched_tokens as u32,
    )
    .expect("measured prefill points are increasing and positive");
    let mut rows = Vec::new();
    for &context in &DECODE_CONTEXT {
        let mut row = Vec::new();
        let mut last = None;
        for &usage in &DECODE_USAGE {
            let wanted = (usage * capacity / context).round() as usize;
            // Cells beyond the sequence cap are unreachable: the reachable neighbour's value
            // fills them (Dynamo fills its grid by nearest neighbour too).
            let batch = wanted.clamp(1, engine.max_num_seqs);
            let itl = if wanted > engine.max_num_seqs && last.is_some() {
                last
            } else {
                measure_decode_cell(base, batch, context).or(last)
            };
            let itl = itl.unwrap_or(0.001);
            last = Some(itl);
            row.push(itl);
        }
        rows.push(row);
    }
    let grid = Grid2d::new(DECODE_USAGE.to_vec(), DECODE_CONTEXT.to_vec(), rows)
        .expect("profile axes are increasing");
    let decode = DecodeProfile::from_itl_grid(grid, capacity, engine.max_num_seqs as u32, 1)
        .expect("engine limits are positive");
    PerfProfile { prefill, decode }
}
