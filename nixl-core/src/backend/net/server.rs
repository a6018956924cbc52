//! The control listener: accepts peers' connections and serves notifications, WRITEs and
//! READs against this agent's registered memory, each access checked by key first.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Shared;
use super::proto::{self, Header, Kind, MAX_DESCS, MAX_NOTIF, MAX_TEXT, NO_NOTIF};
use crate::backend::ResolvedDesc;
use crate::sockio::{self, Timed};
use crate::status::{Result, err};

/// Refused WRITE payloads up to this size are read and dropped to keep the connection usable;
/// larger ones close it.
const MAX_DISCARD: u64 = 256 << 20;

/// Most connections served at once; more are closed on arrival (a peer's pool holds about
/// one per transfer thread).
pub const MAX_CONNS: usize = 512;

/// Accepts connections until the listener is shut down: one thread per connection, at most
/// [`MAX_CONNS`], each forgotten (thread and socket) when it ends.
pub fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let what = format!("agent {} control listener", shared.agent_name);
    let stop = || shared.shutting_down.load(Ordering::Acquire);
    sockio::accept_loop(&listener, &what, stop, |stream| {
        let Some(guard) = shared.conns.admit(&stream) else {
            // Debug only: whoever floods the listener must not flood the log too.
            log::debug!("{what}: {MAX_CONNS} connections already served; closing a new one");
            return;
        };
        let worker = shared.clone();
        let served = shared
            .metrics
            .as_ref()
            .map(|m| m.connections(crate::metrics::peers::ConnState::Served));
        let spawned = std::thread::Builder::new()
            .name("nixl-serve".into())
            .spawn(move || {
                if let Some(g) = &served {
                    g.inc();
                }
                if let Err(e) = serve(&worker, stream) {
                    log::debug!("agent {}: peer connection closed: {e}", worker.agent_name);
                }
                if let Some(g) = &served {
                    g.dec();
                }
                drop(guard);
            });
        if let Err(e) = spawned {
            log::error!("{what}: cannot start a connection thread: {e}");
        }
    });
}

type IoResult<T> = std::io::Result<T>;

