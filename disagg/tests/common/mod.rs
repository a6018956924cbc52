//! Runs the `disagg` binary and reads its JSON report.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// What a run produced.
pub struct Run {
    /// Exit status code.
    pub code: Option<i32>,
    /// stdout + stderr.
    pub output: String,
    /// The parsed report.json.
    pub report: serde_json::Value,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// The output folder.
    pub out: PathBuf,
}

/// A short run the planner scales down: an over-provisioned fleet (2 prefill, 4 decode
/// workers) on the quick load, deciding every second.
pub const PLANNER_SCALE_DOWN: &[&str] = &[
    "--quick",
    "--workers",
    "2,4",
    "--planner",
    "on",
    "--planner-interval",
    "1",
];

/// Runs `disagg` with `args` (plus `--out` and `--no-progress`), failing the test if it
/// takes longer than `limit_s`.
pub fn run(name: &str, args: &[&str], limit_s: u64) -> Run {
    run_with(&[], &[], name, args, limit_s)
}

/// Like [`run`], with `disagg` started through `prefix` (e.g. `ip netns exec NS`) and with
/// extra environment.
pub fn run_with(
    prefix: &[&str],
    env: &[(&str, &str)],
    name: &str,
    args: &[&str],
    limit_s: u64,
) -> Run {
    run_watching(prefix, env, name, args, limit_s, &mut |_| {})
}

/// Like [`run_with`], calling `watch` with the output folder about every 50 ms while the run
/// goes (to look at what it serves).
pub fn run_watching(
    prefix: &[&str],
    env: &[(&str, &str)],
    name: &str,
    args: &[&str],
    limit_s: u64,
    watch: &mut dyn FnMut(&std::path::Path),
) -> Run {
    let out = std::env::temp_dir().join(format!("disagg-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let start = Instant::now();
    let exe = env!("CARGO_BIN_EXE_disagg");
    let mut cmd = match prefix.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut child = cmd
        .envs(env.iter().copied())
        .args(args)
        .arg("--out")
        .arg(&out)
        .arg("--no-progress")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn disagg");
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(limit_s) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("disagg {args:?} hung: still running after {limit_s} s");
        }
        watch(&out);
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().expect("output");
    let output =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    // A run that failed before writing its report leaves `Null`; `n()` then panics with
    // the output.
    let report = std::fs::read_to_string(out.join("report.json"))
        .map(|text| serde_json::from_str(&text).expect("report.json parses"))
        .unwrap_or(serde_json::Value::Null);
    Run {
        code: o.status.code(),
        report,
        wall_s: start.elapsed().as_secs_f64(),
        output,
        out,
    }
}

impl Run {
    /// An integer field of the report.
    pub fn n(&self, key: &str) -> u64 {
        self.report[key]
            .as_u64()
            .unwrap_or_else(|| panic!("report field {key} missing:\n{}", self.output))
    }

    /// Failure reasons with counts.
    pub fn failures(&self) -> Vec<(String, u64)> {
        self.report["failures"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        (
                            f[0].as_str().unwrap_or("").to_string(),
                            f[1].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The invariants of every run: every request finished or failed, nothing corrupt, no
    /// KV slot left held, blocks were really moved and verified.
    pub fn assert_sound(&self) {
        let o = &self.output;
        assert_eq!(self.n("unaccounted"), 0, "requests unaccounted:\n{o}");
        assert_eq!(self.n("blocks_corrupt"), 0, "corrupt blocks:\n{o}");
        assert_eq!(
            self.n("served") + self.n("failed"),
            self.n("requests"),
            "{o}"
        );
        assert!(self.n("blocks_verified") > 0, "nothing verified:\n{o}");
        assert!(self.n("kv_bytes_moved") > 0, "no KV moved:\n{o}");
        assert!(self.n("transfers") > 0, "no transfers:\n{o}");
        assert_eq!(self.n("slots_held_at_end"), 0, "KV slots leaked:\n{o}");
        assert!(o.contains(" 0 corrupt"), "report line missing:\n{o}");
    }
}
