//! `sim replay`: replays a trace or synthetic load on the simulator with one
//! or more routing policies, prints a table, writes JSON and PNG plots.

mod args;
#[cfg(feature = "plot")]
mod plot;

use serde::Serialize;
use sim::autoscale::{Autoscaler, LoadRules};
use sim::perf::PerfModel;
use sim::routing::policy_by_name;
use sim::workload::{Workload, load_mooncake};
use sim::{EngineConfig, Report, ServingMode, SimConfig, Simulation, Sla};
use std::error::Error;
use std::time::Instant;

/// One run: the report plus what the plots need.
#[derive(Serialize)]
pub struct Run {
    /// Routing policy.
    pub policy: String,
    /// Autoscaler, if any.
    pub planner: String,
    /// Wall-clock seconds the simulation took.
    pub wall_s: f64,
    /// The report.
    pub report: Report,
    /// TTFT of every completed request, ms.
    #[serde(skip)]
    pub ttft_ms: Vec<f64>,
    /// Per planner interval: (end s, arrivals/s, replicas per pool).
    pub intervals: Vec<(f64, f64, Vec<usize>)>,
}

fn main() {
    // Malformed flags: clap's message and exit code 2; `--help`: exit 0.
    let args::Command::Replay(a) = <args::Cli as clap::Parser>::parse().command;
    if let Err(e) = run(a) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(a: args::Args) -> Result<(), Box<dyn Error>> {
    let mut workload: Workload = match (&a.trace, a.synthetic_spec()) {
        (Some(path), _) => load_mooncake(path, a.trace_block_size)?,
        (None, Some(spec)) => spec.generate(),
        (None, None) => unreachable!("clap requires one of --trace and --synthetic"),
    };
    if let Some(n) = a.limit {
        workload = workload.truncate(n);
    }
    if a.speedup != 1.0 {
        workload = workload.speed_up(a.speedup);
    }
    let perf_model = match &a.perf_table {
        Some(p) => PerfModel::from_table_file(p)?,
        None => PerfModel::Polynomial,
    };
    let engine = EngineConfig {
        block_size: a.block_size,
        num_gpu_blocks: a.num_gpu_blocks,
        max_num_seqs: a.max_num_seqs,
        max_num_batched_tokens: a.max_batched_tokens,
        enable_prefix_caching: !a.no_prefix_cache,
        perf_model,
        host_blocks: (a.host_tier * a.num_gpu_blocks as f64).round() as usize,
        fetch_from_peers: a.fetch,
        ..EngineConfig::default()
    };
    let mode = match a.disagg {
        None => ServingMode::Aggregated { workers: a.workers },
        Some((p, d)) => ServingMode::Disaggregated {
            prefill_workers: p,
            decode_workers: d,
            kv_bytes_per_token: a.kv_bytes_per_token,
            link_gbps: a.link_gbps,
        },
    };
    let cfg = SimConfig {
        engine,
        decode_engine: None,
        mode,
        startup_delay_ms: a.startup_s * 1000.0,
        seed: a.seed,
        sla: Sla {
            ttft_ms: a.sla_ttft_ms,
            itl_ms: a.sla_itl_ms,
        },
        emit_kv_events: true,
    };
    eprintln!(
        "workload: {} requests, {} prompt tokens, {} output tokens",
        workload.requests.len(),
        workload.input_tokens(),
        workload.output_tokens()
    );
    let mut runs = Vec::new();
    for name in &a.policies {
        let policy =
            policy_by_name(name, &cfg.engine, a.seed).ok_or(format!("unknown policy {name}"))?;
        let mut planner: Option<Box<dyn Autoscaler>> = match a.planner.as_str() {
            "none" => None,
            "load-rules" => Some(Box::new(LoadRules::default())),
            other => return Err(format!("unknown planner {other}").into()),
        };
        let start = Instant::now();
        let mut sim = Simulation::new(cfg.clone(), workload.clone(), policy, None);
        let mut intervals = Vec::new();
        let step_ms = a.interval_s * 1000.0;
        let mut t = 0.0;
        while !sim.is_finished() {
            t += step_ms;
            sim.run_until(t);
            let obs = sim.take_observation();
            intervals.push((
                t / 1000.0,
                obs.request_rate(),
                obs.pools.iter().map(|p| p.ready).collect(),
            ));
            if let Some(p) = planner.as_mut() {
                for (role, n) in p.decide(&obs) {
                    sim.set_replicas(role, n);
                }
            }
            if sim.pools().iter().all(|&r| sim.replicas(r) == 0) {
                return Err("every pool has zero replicas; the run cannot finish".into());
            }
        }
        let wall_s = start.elapsed().as_secs_f64();
        let report = sim.report();
        let ttft_ms = sim.outcomes().iter().filter_map(|o| o.ttft_ms).collect();
        runs.push(Run {
            policy: name.to_string(),
            planner: planner.map_or("none".into(), |p| p.name()),
            wall_s,
            report,
            ttft_ms,
            intervals,
        });
    }
    print_table(&runs);
    if let Some(path) = &a.json {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let text = serde_json::to_string_pretty(&runs)?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(dir) = &a.plot_dir {
        write_plots(dir, &runs)?;
    }
    Ok(())
}

#[cfg(feature = "plot")]
fn write_plots(dir: &std::path::Path, runs: &[Run]) -> Result<(), Box<dyn Error>> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    plot::ttft_cdf(&dir.join("ttft_cdf.png"), runs)?;
    plot::replicas(&dir.join("replicas.png"), runs)?;
    eprintln!("plots written to {}", dir.display());
    Ok(())
}

#[cfg(not(feature = "plot"))]
fn write_plots(_dir: &std::path::Path, _runs: &[Run]) -> Result<(), Box<dyn Error>> {
    Err("built without the `plot` feature".into())
}

fn print_table(runs: &[Run]) {
    println!(
        "{:<13} {:>6} {:>6} {:>20} {:>16} {:>20} {:>9} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>7}",
        "policy",
        "done",
        "rej",
        "TTFT p50/p90/p99 ms",
        "ITL p50/p99 ms",
        "E2E p50/p90/p99 ms",
        "out tok/s",
        "good/s",
        "hit",
        "host",
        "fetched",
        "ideal",
        "req cv",
        "preempt",
        "wall s"
    );
    for r in runs {
        let p = &r.report;
        println!(
            "{:<13} {:>6} {:>6} {:>20} {:>16} {:>20} {:>9.0} {:>8.2} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>6} {:>7.2}",
            r.policy,
            p.completed,
            p.rejected,
            format!("{:.0}/{:.0}/{:.0}", p.ttft.p50, p.ttft.p90, p.ttft.p99),
            format!("{:.1}/{:.1}", p.itl.p50, p.itl.p99),
            format!("{:.0}/{:.0}/{:.0}", p.e2e.p50, p.e2e.p90, p.e2e.p99),
            p.output_tokens_per_s,
            p.goodput_per_s,
            p.prefix_hit_rate,
            p.host_hit_rate,
            p.fetched_hit_rate,
            p.ideal_hit_rate,
            p.balance.requests_cv,
            p.preemptions,
            r.wall_s,
        );
    }
}
