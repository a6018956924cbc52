//! VRAM on a real GPU: registration checks (host memory refused, VMM allocations spanning
//! several physical chunks accepted), VRAM <-> VRAM and VRAM <-> DRAM transfers from 4 KiB to
//! 1 GiB with random data into poisoned targets, notifications only after the data is there,
//! the TCP routes (staged on both sides) and VRAM <-> FILE through POSIX. Two processes over
//! CUDA IPC: `cuda_ipc.rs`.
//!
//! Every test is `#[ignore = "needs a GPU"]`; run with `--include-ignored` and without a CUDA
//! device it prints "skipped: no CUDA device" (a failure when `NIXL_RS_REQUIRE` names `gpu`).
//! How to run them on a GPU machine: `nixl-core/src/backend/cuda/README.md`.
#![cfg(feature = "cuda")]

mod common;
mod cuda_common;

use std::time::Instant;

use common::{run, tcp_params, wait_notifs};
use cuda_common::*;
use nixl_core::testing::cuda::{self, mem::DeviceBuffer, mem::VmmBuffer};
use nixl_core::*;

#[test]
#[ignore = "needs a GPU"]
fn registration_checks_refuse_host_memory_and_accept_vmm_chunks() {
    if !gpu() {
        return;
    }
    let a = agent("reg", &Params::new());
    let dev = DeviceBuffer::new(0, 1 << 20).unwrap();
    // SAFETY: `dev` outlives the agent.
    unsafe { a.register_mem(&reg(MemType::Vram, dev.addr(), dev.len(), 0), None) }.unwrap();

    let host = vec![0u8; 1 << 20];
    // SAFETY: refused before anything could use it.
    let e = unsafe {
        a.register_mem(
            &reg(MemType::Vram, host.as_ptr() as u64, host.len(), 0),
            None,
        )
    }
    .unwrap_err();
    assert!(e.message().contains("not GPU memory"), "{e}");
    // SAFETY: as above.
    let e = unsafe { a.register_mem(&reg(MemType::Vram, dev.addr(), dev.len(), 1 << 20), None) }
        .unwrap_err();
    assert!(e.message().contains("does not exist"), "{e}");
    // SAFETY: as above; the range runs past the allocation.
    let e = unsafe {
        a.register_mem(
            &reg(MemType::Vram, dev.addr(), dev.len() + (64 << 20), 0),
            None,
        )
    }
    .unwrap_err();
    println!("past the end: {e}");

    // The driver reports the four allocations mapped back to back as one range; the
    // registration must still see them one by one (peers import them so).
    let vmm = VmmBuffer::new(0, 4, 1).unwrap();
    let c = vmm.chunk_len() as u64;
    let chunks = cuda::pointer::device_chunks(vmm.addr(), vmm.len() as u64, 0).unwrap();
    let spans: Vec<(u64, u64)> = chunks.iter().map(|k| (k.start, k.size)).collect();
    let want: Vec<(u64, u64)> = (0..4).map(|i| (vmm.addr() + i * c, c)).collect();
    assert_eq!(spans, want, "the VMM buffer's physical chunks");
    // A range starting inside chunk 1 and ending inside chunk 3 spans chunks 1 to 3, whole.
    let inner = cuda::pointer::device_chunks(vmm.addr() + c + c / 2, 2 * c, 0).unwrap();
    let spans: Vec<(u64, u64)> = inner.iter().map(|k| (k.start, k.size)).collect();
    assert_eq!(spans, want[1..].to_vec(), "chunks under an inner range");
    // SAFETY: `vmm` outlives the agent.
    unsafe { a.register_mem(&reg(MemType::Vram, vmm.addr(), vmm.len(), 0), None) }.unwrap();
    // SAFETY: refused: the range runs past the reservation.
    let e = unsafe {
        a.register_mem(
            &reg(MemType::Vram, vmm.addr(), vmm.len() + vmm.chunk_len(), 0),
            None,
        )
    };
    assert!(e.is_err(), "a range past the VMM mapping must be refused");
    drop(a);
}

