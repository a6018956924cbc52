//! Same-host fast paths under attack (issue 15, F2–F5): forged metadata must not widen what
//! a peer may touch, and deregistration must wait for peer copies in flight.
//!
//! The target is this test binary re-run as a child process (`child_target`, selected by the
//! `HARDEN_TARGET` environment variable); the test process is the initiator and edits the
//! target's metadata bytes the way an attacker (or a corrupted store) would.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use common::*;
use nixl_core::SharedBuffer;
use nixl_core::testing::metadata::AgentMetadata;
use nixl_core::*;

/// The target's buffer: only `[REG_OFF, REG_OFF + REG_LEN)` is registered; the rest stands
/// for the process's other memory (secrets, other tenants' KV blocks).
const BUF_LEN: usize = 64 << 10;
const REG_OFF: usize = 16 << 10;
const REG_LEN: usize = 16 << 10;
/// Seed of the target's buffer content.
const TARGET_SEED: u64 = 1;
/// Registrations the F4 target adds (more than the shared table lists: 2^19).
const MANY: usize = (1 << 19) + 16;

/// A target child process speaking `@`-prefixed lines (the harness prints others).
struct Target {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    md: Vec<u8>,
    base: u64,
}

impl Target {
    fn spawn(layout: &str) -> Target {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_target", "--nocapture", "--test-threads=1"])
            .env("HARDEN_TARGET", layout)
            // Deregistration must wait for our held copy, never give up on it here.
            .env("NIXL_RS_PEER_TIMEOUT_MS", "120000")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the target");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout)
                .lines()
                .map_while(std::io::Result::ok)
            {
                // The harness may print "test child_target ... " on the same line first.
                if let Some((_, l)) = line.split_once('@')
                    && tx.send(l.to_string()).is_err()
                {
                    break;
                }
            }
        });
        let mut t = Target {
            child,
            stdin,
            lines,
            md: Vec::new(),
            base: 0,
        };
        t.md = unhex(&t.expect("MD "));
        t.base = t.expect("BASE ").parse().unwrap();
        t
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn next(&mut self, wait: Duration) -> std::result::Result<String, RecvTimeoutError> {
        self.lines.recv_timeout(wait)
    }

    fn expect(&mut self, prefix: &str) -> String {
        let line = self.next(Duration::from_secs(60)).expect("target answered");
        assert!(
            line.starts_with(prefix),
            "expected {prefix:?}, got {line:?}"
        );
        line[prefix.len()..].to_string()
    }

    /// Checksum of the target's bytes `[off, off + len)` of its buffer.
    fn sum(&mut self, off: usize, len: usize) -> String {
        self.send(&format!("SUM {off} {len}"));
        self.expect("SUM ")
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sum_of(bytes: &[u8]) -> String {
    format!("{:016x}", checksum(bytes))
}

fn say(line: String) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "@{line}");
    let _ = o.flush();
}

/// The child processes' side: not a test of its own (it returns at once unless spawned as a
/// child). `HARDEN_TARGET=heap|shm`: a target; `stalled-writer`: an initiator that stalls in a
/// WRITE to the region named on its stdin and then waits to be killed.
#[test]
fn child_target() {
    let Ok(layout) = std::env::var("HARDEN_TARGET") else {
        return;
    };
    if layout == "stalled-writer" {
        return stalled_writer();
    }
    let agent = agent("tgt");
    let shared;
    let mut heap;
    let base = if layout == "shm" {
        shared = SharedBuffer::new(BUF_LEN).unwrap();
        shared.write_at(0, &filled(BUF_LEN, TARGET_SEED));
        shared.addr() as u64
    } else {
        heap = filled(BUF_LEN, TARGET_SEED);
        heap.as_mut_ptr() as u64
    };
    let reg = reg_list(&[(base + REG_OFF as u64, REG_LEN as u64)]);
    // SAFETY: `buf` outlives the agent's use of it (the process ends in this function).
    unsafe { agent.register_mem(&reg, None) }.unwrap();
    say(format!("MD {}", hex(&agent.local_md().unwrap())));
    say(format!("BASE {base}"));
    let mut many: Vec<u8> = Vec::new();
    std::thread::scope(|scope| {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["SUM", off, len] => {
                    let (off, len): (usize, usize) = (off.parse().unwrap(), len.parse().unwrap());
                    say(format!("SUM {}", sum_of(&snapshot(base + off as u64, len))));
                }
                ["MANY", n] => {
                    let n: usize = n.parse().unwrap();
                    many = vec![0u8; n];
                    let ranges: Vec<(u64, u64)> = (0..n)
                        .map(|i| (many.as_ptr() as u64 + i as u64, 1))
                        .collect();
                    // SAFETY: `many` lives until the process ends.
                    let r = unsafe { agent.register_mem(&reg_list(&ranges), None) };
                    say(format!("MANY {}", if r.is_ok() { "ok" } else { "failed" }));
                }
                ["DEREG"] => {
                    say("DEREGISTERING".into());
                    // On its own thread, so PROBE can run while it waits for copies in flight.
                    let (agent, reg) = (&agent, &reg);
                    scope.spawn(move || {
                        agent.deregister_mem(reg, None).unwrap();
                        // The snapshot right when deregistration returns: nothing may change it
                        // later.
                        let bytes = snapshot(base + REG_OFF as u64, REG_LEN);
                        say(format!("DEREGISTERED {}", sum_of(&bytes)));
                    });
                }
                ["PROBE"] => {
                    // Reads the agent's registrations, as a peer's metadata request does.
                    let md = agent.local_md().unwrap();
                    say(format!("PROBED {}", md.len()));
                }
                _ => break,
            }
        }
    });
    drop(agent);
    drop(many);
}

