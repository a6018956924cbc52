//! Replays a Mooncake trace through Dynamo's own offline mocker replay
//! (dynamo-mocker 1.6.1, default MockerConfig) and prints the figures our
//! `sim replay` reports, for a side-by-side check.
//!
//! With HOST_TIER > 0 each worker also gets the mocker's own host-memory tier
//! (`native_host_offload`, per-worker G2 of HOST_TIER × the GPU blocks), priced like
//! `sim replay --host-tier`: Llama-3-70B's 320 KiB of KV per token, 50 GB/s each way.
//!
//! Usage: compare-dynamo TRACE [WORKERS] [HOST_TIER]

use dynamo_mocker::common::protocols::MockerConfig;
use dynamo_mocker::replay::{ReplayRouterMode, simulate_trace_file_with_router_mode};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let trace = PathBuf::from(
        args.next()
            .expect("usage: compare-dynamo TRACE [WORKERS] [HOST_TIER]"),
    );
    let workers: usize = args.next().map(|w| w.parse()).transpose()?.unwrap_or(8);
    let host_tier: f64 = args.next().map(|h| h.parse()).transpose()?.unwrap_or(0.0);
    let config = || -> anyhow::Result<MockerConfig> {
        if host_tier <= 0.0 {
            return Ok(MockerConfig::default());
        }
        let gpu_blocks = MockerConfig::default().engine.engine.num_gpu_blocks;
        MockerConfig::from_value(serde_json::json!({
            "engine": {
                "kv_cache_bytes_per_token": 327_680,
                "native_host_offload": {
                    "num_host_blocks": (host_tier * gpu_blocks as f64).round() as usize,
                    "d2h_bandwidth_gbps": 50.0,
                    "h2d_bandwidth_gbps": 50.0,
                },
            }
        }))
    };
    for mode in [ReplayRouterMode::RoundRobin, ReplayRouterMode::KvRouter] {
        let start = Instant::now();
        let r = simulate_trace_file_with_router_mode(
            config()?,
            None,
            None,
            &trace,
            512,
            workers,
            1.0,
            mode,
        )?;
        let l = &r.latency;
        println!(
            "{mode:?}: wall {:.2}s  TTFT p50/p90/p99 {:.0}/{:.0}/{:.0} ms  TPOT p50/p99 {:.2}/{:.2} ms  E2E p50/p99 {:.0}/{:.0} ms  reuse {:.3} (first admission {:.3})  duration {:.0} ms",
            start.elapsed().as_secs_f64(),
            l.ttft.median_ms,
            l.ttft.p90_ms,
            l.ttft.p99_ms,
            l.tpot.median_ms,
            l.tpot.p99_ms,
            l.e2e.median_ms,
            l.e2e.p99_ms,
            r.prefix_cache_reused_ratio,
            r.first_admission_prefix_cache_reused_ratio,
            r.throughput.duration_ms,
        );
    }
    Ok(())
}
