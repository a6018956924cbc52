//! Tests of the POSIX backend through the agent API, on real files.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::PosixBackend;
use crate::backend::{Backend, Params};
use crate::registry::Region;
use crate::{
    Agent, AgentConfig, Desc, MemType, OptArgs, RegDesc, RegDescList, Status, XferDescList, XferOp,
};

fn temp_path(tag: &str) -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("nixl-posix-{}-{tag}-{n}", std::process::id()))
}

fn rw_file(tag: &str) -> (File, std::path::PathBuf) {
    let path = temp_path(tag);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    (f, path)
}

fn agent(params: &[(&str, &str)]) -> Agent {
    let a = Agent::new("posix-test", AgentConfig::default()).unwrap();
    let params = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    a.create_backend("POSIX", &params).unwrap();
    a
}

/// Registers `buf` (DRAM) and the whole file `fd`, then runs one transfer to completion.
fn transfer(a: &Agent, op: XferOp, buf: &mut [u8], fd: i32, offset: u64) -> crate::Result<()> {
    let dram = dram_reg(buf);
    let file = file_reg(fd as u64);
    // SAFETY: `buf` outlives the transfer, which completes (or fails) before we return, and
    // the registrations are removed before returning.
    unsafe {
        a.register_mem(&dram, None)?;
        a.register_mem(&file, None)?;
    }
    let result = run_xfer(a, op, buf, fd, offset);
    a.deregister_mem(&dram, None).unwrap();
    a.deregister_mem(&file, None).unwrap();
    result
}

fn dram_reg(buf: &[u8]) -> RegDescList {
    RegDescList::from_descs(
        MemType::Dram,
        vec![RegDesc::new(buf.as_ptr() as u64, buf.len() as u64, 0)],
    )
}

/// The whole file behind descriptor number `dev_id`.
fn file_reg(dev_id: u64) -> RegDescList {
    RegDescList::from_descs(MemType::File, vec![RegDesc::new(0, 0, dev_id)])
}

/// Runs one transfer between registered `buf` and registered file `fd` to completion.
fn run_xfer(a: &Agent, op: XferOp, buf: &mut [u8], fd: i32, offset: u64) -> crate::Result<()> {
    let local = XferDescList::from_descs(
        MemType::Dram,
        vec![Desc::new(buf.as_ptr() as u64, buf.len() as u64, 0)],
    );
    let remote = XferDescList::from_descs(
        MemType::File,
        vec![Desc::new(offset, buf.len() as u64, fd as u64)],
    );
    let req = a.create_xfer_req(op, &local, &remote, a.name(), None)?;
    let mut status = a.post_xfer_req(&req, None)?;
    while status == Status::InProg {
        std::thread::yield_now();
        status = a.xfer_status(&req)?;
    }
    Ok(())
}

