//! What a newcomer runs into: impossible settings refused up front with a reason, failed
//! requests make the exit code non-zero and are reported with real numbers, Ctrl-C still
//! writes the report.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Runs `disagg args` expecting a refusal before anything starts: exit code 2 and `want` in
/// its message.
fn refused(args: &[&str], want: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_disagg"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
    assert!(text.contains(want), "{args:?}: {text}");
}

#[test]
fn impossible_settings_are_refused_up_front() {
    refused(
        &["--workers", "0,0", "--planner", "off"],
        "each pool needs at least one worker",
    );
    refused(&["--workers", "2,0"], "--workers 2,0");
    refused(&["--lib", "/nonexistent/libnixl_capi.so"], "/nonexistent");
    refused(&["--blocks", "0"], "--blocks 0");
    if !cfg!(feature = "etcd") {
        refused(&["--discovery", "etcd"], "`etcd` feature");
    }
    for args in [&["--help"][..], &["worker", "--help"]] {
        let help = Command::new(env!("CARGO_BIN_EXE_disagg"))
            .args(args)
            .output()
            .unwrap();
        assert!(help.status.success(), "{args:?}");
    }
    // Malformed flags: clap's refusal, exit code 2 as well.
    refused(&["--mode", "sideways"], "sideways");
    refused(&["--kill", "decode"], "ROLE@SECONDS");
}

#[test]
fn a_prompt_larger_than_the_pool_fails_at_once_with_its_numbers() {
    // One 64-token block per worker: every prompt of the quick load needs more.
    let r = common::run("tiny-pool", &["--quick", "--blocks", "1"], 120);
    assert_eq!(r.n("unaccounted"), 0, "{}", r.output);
    assert!(r.n("failed") > 0, "{}", r.output);
    assert_eq!(
        r.code,
        Some(1),
        "failed requests fail the run:\n{}",
        r.output
    );
    let f = r.failures();
    assert!(
        f.iter().any(
            |(why, _)| why.contains("KV blocks of 64 tokens; a worker's pool holds 1")
                && !why.contains(" N ")
        ),
        "{f:?}"
    );
}

#[test]
fn ctrl_c_ends_the_run_with_a_report() {
    let out = std::env::temp_dir().join(format!("disagg-test-sigint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // Slowed down so the run is still going when the signal comes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_disagg"))
        .args(["--quick", "--speedup", "0.05", "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first progress line comes once the workers serve and the workload has started.
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        let line = stderr
            .next()
            .unwrap_or_else(|| panic!("no progress line: {seen:?}"))
            .unwrap();
        let started = line.starts_with('[');
        seen.push(line);
        if started {
            break;
        }
    }
    // The rest of stderr, read meanwhile so the child never blocks on a full pipe.
    let rest = std::thread::spawn(move || stderr.map_while(Result::ok).collect::<Vec<_>>());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &rest.join().unwrap().join("\n");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
            .unwrap_or_else(|e| panic!("report.json: {e}\n{text}"));
    assert_eq!(report["unaccounted"], 0, "{text}");
    let failures = report["failures"].to_string();
    assert!(failures.contains("interrupted"), "{failures}\n{text}");
    assert_eq!(o.status.code(), Some(1), "{text}");
    let _ = std::fs::remove_dir_all(&out);
}
