//! The HTTP endpoint Prometheus scrapes: one per process, on a `tiny_http` thread.

use parking_lot::Mutex;
use std::net::{Ipv4Addr, SocketAddr};

use crate::status::{Result, err};

/// The variable naming the port (NIXL's; default 9090, `0` for any free port).
pub const PORT_VAR: &str = "NIXL_TELEMETRY_PROMETHEUS_PORT";
/// The variable that restricts the endpoint to 127.0.0.1 (NIXL's).
pub const LOCAL_VAR: &str = "NIXL_TELEMETRY_PROMETHEUS_LOCAL";
const EXPORTER_VAR: &str = "NIXL_TELEMETRY_EXPORTER";
const DEFAULT_PORT: u16 = 9090;

/// The running endpoint, if any: its bound port.
static RUNNING: Mutex<Option<u16>> = Mutex::new(None);

/// The port the endpoint listens on, if it runs.
pub fn exporter_port() -> Option<u16> {
    *RUNNING.lock()
}

/// Starts the endpoint on `addr` (port 0: any free port) and returns the bound port; if it
/// already runs, returns its port. Serves `/metrics` (any other path is 404).
pub fn start(addr: SocketAddr) -> Result<u16> {
    start_named(addr, "the metrics address")
}

/// Starts the endpoint as NIXL does when `NIXL_TELEMETRY_EXPORTER=prometheus`: on
/// [`PORT_VAR`] (default 9090), every address unless [`LOCAL_VAR`] says local. `Ok(None)` when
/// another exporter (or none) is chosen. A bad or taken port is an error naming the variable.
pub fn start_from_env() -> Result<Option<u16>> {
    if !std::env::var(EXPORTER_VAR).is_ok_and(|v| v.eq_ignore_ascii_case("prometheus")) {
        return Ok(None);
    }
    let port = match std::env::var(PORT_VAR) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<u16>().map_err(|_| {
            err!(
                InvalidParam,
                "{PORT_VAR}={v:?} is not a port number (0-65535)"
            )
        })?,
        _ => DEFAULT_PORT,
    };
    let local = std::env::var(LOCAL_VAR).is_ok_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "y" | "yes" | "on" | "true" | "enable" | "1"
        )
    });
    let ip = if local {
        Ipv4Addr::LOCALHOST
    } else {
        Ipv4Addr::UNSPECIFIED
    };
    start_named(SocketAddr::from((ip, port)), PORT_VAR).map(Some)
}

fn start_named(addr: SocketAddr, what: &str) -> Result<u16> {
    let mut running = RUNNING.lock();
    if let Some(port) = *running {
        return Ok(port);
    }
    let port = serve(addr, what, super::encode)?;
    log::info!(
        "NIXL Prometheus metrics on http://{}:{port}/metrics",
        addr.ip()
    );
    *running = Some(port);
    Ok(port)
}

/// Serves the exposition `encode` returns at `/metrics` on `addr` (port 0: any free port),
/// from a new thread, for as long as the process runs; returns the bound port. For other
/// registries of a process (the disagg frontend's); `what` names the setting in errors.
pub fn serve(
    addr: SocketAddr,
    what: &str,
    encode: impl Fn() -> Result<String> + Send + 'static,
) -> Result<u16> {
    let server = tiny_http::Server::http(addr).map_err(|e| {
        err!(
            InvalidParam,
            "cannot serve Prometheus metrics on {addr} ({what}={}): {e}",
            addr.port()
        )
    })?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .ok_or_else(|| err!(Unknown, "the metrics endpoint has no IP address"))?;
    std::thread::Builder::new()
        .name("nixl-metrics".into())
        .spawn(move || respond_all(&server, &encode))
        .map_err(|e| err!(Unknown, "cannot start the metrics thread: {e}"))?;
    Ok(port)
}

fn respond_all(server: &tiny_http::Server, encode: &dyn Fn() -> Result<String>) {
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or_default();
        let response = match (request.method(), path) {
            (tiny_http::Method::Get, "/metrics") => match encode() {
                Ok(body) => tiny_http::Response::from_string(body).with_header(
                    tiny_http::Header::from_bytes(
                        "Content-Type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )
                    .expect("a valid static header"),
                ),
                Err(e) => tiny_http::Response::from_string(e.to_string()).with_status_code(500),
            },
            _ => {
                tiny_http::Response::from_string("not found; try /metrics\n").with_status_code(404)
            }
        };
        // A scraper that hung up is no concern of ours.
        let _ = request.respond(response);
    }
}