/// A duplicate of `f` numbered `min` or above: far above the numbers other tests' files get
/// (the kernel hands out the lowest free one), so once closed no other test reopens it. Each
/// test passes its own `min` (below the usual 1024-descriptor limit).
fn high_dup(f: &File, min: i32) -> OwnedFd {
    // SAFETY: F_DUPFD_CLOEXEC duplicates an open descriptor we own; the result is checked.
    let fd = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    assert!(fd >= min, "{}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just opened by us and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn write_then_read_round_trips_inline_and_on_the_pool() {
    for (size, inline_max) in [(4096usize, "262144"), (9 << 20, "0")] {
        let a = agent(&[("inline_max_bytes", inline_max), ("num_threads", "3")]);
        let (mut f, path) = rw_file("rt");
        let mut src: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        transfer(&a, XferOp::Write, &mut src, f.as_raw_fd(), 100).unwrap();
        let mut on_disk = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut on_disk).unwrap();
        assert_eq!(on_disk.len(), size + 100);
        assert_eq!(&on_disk[100..], &src[..]);

        let mut dst = vec![0u8; size];
        transfer(&a, XferOp::Read, &mut dst, f.as_raw_fd(), 100).unwrap();
        assert_eq!(dst, src);
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn read_past_end_of_file_is_a_short_read_error() {
    let a = agent(&[]);
    let (mut f, path) = rw_file("short");
    f.write_all(&[1u8; 1000]).unwrap();
    let mut dst = vec![0u8; 4096];
    let e = transfer(&a, XferOp::Read, &mut dst, f.as_raw_fd(), 0).unwrap_err();
    assert_eq!(e.status(), Status::Backend);
    assert!(e.message().contains("short read"), "{e}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn full_device_fails_the_request() {
    let a = agent(&[]);
    let mut buf = vec![5u8; 512];
    let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    let e = transfer(&a, XferOp::Write, &mut buf, full.as_raw_fd(), 0).unwrap_err();
    assert_eq!(e.status(), Status::Backend);
    assert!(e.message().contains("No space left"), "{e}");
}

#[test]
fn fd_that_is_not_open_is_refused_at_registration() {
    let a = agent(&[]);
    let (f, path) = rw_file("badfd");
    let cases = [
        (u64::MAX, "is not a file descriptor"), // -1 cast to u64
        (i32::MAX as u64 + 1, "is not a file descriptor"),
        (1_000_000, "Bad file descriptor"), // far above anything this process has open
    ];
    for (dev_id, why) in cases {
        // SAFETY: FILE registrations name no memory.
        let e = unsafe { a.register_mem(&file_reg(dev_id), None) }.unwrap_err();
        let msg = e.message();
        assert!(
            msg.contains(&format!("dev_id {dev_id} ")) && msg.contains(why),
            "{e}"
        );
        // Nothing was registered: there is nothing to deregister.
        let e = a.deregister_mem(&file_reg(dev_id), None).unwrap_err();
        assert_eq!(e.status(), Status::NotFound);
    }

    // A list with one good and one closed descriptor is refused whole.
    let dup = high_dup(&f, 900);
    let closed = dup.as_raw_fd() as u64;
    drop(dup);
    let both = RegDescList::from_descs(
        MemType::File,
        vec![
            RegDesc::new(0, 0, f.as_raw_fd() as u64),
            RegDesc::new(0, 0, closed),
        ],
    );
    // SAFETY: FILE registrations name no memory.
    let e = unsafe { a.register_mem(&both, None) }.unwrap_err();
    assert!(
        e.message()
            .contains(&format!("dev_id {closed} is not an open file descriptor")),
        "{e}"
    );
    assert!(e.message().contains("Bad file descriptor"), "{e}");
    let good = file_reg(f.as_raw_fd() as u64);
    assert_eq!(
        a.deregister_mem(&good, None).unwrap_err().status(),
        Status::NotFound
    );

    // The backend itself says why: a bad parameter.
    let posix = PosixBackend::new(&Params::new()).unwrap();
    let region = |dev_id| Region {
        desc: Desc::new(0, 0, dev_id),
        key: 1,
        meta: Arc::from(&[][..]),
        public: Arc::from(&[][..]),
    };
    for dev_id in [u64::MAX, closed] {
        let e = posix.register(MemType::File, &region(dev_id)).unwrap_err();
        assert_eq!(e.status(), Status::InvalidParam, "{e}");
    }
    posix
        .register(MemType::File, &region(f.as_raw_fd() as u64))
        .unwrap();
    std::fs::remove_file(path).unwrap();
}

#[test]
fn o_path_descriptor_is_refused_at_registration() {
    let a = agent(&[]);
    let (_f, path) = rw_file("opath");
    let p = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&path)
        .unwrap();
    // SAFETY: FILE registrations name no memory.
    let e = unsafe { a.register_mem(&file_reg(p.as_raw_fd() as u64), None) }.unwrap_err();
    assert!(e.message().contains("O_PATH"), "{e}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn read_only_and_write_only_files_register_and_transfer() {
    let a = agent(&[]);
    let (mut f, path) = rw_file("modes");
    f.write_all(&[9u8; 256]).unwrap();
    let ro = File::open(&path).unwrap();
    let mut dst = vec![0u8; 256];
    transfer(&a, XferOp::Read, &mut dst, ro.as_raw_fd(), 0).unwrap();
    assert_eq!(dst, vec![9u8; 256]);

    let wo = OpenOptions::new().write(true).open(&path).unwrap();
    let mut src = vec![4u8; 128];
    transfer(&a, XferOp::Write, &mut src, wo.as_raw_fd(), 64).unwrap();
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(&on_disk[64..192], &src[..]);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn fd_closed_after_registration_fails_the_request() {
    let a = agent(&[]);
    let (f, path) = rw_file("closed-later");
    let dup = high_dup(&f, 960);
    let fd = dup.as_raw_fd();
    let mut buf = vec![5u8; 512];
    let (dram, file) = (dram_reg(&buf), file_reg(fd as u64));
    // SAFETY: `buf` outlives the transfer and both registrations are removed below.
    unsafe {
        a.register_mem(&dram, None).unwrap();
        a.register_mem(&file, None).unwrap();
    }
    drop(dup);
    let e = run_xfer(&a, XferOp::Write, &mut buf, fd, 0).unwrap_err();
    assert_eq!(e.status(), Status::Backend);
    assert!(
        e.message().contains(&format!("fd {fd}")) && e.message().contains("Bad file descriptor"),
        "{e}"
    );
    a.deregister_mem(&dram, None).unwrap();
    a.deregister_mem(&file, None).unwrap();
    std::fs::remove_file(path).unwrap();
}

#[test]
fn dram_to_dram_is_refused() {
    let a = agent(&[]);
    let mut buf = vec![0u8; 64];
    let reg = RegDescList::from_descs(
        MemType::Dram,
        vec![RegDesc::new(buf.as_mut_ptr() as u64, 64, 0)],
    );
    // SAFETY: `buf` outlives the agent's use of it (nothing is transferred).
    unsafe { a.register_mem(&reg, None).unwrap() };
    let half = |off: u64| {
        XferDescList::from_descs(
            MemType::Dram,
            vec![Desc::new(buf.as_ptr() as u64 + off, 32, 0)],
        )
    };
    let req = a
        .create_xfer_req(XferOp::Write, &half(0), &half(32), a.name(), None)
        .unwrap();
    let e = a.post_xfer_req(&req, None).unwrap_err();
    assert_eq!(e.status(), Status::NotSupported);
}

#[test]
fn query_mem_reports_existence_and_size() {
    let a = agent(&[]);
    let posix = a.backend("POSIX").unwrap();
    let (mut f, path) = rw_file("query");
    f.write_all(&[0u8; 1234]).unwrap();
    let missing = temp_path("missing");
    let descs = RegDescList::from_descs(
        MemType::File,
        vec![
            RegDesc::with_meta(0, 0, 0, path.to_str().unwrap()),
            RegDesc::with_meta(0, 0, 0, missing.to_str().unwrap()),
            RegDesc::new(0, 0, f.as_raw_fd() as u64),
        ],
    );
    let opts = OptArgs {
        backends: vec![posix],
        ..OptArgs::default()
    };
    let resp = a.query_mem(&descs, Some(&opts)).unwrap();
    assert_eq!(resp.len(), 3);
    assert_eq!(resp[0].as_ref().unwrap()["size"], "1234");
    assert!(resp[1].is_none());
    assert_eq!(resp[2].as_ref().unwrap()["size"], "1234");
    assert!(!resp[0].as_ref().unwrap()["mtime"].is_empty());
    let empty = RegDescList::new(MemType::File);
    assert!(a.query_mem(&empty, Some(&opts)).unwrap().is_empty());
    std::fs::remove_file(path).unwrap();
}

#[test]
fn unknown_parameter_is_refused() {
    let a = Agent::new("p", AgentConfig::default()).unwrap();
    let params = [("bogus".to_string(), "1".to_string())]
        .into_iter()
        .collect();
    let e = a.create_backend("POSIX", &params).err().unwrap();
    assert_eq!(e.status(), Status::InvalidParam);
}