/// A copy of `len` bytes at `addr` inside the target's buffer, taken through raw addresses:
/// peers may write them meanwhile (which is what the checks look for), so no `&[u8]` is formed.
fn snapshot(addr: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    // SAFETY: the range lies inside the target's buffer, alive until the process ends.
    unsafe { std::ptr::copy(addr as *const u8, out.as_mut_ptr(), len) };
    out
}

/// Decodes a blob, lets `edit` change it, encodes it again.
fn forge(md: &[u8], edit: impl FnOnce(&mut AgentMetadata)) -> Vec<u8> {
    let mut m = AgentMetadata::decode(md).unwrap();
    edit(&mut m);
    m.encode()
}

/// Offset of `regtab_fd` in the network backend's connection info (docs/PROTOCOL.md §2).
const REGTAB_FD_AT: usize = 1 + 16 + 8 + 8 + 4 + 8 + 8 + 8 + 2;

fn set_regtab_fd(m: &mut AgentMetadata, fd: u32) {
    let info = &mut m.conns.iter_mut().find(|(b, _)| b == "UCX").unwrap().1;
    info[REGTAB_FD_AT..REGTAB_FD_AT + 4].copy_from_slice(&fd.to_le_bytes());
}

/// Adds a region the target never registered: its first 16 KiB, under a made-up key.
fn add_forged_region(m: &mut AgentMetadata, base: u64) {
    let section = &mut m.sections[0];
    let mut forged = section.regions[0].clone();
    forged.desc = Desc::new(base, REG_OFF as u64, 0);
    forged.key = 0x5eed_0bad_c0de_f00d;
    forged.public.clear();
    section.regions.push(forged);
}

fn xfer(me: &Agent, op: XferOp, local: (u64, u64), remote: (u64, u64)) -> Result<Status> {
    let req = me.create_xfer_req(op, &dram(&[local]), &dram(&[remote]), "tgt", None)?;
    run(me, &req)
}

/// A forged region at never-registered memory is neither read nor written.
fn forged_region_is_refused(me: &Agent, t: &mut Target) {
    let secret = filled(BUF_LEN, TARGET_SEED)[..REG_OFF].to_vec();
    let local = vec![0u8; REG_OFF];
    register(me, &local);
    let read = xfer(
        me,
        XferOp::Read,
        (addr(&local), REG_OFF as u64),
        (t.base, REG_OFF as u64),
    );
    assert!(local != secret, "unregistered memory was read: {read:?}");
    assert_eq!(read.unwrap_err().status(), Status::NotAllowed);
    let ours = filled(REG_OFF, 5);
    register(me, &ours);
    let write = xfer(
        me,
        XferOp::Write,
        (addr(&ours), REG_OFF as u64),
        (t.base, REG_OFF as u64),
    );
    assert_eq!(
        t.sum(0, REG_OFF),
        sum_of(&secret),
        "unregistered memory was written: {write:?}"
    );
    assert_eq!(write.unwrap_err().status(), Status::NotAllowed);
    // The registered region still works (over whichever route the initiator chose).
    let back = vec![0u8; REG_LEN];
    register(me, &back);
    let ok = xfer(
        me,
        XferOp::Read,
        (addr(&back), REG_LEN as u64),
        (t.base + REG_OFF as u64, REG_LEN as u64),
    );
    assert_eq!(ok.unwrap(), Status::Success);
    assert!(back == filled(BUF_LEN, TARGET_SEED)[REG_OFF..REG_OFF + REG_LEN]);
}

