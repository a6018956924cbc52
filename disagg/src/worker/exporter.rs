//! The worker's NIXL metrics endpoint, whatever `libnixl_capi` it calls: the one linked in or
//! ours loaded with `--lib` start theirs on port 0 through our extension
//! (`nixl_capi_ext_start_metrics`) and say which port they bound; real NIXL's library lacks
//! the extension, so its own exporter is asked for through NIXL's variables
//! (`NIXL_TELEMETRY_ENABLE=y`, `NIXL_TELEMETRY_EXPORTER=prometheus`,
//! `NIXL_TELEMETRY_PROMETHEUS_PORT`) on a port picked free just before: NIXL binds it when
//! the agent is created but never reports a port it chose itself. Either way the worker
//! reports the port to the frontend, which lists it with the run's endpoints.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use nixl_capi_client::Api;
use nixl_core::metrics::{LOCAL_VAR, PORT_VAR};

/// What the worker did about its library's endpoint, before the agent exists.
pub(super) enum Exporter {
    /// Metrics off, or the endpoint could not start.
    Off,
    /// Serving on this port already (our extension).
    Serving(u16),
    /// NIXL's exporter asked for on this port; it starts with the agent.
    Asked(u16),
}

impl Exporter {
    /// Starts the endpoint, or asks the library for it, before the agent is created (an
    /// agent records metrics only if the endpoint runs when it is made). `host` is the
    /// worker's address: a loopback one keeps the endpoint on 127.0.0.1, any other serves
    /// every address (as NIXL's exporter does). A failure is printed and costs only the
    /// metrics.
    pub(super) fn before_agent(api: &Api, host: &str) -> Exporter {
        if !crate::frontend::prom::enabled() {
            return Exporter::Off;
        }
        let ip: IpAddr = host.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        match api.start_metrics(0, ip.is_loopback()) {
            Some(Ok(port)) => Exporter::Serving(port),
            Some(Err(e)) => {
                eprintln!("worker metrics: {e}; continuing without them");
                Exporter::Off
            }
            None => ask_nixl(ip),
        }
    }

    /// The port to report once the agent exists: NIXL's exporter must answer on the port
    /// asked for (another process could have taken it since it was picked).
    pub(super) fn port(self, host: &str) -> Option<u16> {
        match self {
            Exporter::Off => None,
            Exporter::Serving(port) => Some(port),
            Exporter::Asked(port) => {
                let ip: IpAddr = host.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
                match scrape_status(SocketAddr::new(ip, port)) {
                    Ok(200) => Some(port),
                    answer => {
                        eprintln!(
                            "worker metrics: the library's own exporter, asked for on port \
                             {port} ({PORT_VAR}), does not serve /metrics there ({answer:?}); \
                             continuing without them"
                        );
                        None
                    }
                }
            }
        }
    }
}

/// Sets NIXL's exporter variables for a free port on `ip`, if this process still runs one
/// thread (setting the environment is only sound then).
fn ask_nixl(ip: IpAddr) -> Exporter {
    let port = match TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => {
            eprintln!("worker metrics: no free port on {ip}: {e}; continuing without them");
            return Exporter::Off;
        }
    };
    let threads = std::fs::read_dir("/proc/self/task").map(Iterator::count);
    if !matches!(threads, Ok(1)) {
        eprintln!(
            "worker metrics: the library has no nixl_capi_ext_start_metrics and this process \
             runs {threads:?} threads, too late to set NIXL's exporter variables; continuing \
             without metrics"
        );
        return Exporter::Off;
    }
    // SAFETY: this process runs one thread (just checked), so nothing reads the environment
    // while it changes.
    unsafe {
        std::env::set_var("NIXL_TELEMETRY_ENABLE", "y");
        std::env::set_var("NIXL_TELEMETRY_EXPORTER", "prometheus");
        std::env::set_var(PORT_VAR, port.to_string());
        if ip.is_loopback() {
            std::env::set_var(LOCAL_VAR, "y");
        }
    }
    Exporter::Asked(port)
}

/// The HTTP status of `GET /metrics` at `addr`.
fn scrape_status(addr: SocketAddr) -> std::io::Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    // "HTTP/1.x NNN"
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))
}
