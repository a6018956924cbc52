//! The VRAM paths end to end in CI, without a GPU: a fake `libcuda.so.1`
//! (`tests/fake_cuda/fake_device.c`, built with `cc`) offers one "device" whose memory is host
//! shared memory, and child processes running on it move data through every route: same
//! process, TCP with staging on either or both sides, POSIX files, and two processes over
//! (fake) CUDA IPC: a legacy handle, or a VMM buffer of four allocations, which the driver
//! reports as one range and the registration must split, shared as file descriptors. Each transfer goes into a poisoned target, with the data checked
//! when the notification arrives. The fake's copies complete at once, so this checks routing,
//! staging, framing, IPC mapping and target-side checks, not asynchrony (tests/cuda_gpu.rs and
//! tests/cuda_ipc.rs do that on a GPU).
#![cfg(feature = "cuda")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{hex, run, tcp_params, unhex, wait_notifs};
use nixl_core::testing::cuda::{self, mem::DeviceBuffer, mem::VmmBuffer};
use nixl_core::*;
use test_support::random_bytes as random;

/// Builds the fake driver (the C file plus stubs for the entry points it leaves out); None if
/// there is no C compiler.
fn build_fake(tag: &str) -> Option<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("nixl-cuda-fake-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut src = include_str!("fake_cuda/fake_device.c").to_string();
    for name in cuda::driver::SYMBOLS {
        if !src.contains(&format!(" {name}(")) {
            src.push_str(&format!("int {name}(void) {{ return 999; }}\n"));
        }
    }
    std::fs::write(dir.join("fake.c"), src).unwrap();
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(dir.join("libcuda.so.1"))
        .arg(dir.join("fake.c"))
        .arg("-lpthread")
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("cc failed to build the fake driver: {s}"),
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

/// Re-runs test `test` as child `role` (see [`play`]) on the fake driver in `dir`, with `env`.
fn child(dir: &std::path::Path, test: &str, role: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = test_support::child_command(test, role);
    cmd.env("LD_LIBRARY_PATH", dir)
        .env("NIXL_CUDA_FAKE_CHILD", "1")
        .envs(env.iter().copied());
    cmd
}

/// Runs a child to completion, killing it after `CHILD_LIMIT`: a child that hangs (a request
/// never finishing keeps its agent from shutting down) fails the test instead of stalling it.
fn output(mut cmd: Command) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let read_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let deadline = std::time::Instant::now() + CHILD_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&read_err.join().unwrap()).into_owned();
            panic!("the child ran past {CHILD_LIMIT:?} and was killed: {err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: read_out.join().unwrap(),
        stderr: read_err.join().unwrap(),
    }
}

/// The longest a child test may run.
const CHILD_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Checks that a child succeeded and printed `marker`.
fn check_child(out: std::process::Output, marker: &str) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed: {text}");
    assert!(text.contains(marker), "child did not finish: {text}");
}

/// The child side of every test here: each test calls this first, and in a child started by
/// [`child`] plays its role instead of the parent's part.
fn play() -> bool {
    let Some(role) = test_support::child_role() else {
        return false;
    };
    match role.as_str() {
        "device" => fake_device_child(),
        "unpolled" => fake_unpolled_child(),
        "ipc-owner" => fake_ipc_owner(),
        "ipc-user" => fake_ipc_user(),
        other => panic!("unknown child role {other}"),
    }
    true
}

#[test]
fn vram_routes_on_a_fake_device() {
    if play() {
        return;
    }
    let Some(dir) = build_fake("routes") else {
        return;
    };
    let out = output(child(&dir, "vram_routes_on_a_fake_device", "device", &[]));
    let _ = std::fs::remove_dir_all(&dir);
    check_child(out, "FAKE-DEVICE-OK");
}