const SIZES: &[usize] = &[4 << 10, 64 << 10, 1 << 20, 16 << 20, 256 << 20, 1 << 30];

#[test]
#[ignore = "needs a GPU"]
fn vram_to_vram_same_process_4k_to_1g() {
    if !gpu() {
        return;
    }
    let (a, b) = (agent("a", &Params::new()), agent("b", &Params::new()));
    for (i, &len) in SIZES.iter().enumerate() {
        let data = random(len, i as u64 + 1);
        let src = DeviceBuffer::new(0, len).unwrap();
        let dst = DeviceBuffer::new(0, len).unwrap();
        let back = DeviceBuffer::new(0, len).unwrap();
        src.upload(&data).unwrap();
        dst.fill(0xA5).unwrap();
        back.fill(0x5A).unwrap();
        // SAFETY: the buffers outlive their registrations (deregistered below).
        unsafe {
            a.register_mem(&reg(MemType::Vram, src.addr(), len, 0), None)
                .unwrap();
            a.register_mem(&reg(MemType::Vram, back.addr(), len, 0), None)
                .unwrap();
            b.register_mem(&reg(MemType::Vram, dst.addr(), len, 0), None)
                .unwrap();
        }
        a.load_remote_md(&b.local_md().unwrap()).unwrap();
        let start = Instant::now();
        let req = a
            .create_xfer_req(
                XferOp::Write,
                &xfer(MemType::Vram, src.addr(), len, 0),
                &xfer(MemType::Vram, dst.addr(), len, 0),
                "b",
                Some(&OptArgs::with_notif(format!("w{i}"))),
            )
            .unwrap();
        assert_eq!(run(&a, &req).unwrap(), Status::Success);
        let notifs = wait_notifs(&b, 1);
        // The notification is here: the data must be too.
        assert_same(&download(&dst, len), &data, "VRAM -> VRAM WRITE");
        assert_eq!(notifs["a"], vec![format!("w{i}").into_bytes()]);
        let read = a
            .create_xfer_req(
                XferOp::Read,
                &xfer(MemType::Vram, back.addr(), len, 0),
                &xfer(MemType::Vram, dst.addr(), len, 0),
                "b",
                None,
            )
            .unwrap();
        assert_eq!(run(&a, &read).unwrap(), Status::Success);
        assert_same(&download(&back, len), &data, "VRAM <- VRAM READ");
        println!("{len} bytes: write+read {:?}", start.elapsed());
        a.invalidate_remote_md("b").unwrap();
        a.deregister_mem(&reg(MemType::Vram, src.addr(), len, 0), None)
            .unwrap();
        a.deregister_mem(&reg(MemType::Vram, back.addr(), len, 0), None)
            .unwrap();
        b.deregister_mem(&reg(MemType::Vram, dst.addr(), len, 0), None)
            .unwrap();
    }
}

#[test]
#[ignore = "needs a GPU"]
fn unpolled_copies_notify_and_hold_the_target_registration_until_done() {
    if !gpu() {
        return;
    }
    let (a, b) = (agent("ua", &Params::new()), agent("ub", &Params::new()));
    let len = 1usize << 30;
    let data = random(len, 77);
    let (src, dst) = (
        DeviceBuffer::new(0, len).unwrap(),
        DeviceBuffer::new(0, len).unwrap(),
    );
    src.upload(&data).unwrap();
    dst.fill(0xA5).unwrap();
    // SAFETY: the buffers outlive their registrations.
    unsafe {
        a.register_mem(&reg(MemType::Vram, src.addr(), len, 0), None)
            .unwrap();
        b.register_mem(&reg(MemType::Vram, dst.addr(), len, 0), None)
            .unwrap();
    }
    a.load_remote_md(&b.local_md().unwrap()).unwrap();
    let req = a
        .create_xfer_req(
            XferOp::Write,
            &xfer(MemType::Vram, src.addr(), len, 0),
            &xfer(MemType::Vram, dst.addr(), len, 0),
            "ub",
            Some(&OptArgs::with_notif("unpolled")),
        )
        .unwrap();
    let posted = a.post_xfer_req(&req, None).unwrap();
    // The target deregisters at once: it must wait for the copies still in flight, so the
    // data is all there when it returns.
    let start = Instant::now();
    b.deregister_mem(&reg(MemType::Vram, dst.addr(), len, 0), None)
        .unwrap();
    println!(
        "post returned {posted:?}; deregistration returned after {:?}",
        start.elapsed()
    );
    assert_same(
        &download(&dst, len),
        &data,
        "data when deregistration returned",
    );
    // Nobody polled the request: the notification comes anyway.
    let notifs = wait_notifs(&b, 1);
    assert_eq!(notifs["ua"], vec![b"unpolled".to_vec()]);
    assert_eq!(a.xfer_status(&req).unwrap(), Status::Success);
}

