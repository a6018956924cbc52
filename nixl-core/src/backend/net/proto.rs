//! The network backend's wire protocol: fixed 32-byte frame headers, then a payload.
//!
//! ```text
//! header: magic "NXRS" u32 | kind u8 | flags u8 | reserved u16 | a u64 | b u64 | c u64
//! CHALLENGE a=nonce, b=1 if a secret is required (sent by the listener on accept)
//! HELLO     a=name len, b=target instance, c=proof len
//!           payload: sender agent name, then the proof (see `auth`)
//! HELLO_ACK a=status,   b=message len           payload: message
//! NOTIF     a=payload len                       payload: notification bytes
//! WRITE     a=descs, b=total bytes, c=notif len (NO_NOTIF = none)
//!           payload: descs (addr,len,dev,key u64 each), notif, then the data
//! READ      a=descs, b=total bytes              payload: descs; answered by RESP then data
//! RESP      a=status, b=message len             payload: message
//! ```
//! All integers little-endian. Every count is bounded before anything is allocated.

use std::io::{self, IoSlice, Read, Write};

use crate::backend::ResolvedDesc;
use crate::codec::{Reader, Writer};
use crate::sockio::Timed;
use crate::status::{NixlError, Result, Status, err};

const MAGIC: u32 = u32::from_le_bytes(*b"NXRS");
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 32;
/// Bytes per descriptor on the wire.
pub const DESC_LEN: usize = 32;
/// Most descriptors in one request.
pub const MAX_DESCS: u64 = 1 << 24;
/// Largest notification payload.
pub const MAX_NOTIF: u64 = 64 << 20;
/// Largest agent name or message.
pub const MAX_TEXT: u64 = 4096;
/// `c` of a WRITE without a notification.
pub const NO_NOTIF: u64 = u64::MAX;
/// Most slices handed to one readv/writev call.
const IOV_BATCH: usize = 1024;
/// Most bytes handed to one writev/readv. A call holds the socket lock throughout, so a huge
/// one leaves the ACKs that would reopen the window waiting in the backlog: on loopback here
/// 256 MiB calls ran about 20% slower than 1-4 MiB ones.
const IO_CALL_MAX: usize = 4 << 20;

/// Frame kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Opens a connection: who is calling, and which instance it expects.
    Hello = 1,
    /// Answers HELLO.
    HelloAck = 2,
    /// A notification.
    Notif = 3,
    /// Data pushed to the target.
    Write = 4,
    /// Data pulled from the target.
    Read = 5,
    /// A status answer.
    Resp = 6,
    /// The listener's opening: a nonce to authenticate against.
    Challenge = 7,
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Frame kind.
    pub kind: Kind,
    /// First field.
    pub a: u64,
    /// Second field.
    pub b: u64,
    /// Third field.
    pub c: u64,
}

impl Header {
    /// A header of `kind`.
    pub fn new(kind: Kind, a: u64, b: u64, c: u64) -> Self {
        Header { kind, a, b, c }
    }

    /// Encodes to 32 bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut w = Writer::with_capacity(HEADER_LEN);
        w.u32(MAGIC)
            .u8(self.kind as u8)
            .u8(0)
            .u16(0)
            .u64(self.a)
            .u64(self.b)
            .u64(self.c);
        w.finish().try_into().expect("32 bytes")
    }

    /// Decodes 32 bytes; garbage is an error.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Header> {
        let mut r = Reader::new(bytes, "frame header");
        if r.u32()? != MAGIC {
            return Err(err!(InvalidParam, "bad frame magic"));
        }
        let kind = match r.u8()? {
            1 => Kind::Hello,
            2 => Kind::HelloAck,
            3 => Kind::Notif,
            4 => Kind::Write,
            5 => Kind::Read,
            6 => Kind::Resp,
            7 => Kind::Challenge,
            k => return Err(err!(InvalidParam, "unknown frame kind {k}")),
        };
        let _flags = r.u8()?;
        let _reserved = r.u16()?;
        Ok(Header {
            kind,
            a: r.u64()?,
            b: r.u64()?,
            c: r.u64()?,
        })
    }
}