#[test]
fn unpolled_requests_finish_and_notify_without_a_poll() {
    if play() {
        return;
    }
    let Some(dir) = build_fake("unpolled") else {
        return;
    };
    let out = output(child(
        &dir,
        "unpolled_requests_finish_and_notify_without_a_poll",
        "unpolled",
        &[("FAKE_CUDA_EVENT_DELAY_US", &UNPOLLED_DELAY_US.to_string())],
    ));
    let _ = std::fs::remove_dir_all(&dir);
    check_child(out, "UNPOLLED-OK");
}

#[test]
fn vram_across_processes_over_fake_ipc() {
    if !play() {
        fake_ipc("vram_across_processes_over_fake_ipc", "legacy");
    }
}

#[test]
fn vmm_vram_across_processes_over_fake_ipc_file_descriptors() {
    if !play() {
        fake_ipc(
            "vmm_vram_across_processes_over_fake_ipc_file_descriptors",
            "vmm",
        );
    }
}

/// The owner (a child process) registers fake VRAM, plain (`mode` "legacy": one IPC handle) or
/// a VMM buffer of four allocations ("vmm": four file descriptors); the user (another child)
/// maps it from the owner's metadata and moves data both ways.
fn fake_ipc(test: &str, mode: &str) {
    let Some(dir) = build_fake(&format!("ipc-{mode}")) else {
        return;
    };
    let mut owner = child(&dir, test, "ipc-owner", &[("NIXL_CUDA_FAKE_IPC", mode)])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(owner.stdout.take().unwrap())
        .lines()
        .map_while(std::io::Result::ok);
    let mut field = |prefix: &str| {
        lines
            .by_ref()
            .find_map(|l| l.strip_prefix(prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("the owner printed no {prefix:?}"))
    };
    let addr = field("ADDR ");
    let len = field("LEN ");
    let chunks = field("CHUNKS ");
    let md_file = dir.join("owner.md");
    std::fs::write(&md_file, field("MD ")).unwrap();
    let user = output(child(
        &dir,
        test,
        "ipc-user",
        &[
            ("NIXL_CUDA_FAKE_MD", md_file.to_str().unwrap()),
            ("NIXL_CUDA_FAKE_ADDR", &addr),
            ("NIXL_CUDA_FAKE_LEN", &len),
            ("NIXL_CUDA_FAKE_CHUNKS", &chunks),
        ],
    ));
    check_child(user, "USER-OK");
    let rest: Vec<String> = lines.collect();
    let status = owner.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        status.success() && rest.iter().any(|l| l.contains("OWNER-OK")),
        "owner: {status}: {rest:?}"
    );
}

/// A buffer in (fake) VRAM, plain or VMM, or in DRAM.
enum Buf {
    Dev(DeviceBuffer),
    Vmm(VmmBuffer),
    Host(Vec<u8>),
}

impl Buf {
    fn new(mem: MemType, len: usize, fill: u8) -> Buf {
        match mem {
            MemType::Vram => {
                let b = DeviceBuffer::new(0, len).unwrap();
                b.fill(fill).unwrap();
                Buf::Dev(b)
            }
            _ => Buf::Host(vec![fill; len]),
        }
    }

    fn mem(&self) -> MemType {
        match self {
            Buf::Dev(_) | Buf::Vmm(_) => MemType::Vram,
            Buf::Host(_) => MemType::Dram,
        }
    }

    fn addr(&self) -> u64 {
        match self {
            Buf::Dev(b) => b.addr(),
            Buf::Vmm(b) => b.addr(),
            Buf::Host(v) => v.as_ptr() as u64,
        }
    }

    fn len(&self) -> usize {
        match self {
            Buf::Dev(b) => b.len(),
            Buf::Vmm(b) => b.len(),
            Buf::Host(v) => v.len(),
        }
    }

    fn set(&mut self, data: &[u8]) {
        match self {
            Buf::Dev(b) => b.upload(data).unwrap(),
            Buf::Vmm(b) => b.upload(data).unwrap(),
            Buf::Host(v) => v.copy_from_slice(data),
        }
    }

