//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

pub mod peer;

// The data helpers `nixl-peer` uses too, so both sides agree on the bytes (not every test
// crate that includes this module uses them).
#[allow(unused_imports)]
pub use test_support::{checksum, filled, pattern};

use nixl_core::*;

/// An agent with the default network backend ("UCX").
pub fn agent(name: &str) -> Agent {
    agent_with(name, AgentConfig::default(), &Params::new())
}

/// An agent with a config and backend parameters.
pub fn agent_with(name: &str, config: AgentConfig, params: &Params) -> Agent {
    let a = Agent::new(name, config).unwrap();
    a.create_backend("UCX", params).unwrap();
    a
}

/// Backend parameters forcing the TCP route.
pub fn tcp_params() -> Params {
    [("transport".to_string(), "tcp".to_string())]
        .into_iter()
        .collect()
}

/// Registers a whole buffer as DRAM.
pub fn register(agent: &Agent, buf: &[u8]) {
    // SAFETY: every test keeps its buffers alive longer than its agents.
    unsafe { agent.register_mem(&reg_list(&[(addr(buf), buf.len() as u64)]), None) }.unwrap();
}

/// The address of a buffer.
pub fn addr(buf: &[u8]) -> u64 {
    buf.as_ptr() as u64
}

/// A DRAM registration list.
pub fn reg_list(ranges: &[(u64, u64)]) -> RegDescList {
    RegDescList::from_descs(
        MemType::Dram,
        ranges.iter().map(|&(a, l)| RegDesc::new(a, l, 0)).collect(),
    )
}

/// A DRAM transfer list.
pub fn dram(ranges: &[(u64, u64)]) -> XferDescList {
    XferDescList::from_descs(
        MemType::Dram,
        ranges.iter().map(|&(a, l)| Desc::new(a, l, 0)).collect(),
    )
}

/// Posts and polls until the request ends (or 30 s pass).
pub fn run(agent: &Agent, req: &XferRequest) -> Result<Status> {
    let mut status = agent.post_xfer_req(req, None)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while status == Status::InProg {
        assert!(Instant::now() < deadline, "transfer did not finish in 30 s");
        status = agent.xfer_status(req)?;
    }
    Ok(status)
}

/// Polls notifications until `n` have arrived in total (or 30 s pass).
pub fn wait_notifs(agent: &Agent, n: usize) -> NotifMap {
    let mut map = NotifMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while map.values().map(Vec::len).sum::<usize>() < n {
        assert!(Instant::now() < deadline, "only {map:?} arrived in 30 s");
        agent.get_notifs(&mut map).unwrap();
        std::thread::sleep(Duration::from_micros(100));
    }
    map
}

/// A deterministic shuffle (xorshift), so failures reproduce.
pub fn shuffled(n: usize, seed: u64) -> Vec<i32> {
    let mut v: Vec<i32> = (0..n as i32).collect();
    let mut rng = test_support::XorShift::new(seed | 1);
    for i in (1..n).rev() {
        v.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    v
}

// Not every test crate that includes this module uses them.
#[allow(unused_imports)]
pub use test_support::{hex, unhex};