/// Refuses, before anything is sent, a notification the peer would refuse (and drop the
/// connection for): INVALID_PARAM, the peer untouched.
pub fn check_notif(len: usize) -> Result<()> {
    if len as u64 > MAX_NOTIF {
        return Err(err!(
            InvalidParam,
            "a notification of {len} bytes is over the {MAX_NOTIF}-byte limit"
        ));
    }
    Ok(())
}

/// Checks a WRITE or READ against the wire limits before it is sent (see [`check_notif`]).
pub fn check_request(descs: usize, notif: Option<&[u8]>) -> Result<()> {
    if descs as u64 > MAX_DESCS {
        return Err(err!(
            InvalidParam,
            "{descs} descriptors in one request are over the limit of {MAX_DESCS}"
        ));
    }
    notif.map_or(Ok(()), |n| check_notif(n.len()))
}

/// Encodes descriptors for a WRITE or READ frame.
pub fn encode_descs(descs: &[ResolvedDesc]) -> Vec<u8> {
    let mut w = Writer::with_capacity(descs.len() * DESC_LEN);
    for d in descs {
        w.u64(d.addr).u64(d.len).u64(d.dev_id).u64(d.key);
    }
    w.finish()
}

/// Decodes `n` descriptors and checks that their lengths add up to `total`.
pub fn decode_descs(bytes: &[u8], total: u64) -> Result<Vec<ResolvedDesc>> {
    let mut r = Reader::new(bytes, "descriptor list");
    let mut out = Vec::with_capacity(bytes.len() / DESC_LEN);
    let mut sum = 0u64;
    while r.remaining() > 0 {
        let d = ResolvedDesc {
            addr: r.u64()?,
            len: r.u64()?,
            dev_id: r.u64()?,
            key: r.u64()?,
        };
        sum = sum
            .checked_add(d.len)
            .ok_or_else(|| err!(InvalidParam, "descriptor lengths overflow"))?;
        out.push(d);
    }
    if sum != total {
        return Err(err!(
            InvalidParam,
            "descriptor lengths add up to {sum}, frame says {total}"
        ));
    }
    Ok(out)
}

/// Encodes a status answer (RESP or HELLO_ACK).
pub fn status_frame(kind: Kind, result: &Result<()>) -> Vec<u8> {
    let (code, msg) = match result {
        Ok(()) => (Status::Success.code(), ""),
        Err(e) => (e.status().code(), e.message()),
    };
    let msg = &msg.as_bytes()[..msg.len().min(MAX_TEXT as usize)];
    let mut out = Header::new(kind, code as i64 as u64, msg.len() as u64, 0)
        .encode()
        .to_vec();
    out.extend_from_slice(msg);
    out
}

/// Reads a status answer of `kind`.
pub fn read_status(stream: &mut impl Read, kind: Kind) -> io::Result<Result<()>> {
    let header = read_header(stream)?;
    if header.kind != kind || header.b > MAX_TEXT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected answer frame",
        ));
    }
    let mut msg = vec![0u8; header.b as usize];
    stream.read_exact(&mut msg)?;
    let code = header.a as i64 as i32;
    Ok(match Status::from_code(code) {
        Some(Status::Success) => Ok(()),
        Some(status) if !status.is_ok() => {
            Err(NixlError::new(status, String::from_utf8_lossy(&msg)))
        }
        _ => Err(err!(Backend, "peer answered with unknown status {code}")),
    })
}

/// Reads one frame header.
pub fn read_header(stream: &mut impl Read) -> io::Result<Header> {
    let mut bytes = [0u8; HEADER_LEN];
    stream.read_exact(&mut bytes)?;
    Header::decode(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// Writes every byte of every slice, batching into writev calls.
pub fn write_all_slices(stream: &mut impl Write, slices: &[&[u8]]) -> io::Result<()> {
    let mut pieces = slices
        .iter()
        .flat_map(|s| s.chunks(IO_CALL_MAX))
        .map(IoSlice::new)
        .peekable();
    let mut iov = Vec::with_capacity(slices.len().min(IOV_BATCH));
    while next_call(&mut pieces, &mut iov, |s| s.len()) {
        let mut rest = &mut iov[..];
        while !rest.is_empty() {
            let n = stream.write_vectored(rest)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut rest, n);
        }
    }
    Ok(())
}

/// The iovecs of `descs` (addresses in this process), each cut to at most `IO_CALL_MAX` bytes.
fn desc_iovecs(descs: &[ResolvedDesc]) -> impl Iterator<Item = libc::iovec> + '_ {
    descs.iter().flat_map(|d| {
        (0..d.len).step_by(IO_CALL_MAX).map(move |off| libc::iovec {
            iov_base: (d.addr + off) as *mut libc::c_void,
            iov_len: (d.len - off).min(IO_CALL_MAX as u64) as usize,
        })
    })
}