    fn get(&self) -> Vec<u8> {
        match self {
            Buf::Dev(b) => {
                let mut out = vec![0u8; b.len()];
                b.download(&mut out).unwrap();
                out
            }
            Buf::Vmm(b) => {
                let mut out = vec![0u8; b.len()];
                b.download(&mut out).unwrap();
                out
            }
            Buf::Host(v) => v.clone(),
        }
    }

    fn reg(&self) -> RegDescList {
        RegDescList::from_descs(
            self.mem(),
            vec![RegDesc::new(self.addr(), self.len() as u64, 0)],
        )
    }

    /// Two descriptors: the first `cut` bytes and the rest.
    fn xfer(&self, cut: usize) -> XferDescList {
        let (a, n) = (self.addr(), self.len() as u64);
        XferDescList::from_descs(
            self.mem(),
            vec![
                Desc::new(a, cut as u64, 0),
                Desc::new(a + cut as u64, n - cut as u64, 0),
            ],
        )
    }
}

/// WRITE local → remote with a notification (data checked on its arrival), then READ back
/// into a poisoned local buffer.
fn write_then_read(a: &Agent, b: &Agent, local: MemType, remote: MemType, len: usize, seed: u64) {
    let what = format!("{local} -> {remote}, {len} bytes");
    let data = random(len, seed);
    let mut src = Buf::new(local, len, 0);
    src.set(&data);
    let dst = Buf::new(remote, len, 0xA5);
    let back = Buf::new(local, len, 0x5A);
    let cut = len / 3;
    // SAFETY: the buffers outlive their registrations (removed below).
    unsafe {
        a.register_mem(&src.reg(), None).unwrap();
        a.register_mem(&back.reg(), None).unwrap();
        b.register_mem(&dst.reg(), None).unwrap();
    }
    a.load_remote_md(&b.local_md().unwrap()).unwrap();
    let w = a
        .create_xfer_req(
            XferOp::Write,
            &src.xfer(cut),
            &dst.xfer(cut),
            b.name(),
            Some(&OptArgs::with_notif(what.clone())),
        )
        .unwrap();
    assert_eq!(run(a, &w).unwrap(), Status::Success, "{what}");
    let notifs = wait_notifs(b, 1);
    assert_eq!(notifs[a.name()], vec![what.clone().into_bytes()]);
    let got = dst.get();
    if got != data {
        let i = got.iter().zip(&data).position(|(x, y)| x != y).unwrap();
        panic!(
            "{what}: WRITE differs at byte {i}: {:02x?} vs {:02x?}",
            &got[i..i + 8.min(len - i)],
            &data[i..i + 8.min(len - i)]
        );
    }
    let r = a
        .create_xfer_req(
            XferOp::Read,
            &back.xfer(cut),
            &dst.xfer(cut),
            b.name(),
            None,
        )
        .unwrap();
    assert_eq!(run(a, &r).unwrap(), Status::Success, "{what}");
    assert!(back.get() == data, "{what}: READ");
    a.invalidate_remote_md(b.name()).unwrap();
    a.deregister_mem(&src.reg(), None).unwrap();
    a.deregister_mem(&back.reg(), None).unwrap();
    b.deregister_mem(&dst.reg(), None).unwrap();
    println!("ok: {what}");
}

fn ucx_agent(name: &str, params: &Params) -> Agent {
    let a = Agent::new(name, AgentConfig::default()).unwrap();
    a.create_backend("UCX", params).unwrap();
    a
}

