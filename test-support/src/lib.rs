//! Helpers shared by the tests of every crate in the workspace.
//!
//! # Skipping
//! A test that cannot run here (no C compiler, no etcd, not root, no GPU, ...) calls
//! [`skip`] and returns. It prints `skipped: <why>` so the run shows it, and it panics instead
//! when the environment variable [`REQUIRE_ENV`] (`NIXL_RS_REQUIRE`, a comma-separated list)
//! names the requirement: CI lists everything it installs, so a test that silently stopped
//! running there fails. `NIXL_RS_REQUIRE=all` requires everything.
//!
//! Requirement names in use: `cc`, `c++`, `etcd`, `root`, `ip`, `netns`, `setpriv`, `gpu`,
//! `no-gpu`, `libfabric`, `userfaultfd`, `prometheus`, `nixl-sys` (upstream's `wrapper.h`), `nixl-real` (real NIXL's
//! `libnixl_capi.so`), `nixl-ours` (our built `libnixl_capi.so`), `trace`.
//!
//! # Child processes
//! A test that needs a fresh process (a fake driver on `LD_LIBRARY_PATH`, a second CUDA
//! context) re-runs its own test binary with [`child_command`]; the same test, started that
//! way, sees its role in [`child_role`] and runs the child side instead. No entry point lives
//! in the test list only to be run by another test.

use std::process::Command;

/// The environment variable listing requirements whose absence is a failure, not a skip.
pub const REQUIRE_ENV: &str = "NIXL_RS_REQUIRE";

/// The environment variable that tells a test binary started by [`child_command`] which
/// child role to play.
pub const CHILD_ENV: &str = "NIXL_RS_CHILD";

/// Whether `NIXL_RS_REQUIRE` names `need` (or `all`).
pub fn required(need: &str) -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|list| {
        list.split(',')
            .map(str::trim)
            .any(|n| n == need || n == "all")
    })
}

/// Reports that the calling test cannot run because `need` is missing (`why` says how to get
/// it): prints `skipped: <why>`, or panics when `NIXL_RS_REQUIRE` names `need`.
#[track_caller]
pub fn skip(need: &str, why: &str) {
    assert!(
        !required(need),
        "{why} ({REQUIRE_ENV} requires `{need}`, so this is a failure, not a skip)"
    );
    println!("skipped: {why}");
}

/// Whether `program` is an executable file on `PATH` (or at that path, if it has a `/`).
pub fn have(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &std::path::Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return runnable(std::path::Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| runnable(&dir.join(program))))
}

/// Runs `ip ARGS...` (iproute2, for network-namespace tests); its stderr is the error.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // The effective uid is what matters for namespaces and setpriv; /proc is always there on
    // Linux and avoids a libc dependency.
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// The child role this test binary was started for by [`child_command`], if any.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok().filter(|r| !r.is_empty())
}

/// A command that re-runs this test binary's test `test` (exactly) as child `role`; `test`
/// must call [`child_role`] first thing and play the role when it is set.
pub fn child_command(test: &str, role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    // `--include-ignored`: the parent may itself be ignored by default (e.g. "needs a GPU").
    // No `--test-threads=1`: with it libtest prints "test NAME ... " before the test runs, on
    // the line the child's first output would start.
    cmd.args(["--exact", test, "--include-ignored", "--nocapture"])
        .env(CHILD_ENV, role);
    cmd
}

/// A deterministic xorshift64 stream, so test data and failures reproduce (not for anything
/// that must be unpredictable).
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A stream starting from `state` (zero is replaced by one: xorshift would stay at zero).
    pub fn new(state: u64) -> Self {
        XorShift(if state == 0 { 1 } else { state })
    }

    /// The next value.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// `len` pseudo-random bytes determined by `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The byte at `i` of a buffer filled with `seed`: data that tells every offset and seed apart,
/// shared by multi-process tests and the peer processes they drive.
pub fn pattern(seed: u64, i: usize) -> u8 {
    (i as u64)
        .wrapping_mul(31)
        .wrapping_add(seed.wrapping_mul(7))
        .wrapping_add((i >> 12) as u64) as u8
}

/// A buffer of `len` bytes filled with `seed`'s [`pattern`].
pub fn filled(len: usize, seed: u64) -> Vec<u8> {
    (0..len).map(|i| pattern(seed, i)).collect()
}

/// FNV-1a over `buf`: what a peer process reports of its buffer, compared with the expected one.
pub fn checksum(buf: &[u8]) -> u64 {
    buf.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Bytes as lowercase hex, to hand binary data (metadata) to a child process on a text line.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The bytes of [`hex`]'s output; `None` for an odd length or a non-hex digit (data from
/// another process).
pub fn try_unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The bytes of [`hex`]'s output; panics on anything else (a test's own data).
pub fn unhex(s: &str) -> Vec<u8> {
    try_unhex(s).unwrap_or_else(|| panic!("not hex: {s:?}"))
}

/// `promtool check metrics` (Debian package `prometheus`) on an exposition body: the findings
/// it reports, less the one prometheus-client always causes (a counter's HELP sits on its
/// OpenMetrics family name, without `_total`). `None` when promtool is not installed.
pub fn promtool_findings(body: &str) -> Option<Vec<String>> {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool ran");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut findings: Vec<String> = report
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !l.strip_suffix("_total no help text")
                .is_some_and(|family| body.contains(&format!("# HELP {family} ")))
        })
        .map(str::to_string)
        .collect();
    if !out.status.success() && report.trim().is_empty() {
        findings.push(format!(
            "promtool failed without a message ({})",
            out.status
        ));
    }
    Some(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_requirement_turns_a_skip_into_a_failure() {
        // SAFETY: this crate's only test that touches the environment, and no other thread
        // reads it meanwhile (the tests of this crate do not read NIXL_RS_REQUIRE).
        unsafe { std::env::set_var(REQUIRE_ENV, "cc, etcd") };
        assert!(required("etcd") && required("cc") && !required("root"));
        skip("root", "not root");
        let failed = std::panic::catch_unwind(|| skip("etcd", "no etcd"));
        let msg = *failed.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("no etcd") && msg.contains("`etcd`"), "{msg}");
        // SAFETY: as above.
        unsafe { std::env::set_var(REQUIRE_ENV, "all") };
        assert!(required("anything"));
        // SAFETY: as above.
        unsafe { std::env::remove_var(REQUIRE_ENV) };
        assert!(!required("etcd"));
    }

    #[test]
    fn random_bytes_are_reproducible_and_differ_by_seed() {
        let a = random_bytes(1000, 7);
        assert_eq!(a.len(), 1000);
        assert_eq!(a, random_bytes(1000, 7));
        assert_ne!(a, random_bytes(1000, 8));
        assert_eq!(random_bytes(13, 7), a[..13]);
        let mut z = XorShift::new(0);
        assert_ne!(z.next(), 0);
    }

    #[test]
    fn unhex_reverses_hex() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&b), "0001abff");
        assert_eq!(unhex(&hex(&b)), b);
        assert_eq!(try_unhex("abc"), None);
        assert_eq!(try_unhex("zz"), None);
        assert_eq!(try_unhex("é1"), None);
        assert_eq!(try_unhex(""), Some(vec![]));
    }

    #[test]
    fn have_finds_programs_on_the_path() {
        assert!(have("sh"));
        assert!(!have("/nonexistent/program"));
        assert!(!have("no-such-program-nixl-rs"));
    }
}