/// VRAM <-> DRAM both ways, local and remote sides swapped, with `params` (same process or
/// TCP staging).
fn vram_dram(params: &Params, sizes: &[usize]) {
    let (a, b) = (agent("va", params), agent("vb", params));
    for (i, &len) in sizes.iter().enumerate() {
        let data = random(len, 100 + i as u64);
        let vsrc = DeviceBuffer::new(0, len).unwrap();
        let vdst = DeviceBuffer::new(0, len).unwrap();
        vsrc.upload(&data).unwrap();
        vdst.fill(0xA5).unwrap();
        let mut host = vec![0x5Au8; len];
        let haddr = host.as_mut_ptr() as u64;
        // SAFETY: buffers outlive their registrations.
        unsafe {
            a.register_mem(&reg(MemType::Vram, vsrc.addr(), len, 0), None)
                .unwrap();
            a.register_mem(&reg(MemType::Vram, vdst.addr(), len, 0), None)
                .unwrap();
            b.register_mem(&reg(MemType::Dram, haddr, len, 0), None)
                .unwrap();
        }
        a.load_remote_md(&b.local_md().unwrap()).unwrap();
        // Local VRAM -> remote DRAM, notification after the data.
        let req = a
            .create_xfer_req(
                XferOp::Write,
                &xfer(MemType::Vram, vsrc.addr(), len, 0),
                &xfer(MemType::Dram, haddr, len, 0),
                "vb",
                Some(&OptArgs::with_notif("d")),
            )
            .unwrap();
        assert_eq!(run(&a, &req).unwrap(), Status::Success);
        wait_notifs(&b, 1);
        assert_same(&host, &data, "VRAM -> remote DRAM");
        // Remote DRAM -> local VRAM.
        let req = a
            .create_xfer_req(
                XferOp::Read,
                &xfer(MemType::Vram, vdst.addr(), len, 0),
                &xfer(MemType::Dram, haddr, len, 0),
                "vb",
                None,
            )
            .unwrap();
        assert_eq!(run(&a, &req).unwrap(), Status::Success);
        assert_same(&download(&vdst, len), &data, "remote DRAM -> VRAM");
        a.invalidate_remote_md("vb").unwrap();
        a.deregister_mem(&reg(MemType::Vram, vsrc.addr(), len, 0), None)
            .unwrap();
        a.deregister_mem(&reg(MemType::Vram, vdst.addr(), len, 0), None)
            .unwrap();
        b.deregister_mem(&reg(MemType::Dram, haddr, len, 0), None)
            .unwrap();
        host.fill(0);
    }
}

#[test]
#[ignore = "needs a GPU"]
fn vram_dram_same_process_4k_to_1g() {
    if gpu() {
        vram_dram(&Params::new(), SIZES);
    }
}