/// F3: connection info without a registration table (or naming a descriptor that is not
/// one) must not switch the target-side check off.
#[test]
fn f3_no_registration_table_means_no_unchecked_cross_memory_attach() {
    for fd in [u32::MAX, 2] {
        let mut t = Target::spawn("heap");
        let me = agent("init");
        let blob = forge(&t.md, |m| {
            set_regtab_fd(m, fd);
            add_forged_region(m, t.base);
        });
        me.load_remote_md(&blob).unwrap();
        forged_region_is_refused(&me, &mut t);
    }
}

/// F4: a target with more live registrations than its shared table lists must not be copied
/// from or into unchecked.
#[test]
fn f4_registration_table_overflow_is_never_trusted() {
    let mut t = Target::spawn("heap");
    t.send(&format!("MANY {MANY}"));
    assert_eq!(t.expect("MANY "), "ok");
    let me = agent("init");
    me.load_remote_md(&forge(&t.md, |m| add_forged_region(m, t.base)))
        .unwrap();
    forged_region_is_refused(&me, &mut t);
}

fn shm_public(m: &mut AgentMetadata) -> &mut Vec<u8> {
    let public = &mut m.sections[0].regions[0].public;
    assert_eq!(
        public.get(..4),
        Some(&b"SHM1"[..]),
        "a memfd region publishes its backing"
    );
    public
}

fn maps_target_memfd() -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .contains("memfd:nixl-rs-buffer")
}

/// F2: the shared-mapping fast path places its mapping by the target's word, not by the file
/// offset in the metadata; a bad offset is never a crash.
#[test]
fn f2_shared_mapping_ignores_forged_file_offsets() {
    let mut t = Target::spawn("shm");
    let me = agent("init");
    let original = filled(BUF_LEN, TARGET_SEED);
    let region = (t.base + REG_OFF as u64, REG_LEN as u64);
    // The published offset moved 8 KiB back, into unregistered memory.
    let blob = forge(&t.md, |m| {
        let public = shm_public(m);
        let offset = u64::from_le_bytes(public[8..16].try_into().unwrap());
        assert_eq!(offset, REG_OFF as u64);
        public[8..16].copy_from_slice(&(offset - 8192).to_le_bytes());
    });
    me.load_remote_md(&blob).unwrap();
    assert!(
        maps_target_memfd(),
        "the fast path is in use (the target's memfd is mapped here)"
    );
    let got = vec![0u8; REG_LEN];
    register(&me, &got);
    let read = xfer(&me, XferOp::Read, (addr(&got), REG_LEN as u64), region);
    assert_eq!(read.unwrap(), Status::Success);
    assert!(
        got == original[REG_OFF..REG_OFF + REG_LEN],
        "READ returned bytes from outside the registration"
    );
    let ours = filled(REG_LEN, 2);
    register(&me, &ours);
    let write = xfer(&me, XferOp::Write, (addr(&ours), REG_LEN as u64), region);
    assert_eq!(write.unwrap(), Status::Success);
    assert_eq!(
        t.sum(0, REG_OFF),
        sum_of(&original[..REG_OFF]),
        "unregistered memory written"
    );
    assert_eq!(
        t.sum(REG_OFF, REG_LEN),
        sum_of(&ours),
        "WRITE missed its target"
    );

    // Every byte of the published backing flipped, one at a time (offsets far past the end of
    // the file among them): an error or the right bytes, never SIGBUS.
    let mut got = got;
    for i in 4..24 {
        let blob = forge(&t.md, |m| shm_public(m)[i] ^= 0xff);
        if me.load_remote_md(&blob).is_err() {
            continue;
        }
        got.fill(0);
        if let Ok(Status::Success) = xfer(&me, XferOp::Read, (addr(&got), REG_LEN as u64), region) {
            assert!(got == ours, "byte {i} flipped: READ returned other bytes");
        }
    }
}

