//! Planner evaluation on the mock-engine simulator.
//!
//! ```text
//! planner-eval profile --out planner/eval/profile.json
//! planner-eval plan --profile planner/eval/profile.json --out-dir planner/eval [--short] [--only ours,dynamo]
//! planner-eval biases --profile planner/eval/profile.json --out planner/eval/biases.json
//! planner-eval tables --dir planner/eval [--doc planner/EVALUATION.md]
//! planner-eval step-bound --out planner/eval/step-bound.md
//! ```
//!
//! `profile` measures prefill/decode profiles from the mock engine; `biases` compares the
//! profile's capacities with what the simulator delivers; `plan` replays the sinusoidal and
//! step loads under the oracle, today's Dynamo planner, Dynamo v0.4's equations, Dynamo's
//! load rules, our planner and the best static split, and writes `results.json`, the tick
//! files, PNG plots and `results.md`; `tables` rewrites `results.md` from those files (and,
//! with `--doc`, the region of a document between the generated-region markers);
//! `step-bound` replays the step with scripted splits and reaction times (no planner).

mod oracle;
mod plot;
mod scenarios;
mod step_bound;
mod tables;

use std::path::PathBuf;

use planner_sim::{driver, profiler};

fn usage() -> ! {
    eprintln!(
        "usage:\n  planner-eval profile --out FILE\n  planner-eval plan --profile FILE --out-dir DIR [--short] [--estimated-prefill-capacity] [--only NAME,NAME]\n  planner-eval biases --profile FILE --out FILE\n  planner-eval tables --dir DIR [--doc FILE]\n  planner-eval step-bound --out FILE"
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
            let mut profile = planner::PerfProfile::from_json(&text).expect("parse profile");
            if args.iter().any(|a| a == "--estimated-prefill-capacity") {
                // The profile as it was before the saturated-engine measurement.
                profile.prefill.saturated_tokens_per_s = None;
            }
            std::fs::create_dir_all(&out_dir).expect("create output dir");
            let only: Option<Vec<String>> =
                flag(&args, "--only").map(|o| o.split(',').map(str::to_string).collect());
            scenarios::run_all(&profile, &out_dir, short, only.as_deref());
        }
        Some("biases") => {
            let profile_path = flag(&args, "--profile").unwrap_or_else(|| usage());
            let out = PathBuf::from(flag(&args, "--out").unwrap_or_else(|| usage()));
            let text = std::fs::read_to_string(&profile_path).expect("read profile");
            let profile = planner::PerfProfile::from_json(&text).expect("parse profile");
            let b = profiler::biases(&scenarios::base_config(), &profile, scenarios::TARGETS.itl);
            let json = serde_json::to_string_pretty(&b).expect("biases serialise");
            std::fs::write(&out, &json).expect("write biases");
            println!("{json}");
        }
        Some("tables") => {
            let dir = PathBuf::from(flag(&args, "--dir").unwrap_or_else(|| usage()));
            match tables::from_dir(&dir) {
                Ok(md) => {
                    std::fs::write(dir.join("results.md"), &md).expect("write results.md");
                    match flag(&args, "--doc") {
                        // Rewrites the document's generated region in place.
                        Some(doc) => {
                            let text = std::fs::read_to_string(&doc).expect("read the document");
                            match tables::splice(&text, &md) {
                                Ok(out) => std::fs::write(&doc, out).expect("write the document"),
                                Err(e) => {
                                    eprintln!("planner-eval tables: {doc}: {e}");
                                    std::process::exit(1);
                                }
                            }
                        }
                        None => print!("{md}"),
                    }
                }
                Err(e) => {
                    eprintln!("planner-eval tables: {e}");
                    std::process::exit(1);
                }
            }
        }
        Some("step-bound") => {
            let out = PathBuf::from(flag(&args, "--out").unwrap_or_else(|| usage()));
            step_bound::run(&out);
        }
        _ => usage(),
    }
}
