//! `disagg`: the frontend (default) or, as `disagg worker ...`, one worker process.
//! See the crate docs and the README.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Malformed flags: clap's message and exit code 2; `--help`: exit 0.
    let cli = disagg::cli::Cli::parse();
    if let Some(disagg::cli::Command::Worker(args)) = cli.command {
        return match disagg::worker::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("disagg worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("disagg: cannot find my own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cfg = match cli.run.into_config(exe) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("disagg: {e}");
            return ExitCode::from(2);
        }
    };
    // Printed in full: a relative default (target/disagg-out) depends on where one stands.
    let out = std::path::absolute(&cfg.out_dir).unwrap_or_else(|_| cfg.out_dir.clone());
    match disagg::frontend::run(cfg) {
        Ok(report) => {
            print!("{}", report.text());
            println!(
                "wrote {} and {}",
                out.join("report.json").display(),
                out.join("report.png").display()
            );
            if report.failed > 0 {
                eprintln!(
                    "disagg: {} of {} requests failed",
                    report.failed, report.requests
                );
            }
            if report.blocks_corrupt > 0 || report.unaccounted > 0 || report.failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("disagg: {e}");
            ExitCode::FAILURE
        }
    }
}
