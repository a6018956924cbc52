//! `disagg`: the frontend (default) or, as `disagg worker ...`, one worker process.
//! See the crate docs and the README.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        args.remove(0);
        let result = disagg::cli::parse_worker(args).and_then(disagg::worker::run);
        return match result {
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
    let cfg = match disagg::cli::parse_run(args, exe) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => {
            print!("{}", disagg::cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("disagg: {e}");
            return ExitCode::from(2);
        }
    };
    let out = cfg.out_dir.clone();
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
