//! Command-line options of `sim replay`.

use sim::workload::{ArrivalShape, SyntheticSpec};
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: sim replay (--trace FILE | --synthetic SHAPE) [options]

workload:
  --trace FILE             Mooncake JSONL trace (hash ids of --trace-block-size tokens)
  --trace-block-size N     tokens per trace hash id [512]
  --synthetic SHAPE        poisson:RATE | sin:MEAN:AMPLITUDE:PERIOD_S | step:BEFORE:AFTER:AT_S
  --duration S             synthetic load length, s [60]
  --isl N --osl N          synthetic prompt / output tokens [3000 / 150]
  --prefix-groups N        synthetic shared-prefix groups [0]
  --prefix-ratio F         synthetic shared fraction of the prompt [0]
  --limit N                replay only the first N requests
  --speedup X              divide arrival times by X [1]
cluster:
  --workers N              aggregated workers [8]
  --disagg P:D             disaggregated: P prefill and D decode workers
  --kv-bytes-per-token B   disaggregated KV transfer size [131072]
  --link-gbps G            disaggregated link bandwidth, GB/s [64]
  --policy LIST            comma-separated: round-robin,random,oracle-cost,dynamo,ours,
                           ours:itl=W (ITL weight of ours, default 64), ours+tier
                           (prices host-tier hits), ours+fetch (and peer fetch) [round-robin]
  --planner NAME           none | load-rules [none]
  --interval-s S           planner interval [5]
  --startup-s S            replica start-up delay [30]
engine (Dynamo mocker defaults):
  --block-size N [64]  --num-gpu-blocks N [16384]  --max-num-seqs N [256]
  --max-batched-tokens N [8192]  --perf-table FILE (JSON tables instead of polynomials)
  --no-prefix-cache
KV tiers (moves priced for Llama-3-70B, 320 KiB/token, 50 GB/s host and peer links):
  --host-tier X            host-memory tier of X times the GPU blocks per worker [0]
  --fetch                  pull a prompt's cached prefix from the worker holding it
output:
  --seed N [0]  --sla-ttft-ms X [2000]  --sla-itl-ms X [50]
  --json FILE              write all reports as JSON
  --plot-dir DIR           write PNG plots (ttft_cdf.png, replicas.png)
";

/// Parsed options.
#[derive(Debug)]
pub struct Args {
    pub trace: Option<PathBuf>,
    pub trace_block_size: usize,
    pub synthetic: Option<SyntheticSpec>,
    pub limit: Option<usize>,
    pub speedup: f64,
    pub workers: usize,
    pub disagg: Option<(usize, usize)>,
    pub kv_bytes_per_token: f64,
    pub link_gbps: f64,
    pub policies: Vec<String>,
    pub planner: String,
    pub interval_s: f64,
    pub startup_s: f64,
    pub block_size: usize,
    pub num_gpu_blocks: usize,
    pub max_num_seqs: usize,
    pub max_batched_tokens: usize,
    pub perf_table: Option<PathBuf>,
    pub prefix_cache: bool,
    pub host_tier: f64,
    pub fetch: bool,
    pub seed: u64,
    pub sla_ttft_ms: f64,
    pub sla_itl_ms: f64,
    pub json: Option<PathBuf>,
    pub plot_dir: Option<PathBuf>,
}

fn shape(s: &str) -> Result<ArrivalShape, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let num = |i: usize| -> Result<f64, String> {
        parts
            .get(i)
            .ok_or(format!("{s}: missing field {i}"))?
            .parse()
            .map_err(|e| format!("{s}: {e}"))
    };
    Ok(match parts[0] {
        "poisson" => ArrivalShape::Poisson { rate: num(1)? },
        "sin" => ArrivalShape::Sinusoidal {
            mean: num(1)?,
            amplitude: num(2)?,
            period_s: num(3)?,
        },
        "step" => ArrivalShape::Step {
            before: num(1)?,
            after: num(2)?,
            at_s: num(3)?,
        },
        other => return Err(format!("unknown synthetic shape {other}")),
    })
}

pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        trace: None,
        trace_block_size: 512,
        synthetic: None,
        limit: None,
        speedup: 1.0,
        workers: 8,
        disagg: None,
        kv_bytes_per_token: 131_072.0,
        link_gbps: 64.0,
        policies: vec!["round-robin".into()],
        planner: "none".into(),
        interval_s: 5.0,
        startup_s: 30.0,
        block_size: 64,
        num_gpu_blocks: 16_384,
        max_num_seqs: 256,
        max_batched_tokens: 8_192,
        perf_table: None,
        prefix_cache: true,
        host_tier: 0.0,
        fetch: false,
        seed: 0,
        sla_ttft_ms: 2_000.0,
        sla_itl_ms: 50.0,
        json: None,
        plot_dir: None,
    };
    let mut syn = SyntheticSpec::default();
    let mut shape_given = None;
    while let Some(flag) = it.next() {
        if flag == "--no-prefix-cache" {
            a.prefix_cache = false;
            continue;
        }
        if flag == "--fetch" {
            a.fetch = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let n = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        let f = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--trace" => a.trace = Some(v.into()),
            "--trace-block-size" => a.trace_block_size = n(&v)?,
            "--synthetic" => shape_given = Some(shape(&v)?),
            "--duration" => syn.duration_s = f(&v)?,
            "--isl" => syn.input_length = n(&v)?,
            "--osl" => syn.output_length = n(&v)?,
            "--prefix-groups" => syn.prefix_groups = n(&v)?,
            "--prefix-ratio" => syn.shared_prefix_ratio = f(&v)?,
            "--limit" => a.limit = Some(n(&v)?),
            "--speedup" => a.speedup = f(&v)?,
            "--workers" => a.workers = n(&v)?,
            "--disagg" => {
                let (p, d) = v.split_once(':').ok_or("--disagg wants P:D")?;
                a.disagg = Some((n(p)?, n(d)?));
            }
            "--kv-bytes-per-token" => a.kv_bytes_per_token = f(&v)?,
            "--link-gbps" => a.link_gbps = f(&v)?,
            "--policy" => a.policies = v.split(',').map(str::to_string).collect(),
            "--planner" => a.planner = v,
            "--interval-s" => a.interval_s = f(&v)?,
            "--startup-s" => a.startup_s = f(&v)?,
            "--block-size" => a.block_size = n(&v)?,
            "--num-gpu-blocks" => a.num_gpu_blocks = n(&v)?,
            "--max-num-seqs" => a.max_num_seqs = n(&v)?,
            "--max-batched-tokens" => a.max_batched_tokens = n(&v)?,
            "--perf-table" => a.perf_table = Some(v.into()),
            "--host-tier" => {
                a.host_tier = f(&v)?;
                if !(a.host_tier >= 0.0 && a.host_tier.is_finite()) {
                    return Err(format!("--host-tier {v}: want a multiple >= 0"));
                }
            }
            "--seed" => a.seed = v.parse().map_err(|e| format!("--seed: {e}"))?,
            "--sla-ttft-ms" => a.sla_ttft_ms = f(&v)?,
            "--sla-itl-ms" => a.sla_itl_ms = f(&v)?,
            "--json" => a.json = Some(v.into()),
            "--plot-dir" => a.plot_dir = Some(v.into()),
            other => return Err(format!("unknown option {other}\n\n{USAGE}")),
        }
    }
    if let Some(s) = shape_given {
        syn.arrivals = s;
        syn.seed = a.seed;
        syn.trace_block_size = a.trace_block_size;
        a.synthetic = Some(syn);
    }
    if a.trace.is_some() == a.synthetic.is_some() {
        return Err(format!(
            "give exactly one of --trace and --synthetic\n\n{USAGE}"
        ));
    }
    Ok(a)
}
