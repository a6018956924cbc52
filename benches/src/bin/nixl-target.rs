//! `nixl-target SIZE SEGMENT [transport]`: a nixl-core agent owning one
//! registered buffer, for the two-process benchmarks and tests. Prints
//! `READY <name> <addr> <hex metadata>`, then serves `LOAD <hex>`,
//! `FILL <byte>`, `SUM` (byte sum of the buffer), `DEREG` and `QUIT`.

use nixl_benches::buffer::{Buffer, Segment};
use nixl_core::{Agent, AgentConfig, MemType, Params, RegDesc, RegDescList};
use std::io::BufRead;
use test_support::{hex, try_unhex};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(64 << 20);
    let seg = args
        .get(2)
        .and_then(|s| Segment::parse(s))
        .unwrap_or(Segment::Malloc);
    let mut params = Params::new();
    if let Some(t) = args.get(3) {
        params.insert("transport".into(), t.clone());
    }
    let name = format!("nixl-target-{}", std::process::id());
    let agent = Agent::new(&name, AgentConfig::default()).expect("agent");
    agent.create_backend("UCX", &params).expect("backend");
    let buf = Buffer::new(size, seg);
    let reg = RegDescList::from_descs(
        MemType::Dram,
        vec![RegDesc::new(buf.addr() as u64, size as u64, 0)],
    );
    // SAFETY: `buf` lives until the process exits, after the agent is dropped.
    unsafe { agent.register_mem(&reg, None) }.expect("register");
    println!(
        "READY {name} {} {}",
        buf.addr(),
        hex(&agent.local_md().expect("metadata"))
    );
    let mut buf = buf;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if let Some(md) = line.strip_prefix("LOAD ") {
            let r = agent.load_remote_md(&try_unhex(md).unwrap_or_default());
            println!("{}", if r.is_ok() { "OK" } else { "ERR" });
        } else if let Some(b) = line.strip_prefix("FILL ") {
            buf.as_mut_slice().fill(b.parse().unwrap_or(0));
            println!("OK");
        } else if line == "SUM" {
            println!(
                "{}",
                buf.as_slice().iter().map(|&b| u64::from(b)).sum::<u64>()
            );
        } else if line == "DEREG" {
            let r = agent.deregister_mem(&reg, None);
            println!("{}", if r.is_ok() { "OK" } else { "ERR" });
        } else {
            break;
        }
    }
    drop(agent);
    drop(buf);
}