/// The child: runs only under `vram_routes_on_a_fake_device` (the fake on LD_LIBRARY_PATH).
fn fake_device_child() {
    assert!(
        std::env::var("NIXL_CUDA_FAKE_CHILD").is_ok(),
        "run by the parent test"
    );
    assert!(cuda::available(), "the fake driver did not load");
    assert_eq!(
        cuda::context::device_name(0).unwrap(),
        "Fake CUDA device (host memory)"
    );
    // Host memory is refused as VRAM.
    let host = vec![0u8; 4096];
    let probe = ucx_agent("probe", &Params::new());
    let list = RegDescList::from_descs(
        MemType::Vram,
        vec![RegDesc::new(host.as_ptr() as u64, 4096, 0)],
    );
    // SAFETY: refused before anything could touch it.
    let e = unsafe { probe.register_mem(&list, None) }.unwrap_err();
    assert!(e.message().contains("not GPU memory"), "{e}");

    // The larger size makes three staging batches (8 MiB each), so both buffers get reused.
    let sizes = [4096, (16 << 20) + 12];
    let pairs = [
        (MemType::Vram, MemType::Vram),
        (MemType::Vram, MemType::Dram),
        (MemType::Dram, MemType::Vram),
    ];
    for (params, tag) in [(Params::new(), "same process"), (tcp_params(), "tcp")] {
        println!("route: {tag}");
        let (a, b) = (ucx_agent("fa", &params), ucx_agent("fb", &params));
        for (i, &len) in sizes.iter().enumerate() {
            for (j, &(l, r)) in pairs.iter().enumerate() {
                write_then_read(&a, &b, l, r, len, (i * 10 + j) as u64 + 1);
            }
        }
    }

    // VRAM <-> FILE through POSIX staging.
    let p = Agent::new("fp", AgentConfig::default()).unwrap();
    p.create_backend("POSIX", &Params::new()).unwrap();
    let path = std::env::temp_dir().join(format!("nixl-cuda-fake-file-{}", std::process::id()));
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file) as u64;
    let len = (16 << 20) + 12;
    let data = random(len, 77);
    let mut src = Buf::new(MemType::Vram, len, 0);
    src.set(&data);
    let back = Buf::new(MemType::Vram, len, 0x5A);
    let files = RegDescList::from_descs(MemType::File, vec![RegDesc::new(0, 0, fd)]);
    // SAFETY: buffers and file outlive the agent.
    unsafe {
        p.register_mem(&src.reg(), None).unwrap();
        p.register_mem(&back.reg(), None).unwrap();
        p.register_mem(&files, None).unwrap();
    }
    let f = XferDescList::from_descs(MemType::File, vec![Desc::new(512, len as u64, fd)]);
    let one =
        |b: &Buf| XferDescList::from_descs(MemType::Vram, vec![Desc::new(b.addr(), len as u64, 0)]);
    let w = p
        .create_xfer_req(XferOp::Write, &one(&src), &f, "fp", None)
        .unwrap();
    assert_eq!(run(&p, &w).unwrap(), Status::Success);
    assert!(
        std::fs::read(&path).unwrap()[512..] == data[..],
        "VRAM -> FILE"
    );
    let r = p
        .create_xfer_req(XferOp::Read, &one(&back), &f, "fp", None)
        .unwrap();
    assert_eq!(run(&p, &r).unwrap(), Status::Success);
    assert!(back.get() == data, "FILE -> VRAM");
    let _ = std::fs::remove_file(&path);
    println!("ok: VRAM <-> FILE");
    println!("FAKE-DEVICE-OK");
}

const IPC_LEN: usize = (16 << 20) + 12;

/// Open IPC mappings, as the fake driver counts them.
/// How long the fake's events take to complete in `fake_unpolled_child`.
const UNPOLLED_DELAY_US: u64 = 30_000;

