//! NIXL's switches: a taken `NIXL_TELEMETRY_PROMETHEUS_PORT` is a clear error naming the
//! variable and the agent still works; port 0 starts the endpoint on a free port. Its own test
//! binary, since it sets the process environment.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use common::*;
use nixl_core::*;

fn set(key: &str, value: &str) {
    // SAFETY: this binary has a single test and sets variables before any agent thread runs.
    unsafe { std::env::set_var(key, value) };
}

/// A loopback WRITE through `agent`, checked byte for byte.
fn loopback_write(agent: &Agent) {
    let src = filled(8192, 3);
    let dst = vec![0u8; 8192];
    register(agent, &src);
    register(agent, &dst);
    let req = agent
        .create_xfer_req(
            XferOp::Write,
            &dram(&[(addr(&src), 8192)]),
            &dram(&[(addr(&dst), 8192)]),
            agent.name(),
            None,
        )
        .unwrap();
    assert_eq!(run(agent, &req).unwrap(), Status::Success);
    assert_eq!(dst, src);
}

#[test]
fn nixl_switches_and_a_taken_port() {
    // Off by default: no variable, no endpoint.
    let quiet = agent("env-quiet");
    assert_eq!(quiet.metrics_port(), None);
    assert_eq!(metrics::start_from_env().unwrap(), None);

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    set("NIXL_TELEMETRY_ENABLE", "y");
    set("NIXL_TELEMETRY_EXPORTER", "prometheus");
    set("NIXL_TELEMETRY_PROMETHEUS_LOCAL", "y");
    set(metrics::PORT_VAR, &taken_port.to_string());
    let e = metrics::start_from_env().unwrap_err();
    assert!(
        e.message().contains("NIXL_TELEMETRY_PROMETHEUS_PORT")
            && e.message().contains(&taken_port.to_string()),
        "{e}"
    );
    // The agent is made anyway, without metrics, and moves bytes.
    let a = agent("env-a");
    assert_eq!(a.metrics_port(), None);
    loopback_write(&a);

    set(metrics::PORT_VAR, "not-a-port");
    let e = metrics::start_from_env().unwrap_err();
    assert!(
        e.message().contains("NIXL_TELEMETRY_PROMETHEUS_PORT"),
        "{e}"
    );

    // Port 0: any free port, reported by the agent.
    set(metrics::PORT_VAR, "0");
    let b = agent("env-b");
    let port = b
        .metrics_port()
        .expect("the endpoint started from the environment");
    assert_ne!(port, taken_port);
    loopback_write(&b);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let line = body
        .lines()
        .find(|l| l.starts_with("agent_tx_bytes_total{") && l.contains("agent_name=\"env-b\""))
        .unwrap_or_else(|| panic!("no tx series for env-b in:\n{body}"));
    assert!(
        line.contains("peer=\"env-b\"") && line.contains("transport=\"same-process\""),
        "{line}"
    );
    assert!(line.ends_with(" 8192"), "{line}");
    // env-a was made while no endpoint ran: it records nothing.
    assert!(!body.contains("agent_name=\"env-a\""));
    drop(taken);
}
