//! Tests of the POSIX backend through the agent API, on real files.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};

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
    let dram = RegDescList::from_descs(
        MemType::Dram,
        vec![RegDesc::new(buf.as_ptr() as u64, buf.len() as u64, 0)],
    );
    let file = RegDescList::from_descs(MemType::File, vec![RegDesc::new(0, 0, fd as u64)]);
    // SAFETY: `buf` outlives the transfer, which completes (or fails) before we return, and
    // the registrations are removed before returning.
    unsafe {
        a.register_mem(&dram, None)?;
        a.register_mem(&file, None)?;
    }
    let local = XferDescList::from_descs(
        MemType::Dram,
        vec![Desc::new(buf.as_ptr() as u64, buf.len() as u64, 0)],
    );
    let remote = XferDescList::from_descs(
        MemType::File,
        vec![Desc::new(offset, buf.len() as u64, fd as u64)],
    );
    let result = (|| {
        let req = a.create_xfer_req(op, &local, &remote, a.name(), None)?;
        let mut status = a.post_xfer_req(&req, None)?;
        while status == Status::InProg {
            std::thread::yield_now();
            status = a.xfer_status(&req)?;
        }
        Ok(())
    })();
    a.deregister_mem(&dram, None).unwrap();
    a.deregister_mem(&file, None).unwrap();
    result
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
fn bad_fd_and_full_device_fail_the_request() {
    let a = agent(&[]);
    let mut buf = vec![5u8; 512];
    // An fd number far above anything this test process has open.
    let e = transfer(&a, XferOp::Write, &mut buf, 1_000_000, 0).unwrap_err();
    assert_eq!(e.status(), Status::Backend);
    assert!(e.message().contains("Bad file descriptor"), "{e}");

    let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    let e = transfer(&a, XferOp::Write, &mut buf, full.as_raw_fd(), 0).unwrap_err();
    assert!(e.message().contains("No space left"), "{e}");
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
