//! Planner evaluation on the mock-engine simulator.
//!
//! ```text
//! planner-eval profile --out planner/eval/profile.json
//! planner-eval plan --profile planner/eval/profile.json --out-dir planner/eval [--short]
//! planner-eval step-bound --out planner/eval/step-bound.md
//! ```
//!
//! `profile` measures prefill/decode profiles from the mock engine; `plan` replays the
//! sinusoidal and step loads under Dynamo's v0.4 equations, Dynamo's load rules, our planner
//! and the best static split, and writes `results.json`, `results.md` and PNG plots;
//! `step-bound` replays the step with scripted splits and reaction times (no planner).

mod driver;
mod plot;
mod profiler;
mod scenarios;
mod step_bound;

use std::path::PathBuf;

fn usage() -> ! {
    eprintln!(
        "usage:\n  planner-eval profile --out FILE\n  planner-eval plan --profile FILE --out-dir DIR [--short]\n  planner-eval step-bound --out FILE"
    );
    std::process::exit(2)
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("profile") => {
            let out = PathBuf::from(flag(&args, "--out").unwrap_or_else(|| usage()));
            let started = std::time::Instant::now();
            let profile = profiler::measure(&scenarios::base_config());
            std::fs::write(&out, profile.to_json()).expect("write profile");
            eprintln!(
                "profile written to {} in {:.1}s",
                out.display(),
                started.elapsed().as_secs_f64()
            );
        }
        Some("plan") => {
            let profile_path = flag(&args, "--profile").unwrap_or_else(|| usage());
            let out_dir = PathBuf::from(flag(&args, "--out-dir").unwrap_or_else(|| usage()));
            let short = args.iter().any(|a| a == "--short");
            let text = std::fs::read_to_string(&profile_path).expect("read profile");
            let profile = planner::PerfProfile::from_json(&text).expect("parse profile");
            std::fs::create_dir_all(&out_dir).expect("create output dir");
            scenarios::run_all(&profile, &out_dir, short);
        }
        Some("step-bound") => {
            let out = PathBuf::from(flag(&args, "--out").unwrap_or_else(|| usage()));
            step_bound::run(&out);
        }
        _ => usage(),
    }
}