/// VRAM -> VRAM and VRAM -> DRAM WRITEs with notifications, posted and never polled: the
/// copies' events complete only after a delay, so the post sees them in progress, and the
/// notification must still arrive (the watcher finishes the request), no sooner than the
/// delay; the request then reads SUCCESS.
fn fake_unpolled_child() {
    assert!(
        std::env::var("FAKE_CUDA_EVENT_DELAY_US").is_ok(),
        "run by the parent test"
    );
    let (a, b) = (
        ucx_agent("unpolled-a", &Params::new()),
        ucx_agent("unpolled-b", &Params::new()),
    );
    for (i, remote_mem) in [MemType::Vram, MemType::Dram].into_iter().enumerate() {
        let len = 1 << 20;
        let data = random(len, 40 + i as u64);
        let mut src = Buf::new(MemType::Vram, len, 0);
        src.set(&data);
        let dst = Buf::new(remote_mem, len, 0xA5);
        // SAFETY: the buffers outlive their registrations.
        unsafe {
            a.register_mem(&src.reg(), None).unwrap();
            b.register_mem(&dst.reg(), None).unwrap();
        }
        a.load_remote_md(&b.local_md().unwrap()).unwrap();
        let msg = format!("unpolled {remote_mem}");
        let req = a
            .create_xfer_req(
                XferOp::Write,
                &src.xfer(4096),
                &dst.xfer(4096),
                b.name(),
                Some(&OptArgs::with_notif(msg.clone())),
            )
            .unwrap();
        let start = std::time::Instant::now();
        let posted = a.post_xfer_req(&req, None).unwrap();
        assert_eq!(
            posted,
            Status::InProg,
            "the fake's event is not complete yet"
        );
        let notifs = wait_notifs(&b, 1);
        let waited = start.elapsed();
        assert_eq!(notifs["unpolled-a"], vec![msg.into_bytes()]);
        assert!(
            waited >= std::time::Duration::from_micros(UNPOLLED_DELAY_US),
            "notified after {waited:?}, before the copies completed"
        );
        assert!(dst.get() == data, "{remote_mem}: the data is not there");
        assert_eq!(a.xfer_status(&req).unwrap(), Status::Success);
        a.invalidate_remote_md(b.name()).unwrap();
        a.deregister_mem(&src.reg(), None).unwrap();
        b.deregister_mem(&dst.reg(), None).unwrap();
        println!("ok: unpolled WRITE to {remote_mem} notified after {waited:?}");
    }
    println!("UNPOLLED-OK");
}

fn fake_ipc_open_count() -> i32 {
    // SAFETY: the fake driver is loaded in this process (RTLD_NOLOAD only finds it), and the
    // symbol is `int fake_ipc_open_count(void)`.
    unsafe {
        let lib = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        assert!(!lib.is_null(), "the fake driver is not loaded");
        let f = libc::dlsym(lib, c"fake_ipc_open_count".as_ptr());
        assert!(!f.is_null(), "not the fake driver");
        let f: extern "C" fn() -> i32 = std::mem::transmute(f);
        f()
    }
}

/// The owner process: registers fake VRAM holding seed 1's data, prints its address and
/// metadata, waits for the user's notification, checks that the user wrote seed 2's data.
fn fake_ipc_owner() {
    assert!(
        std::env::var("NIXL_CUDA_FAKE_CHILD").is_ok(),
        "run by the parent test"
    );
    let owner = ucx_agent("owner", &Params::new());
    let mut buf = match std::env::var("NIXL_CUDA_FAKE_IPC").as_deref() {
        // Four allocations of 64 granules (the fake's granule is 64 KiB) mapped back to back.
        Ok("vmm") => Buf::Vmm(VmmBuffer::shareable(0, 4, 64).unwrap()),
        _ => Buf::new(MemType::Vram, IPC_LEN, 0),
    };
    let len = buf.len();
    buf.set(&random(len, 1));
    // The registration sees each allocation, though the driver reports one range for all.
    let chunks = cuda::pointer::device_chunks(buf.addr(), len as u64, 0).unwrap();
    let want = if matches!(buf, Buf::Vmm(_)) { 4 } else { 1 };
    assert_eq!(
        chunks.len(),
        want,
        "chunks under the registration: {chunks:?}"
    );
    // SAFETY: `buf` outlives the agent.
    unsafe { owner.register_mem(&buf.reg(), None) }.unwrap();
    let md = hex(&owner.local_md().unwrap());
    println!("ADDR {}", buf.addr());
    println!("LEN {len}");
    println!("CHUNKS {}", chunks.len());
    println!("MD {md}");
    let notifs = wait_notifs(&owner, 1);
    assert_eq!(notifs["user"], vec![b"written".to_vec()]);
    assert!(buf.get() == random(len, 2), "the user's WRITE did not land");
    // Deregistered memory must be refused to the user from now on; stay until it says so.
    owner.deregister_mem(&buf.reg(), None).unwrap();
    let notifs = wait_notifs(&owner, 1);
    assert_eq!(notifs["user"], vec![b"refused".to_vec()]);
    println!("OWNER-OK");
}

