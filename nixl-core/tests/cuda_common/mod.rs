//! Helpers shared by the GPU tests (`cuda_gpu.rs`, `cuda_ipc.rs`).
#![allow(dead_code)]

use nixl_core::testing::cuda::{self, mem::DeviceBuffer};
use nixl_core::*;

/// Whether a CUDA device is usable; says "skipped" otherwise (a failure when
/// `NIXL_RS_REQUIRE` names `gpu`, as `scripts/gpu-run.sh` sets it). The tests that need a
/// GPU are also `#[ignore = "needs a GPU"]`, so a CPU run does not count them as passed.
pub fn gpu() -> bool {
    let ok = cuda::available();
    if !ok {
        test_support::skip("gpu", "no CUDA device");
    }
    ok
}

#[allow(unused_imports)]
pub use test_support::random_bytes as random;

/// A one-descriptor registration list.
pub fn reg(mem: MemType, addr: u64, len: usize, dev: u64) -> RegDescList {
    RegDescList::from_descs(mem, vec![RegDesc::new(addr, len as u64, dev)])
}

/// A one-descriptor transfer list.
pub fn xfer(mem: MemType, addr: u64, len: usize, dev: u64) -> XferDescList {
    XferDescList::from_descs(mem, vec![Desc::new(addr, len as u64, dev)])
}

/// An agent with the network backend ("UCX") and `params`.
pub fn agent(name: &str, params: &Params) -> Agent {
    let a = Agent::new(name, AgentConfig::default()).unwrap();
    a.create_backend("UCX", params).unwrap();
    a
}

/// The first `len` bytes of a device buffer.
pub fn download(b: &DeviceBuffer, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    b.download(&mut out).unwrap();
    out
}

/// Compares without printing gigabytes: names the first differing byte.
pub fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let i = got.iter().zip(want).position(|(a, b)| a != b).unwrap();
        panic!("{what}: first difference at byte {i} of {}", want.len());
    }
}
