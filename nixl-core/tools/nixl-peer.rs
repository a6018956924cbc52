//! `nixl-peer`: a standalone agent driven line by line on stdin, for multi-process tests and
//! manual experiments. It owns one DRAM buffer filled with a known pattern.
//!
//! ```text
//! nixl-peer NAME SIZE SEED      prints "MD <hex>" and "ADDR <addr>", then reads commands:
//!   LOAD <hex>                  load a remote agent's metadata     -> "LOADED <name>"
//!   XFER <READ|WRITE> <agent> <remote addr> <len> [notif]          -> "DONE <status>"
//!   WAIT_NOTIFS <n>             wait for n notifications           -> "NOTIFS <sender>:<msg>,... SUM <hex>"
//!   SUM                         checksum of the buffer             -> "SUM <hex>"
//!   DEREG                       deregister the buffer              -> "DEREGISTERED" (or ERROR)
//!   PUBLISH                     send_local_md to the central store -> "PUBLISHED" (or ERROR)
//!   EXIT
//! ```
//!
//! `NIXL_PEER_BACKEND` names the backend plugin (default `UCX`), `NIXL_PEER_PARAMS` its
//! parameters as `key=value,key=value` (default: none). With `NIXL_PEER_SHARED` set
//! the buffer is a shared mapping (`SharedBuffer`), which same-host peers reach by `shm`.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use nixl_core::{
    Agent, AgentConfig, Desc, MemType, NotifMap, OptArgs, RegDesc, RegDescList, Status,
    XferDescList, XferOp,
};
use test_support::{checksum, filled, hex, try_unhex};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, name, size, seed] = &args[..] else {
        eprintln!("usage: nixl-peer NAME SIZE SEED");
        std::process::exit(2);
    };
    let size: usize = size.parse().expect("SIZE is a number");
    let seed: u64 = seed.parse().expect("SEED is a number");
    let shared = std::env::var_os("NIXL_PEER_SHARED")
        .map(|_| nixl_core::SharedBuffer::new(size).expect("shared buffer"));
    let owned: Vec<u8>;
    let buf: &[u8] = match &shared {
        Some(s) => {
            s.write_at(0, &filled(size, seed));
            // SAFETY: this test tool reads the buffer only between the transfers its driver
            // asks for, as it does its `Vec` buffer below.
            unsafe { s.as_slice() }
        }
        None => {
            owned = filled(size, seed);
            &owned
        }
    };
    let agent = Agent::new(name, AgentConfig::default()).expect("agent");
    let backend = std::env::var("NIXL_PEER_BACKEND").unwrap_or_else(|_| "UCX".into());
    let params: nixl_core::Params = std::env::var("NIXL_PEER_PARAMS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    agent.create_backend(&backend, &params).expect("backend");
    let reg = RegDescList::from_descs(
        MemType::Dram,
        vec![RegDesc::new(buf.as_ptr() as u64, size as u64, 0)],
    );
    // SAFETY: `buf` lives until the process exits and is only read through the agent.
    unsafe { agent.register_mem(&reg, None) }.expect("register");
    let out = std::io::stdout();
    let say = |line: String| {
        let mut o = out.lock();
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    };
    say(format!("MD {}", hex(&agent.local_md().expect("metadata"))));
    say(format!("ADDR {}", buf.as_ptr() as u64));
    let mut notifs = NotifMap::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["LOAD", md] => match agent.load_remote_md(&try_unhex(md).unwrap_or_default()) {
                Ok(name) => say(format!("LOADED {name}")),
                Err(e) => say(format!("ERROR {e}")),
            },
            ["XFER", op, target, addr, len, rest @ ..] => {
                let op = if *op == "READ" {
                    XferOp::Read
                } else {
                    XferOp::Write
                };
                let len: u64 = len.parse().unwrap_or(0);
                let local = XferDescList::from_descs(
                    MemType::Dram,
                    vec![Desc::new(buf.as_ptr() as u64, len, 0)],
                );
                let remote = XferDescList::from_descs(
                    MemType::Dram,
                    vec![Desc::new(addr.parse().unwrap_or(0), len, 0)],
                );
                let opts = rest.first().map(|n| OptArgs::with_notif(n.as_bytes()));
                let result = agent
                    .create_xfer_req(op, &local, &remote, target, opts.as_ref())
                    .and_then(|req| {
                        let mut status = agent.post_xfer_req(&req, None)?;
                        while status == Status::InProg {
                            status = agent.xfer_status(&req)?;
                        }
                        Ok(status)
                    });
                match result {
                    Ok(s) => say(format!("DONE {s} SUM {:016x}", checksum(buf))),
                    Err(e) => say(format!("DONE {} {}", e.status(), e.message())),
                }
            }
            ["WAIT_NOTIFS", n] => {
                let want: usize = n.parse().unwrap_or(1);
                let deadline = Instant::now() + Duration::from_secs(30);
                while notifs.values().map(Vec::len).sum::<usize>() < want
                    && Instant::now() < deadline
                {
                    let _ = agent.get_notifs(&mut notifs);
                    std::thread::sleep(Duration::from_micros(200));
                }
                // The checksum is taken right when the notifications are seen: the data must
                // already be there.
                let sum = checksum(buf);
                let list: Vec<String> = notifs
                    .iter()
                    .flat_map(|(s, msgs)| {
                        msgs.iter()
                            .map(move |m| format!("{s}:{}", String::from_utf8_lossy(m)))
                    })
                    .collect();
                say(format!("NOTIFS {} SUM {sum:016x}", list.join(",")));
                notifs.clear();
            }
            ["SUM"] => say(format!("SUM {:016x}", checksum(buf))),
            ["DEREG"] => match agent.deregister_mem(&reg, None) {
                Ok(()) => say("DEREGISTERED".into()),
                Err(e) => say(format!("ERROR {e}")),
            },
            ["PUBLISH"] => match agent.send_local_md(None) {
                Ok(()) => say("PUBLISHED".into()),
                Err(e) => say(format!("ERROR {e}")),
            },
            ["EXIT"] | [] => break,
            other => say(format!("ERROR unknown command {other:?}")),
        }
    }
}