fn invalid(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// Reads exactly `len` bytes, growing the buffer only as bytes actually arrive, so a forged
/// length costs the sender as much as it costs us.
fn read_payload(stream: &mut Timed<'_>, len: u64) -> IoResult<Vec<u8>> {
    let mut buf = Vec::with_capacity(len.min(1 << 16) as usize);
    stream.by_ref().take(len).read_to_end(&mut buf)?;
    if buf.len() as u64 != len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(buf)
}

/// Serves one connection. The handshake, then each request (from its first byte to the
/// answer), runs under one deadline (`sockio::Clock`): a peer that stalls or trickles is
/// dropped. Between requests the connection may idle; shutdown closes it.
fn serve(shared: &Shared, socket: TcpStream) -> IoResult<()> {
    socket.set_nodelay(true)?;
    let mut stream = Timed::new(&socket, shared.peer_timeout);
    let nonce = crate::util::random_u64();
    let challenge = Header::new(
        Kind::Challenge,
        nonce,
        u64::from(shared.secret.is_some()),
        0,
    )
    .encode();
    proto::write_all_slices(&mut stream, &[&challenge])?;
    let hello = proto::read_header(&mut stream)?;
    if hello.kind != Kind::Hello || hello.a > MAX_TEXT || hello.c > crate::auth::PROOF_LEN as u64 {
        return Err(invalid("expected HELLO"));
    }
    let peer = String::from_utf8(read_payload(&mut stream, hello.a)?)
        .map_err(|_| invalid("peer name is not UTF-8"))?;
    let proof = read_payload(&mut stream, hello.c)?;
    let accepted: Result<()> = if hello.b != shared.instance {
        Err(err!(
            NotFound,
            "agent {} here is a different incarnation than the one you loaded",
            shared.agent_name
        ))
    } else if let Some(secret) = &shared.secret
        && !crate::auth::verify(
            crate::auth::Context::Data,
            secret,
            nonce,
            shared.instance,
            &peer,
            &proof,
        )
    {
        log::warn!(
            "agent {}: refused {peer}: wrong or missing shared secret",
            shared.agent_name
        );
        Err(err!(
            NotAllowed,
            "authentication failed: wrong or missing shared secret"
        ))
    } else {
        Ok(())
    };
    proto::write_all_slices(
        &mut stream,
        &[&proto::status_frame(Kind::HelloAck, &accepted)],
    )?;
    accepted.map_err(|e| invalid(e.to_string()))?;
    while sockio::wait_readable(&socket)? {
        let mut stream = Timed::new(&socket, shared.peer_timeout);
        let header = proto::read_header(&mut stream)?;
        match header.kind {
            Kind::Notif => {
                if header.a > MAX_NOTIF {
                    return Err(invalid("notification too large"));
                }
                let msg = read_payload(&mut stream, header.a)?;
                shared.notifs.push(&peer, msg);
            }
            Kind::Write => serve_write(shared, &mut stream, &peer, header)?,
            Kind::Read => serve_read(shared, &mut stream, header)?,
            other => return Err(invalid(format!("unexpected frame {other:?}"))),
        }
    }
    Ok(())
}

fn read_descs(stream: &mut Timed<'_>, header: &Header) -> IoResult<Vec<ResolvedDesc>> {
    if header.a > MAX_DESCS {
        return Err(invalid("too many descriptors"));
    }
    let bytes = read_payload(stream, header.a * proto::DESC_LEN as u64)?;
    proto::decode_descs(&bytes, header.b).map_err(|e| invalid(e.to_string()))
}

fn serve_write(
    shared: &Shared,
    stream: &mut Timed<'_>,
    peer: &str,
    header: Header,
) -> IoResult<()> {
    let descs = read_descs(stream, &header)?;
    let notif = match header.c {
        NO_NOTIF => None,
        len if len <= MAX_NOTIF => Some(read_payload(stream, len)?),
        _ => return Err(invalid("notification too large")),
    };
    #[cfg(feature = "cuda")]
    if super::vram::tcp::targets_vram(shared, &descs) {
        return super::vram::tcp::serve_write(shared, stream, peer, &descs, notif, header.b);
    }
    let access = super::read_access(shared);
    let checked = access.check(&descs);
    let answer = match checked {
        Ok(()) => {
            // SAFETY: every descriptor was just checked to lie inside a live registration, and
            // the read lock keeps it registered until the data is in. They may overlap: the
            // copy goes through raw addresses.
            unsafe { proto::read_exact_descs(stream, &descs) }?;
            drop(access);
            if let Some(msg) = notif {
                shared.notifs.push(peer, msg);
            }
            Ok(())
        }
        Err(e) => {
            drop(access);
            log::warn!(
                "agent {}: refused a WRITE from {peer}: {e}",
                shared.agent_name
            );
            if header.b > MAX_DISCARD {
                return Err(invalid("refused an oversized WRITE"));
            }
            proto::discard(stream, header.b)?;
            Err(e)
        }
    };
    proto::write_all_slices(stream, &[&proto::status_frame(Kind::Resp, &answer)])
}

fn serve_read(shared: &Shared, stream: &mut Timed<'_>, header: Header) -> IoResult<()> {
    let descs = read_descs(stream, &header)?;
    #[cfg(feature = "cuda")]
    if super::vram::tcp::targets_vram(shared, &descs) {
        return super::vram::tcp::serve_read(shared, stream, &descs);
    }
    let access = super::read_access(shared);
    let checked = access.check(&descs);
    let answer = proto::status_frame(Kind::Resp, &checked);
    if checked.is_ok() {
        // SAFETY: checked against live registrations; the read lock keeps them registered.
        unsafe { proto::write_all_descs(stream, &[&answer], &descs) }
    } else {
        proto::write_all_slices(stream, &[&answer])
    }
}
