//! VRAM on a real GPU: registration checks (host memory refused, VMM allocations spanning
//! several physical chunks accepted), VRAM <-> VRAM and VRAM <-> DRAM transfers from 4 KiB to
//! 1 GiB with random data into poisoned targets, notifications only after the data is there,
//! the TCP staging route, VRAM <-> FILE through POSIX, and two processes over CUDA IPC.
//!
//! Without a CUDA device every test prints "skipped: no CUDA device" and returns. How to run
//! them on a GPU machine: `nixl-core/src/backend/cuda/README.md`.
#![cfg(feature = "cuda")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{run, tcp_params, wait_notifs};
use nixl_core::backend::cuda::{self, mem::DeviceBuffer, mem::VmmBuffer};
use nixl_core::*;

fn gpu() -> bool {
    if cuda::available() {
        true
    } else {
        println!("skipped: no CUDA device");
        false
    }
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn reg(mem: MemType, addr: u64, len: usize, dev: u64) -> RegDescList {
    RegDescList::from_descs(mem, vec![RegDesc::new(addr, len as u64, dev)])
}

fn xfer(mem: MemType, addr: u64, len: usize, dev: u64) -> XferDescList {
    XferDescList::from_descs(mem, vec![Desc::new(addr, len as u64, dev)])
}

fn agent(name: &str, params: &Params) -> Agent {
    let a = Agent::new(name, AgentConfig::default()).unwrap();
    a.create_backend("UCX", params).unwrap();
    a
}

fn download(b: &DeviceBuffer, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    b.download(&mut out).unwrap();
    out
}

fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let i = got.iter().zip(want).position(|(a, b)| a != b).unwrap();
        panic!("{what}: first difference at byte {i} of {}", want.len());
    }
}

#[test]
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

    let vmm = VmmBuffer::new(0, 4, 1).unwrap();
    let chunks = cuda::pointer::device_chunks(vmm.addr(), vmm.len() as u64, 0).unwrap();
    assert!(!chunks.is_empty());
    assert_eq!(chunks.first().unwrap().start, vmm.addr());
    assert!(chunks.last().unwrap().end() >= vmm.addr() + vmm.len() as u64);
    println!(
        "VMM buffer of {} bytes: {} chunk(s) reported",
        vmm.len(),
        chunks.len()
    );
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
fn vram_dram_same_process_4k_to_1g() {
    if gpu() {
        vram_dram(&Params::new(), SIZES);
    }
}

#[test]
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
fn remote_vram_over_tcp_is_refused_with_a_message() {
    if !gpu() {
        return;
    }
    let (a, b) = (agent("ta", &tcp_params()), agent("tb", &tcp_params()));
    let (src, dst) = (
        DeviceBuffer::new(0, 4096).unwrap(),
        DeviceBuffer::new(0, 4096).unwrap(),
    );
    // SAFETY: buffers outlive the agents.
    unsafe {
        a.register_mem(&reg(MemType::Vram, src.addr(), 4096, 0), None)
            .unwrap();
        b.register_mem(&reg(MemType::Vram, dst.addr(), 4096, 0), None)
            .unwrap();
    }
    a.load_remote_md(&b.local_md().unwrap()).unwrap();
    let req = a
        .create_xfer_req(
            XferOp::Write,
            &xfer(MemType::Vram, src.addr(), 4096, 0),
            &xfer(MemType::Vram, dst.addr(), 4096, 0),
            "tb",
            None,
        )
        .unwrap();
    let outcome = run(&a, &req);
    let status = match outcome {
        Ok(s) => s,
        Err(e) => e.status(),
    };
    assert_eq!(status, Status::NotSupported);
}

#[test]
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

const IPC_LEN: usize = 64 << 20;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

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
#[test]
#[ignore = "run in a child process by the two-process IPC tests"]
fn ipc_child() {
    let mode = std::env::var("NIXL_CUDA_IPC_CHILD").expect("run by the parent test");
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
fn two_processes(mode: &str) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "ipc_child", "--ignored", "--nocapture"])
        .env("NIXL_CUDA_IPC_CHILD", mode)
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
fn vram_across_two_processes_over_cuda_ipc() {
    if gpu() {
        two_processes("plain");
    }
}

#[test]
fn vmm_vram_across_two_processes_as_file_descriptors() {
    if gpu() {
        two_processes("vmm");
    }
}
