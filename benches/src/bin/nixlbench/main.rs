//! nixlbench-style benchmark over the `nixl_capi_*` C ABI. One binary runs on
//! any `libnixl_capi.so` (`--lib`), or on two alternately (`--compare`) with
//! the ratios printed; it spawns and coordinates its own processes (an
//! initiator and a target per library), so no etcd is needed.

mod args;
mod error;
mod initiator;
mod orchestrate;
mod plot;
mod point;
mod proto;
mod report;
mod session;
mod target;

use args::{Args, Role};
use error::{BenchError, Result};

fn main() {
    // SAFETY: set before any thread starts or library loads.
    unsafe {
        if std::env::var_os("UCX_MODULES").is_none() {
            std::env::set_var("UCX_MODULES", "^ib*");
        }
    }
    // Malformed flags: clap's message and exit code 2; `--help`: exit 0.
    let args = <Args as clap::Parser>::parse();
    let result = match args.role {
        Role::Target => target::run(&args),
        Role::Initiator => initiator::run(&args),
        Role::Orchestrator => orchestrator(&args),
    };
    if let Err(e) = result {
        eprintln!("nixlbench: {e}");
        std::process::exit(1);
    }
}

fn orchestrator(args: &Args) -> Result<()> {
    println!(
        "nixlbench: {} through {}{}; buffers {}, transport {}",
        args.workload,
        args.lib.display(),
        args.compare
            .as_ref()
            .map_or(String::new(), |c| format!(" vs {}", c.display())),
        args.segment.label(),
        args.transport
    );
    for v in args.all_variants()? {
        println!(
            "  {}: {} backend on {}, transport {}, params {:?}",
            v.name,
            v.backend,
            v.lib.display(),
            v.transport,
            v.params
        );
    }
    println!("{}", report::header());
    let rows = orchestrate::run(args)?;
    if args.compare.is_some() || !args.variants.is_empty() {
        println!(
            "\nRatios ({} over each other; Lat ratio = other/{0}, >1 means {0} is faster):",
            args.names.0
        );
        print!("{}", report::ratios(&rows, &args.names.0));
    }
    if let Some(p) = &args.csv {
        std::fs::write(p, report::csv(&rows)).map_err(BenchError::io(p.display().to_string()))?;
    }
    if let Some(p) = &args.json {
        let j = serde_json::to_string_pretty(&rows)?;
        std::fs::write(p, j).map_err(BenchError::io(p.display().to_string()))?;
    }
    if let Some(p) = &args.plot {
        let title = format!(
            "{} {} ({} buffers, {})",
            args.op,
            args.workload,
            args.segment.label(),
            args.transport
        );
        plot::bandwidth(p, &rows, &title)?;
    }
    let failed = rows.iter().any(|r| {
        r.outcome.error.is_some()
            || r.outcome.verified == Some(false)
            || r.outcome.notifs_ok == Some(false)
    });
    if failed {
        return Err(BenchError::PointsFailed);
    }
    Ok(())
}
