//! Two processes on one GPU host over CUDA IPC: the test re-runs itself as the owner of the
//! memory (a `cuMemAlloc` buffer, then a VMM buffer of four physical chunks shared as file
//! descriptors); the user READs it into VRAM and DRAM, WRITEs it with a notification, and the
//! owner verifies. Prints "skipped: no CUDA device" without a GPU.
#![cfg(feature = "cuda")]

mod common;
mod cuda_common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{hex, run, unhex, wait_notifs};
use cuda_common::*;
use nixl_core::testing::cuda::{mem::DeviceBuffer, mem::VmmBuffer};
use nixl_core::*;

const IPC_LEN: usize = 64 << 20;

/// The owner's memory: a plain allocation (legacy IPC) or a VMM buffer of several physical
/// chunks exported as file descriptors.
enum Owned {
    Plain(DeviceBuffer),
    Vmm(VmmBuffer),
}

impl Owned {
    fn addr(&self) -> u64 {
        match self {
            Owned::Plain(b) => b.addr(),
            Owned::Vmm(b) => b.addr(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Owned::Plain(b) => b.len(),
            Owned::Vmm(b) => b.len(),
        }
    }

    fn upload(&self, data: &[u8]) {
        match self {
            Owned::Plain(b) => b.upload(data),
            Owned::Vmm(b) => b.upload(data),
        }
        .unwrap()
    }

    fn download(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len()];
        match self {
            Owned::Plain(b) => b.download(&mut out),
            Owned::Vmm(b) => b.download(&mut out),
        }
        .unwrap();
        out
    }
}

/// The owner process of the two-process tests: registers VRAM holding seed 1's data (a VMM
/// buffer of four chunks when NIXL_CUDA_IPC_CHILD=vmm), publishes its metadata, waits for the
/// parent's notification, then checks that the parent wrote seed 2's data.
/// Runs as the child role `mode` ("plain" or "vmm"), started by [`two_processes`].
fn ipc_child(mode: &str) {
    let owner = agent("owner", &Params::new());
    let buf = if mode == "vmm" {
        let granule = VmmBuffer::shareable(0, 1, 1).unwrap().len();
        Owned::Vmm(VmmBuffer::shareable(0, 4, (IPC_LEN / 4 / granule).max(1)).unwrap())
    } else {
        Owned::Plain(DeviceBuffer::new(0, IPC_LEN).unwrap())
    };
    let len = buf.len();
    buf.upload(&random(len, 1));
    // SAFETY: `buf` outlives the agent.
    unsafe { owner.register_mem(&reg(MemType::Vram, buf.addr(), len, 0), None) }.unwrap();
    println!("ADDR {}", buf.addr());
    println!("LEN {len}");
    println!("MD {}", hex(&owner.local_md().unwrap()));
    let notifs = wait_notifs(&owner, 1);
    assert_eq!(notifs["user"], vec![b"written".to_vec()]);
    assert_same(
        &buf.download(),
        &random(len, 2),
        "written by the other process",
    );
    println!("VERIFIED");
}

/// READs the owner's VRAM into local VRAM and DRAM, WRITEs it with a notification, and waits
/// for the owner (a child process) to verify.
fn two_processes(test: &str, mode: &str) {
    if let Some(role) = test_support::child_role() {
        return ipc_child(&role);
    }
    let mut child = test_support::child_command(test, mode)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(std::io::Result::ok);
    let mut field = |prefix: &str| loop {
        let line = lines.next().expect("child output");
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest.to_string();
        }
    };
    let remote_addr: u64 = field("ADDR ").parse().unwrap();
    let len: usize = field("LEN ").parse().unwrap();
    let md = unhex(&field("MD "));
    let user = agent("user", &Params::new());
    user.load_remote_md(&md).unwrap();
    let (vram, mut host) = (DeviceBuffer::new(0, len).unwrap(), vec![0x5Au8; len]);
    vram.fill(0xA5).unwrap();
    let host_addr = host.as_mut_ptr() as u64;
    // SAFETY: buffers outlive the agent.
    unsafe {
        user.register_mem(&reg(MemType::Vram, vram.addr(), len, 0), None)
            .unwrap();
        user.register_mem(&reg(MemType::Dram, host_addr, len, 0), None)
            .unwrap();
    }
    let remote = xfer(MemType::Vram, remote_addr, len, 0);
    // Remote VRAM -> local VRAM and -> local DRAM, through the IPC mapping.
    for local in [
        xfer(MemType::Vram, vram.addr(), len, 0),
        xfer(MemType::Dram, host_addr, len, 0),
    ] {
        let r = user
            .create_xfer_req(XferOp::Read, &local, &remote, "owner", None)
            .unwrap();
        assert_eq!(run(&user, &r).unwrap(), Status::Success);
    }
    let want = random(len, 1);
    assert_same(&download(&vram, len), &want, "IPC READ into VRAM");
    assert_same(&host, &want, "IPC READ into DRAM");
    // Local VRAM -> remote VRAM with a notification.
    vram.upload(&random(len, 2)).unwrap();
    let w = user
        .create_xfer_req(
            XferOp::Write,
            &xfer(MemType::Vram, vram.addr(), len, 0),
            &remote,
            "owner",
            Some(&OptArgs::with_notif("written")),
        )
        .unwrap();
    assert_eq!(run(&user, &w).unwrap(), Status::Success);
    let deadline = Instant::now() + Duration::from_secs(60);
    let verified = loop {
        match lines.next() {
            Some(l) if l.contains("VERIFIED") => break true,
            Some(_) => {}
            None => break false,
        }
        assert!(Instant::now() < deadline);
    };
    let status = child.wait().unwrap();
    assert!(
        verified && status.success(),
        "the owner process did not verify: {status}"
    );
    // Invalidation closes the mappings.
    user.invalidate_remote_md("owner").unwrap();
}

#[test]
#[ignore = "needs a GPU"]
fn vram_across_two_processes_over_cuda_ipc() {
    if gpu() {
        two_processes("vram_across_two_processes_over_cuda_ipc", "plain");
    }
}

#[test]
#[ignore = "needs a GPU"]
fn vmm_vram_across_two_processes_as_file_descriptors() {
    if gpu() {
        two_processes("vmm_vram_across_two_processes_as_file_descriptors", "vmm");
    }
}