/// The user process: maps the owner's VRAM through its IPC handle (once for all transfers),
/// READs it into VRAM and DRAM, WRITEs it with a notification, and closes the mapping when the
/// owner is invalidated.
fn fake_ipc_user() {
    let path = std::env::var("NIXL_CUDA_FAKE_MD").expect("run by the parent test");
    let addr: u64 = std::env::var("NIXL_CUDA_FAKE_ADDR")
        .unwrap()
        .parse()
        .unwrap();
    let len: usize = std::env::var("NIXL_CUDA_FAKE_LEN")
        .unwrap()
        .parse()
        .unwrap();
    let chunks: i32 = std::env::var("NIXL_CUDA_FAKE_CHUNKS")
        .unwrap()
        .parse()
        .unwrap();
    let md = unhex(std::fs::read_to_string(path).unwrap().trim());
    let user = ucx_agent("user", &Params::new());
    assert_eq!(user.load_remote_md(&md).unwrap(), "owner");
    let mut vram = Buf::new(MemType::Vram, len, 0xA5);
    let host = Buf::new(MemType::Dram, len, 0x5A);
    // SAFETY: both buffers outlive the agent.
    unsafe {
        user.register_mem(&vram.reg(), None).unwrap();
        user.register_mem(&host.reg(), None).unwrap();
    }
    let remote = XferDescList::from_descs(
        MemType::Vram,
        vec![
            Desc::new(addr, 4096, 0),
            Desc::new(addr + 4096, (len - 4096) as u64, 0),
        ],
    );
    assert_eq!(fake_ipc_open_count(), 0, "mapped before the first transfer");
    for local in [&vram, &host] {
        let r = user
            .create_xfer_req(XferOp::Read, &local.xfer(4096), &remote, "owner", None)
            .unwrap();
        assert_eq!(run(&user, &r).unwrap(), Status::Success);
        assert!(
            local.get() == random(len, 1),
            "{} READ over IPC",
            local.mem()
        );
    }
    // A descriptor outside the owner's registration is refused before any copy.
    let outside =
        XferDescList::from_descs(MemType::Vram, vec![Desc::new(addr + 4096, len as u64, 0)]);
    assert!(
        user.create_xfer_req(XferOp::Read, &vram.xfer(4096), &outside, "owner", None)
            .is_err()
    );
    vram.set(&random(len, 2));
    let w = user
        .create_xfer_req(
            XferOp::Write,
            &vram.xfer(4096),
            &remote,
            "owner",
            Some(&OptArgs::with_notif("written")),
        )
        .unwrap();
    assert_eq!(run(&user, &w).unwrap(), Status::Success);
    assert_eq!(
        fake_ipc_open_count(),
        chunks,
        "one mapping per allocation serves every transfer"
    );
    // The owner deregisters its VRAM on that notification: the mapping stays open here, but
    // the owner's shared registration table must refuse every further access.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let refused = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "deregistered VRAM stayed reachable"
        );
        let r = user
            .create_xfer_req(XferOp::Read, &vram.xfer(4096), &remote, "owner", None)
            .unwrap();
        match run(&user, &r) {
            Ok(Status::Success) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Ok(other) => break other,
            Err(e) => break e.status(),
        }
    };
    assert_eq!(refused, Status::NotAllowed);
    user.gen_notif("owner", b"refused", None).unwrap();
    user.invalidate_remote_md("owner").unwrap();
    assert_eq!(fake_ipc_open_count(), 0, "invalidation closes the mapping");
    println!("USER-OK");
}
