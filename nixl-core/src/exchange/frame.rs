//! Frames of the peer-to-peer metadata protocol.
//!
//! ```text
//! magic "NXMD" | version u8 | command u8 | reserved u16 | payload length u32 | payload
//! LOAD  payload = a metadata blob (full or partial) for the receiver to load
//! SEND  empty; the receiver answers LOAD with its full metadata (or ERR)
//! INVL  payload = an agent name the receiver should forget
//! ERR   payload = a message
//! CHAL  payload = nonce u64 + 1 byte "a secret is required" (the listener's opening frame)
//! AUTH  payload = proof (see `crate::auth`; empty without a secret) — the caller's first frame
//! ```

use std::io::{self, Read, Write};

use crate::codec::{Reader, Writer};

const MAGIC: &[u8; 4] = b"NXMD";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 12;
/// Largest payload accepted.
pub const MAX_PAYLOAD: u32 = 256 << 20;

/// A metadata-exchange command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Command {
    /// Load the metadata in the payload.
    Load = 1,
    /// Answer with your metadata.
    Send = 2,
    /// Forget the agent named in the payload.
    Invalidate = 3,
    /// A failure message.
    Error = 4,
    /// The listener's opening challenge.
    Challenge = 5,
    /// The caller's answer to the challenge.
    Auth = 6,
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Writes one frame.
pub fn write(stream: &mut impl Write, cmd: Command, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l <= MAX_PAYLOAD)
        .ok_or_else(|| invalid("payload too large"))?;
    let mut w = Writer::with_capacity(HEADER_LEN + payload.len());
    w.raw(MAGIC)
        .u8(VERSION)
        .u8(cmd as u8)
        .u16(0)
        .u32(len)
        .raw(payload);
    stream.write_all(&w.finish())?;
    stream.flush()
}

/// Reads one frame. `Ok(None)` on a clean end of stream before a header.
pub fn read(stream: &mut impl Read) -> io::Result<Option<(Command, Vec<u8>)>> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match stream.read(&mut header[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    let mut r = Reader::new(&header, "metadata frame");
    let bad = |e: crate::NixlError| invalid(e.message());
    if r.take(4).map_err(bad)? != MAGIC {
        return Err(invalid("not a metadata-exchange frame"));
    }
    if r.u8().map_err(bad)? != VERSION {
        return Err(invalid("unsupported metadata-exchange version"));
    }
    let cmd = match r.u8().map_err(bad)? {
        1 => Command::Load,
        2 => Command::Send,
        3 => Command::Invalidate,
        4 => Command::Error,
        5 => Command::Challenge,
        6 => Command::Auth,
        _ => return Err(invalid("unknown metadata-exchange command")),
    };
    r.u16().map_err(bad)?;
    let len = r.u32().map_err(bad)?;
    if len > MAX_PAYLOAD {
        return Err(invalid("metadata frame too large"));
    }
    // Grow only as bytes arrive: a forged length costs the sender as much as us.
    let mut payload = Vec::with_capacity((len as usize).min(1 << 16));
    stream.take(u64::from(len)).read_to_end(&mut payload)?;
    if payload.len() != len as usize {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some((cmd, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_limits() {
        let mut buf = Vec::new();
        write(&mut buf, Command::Load, b"blob").unwrap();
        write(&mut buf, Command::Send, b"").unwrap();
        let mut r = &buf[..];
        assert_eq!(
            read(&mut r).unwrap(),
            Some((Command::Load, b"blob".to_vec()))
        );
        assert_eq!(read(&mut r).unwrap(), Some((Command::Send, Vec::new())));
        assert_eq!(read(&mut r).unwrap(), None);
        let mut huge = buf[..12].to_vec();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read(&mut &huge[..]).is_err());
        assert!(read(&mut &buf[..5]).is_err(), "truncated header");
        assert!(read(&mut &buf[..14]).is_err(), "truncated payload");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = read(&mut &bytes[..]);
        }
    }
}