/// Drops the first `n` bytes from the front of `rest` (after a short readv/sendmsg).
fn advance_iovecs(rest: &mut &mut [libc::iovec], mut n: usize) {
    while let Some(first) = rest.first_mut() {
        if n < first.iov_len {
            first.iov_base = first.iov_base.cast::<u8>().wrapping_add(n).cast();
            first.iov_len -= n;
            return;
        }
        n -= first.iov_len;
        *rest = &mut std::mem::take(rest)[1..];
    }
}

/// Fills the memory of `descs` (addresses in this process) from the stream, batching into
/// readv calls. Works on raw addresses (see `memory`): descriptors that overlap (a peer may
/// send such) are filled in order, with no aliasing mutable references.
///
/// # Safety
/// Every descriptor must be valid for writes of its length while this runs.
pub unsafe fn read_exact_descs(stream: &mut Timed<'_>, descs: &[ResolvedDesc]) -> io::Result<()> {
    let mut pieces = desc_iovecs(descs).peekable();
    let mut iov = Vec::with_capacity(descs.len().min(IOV_BATCH));
    while next_call(&mut pieces, &mut iov, |v| v.iov_len) {
        let mut rest = &mut iov[..];
        while !rest.is_empty() {
            // SAFETY: the pieces lie in the descriptors, valid for writes per the contract.
            let n = unsafe { stream.readv_raw(rest) }?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            advance_iovecs(&mut rest, n);
        }
    }
    Ok(())
}

/// Writes every byte of `head` (frames this process owns), then the memory of `descs`
/// (addresses in this process), batching into sendmsg calls. The descriptors' memory is read
/// through raw addresses (see `memory`): others may write it meanwhile, and no `&[u8]` claims
/// it is frozen.
///
/// # Safety
/// Every descriptor must be valid for reads of its length while this runs.
pub unsafe fn write_all_descs(
    stream: &mut Timed<'_>,
    head: &[&[u8]],
    descs: &[ResolvedDesc],
) -> io::Result<()> {
    let head_iov = head.iter().flat_map(|s| {
        s.chunks(IO_CALL_MAX).map(|c| libc::iovec {
            iov_base: c.as_ptr().cast_mut().cast(),
            iov_len: c.len(),
        })
    });
    let mut pieces = head_iov.chain(desc_iovecs(descs)).peekable();
    let mut iov = Vec::with_capacity((head.len() + descs.len()).min(IOV_BATCH));
    while next_call(&mut pieces, &mut iov, |v| v.iov_len) {
        let mut rest = &mut iov[..];
        while !rest.is_empty() {
            // SAFETY: the pieces lie in `head` (borrowed for this call) or in the
            // descriptors, valid for reads per the contract; sendmsg only reads.
            let n = unsafe { stream.writev_raw(rest) }?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            advance_iovecs(&mut rest, n);
        }
    }
    Ok(())
}

/// Fills `iov` with the next system call's pieces: at most `IOV_BATCH` of them and at most
/// `IO_CALL_MAX` bytes (the slices were cut to that size). Empty pieces are skipped. Returns
/// false when nothing is left.
fn next_call<T>(
    pieces: &mut std::iter::Peekable<impl Iterator<Item = T>>,
    iov: &mut Vec<T>,
    len: impl Fn(&T) -> usize,
) -> bool {
    iov.clear();
    let mut bytes = 0;
    while let Some(piece) = pieces
        .next_if(|p| iov.len() < IOV_BATCH && (iov.is_empty() || bytes + len(p) <= IO_CALL_MAX))
    {
        if len(&piece) > 0 {
            bytes += len(&piece);
            iov.push(piece);
        }
    }
    !iov.is_empty()
}