#[test]
#[ignore = "needs a GPU"]
fn vram_dram_over_tcp_through_pinned_staging() {
    if gpu() {
        // Sizes around the staging chunk (8 MiB): below, equal, several chunks with a tail.
        vram_dram(
            &tcp_params(),
            &[4 << 10, 8 << 20, (40 << 20) + 4096, 256 << 20],
        );
    }
}

#[test]
#[ignore = "needs a GPU"]
fn remote_vram_over_tcp_staged_on_both_sides() {
    if !gpu() {
        return;
    }
    let (a, b) = (agent("ta", &tcp_params()), agent("tb", &tcp_params()));
    for (i, &len) in [4usize << 10, (40 << 20) + 4096, 256 << 20]
        .iter()
        .enumerate()
    {
        let data = random(len, 300 + i as u64);
        let (src, back) = (
            DeviceBuffer::new(0, len).unwrap(),
            DeviceBuffer::new(0, len).unwrap(),
        );
        let dst = DeviceBuffer::new(0, len).unwrap();
        let mut host = data.clone();
        let haddr = host.as_mut_ptr() as u64;
        src.upload(&data).unwrap();
        dst.fill(0xA5).unwrap();
        back.fill(0x5A).unwrap();
        // SAFETY: buffers outlive their registrations.
        unsafe {
            a.register_mem(&reg(MemType::Vram, src.addr(), len, 0), None)
                .unwrap();
            a.register_mem(&reg(MemType::Vram, back.addr(), len, 0), None)
                .unwrap();
            a.register_mem(&reg(MemType::Dram, haddr, len, 0), None)
                .unwrap();
            b.register_mem(&reg(MemType::Vram, dst.addr(), len, 0), None)
                .unwrap();
        }
        a.load_remote_md(&b.local_md().unwrap()).unwrap();
        let remote = xfer(MemType::Vram, dst.addr(), len, 0);
        // Local VRAM -> remote VRAM over TCP, notification after the data.
        let w = a
            .create_xfer_req(
                XferOp::Write,
                &xfer(MemType::Vram, src.addr(), len, 0),
                &remote,
                "tb",
                Some(&OptArgs::with_notif("v")),
            )
            .unwrap();
        assert_eq!(run(&a, &w).unwrap(), Status::Success);
        wait_notifs(&b, 1);
        assert_same(&download(&dst, len), &data, "VRAM -> remote VRAM over TCP");
        // Remote VRAM -> local VRAM over TCP.
        let r = a
            .create_xfer_req(
                XferOp::Read,
                &xfer(MemType::Vram, back.addr(), len, 0),
                &remote,
                "tb",
                None,
            )
            .unwrap();
        assert_eq!(run(&a, &r).unwrap(), Status::Success);
        assert_same(&download(&back, len), &data, "remote VRAM -> VRAM over TCP");
        // Local DRAM -> remote VRAM (poisoned first) and back into poisoned DRAM.
        dst.fill(0xA5).unwrap();
        let hx = xfer(MemType::Dram, haddr, len, 0);
        let w = a
            .create_xfer_req(XferOp::Write, &hx, &remote, "tb", None)
            .unwrap();
        assert_eq!(run(&a, &w).unwrap(), Status::Success);
        assert_same(&download(&dst, len), &data, "DRAM -> remote VRAM over TCP");
        host.fill(0x5A);
        let r = a
            .create_xfer_req(XferOp::Read, &hx, &remote, "tb", None)
            .unwrap();
        assert_eq!(run(&a, &r).unwrap(), Status::Success);
        assert_same(&host, &data, "remote VRAM -> DRAM over TCP");
        a.invalidate_remote_md("tb").unwrap();
        for (agent, mem, addr) in [
            (&a, MemType::Vram, src.addr()),
            (&a, MemType::Vram, back.addr()),
            (&a, MemType::Dram, haddr),
            (&b, MemType::Vram, dst.addr()),
        ] {
            agent.deregister_mem(&reg(mem, addr, len, 0), None).unwrap();
        }
    }
}

