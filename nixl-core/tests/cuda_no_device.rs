//! CUDA where it cannot work: no driver library (CI), and a fake `libcuda.so.1` built from a C
//! stub whose `cuInit` fails with CUDA_ERROR_NO_DEVICE (or that lacks entry points, or reports
//! zero devices). VRAM registration must return an error with a message, never panic or abort.
#![cfg(feature = "cuda")]

use std::path::{Path, PathBuf};
use std::process::Command;

use nixl_core::testing::cuda;
use nixl_core::*;

fn vram(addr: u64, len: u64, dev: u64) -> RegDescList {
    RegDescList::from_descs(MemType::Vram, vec![RegDesc::new(addr, len, dev)])
}

/// Registers a made-up VRAM range with "UCX" and with "POSIX"; both errors, in that order.
fn register_vram_everywhere() -> Vec<NixlError> {
    let agent = Agent::new("cuda-probe", AgentConfig::default()).unwrap();
    let ucx = agent.create_backend("UCX", &Params::new()).unwrap();
    let posix = agent.create_backend("POSIX", &Params::new()).unwrap();
    let mut errors = Vec::new();
    for b in [ucx, posix] {
        let (mems, _) = agent.backend_params(b).unwrap();
        assert!(mems.contains(&MemType::Vram), "{b:?} lists VRAM");
        let opts = OptArgs {
            backends: vec![b],
            ..Default::default()
        };
        // SAFETY: registration fails before anything could touch the (made-up) range.
        let e = unsafe { agent.register_mem(&vram(0x7f00_0000_0000, 1 << 20, 0), Some(&opts)) }
            .expect_err("VRAM registration must fail without a usable GPU");
        errors.push(e);
    }
    // The agent still works for DRAM.
    let buf = vec![0u8; 4096];
    let dram = RegDescList::from_descs(
        MemType::Dram,
        vec![RegDesc::new(buf.as_ptr() as u64, 4096, 0)],
    );
    // SAFETY: `buf` outlives the agent.
    unsafe { agent.register_mem(&dram, None) }.unwrap();
    drop(agent);
    errors
}

#[test]
fn vram_registration_without_a_driver_is_an_error() {
    if cuda::available() {
        return test_support::skip(
            "no-gpu",
            "a CUDA device is present (tests/cuda_gpu.rs covers it)",
        );
    }
    for e in register_vram_everywhere() {
        assert_eq!(e.status(), Status::Backend, "{e}");
        assert!(e.message().contains("CUDA is not available"), "{e}");
    }
}

/// Builds `libcuda.so.1` (and a `libcuda.so` link, the first name cudarc tries) from `src`
/// into a fresh directory; None if there is no C compiler.
fn build_stub(name: &str, src: &str) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("nixl-cuda-stub-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("stub.c"), src).unwrap();
    let lib = dir.join("libcuda.so.1");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(dir.join("stub.c"))
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("cc failed to build the stub: {s}"),
        Err(e) => {
            test_support::skip(
                "cc",
                &format!("no C compiler to build the fake libcuda ({e})"),
            );
            return None;
        }
    }
    std::os::unix::fs::symlink("libcuda.so.1", dir.join("libcuda.so")).unwrap();
    Some(dir)
}

/// Re-runs `test` as a child process that loads the stub in `dir` and plays
/// [`fake_driver_child`], and checks that it saw the expected error (it asserts that itself,
/// and prints what it got).
fn run_child(test: &str, dir: &Path, expect: &str) {
    let out = test_support::child_command(test, "driver")
        .env("LD_LIBRARY_PATH", dir)
        .env("NIXL_CUDA_STUB_EXPECT", expect)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed: {text}");
    assert!(text.contains("CHILD-ERRORS 2"), "child did not run: {text}");
    assert!(
        text.contains(expect),
        "child output lacks {expect:?}: {text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The child side; it only runs under [`run_child`] (it needs the stub on `LD_LIBRARY_PATH`):
/// each `fake_driver_*` test calls it first when started as a child.
fn fake_driver_child() {
    let expect = std::env::var("NIXL_CUDA_STUB_EXPECT").expect("run by the fake_driver_* tests");
    let errors = register_vram_everywhere();
    for e in &errors {
        println!("CHILD-ERROR {e}");
        assert_eq!(e.status(), Status::Backend, "{e}");
        assert!(e.message().contains(&expect), "{e}");
    }
    println!("CHILD-ERRORS {}", errors.len());
}

#[test]
fn fake_driver_without_device_is_an_error() {
    if test_support::child_role().is_some() {
        return fake_driver_child();
    }
    let src =
        "int cuInit(unsigned int flags) { (void)flags; return 100; /* CUDA_ERROR_NO_DEVICE */ }\n";
    if let Some(dir) = build_stub("nodev", src) {
        run_child(
            "fake_driver_without_device_is_an_error",
            &dir,
            "CUDA_ERROR_NO_DEVICE",
        );
    }
}

#[test]
fn fake_driver_lacking_entry_points_is_an_error() {
    if test_support::child_role().is_some() {
        return fake_driver_child();
    }
    let src = "int cuInit(unsigned int flags) { (void)flags; return 0; }\n";
    if let Some(dir) = build_stub("old", src) {
        run_child(
            "fake_driver_lacking_entry_points_is_an_error",
            &dir,
            "lacks cuDeviceGetCount",
        );
    }
}

#[test]
fn fake_driver_with_zero_devices_is_an_error() {
    if test_support::child_role().is_some() {
        return fake_driver_child();
    }
    let mut src = String::from(
        "int cuInit(unsigned int f) { (void)f; return 0; }\n\
         int cuDeviceGetCount(int *n) { *n = 0; return 0; }\n",
    );
    for name in cuda::driver::SYMBOLS {
        if *name != "cuDeviceGetCount" {
            // Never called: the driver has no device, so loading stops before them.
            src.push_str(&format!("int {name}(void) {{ return 999; }}\n"));
        }
    }
    if let Some(dir) = build_stub("zero", &src) {
        run_child(
            "fake_driver_with_zero_devices_is_an_error",
            &dir,
            "reports no device",
        );
    }
}
