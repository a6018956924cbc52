//! The peer-to-peer metadata listener and the outbound side of `send_local_md`,
//! `fetch_remote_md` and `invalidate_local_md` over it.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::MetadataHost;
use super::frame::{self, Command};
use crate::auth;
use crate::sockio::{self, ConnSet, Timed};
use crate::status::{Result, err};

/// How long a peer may take to send a frame (or stay idle) before it is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Most connections served at once; more are closed on arrival.
const MAX_CONNS: usize = 64;

/// Without a secret, the connection info of incarnations forgotten on a peer's `INVL`, by
/// agent name: a later `LOAD` of another incarnation under that name is refused while the
/// forgotten one still answers, so a stranger cannot swap a live peer for a forged one.
type Forgotten = Arc<Mutex<HashMap<String, super::Conns>>>;

/// A running listener.
pub struct Listener {
    port: u16,
    fd: i32,
    stop: Arc<AtomicBool>,
    accept: Mutex<Option<JoinHandle<()>>>,
    conns: Arc<ConnSet>,
}

impl Listener {
    /// Binds `0.0.0.0:port` (0 = any free port) and serves frames for `agent`.
    pub(crate) fn start(
        agent: Weak<dyn MetadataHost>,
        port: u16,
        secret: Option<Vec<u8>>,
    ) -> Result<Listener> {
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
        let conns = ConnSet::new(MAX_CONNS);
        let stop = Arc::new(AtomicBool::new(false));
        let (tracked, stopping) = (conns.clone(), stop.clone());
        let forgotten = Forgotten::default();
        let accept = std::thread::Builder::new()
            .name("nixl-md-listen".into())
            .spawn(move || {
                let done = || stopping.load(Ordering::Acquire) || agent.strong_count() == 0;
                sockio::accept_loop(&listener, "metadata listener", done, |stream| {
                    let Some(guard) = tracked.admit(&stream) else {
                        log::debug!("metadata listener: {MAX_CONNS} connections open; closing one");
                        return;
                    };
                    let (agent, secret) = (agent.clone(), secret.clone());
                    let forgotten = forgotten.clone();
                    let spawned = std::thread::Builder::new()
                        .name("nixl-md-peer".into())
                        .spawn(move || {
                            serve(&agent, stream, secret.as_deref(), &forgotten);
                            drop(guard);
                        });
                    if let Err(e) = spawned {
                        log::error!("metadata listener: cannot start a thread: {e}");
                    }
                });
            })
            .map_err(|e| err!(Backend, "cannot start the metadata listener thread: {e}"))?;
        Ok(Listener {
            port,
            fd,
            stop,
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
        self.stop.store(true, Ordering::Release);
        let Some(t) = self.accept.lock().take() else {
            return;
        };
        // SAFETY: the fd belongs to the listener, which lives until the accept thread returns.
        unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
        let _ = t.join();
        self.conns.close_all();
    }
}

/// Serves one peer connection; a peer sending garbage, a huge length or stalling is dropped
/// with a logged error and affects nobody else. Each frame (and the wait for it) runs under
/// one deadline, so an idle or trickling connection is closed after `IO_TIMEOUT`.
fn serve(
    agent: &Weak<dyn MetadataHost>,
    socket: TcpStream,
    secret: Option<&[u8]>,
    forgotten: &Forgotten,
) {
    let peer = socket
        .peer_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string());
    if let Err(e) = authenticate(&mut Timed::new(&socket, IO_TIMEOUT), secret) {
        log::error!("metadata listener: refusing {peer}: {e}");
        let _ = frame::write(
            &mut Timed::new(&socket, IO_TIMEOUT),
            Command::Error,
            e.message().as_bytes(),
        );
        return;
    }
    loop {
        let mut stream = Timed::new(&socket, IO_TIMEOUT);
        let (cmd, payload) = match frame::read(&mut stream) {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                log::debug!("metadata listener: dropping {peer}: {e}");
                return;
            }
        };
        let Some(inner) = agent.upgrade() else { return };
        let outcome = match cmd {
            Command::Load => {
                let guarded = match secret {
                    Some(_) => Ok(()),
                    None => refuse_live_swap(&*inner, &payload, forgotten),
                };
                guarded
                    .and_then(|()| inner.load_remote_md(&payload))
                    .map(|name| log::debug!("loaded metadata of {name} from {peer}"))
            }
            Command::Invalidate => match std::str::from_utf8(&payload) {
                Ok(name) => {
                    if secret.is_none()
                        && let Some(conns) = inner.remote_conns(name)
                    {
                        forgotten.lock().insert(name.to_owned(), conns);
                    }
                    inner.invalidate_remote_md(name)
                }
                Err(_) => Err(err!(InvalidParam, "agent name is not UTF-8")),
            },
            Command::Send => {
                let reply = match inner.local_md() {
                    Ok(md) if md.len() <= frame::MAX_PAYLOAD as usize => {
                        frame::write(&mut stream, Command::Load, &md)
                    }
                    Ok(md) => frame::write(
                        &mut stream,
                        Command::Error,
                        format!("metadata of {} bytes is over the frame limit", md.len())
                            .as_bytes(),
                    ),
                    Err(e) => frame::write(&mut stream, Command::Error, e.message().as_bytes()),
                };
                reply.map_err(|e| err!(RemoteDisconnect, "{e}"))
            }
            Command::Error => Err(err!(
                Backend,
                "peer reported: {}",
                String::from_utf8_lossy(&payload)
            )),
            Command::Challenge | Command::Auth => {
                Err(err!(InvalidParam, "unexpected {cmd:?} frame"))
            }
        };
        if let Err(e) = outcome {
            log::warn!("metadata listener: {cmd:?} from {peer} failed: {e}");
        }
    }
}