#[test]
#[ignore = "needs a GPU"]
fn vmm_registration_spanning_chunks_moves_data_across_chunk_boundaries() {
    if !gpu() {
        return;
    }
    let (a, b) = (agent("ma", &Params::new()), agent("mb", &Params::new()));
    let vmm = VmmBuffer::new(0, 4, 1).unwrap();
    let len = vmm.len();
    let data = random(len, 7);
    let src = DeviceBuffer::new(0, len).unwrap();
    src.upload(&data).unwrap();
    vmm.upload(&vec![0xA5u8; len]).unwrap();
    // SAFETY: buffers outlive the agents.
    unsafe {
        a.register_mem(&reg(MemType::Vram, src.addr(), len, 0), None)
            .unwrap();
        b.register_mem(&reg(MemType::Vram, vmm.addr(), len, 0), None)
            .unwrap();
    }
    a.load_remote_md(&b.local_md().unwrap()).unwrap();
    // One descriptor straddling the boundary of chunks 1 and 2, then the whole range.
    let c = vmm.chunk_len();
    for (off, n) in [(c + c / 2, c), (0, len)] {
        let req = a
            .create_xfer_req(
                XferOp::Write,
                &xfer(MemType::Vram, src.addr() + off as u64, n, 0),
                &xfer(MemType::Vram, vmm.addr() + off as u64, n, 0),
                "mb",
                None,
            )
            .unwrap();
        assert_eq!(run(&a, &req).unwrap(), Status::Success);
        let mut got = vec![0u8; len];
        vmm.download(&mut got).unwrap();
        assert_same(&got[off..off + n], &data[off..off + n], "VMM write");
    }
}

#[test]
#[ignore = "needs a GPU"]
fn vram_file_through_posix_staging() {
    if !gpu() {
        return;
    }
    let a = Agent::new("pf", AgentConfig::default()).unwrap();
    a.create_backend("POSIX", &Params::new()).unwrap();
    let path = std::env::temp_dir().join(format!("nixl-cuda-file-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file) as u64;
    for (i, &len) in [4usize << 10, (20 << 20) + 12, 256 << 20]
        .iter()
        .enumerate()
    {
        let data = random(len, 50 + i as u64);
        let (src, back) = (
            DeviceBuffer::new(0, len).unwrap(),
            DeviceBuffer::new(0, len).unwrap(),
        );
        src.upload(&data).unwrap();
        back.fill(0xA5).unwrap();
        // SAFETY: buffers and file outlive their registrations.
        unsafe {
            a.register_mem(&reg(MemType::Vram, src.addr(), len, 0), None)
                .unwrap();
            a.register_mem(&reg(MemType::Vram, back.addr(), len, 0), None)
                .unwrap();
            a.register_mem(&reg(MemType::File, 0, 0, fd), None).unwrap();
        }
        let f = xfer(MemType::File, 4096, len, fd);
        let w = a
            .create_xfer_req(
                XferOp::Write,
                &xfer(MemType::Vram, src.addr(), len, 0),
                &f,
                "pf",
                None,
            )
            .unwrap();
        assert_eq!(run(&a, &w).unwrap(), Status::Success);
        let on_disk = std::fs::read(&path).unwrap();
        assert_same(&on_disk[4096..4096 + len], &data, "VRAM -> FILE");
        let r = a
            .create_xfer_req(
                XferOp::Read,
                &xfer(MemType::Vram, back.addr(), len, 0),
                &f,
                "pf",
                None,
            )
            .unwrap();
        assert_eq!(run(&a, &r).unwrap(), Status::Success);
        assert_same(&download(&back, len), &data, "FILE -> VRAM");
        a.deregister_mem(&reg(MemType::Vram, src.addr(), len, 0), None)
            .unwrap();
        a.deregister_mem(&reg(MemType::Vram, back.addr(), len, 0), None)
            .unwrap();
        a.deregister_mem(&reg(MemType::File, 0, 0, fd), None)
            .unwrap();
    }
    let _ = std::fs::remove_file(&path);
}