/// Reads and throws away `n` bytes (to stay in step after refusing a WRITE).
pub fn discard(stream: &mut impl Read, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut stream.take(n), &mut io::sink())?;
    if copied == n {
        Ok(())
    } else {
        Err(io::ErrorKind::UnexpectedEof.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_headers_and_descriptor_lists_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            total in any::<u64>(),
        ) {
            if let Ok(header) = <&[u8; HEADER_LEN]>::try_from(bytes.get(..HEADER_LEN).unwrap_or(&[])) {
                let _ = Header::decode(header);
            }
            let _ = decode_descs(&bytes, total);
            let _ = read_status(&mut &bytes[..], Kind::Resp);
        }
    }

    /// A stream that records each call's size and accepts at most `take` bytes per call.
    struct Recorder {
        data: Vec<u8>,
        calls: Vec<(usize, usize)>,
        take: usize,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let offered: usize = bufs.iter().map(|b| b.len()).sum();
            self.calls.push((bufs.len(), offered));
            let mut left = self.take;
            for b in bufs {
                let n = b.len().min(left);
                self.data.extend_from_slice(&b[..n]);
                left -= n;
            }
            Ok(self.take - left)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn large_and_many_slices_go_in_bounded_calls_and_arrive_whole() {
        let big: Vec<u8> = (0..(IO_CALL_MAX * 2 + 123)).map(|i| i as u8).collect();
        let small: Vec<Vec<u8>> = (0..(IOV_BATCH + 5)).map(|i| vec![i as u8; 7]).collect();
        let mut slices: Vec<&[u8]> = vec![&big, &[]];
        slices.extend(small.iter().map(|v| &v[..]));
        let expected: Vec<u8> = slices.concat();
        for take in [usize::MAX, 1 << 20, 5] {
            let mut out = Recorder {
                data: Vec::new(),
                calls: Vec::new(),
                take,
            };
            write_all_slices(&mut out, &slices).unwrap();
            assert!(out.data == expected, "bytes differ (take {take})");
            assert!(
                out.calls
                    .iter()
                    .all(|&(n, b)| n <= IOV_BATCH && b <= IO_CALL_MAX)
            );
        }
    }

    #[test]
    fn overlapping_descriptors_are_filled_in_order() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut tx = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let rx = l.accept().unwrap().0;
        let data: Vec<u8> = (0..(IO_CALL_MAX + 3000)).map(|i| (i % 251) as u8).collect();
        let mut dst = vec![0u8; IO_CALL_MAX + 1000];
        let base = dst.as_mut_ptr() as u64;
        let d = |off: u64, len: usize| ResolvedDesc {
            addr: base + off,
            len: len as u64,
            dev_id: 0,
            key: 0,
        };
        // The whole buffer, then 2,000 bytes over its middle again.
        let descs = [d(0, IO_CALL_MAX + 1000), d(500, 2000)];
        let writer = std::thread::spawn(move || tx.write_all(&data).map(|()| data));
        let mut t = Timed::new(&rx, std::time::Duration::from_secs(10));
        // SAFETY: both descriptors lie in `dst`, alive and unborrowed meanwhile.
        unsafe { read_exact_descs(&mut t, &descs) }.unwrap();
        let data = writer.join().unwrap().unwrap();
        let mut want = data[..IO_CALL_MAX + 1000].to_vec();
        want[500..2500].copy_from_slice(&data[IO_CALL_MAX + 1000..]);
        assert!(dst == want);
    }

    #[test]
    fn header_round_trip_and_garbage() {
        let h = Header::new(Kind::Write, 1, 2, NO_NOTIF);
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        let mut bad = h.encode();
        bad[4] = 99;
        assert!(Header::decode(&bad).is_err());
        bad[0] = 0;
        assert!(Header::decode(&bad).is_err());
    }

    #[test]
    fn descs_must_add_up() {
        let d = [ResolvedDesc {
            addr: 1,
            len: 10,
            dev_id: 0,
            key: 5,
        }];
        let bytes = encode_descs(&d);
        assert_eq!(decode_descs(&bytes, 10).unwrap(), d);
        assert!(decode_descs(&bytes, 11).is_err());
        assert!(decode_descs(&bytes[..31], 10).is_err());
    }

    #[test]
    fn status_frames_round_trip() {
        let frame = status_frame(Kind::Resp, &Err(err!(NotAllowed, "bad key")));
        let got = read_status(&mut &frame[..], Kind::Resp)
            .unwrap()
            .unwrap_err();
        assert_eq!(got.status(), Status::NotAllowed);
        assert_eq!(got.message(), "bad key");
    }
}