/// A page range whose first touch blocks until the test fills it (userfaultfd): a copy out of
/// it stays in flight, deterministically, for as long as the test wants.
struct StalledPages {
    uffd: i32,
    ptr: *mut u8,
    len: usize,
}

// The ioctls of <linux/userfaultfd.h> (type 0xAA, read-write).
const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
const UFFDIO_COPY: libc::c_ulong = 0xc028_aa03;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;

impl StalledPages {
    fn new(len: usize) -> std::result::Result<StalledPages, String> {
        // SAFETY: userfaultfd takes flags and returns a new descriptor or -1.
        let uffd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) } as i32;
        if uffd < 0 {
            return Err(format!("userfaultfd: {}", std::io::Error::last_os_error()));
        }
        let mut api = [0xaa_u64, 0, 0];
        // SAFETY: UFFDIO_API with a uffdio_api struct (3 × u64).
        if unsafe { libc::ioctl(uffd, UFFDIO_API, api.as_mut_ptr()) } != 0 {
            return Err(format!("UFFDIO_API: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh private anonymous mapping, unmapped in Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED);
        // uffdio_register: range {start, len}, mode (MISSING = 1), ioctls (out).
        let mut reg = [ptr as u64, len as u64, 1, 0];
        // SAFETY: UFFDIO_REGISTER on our own mapping.
        if unsafe { libc::ioctl(uffd, UFFDIO_REGISTER, reg.as_mut_ptr()) } != 0 {
            return Err(format!(
                "UFFDIO_REGISTER: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(StalledPages {
            uffd,
            ptr: ptr.cast(),
            len,
        })
    }

    /// Waits (up to 60 s) until something touches the pages.
    fn wait_for_fault(&self) {
        let mut pfd = libc::pollfd {
            fd: self.uffd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, 60_000) };
        assert_eq!(ready, 1, "no fault came");
        let mut msg = [0u8; 32];
        // SAFETY: reads one uffd_msg (32 bytes) into `msg`.
        let n = unsafe { libc::read(self.uffd, msg.as_mut_ptr().cast(), msg.len()) };
        assert_eq!(n, 32);
        assert_eq!(msg[0], UFFD_EVENT_PAGEFAULT);
    }

    /// Fills the pages with `bytes`, waking whoever waits on them.
    fn fill(&self, bytes: &[u8]) {
        assert_eq!(bytes.len(), self.len);
        // uffdio_copy: dst, src, len, mode, copy (out).
        let mut copy = [
            self.ptr as u64,
            bytes.as_ptr() as u64,
            self.len as u64,
            0,
            0,
        ];
        // SAFETY: UFFDIO_COPY of `len` bytes from `bytes` into our registered range.
        let rc = unsafe { libc::ioctl(self.uffd, UFFDIO_COPY, copy.as_mut_ptr()) };
        assert_eq!(rc, 0, "UFFDIO_COPY: {}", std::io::Error::last_os_error());
    }
}

impl Drop for StalledPages {
    fn drop(&mut self) {
        // SAFETY: our own mapping and descriptor.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
            libc::close(self.uffd);
        }
    }
}