/// NOT_ALLOWED when `blob` would load, under a name forgotten on an unauthenticated `INVL`,
/// another incarnation while the forgotten one still answers. (A live loaded peer is never
/// replaced: `load_remote_md` refuses that on its own.)
fn refuse_live_swap(inner: &dyn MetadataHost, blob: &[u8], forgotten: &Forgotten) -> Result<()> {
    let md = crate::metadata::AgentMetadata::decode(blob)?;
    let Some(old) = forgotten.lock().get(&md.name).cloned() else {
        return Ok(());
    };
    let other = old
        .iter()
        .any(|(backend, info)| md.conns.iter().any(|(b, i)| b == backend && i != info));
    if other && inner.incarnation_answers(&md.name, &old) {
        return Err(err!(
            NotAllowed,
            "agent {} was invalidated by an unauthenticated peer but still answers; refusing another incarnation under its name (set NIXL_RS_SECRET)",
            md.name
        ));
    }
    forgotten.lock().remove(&md.name);
    Ok(())
}

/// Opens a served connection: send a challenge, require the answer first.
fn authenticate(stream: &mut Timed<'_>, secret: Option<&[u8]>) -> Result<()> {
    let nonce = crate::util::random_u64();
    let mut challenge = nonce.to_le_bytes().to_vec();
    challenge.push(u8::from(secret.is_some()));
    frame::write(stream, Command::Challenge, &challenge)
        .map_err(|e| err!(RemoteDisconnect, "{e}"))?;
    match frame::read(stream) {
        Ok(Some((Command::Auth, proof))) => match secret {
            Some(secret)
                if !auth::verify(auth::Context::Metadata, secret, nonce, 0, "", &proof) =>
            {
                Err(err!(
                    NotAllowed,
                    "authentication failed: wrong or missing shared secret"
                ))
            }
            _ => Ok(()),
        },
        Ok(_) => Err(err!(InvalidParam, "expected AUTH as the first frame")),
        Err(e) => Err(err!(RemoteDisconnect, "{e}")),
    }
}

/// Answers a listener's challenge.
fn answer_challenge(stream: &mut Timed<'_>, addr: SocketAddr, secret: Option<&[u8]>) -> Result<()> {
    let io = |e: std::io::Error| err!(RemoteDisconnect, "handshake with {addr}: {e}");
    let challenge = match frame::read(stream).map_err(io)? {
        Some((Command::Challenge, c)) if c.len() == 9 => c,
        _ => return Err(err!(Backend, "{addr} did not open with a challenge")),
    };
    let nonce = u64::from_le_bytes(challenge[..8].try_into().expect("8 bytes"));
    let proof = match (secret, challenge[8]) {
        (Some(secret), _) => auth::proof(auth::Context::Metadata, secret, nonce, 0, "").to_vec(),
        (None, 0) => Vec::new(),
        (None, _) => {
            return Err(err!(
                NotAllowed,
                "{addr} requires a shared secret (NIXL_RS_SECRET)"
            ));
        }
    };
    frame::write(stream, Command::Auth, &proof).map_err(io)
}

/// Resolves `ip:port` (names allowed).
fn resolve(ip: &str, port: u16) -> Result<SocketAddr> {
    (ip, port)
        .to_socket_addrs()
        .map_err(|e| err!(InvalidParam, "cannot resolve {ip}:{port}: {e}"))?
        .next()
        .ok_or_else(|| err!(InvalidParam, "{ip}:{port} resolves to no address"))
}

/// Connects and answers the challenge; `op` then runs on the connection, all of it under
/// one deadline.
fn with_conn<R>(
    addr: SocketAddr,
    secret: Option<&[u8]>,
    op: impl FnOnce(&mut Timed<'_>) -> Result<R>,
) -> Result<R> {
    let socket = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| err!(RemoteDisconnect, "cannot reach {addr}: {e}"))?;
    let mut stream = Timed::new(&socket, IO_TIMEOUT);
    answer_challenge(&mut stream, addr, secret)?;
    op(&mut stream)
}

/// Sends one frame to a peer's listener. A payload over the frame limit is INVALID_PARAM,
/// found before connecting.
pub fn push(
    ip: &str,
    port: u16,
    secret: Option<&[u8]>,
    cmd: Command,
    payload: &[u8],
) -> Result<()> {
    if payload.len() > frame::MAX_PAYLOAD as usize {
        return Err(err!(
            InvalidParam,
            "{} bytes are over the {}-byte metadata frame limit",
            payload.len(),
            frame::MAX_PAYLOAD
        ));
    }
    let addr = resolve(ip, port)?;
    with_conn(addr, secret, |stream| {
        frame::write(stream, cmd, payload)
            .map_err(|e| err!(RemoteDisconnect, "sending to {addr}: {e}"))
    })
}

/// Asks a peer's listener for its metadata.
pub fn fetch(ip: &str, port: u16, secret: Option<&[u8]>) -> Result<Vec<u8>> {
    let addr = resolve(ip, port)?;
    with_conn(addr, secret, |stream| {
        frame::write(stream, Command::Send, &[])
            .map_err(|e| err!(RemoteDisconnect, "asking {addr}: {e}"))?;
        match frame::read(stream) {
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
    })
}
