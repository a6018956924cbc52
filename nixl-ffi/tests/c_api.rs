//! Builds the C and C++ tests in `tests/c/` against `include/nixl_capi.h`, links each one with
//! both the shared and the static library, and runs them. Needs `cc` and `c++` on PATH; if a
//! compiler is missing the test says "skipped" with the reason (CI installs both).

use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::{have, skip};

/// Where `cargo test` put the `libnixl_capi.so` and `libnixl_capi.a` it built for this run:
/// `deps/`, beside the test binary (`target/<profile>/` holds those of the last `cargo build`).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Clone, Copy, Debug)]
enum Link {
    Shared,
    Static,
}

/// Compiles `src` with `compiler` and `flags`, links it with the library, returns the binary.
fn build(compiler: &str, flags: &[&str], src: &str, link: Link) -> PathBuf {
    let dir = lib_dir();
    let out_dir = dir.join("c-tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let stem = Path::new(src).file_stem().unwrap().to_str().unwrap();
    let out = out_dir.join(format!("{stem}-{link:?}").to_lowercase());
    let lib = match link {
        Link::Shared => {
            assert!(
                dir.join("libnixl_capi.so").exists(),
                "libnixl_capi.so not built"
            );
            vec![
                format!("-L{}", dir.display()),
                "-lnixl_capi".to_owned(),
                format!("-Wl,-rpath,{}", dir.display()),
            ]
        }
        Link::Static => {
            let a = dir.join("libnixl_capi.a");
            assert!(a.exists(), "libnixl_capi.a not built");
            let mut v = vec![a.display().to_string()];
            v.extend(["-lpthread", "-ldl", "-lm", "-lrt", "-lutil", "-lgcc_s"].map(String::from));
            v
        }
    };
    let status = Command::new(compiler)
        .args(flags)
        .arg(format!("-I{}", crate_dir().join("../include").display()))
        .arg(format!("-I{}", crate_dir().join("tests/c").display()))
        .arg(crate_dir().join("tests/c").join(src))
        .arg("-o")
        .arg(&out)
        .args(&lib)
        .status()
        .unwrap();
    assert!(status.success(), "{compiler} failed on {src} ({link:?})");
    out
}

fn run(bin: &Path) {
    let out = Command::new(bin)
        .env("NIXL_RS_PEER_TIMEOUT_MS", "1500")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} failed ({}):\n{text}",
        bin.display(),
        out.status
    );
}

const C_FLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g"];
const CXX_FLAGS: &[&str] = &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-O1", "-g"];

fn c_test(src: &str) {
    if !have("cc") {
        return skip("cc", "no C compiler (cc) on PATH");
    }
    for link in [Link::Shared, Link::Static] {
        run(&build("cc", C_FLAGS, src, link));
    }
}

fn cxx_test(src: &str) {
    if !have("c++") {
        return skip("c++", "no C++ compiler (c++) on PATH");
    }
    for link in [Link::Shared, Link::Static] {
        run(&build("c++", CXX_FLAGS, src, link));
    }
}

#[test]
fn c_two_agents_one_process() {
    c_test("test_agents.c");
}

#[test]
fn c_two_processes_and_a_dead_peer() {
    c_test("test_procs.c");
}

#[test]
fn cxx_raii_wrappers() {
    cxx_test("test_raii.cpp");
}
