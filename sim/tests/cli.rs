//! The `sim` command line: `--help` answers with exit code 0, malformed flags are refused with
//! exit code 2 before anything runs.

use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .expect("run sim")
}

#[test]
fn help_exits_zero_and_bad_flags_exit_two() {
    for args in [&["--help"][..], &["replay", "--help"]] {
        let out = sim(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    let replay_help = String::from_utf8_lossy(&sim(&["replay", "--help"]).stdout).into_owned();
    for flag in [
        "--trace",
        "--synthetic",
        "--policy",
        "--no-prefix-cache",
        "--plot-dir",
    ] {
        assert!(replay_help.contains(flag), "{flag} missing:\n{replay_help}");
    }
    for args in [
        &[][..],
        &["replay"],
        &["replay", "--synthetic", "poisson:1", "--bogus"],
        &["replay", "--synthetic", "poisson:1", "--trace", "t.jsonl"],
        &["replay", "--synthetic", "poisson:1", "--workers", "many"],
    ] {
        assert_eq!(sim(args).status.code(), Some(2), "{args:?}");
    }
}
