//! Replays a Mooncake trace through Dynamo's own offline mocker replay
//! (dynamo-mocker 1.6.1, default MockerConfig) and prints the figures our
//! `sim replay` reports, for a side-by-side check.
//!
//! Usage: compare-dynamo TRACE [WORKERS]

use dynamo_mocker::common::protocols::MockerConfig;
use dynamo_mocker::replay::{ReplayRouterMode, simulate_trace_file_with_router_mode};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let trace = PathBuf::from(args.next().expect("usage: compare-dynamo TRACE [WORKERS]"));
    let workers: usize = args.next().map(|w| w.parse()).transpose()?.unwrap_or(8);
    for mode in [ReplayRouterMode::RoundRobin, ReplayRouterMode::KvRouter] {
        let start = Instant::now();
        let r = simulate_trace_file_with_router_mode(
            MockerConfig::default(),
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
