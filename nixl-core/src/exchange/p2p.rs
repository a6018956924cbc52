//! The peer-to-peer metadata listener and the outbound side of `send_local_md`,
//! `fetch_remote_md` and `invalidate_local_md` over it.

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::frame::{self, Command};
use crate::agent::AgentInner;
use crate::backend::lock;
use crate::status::{Result, err};

/// How long a peer may take to send a frame (or stay idle) before it is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A running listener.
pub struct Listener {
    port: u16,
    fd: i32,
    accept: Mutex<Option<JoinHandle<()>>>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Listener {
    /// Binds `0.0.0.0:port` (0 = any free port) and serves frames for `agent`.
    pub(crate) fn start(agent: Weak<AgentInner>, port: u16) -> Result<Listener> {
        let listener = TcpListener::bind(("0.0.0.0", port)).map_err(|e| {
            err!(
                Backend,
                "cannot start the metadata listener on port {port}: {e}"
            )
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| err!(Backend, "listener address: {e}"))?
            .port();
        let fd = listener.as_raw_fd();
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let tracked = conns.clone();
        let accept = std::thread::Builder::new()
            .name("nixl-md-listen".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { break };
                    let Some(inner) = agent.upgrade() else { break };
                    if let Ok(clone) = stream.try_clone() {
                        let mut list = lock(&tracked);
                        list.retain(|s| s.peer_addr().is_ok());
                        list.push(clone);
                    }
                    drop(inner);
                    let agent = agent.clone();
                    let _ = std::thread::Builder::new()
                        .name("nixl-md-peer".into())
                        .spawn(move || serve(&agent, stream));
                }
            })
            .map_err(|e| err!(Backend, "cannot start the metadata listener thread: {e}"))?;
        Ok(Listener {
            port,
            fd,
            accept: Mutex::new(Some(accept)),
            conns,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops accepting and closes open connections.
    pub fn shutdown(&self) {
        // SAFETY: the fd belongs to the listener, which lives until the accept thread returns.
        unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
        if let Some(t) = lock(&self.accept).take() {
            let _ = t.join();
        }
        for s in lock(&self.conns).drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Serves one peer connection; a peer sending garbage, a huge length or stalling is dropped
/// with a logged error and affects nobody else.
fn serve(agent: &Weak<AgentInner>, mut stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string());
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    loop {
        let (cmd, payload) = match frame::read(&mut stream) {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                log::error!("metadata listener: dropping {peer}: {e}");
                return;
            }
        };
        let Some(inner) = agent.upgrade() else { return };
        let outcome = match cmd {
            Command::Load => inner
                .load_remote_md(&payload)
                .map(|name| log::debug!("loaded metadata of {name} from {peer}")),
            Command::Invalidate => match std::str::from_utf8(&payload) {
                Ok(name) => inner.invalidate_remote_md(name),
                Err(_) => Err(err!(InvalidParam, "agent name is not UTF-8")),
            },
            Command::Send => {
                let reply = match inner.local_md() {
                    Ok(md) => frame::write(&mut stream, Command::Load, &md),
                    Err(e) => frame::write(&mut stream, Command::Error, e.message().as_bytes()),
                };
                reply.map_err(|e| err!(RemoteDisconnect, "{e}"))
            }
            Command::Error => Err(err!(
                Backend,
                "peer reported: {}",
                String::from_utf8_lossy(&payload)
            )),
        };
        if let Err(e) = outcome {
            log::warn!("metadata listener: {cmd:?} from {peer} failed: {e}");
        }
    }
}

/// Resolves `ip:port` (names allowed).
fn resolve(ip: &str, port: u16) -> Result<SocketAddr> {
    (ip, port)
        .to_socket_addrs()
        .map_err(|e| err!(InvalidParam, "cannot resolve {ip}:{port}: {e}"))?
        .next()
        .ok_or_else(|| err!(InvalidParam, "{ip}:{port} resolves to no address"))
}

fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| err!(RemoteDisconnect, "cannot reach {addr}: {e}"))?;
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    Ok(stream)
}

/// Sends one frame to a peer's listener.
pub fn push(ip: &str, port: u16, cmd: Command, payload: &[u8]) -> Result<()> {
    let addr = resolve(ip, port)?;
    let mut stream = connect(addr)?;
    frame::write(&mut stream, cmd, payload)
        .map_err(|e| err!(RemoteDisconnect, "sending to {addr}: {e}"))
}

/// Asks a peer's listener for its metadata.
pub fn fetch(ip: &str, port: u16) -> Result<Vec<u8>> {
    let addr = resolve(ip, port)?;
    let mut stream = connect(addr)?;
    frame::write(&mut stream, Command::Send, &[])
        .map_err(|e| err!(RemoteDisconnect, "asking {addr}: {e}"))?;
    match frame::read(&mut stream) {
        Ok(Some((Command::Load, md))) => Ok(md),
        Ok(Some((Command::Error, msg))) => Err(err!(
            Backend,
            "{addr} answered: {}",
            String::from_utf8_lossy(&msg)
        )),
        Ok(_) => Err(err!(
            Backend,
            "{addr} answered with something other than metadata"
        )),
        Err(e) => Err(err!(RemoteDisconnect, "reading metadata from {addr}: {e}")),
    }
}
