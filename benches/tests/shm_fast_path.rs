//! The shared-mapping fast path between two processes: data arrives, the
//! peer's memfd is really mapped here (so the path is taken), and once the
//! target deregisters, a transfer made earlier is refused and touches nothing.

use nixl_benches::buffer::{Buffer, Segment};
use nixl_core::{
    Agent, AgentConfig, Desc, MemType, RegDesc, RegDescList, Status, XferDescList, XferOp,
    XferRequest,
};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use test_support::hex;

const SIZE: usize = 1 << 20;

struct Target {
    child: Child,
    tx: ChildStdin,
    rx: BufReader<ChildStdout>,
}

impl Target {
    fn ask(&mut self, line: &str) -> String {
        writeln!(self.tx, "{line}").unwrap();
        self.tx.flush().unwrap();
        let mut s = String::new();
        self.rx.read_line(&mut s).unwrap();
        s.trim().to_string()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = writeln!(self.tx, "QUIT");
        let _ = self.child.wait();
    }
}

fn run(a: &Agent, req: &XferRequest) -> nixl_core::Result<()> {
    let mut st = a.post_xfer_req(req, None)?;
    while st == Status::InProg {
        st = a.xfer_status(req)?;
    }
    Ok(())
}

#[test]
fn shared_mapping_copies_and_still_validates() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nixl-target"))
        .args([SIZE.to_string(), "shared".into()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn nixl-target");
    let tx = child.stdin.take().unwrap();
    let mut rx = BufReader::new(child.stdout.take().unwrap());
    let mut hello = String::new();
    rx.read_line(&mut hello).unwrap();
    let mut t = Target { child, tx, rx };
    let f: Vec<String> = hello.split_whitespace().map(str::to_string).collect();
    assert_eq!(f[0], "READY", "{hello}");
    let (name, addr) = (f[1].clone(), f[2].parse::<u64>().unwrap());
    let md: Vec<u8> = (0..f[3].len() / 2)
        .map(|i| u8::from_str_radix(&f[3][2 * i..2 * i + 2], 16).unwrap())
        .collect();

    let a = Agent::new("shm-test", AgentConfig::default()).unwrap();
    a.create_backend("UCX", &Default::default()).unwrap();
    let mut src = Buffer::new(SIZE, Segment::Malloc);
    let dst = Buffer::new(SIZE, Segment::Malloc);
    src.as_mut_slice().fill(0xAB);
    let reg = RegDescList::from_descs(
        MemType::Dram,
        vec![
            RegDesc::new(src.addr() as u64, SIZE as u64, 0),
            RegDesc::new(dst.addr() as u64, SIZE as u64, 0),
        ],
    );
    // SAFETY: both buffers outlive the agent (dropped after it below).
    unsafe { a.register_mem(&reg, None) }.unwrap();
    assert_eq!(a.load_remote_md(&md).unwrap(), name);
    assert_eq!(
        t.ask(&format!("LOAD {}", hex(&a.local_md().unwrap()))),
        "OK"
    );

    // This process holds no shared buffer of its own: a `nixl_core::SharedBuffer` memfd
    // (named `nixl-rs-buffer`) mapped here is the target's.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(
        maps.contains("/memfd:nixl-rs-buffer"),
        "the target's memfd is not mapped here: fast path not taken"
    );

    let list = |base: usize| {
        XferDescList::from_descs(MemType::Dram, vec![Desc::new(base as u64, 65536, 0)])
    };
    let remote = XferDescList::from_descs(MemType::Dram, vec![Desc::new(addr + 4096, 65536, 0)]);
    let w = a
        .create_xfer_req(XferOp::Write, &list(src.addr()), &remote, &name, None)
        .unwrap();
    run(&a, &w).unwrap();
    assert_eq!(
        t.ask("SUM"),
        (65536u64 * 0xAB).to_string(),
        "WRITE did not land"
    );
    let r = a
        .create_xfer_req(XferOp::Read, &list(dst.addr()), &remote, &name, None)
        .unwrap();
    run(&a, &r).unwrap();
    assert!(
        dst.as_slice()[..65536].iter().all(|&b| b == 0xAB),
        "READ did not return the data"
    );

    // Deregistered on the target: the request made before is refused, nothing is touched.
    assert_eq!(t.ask("FILL 0"), "OK");
    assert_eq!(t.ask("DEREG"), "OK");
    let err = run(&a, &w).expect_err("a WRITE into deregistered memory went through");
    assert_eq!(err.status(), Status::NotAllowed, "{err}");
    assert_eq!(t.ask("SUM"), "0", "deregistered memory was written");
    a.release_xfer_req(w).ok();
    a.release_xfer_req(r).ok();
    drop(a);
    drop((src, dst));
}
