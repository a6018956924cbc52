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

/// Requests in the saturated-prefill measurement, all arriving at once.
const SATURATION_REQUESTS: usize = 64;
/// Their prompt length (the evaluation's ISL).
const SATURATION_ISL: usize = 3000;

/// Prompt tokens per second one prefill replica delivers with its queue never empty: a
/// burst of equal prompts at t = 0, tokens over the time until the last first token (minus
/// that request's KV hand-off, which does not hold the engine).
pub fn measure_prefill_saturated(base: &SimConfig) -> f64 {
    let tb = 512;
    let mut next = 0;
    let requests = (0..SATURATION_REQUESTS)
        .map(|_| request(&mut next, 0.0, SATURATION_ISL, 2, tb))
        .collect();
    let workload = Workload::new(tb, requests);
    let mut sim = crate::driver::new_sim(disagg_config(base, ReplicaTarget::new(1, 4)), &workload);
    sim.run_to_completion();
    let last_ttft = sim
        .outcomes()
        .iter()
        .filter_map(|o| o.ttft_ms)
        .fold(0.0, f64::max)
        / 1000.0;
    let handoff = transfer_s(base, SATURATION_ISL as f64);
    (SATURATION_REQUESTS * SATURATION_ISL) as f64 / (last_ttft - handoff)
}

/// Seconds the KV hand-off of `tokens` tokens takes on the configured link.
fn transfer_s(base: &SimConfig, tokens: f64) -> f64 {
    match base.mode {
        sim::ServingMode::Disaggregated {
            kv_bytes_per_token,
            link_gbps,
            ..
        } => tokens * kv_bytes_per_token / (link_gbps * 1e9),
        sim::ServingMode::Aggregated { .. } => 0.0,
    }
}

/// Decode step time (s) with `batch` requests of context ≈ `context` in flight on one
/// decode replica, over the steady window where all of them decode: in that window the pool
/// emits `batch` tokens per step, so step time = batch × window / tokens.
pub fn measure_decode_cell(base: &SimConfig, batch: usize, context: f64) -> Option<f64> {
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
    .expect("measured prefill points are increasing and positive")
    .with_saturated_tokens_per_s(measure_prefill_saturated(base))
    .expect("a saturated engine delivers tokens");
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

/// The profile's capacity figures against what the simulator delivers, at the evaluation's
/// request shape (ISL 3000, OSL 150: decode context 3,075) and ITL target; the figures
/// before the profile fixes are computed the old way for comparison.
#[derive(serde::Serialize)]
pub struct Biases {
    /// Decode batch within the ITL target at context 3,075, and its KV usage.
    pub decode_batch: u32,
    /// KV usage of that batch.
    pub decode_usage: f64,
    /// Decode tokens/s the old stored throughput grid gave there (bilinear).
    pub decode_thpt_grid: f64,
    /// Decode tokens/s by Little's law at the exact point (the fix).
    pub decode_thpt_exact: f64,
    /// Decode tokens/s the simulator delivers with that batch in flight.
    pub decode_thpt_sim: f64,
    /// Prefill tokens/s of a saturated engine as the old profile estimated it
    /// (`MBT / ttft(MBT)`, KV hand-off included).
    pub prefill_saturated_old: f64,
    /// Prefill tokens/s per engine in v0.4's equation at ISL 3000 (lone-request profile).
    pub prefill_v04_thpt: f64,
    /// Prefill tokens/s measured on a saturated engine (the fix).
    pub prefill_saturated_sim: f64,
}

/// Measures [`Biases`] for `profile` on engines configured as in `base`.
pub fn biases(base: &SimConfig, profile: &PerfProfile, itl_target: f64) -> Biases {
    let d = &profile.decode;
    let context = 3075.0;
    let (batch, _) = d.max_batch_within(itl_target, context);
    let usage = f64::from(batch) * context / d.max_kv_tokens;
    // The old profile stored throughput at the grid nodes and interpolated it.
    let rows = d
        .itl
        .ys()
        .iter()
        .map(|&c| d.itl.xs().iter().map(|&u| d.thpt_per_gpu(u, c)).collect())
        .collect();
    let grid = Grid2d::new(d.itl.xs().to_vec(), d.itl.ys().to_vec(), rows).expect("same axes");
    let step = measure_decode_cell(base, batch as usize, context).unwrap_or(f64::NAN);
    let mbt = f64::from(profile.prefill.max_batched_tokens);
    Biases {
        decode_batch: batch,
        decode_usage: usage,
        decode_thpt_grid: grid.eval(usage, context),
        decode_thpt_exact: d.thpt_per_gpu(usage, context),
        decode_thpt_sim: f64::from(batch) / step,
        prefill_saturated_old: mbt / profile.prefill.ttft(mbt),
        prefill_v04_thpt: profile.prefill.thpt_per_gpu(3000.0),
        prefill_saturated_sim: measure_prefill_saturated(base),
    }
}