/// F5: `deregister_mem` must not return while a same-host peer's copy into the region is
/// still running. Our WRITE's source pages stall on first touch, so the copy is held open
/// until we release it; the target deregisters meanwhile.
fn deregistration_waits_for_copies_in_flight(layout: &str) {
    let stalled = match StalledPages::new(REG_LEN) {
        Ok(s) => s,
        Err(why) => {
            test_support::skip(
                "userfaultfd",
                &format!("userfaultfd is unavailable ({why})"),
            );
            return;
        }
    };
    let mut t = Target::spawn(layout);
    let me = agent("init");
    me.load_remote_md(&t.md).unwrap();
    // SAFETY: the pages stay mapped until after the agent is dropped (declared earlier).
    unsafe { me.register_mem(&reg_list(&[(stalled.ptr as u64, REG_LEN as u64)]), None) }.unwrap();
    let ours = filled(REG_LEN, 3);
    let region = (t.base + REG_OFF as u64, REG_LEN as u64);
    let source = (stalled.ptr as u64, REG_LEN as u64);
    std::thread::scope(|s| {
        let writer = s.spawn(|| xfer(&me, XferOp::Write, source, region));
        stalled.wait_for_fault();
        // The WRITE is past every check and inside its copy now.
        t.send("DEREG");
        t.expect("DEREGISTERING");
        // While deregistration waits for our copy, the target's other work goes on: its
        // metadata (what a peer asks for) is served. (The pause lets the deregistering
        // thread reach its wait first; without it PROBE could run before and prove nothing.)
        std::thread::sleep(Duration::from_millis(300));
        t.send("PROBE");
        let probed = t.next(Duration::from_secs(10));
        let early = t.next(Duration::from_millis(500));
        // Released before any assertion, so a failure does not leave the writer stalled.
        stalled.fill(&ours);
        assert!(
            probed.as_deref().is_ok_and(|l| l.starts_with("PROBED ")),
            "the target's metadata was not served while a deregistration waited: {probed:?}"
        );
        assert!(
            early.is_err(),
            "deregister_mem returned while a peer's copy was in flight: {early:?}"
        );
        assert_eq!(writer.join().unwrap().unwrap(), Status::Success);
    });
    // The copy ended before deregistration returned, and nothing changed afterwards.
    assert_eq!(t.expect("DEREGISTERED "), sum_of(&ours));
    assert_eq!(t.sum(REG_OFF, REG_LEN), sum_of(&ours));
    // And the deregistered region is refused from now on.
    let again = vec![0u8; REG_LEN];
    register(&me, &again);
    let read = xfer(&me, XferOp::Read, (addr(&again), REG_LEN as u64), region);
    assert_eq!(read.unwrap_err().status(), Status::NotAllowed);
}

#[test]
fn f5_deregistration_waits_for_cross_memory_attach_in_flight() {
    deregistration_waits_for_copies_in_flight("heap");
}

#[test]
fn f5_deregistration_waits_for_shared_mapping_copies_in_flight() {
    deregistration_waits_for_copies_in_flight("shm");
}

/// A same-host initiator stuck inside a WRITE (its source pages never arrive).
fn stalled_writer() {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let [md, base] = words[..] else {
        panic!("expected <md hex> <region address>, got {line:?}")
    };
    let stalled = StalledPages::new(REG_LEN).unwrap();
    let me = agent("init");
    me.load_remote_md(&unhex(md)).unwrap();
    // SAFETY: the pages stay mapped until the process is killed.
    unsafe { me.register_mem(&reg_list(&[(stalled.ptr as u64, REG_LEN as u64)]), None) }.unwrap();
    let source = (stalled.ptr as u64, REG_LEN as u64);
    let region = (base.parse().unwrap(), REG_LEN as u64);
    std::thread::scope(|s| {
        s.spawn(|| xfer(&me, XferOp::Write, source, region));
        stalled.wait_for_fault();
        say("STALLED".into());
        // Never returns: the test kills this process mid-copy.
        loop {
            std::thread::park();
        }
    });
}

/// F5, the crash case: an initiator killed in the middle of a copy leaves its in-flight count
/// behind; deregistration treats it as dead after the peer timeout instead of waiting forever.
#[test]
fn f5_an_initiator_killed_mid_copy_delays_deregistration_only_to_the_peer_timeout() {
    if let Err(why) = StalledPages::new(4096) {
        test_support::skip(
            "userfaultfd",
            &format!("userfaultfd is unavailable ({why})"),
        );
        return;
    }
    let config = AgentConfig {
        peer_timeout: Duration::from_millis(300),
        ..AgentConfig::default()
    };
    let tgt = agent_with("tgt", config, &Params::new());
    let buf = filled(REG_LEN, TARGET_SEED);
    let reg = reg_list(&[(addr(&buf), REG_LEN as u64)]);
    // SAFETY: `buf` outlives the agent.
    unsafe { tgt.register_mem(&reg, None) }.unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_target", "--nocapture", "--test-threads=1"])
        .env("HARDEN_TARGET", "stalled-writer")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the initiator");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{} {}", hex(&tgt.local_md().unwrap()), addr(&buf)).unwrap();
    stdin.flush().unwrap();
    let stalled = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(std::io::Result::ok)
        .any(|l| l.contains("@STALLED"));
    assert!(stalled, "the initiator did not get stuck in its copy");
    child.kill().unwrap();
    child.wait().unwrap();
    // Returns (after the peer timeout: the dead initiator's count never drops) instead of
    // waiting forever.
    tgt.deregister_mem(&reg, None).unwrap();
    drop(tgt);
}
