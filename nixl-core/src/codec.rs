//! Little-endian byte writer and bounds-checked reader shared by the metadata blob and the
//! wire protocol. The reader never trusts a length: every count is checked against the bytes
//! that remain before anything is allocated.

use crate::status::{Result, err};

/// Appends little-endian fields to a byte vector.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Appends raw bytes.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Appends a byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a little-endian u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }

    /// Appends a little-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }

    /// Appends a little-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }

    /// Appends a u32 length then the bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).expect("field larger than 4 GiB");
        self.u32(len).raw(v)
    }

    /// The bytes written so far.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads little-endian fields from a byte slice, failing cleanly on truncation.
pub struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`; `what` names the format in error messages.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { rest: bytes, what }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Takes exactly `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(err!(
                InvalidParam,
                "{} truncated: wanted {n} bytes, {} left",
                self.what,
                self.rest.len()
            ));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Reads a byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// Reads a little-endian u16.
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    /// Reads a little-endian u32.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    /// Reads a little-endian u64.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// Reads a u32-length-prefixed byte field of at most `max` bytes.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(err!(
                InvalidParam,
                "{}: field of {len} bytes exceeds the limit of {max}",
                self.what
            ));
        }
        self.take(len)
    }

    /// Reads a length-prefixed UTF-8 string of at most `max` bytes.
    pub fn str(&mut self, max: usize) -> Result<&'a str> {
        let bytes = self.bytes(max)?;
        std::str::from_utf8(bytes)
            .map_err(|_| err!(InvalidParam, "{}: string is not UTF-8", self.what))
    }

    /// Reads a u32 element count and checks that `count * min_elem_size` bytes remain, so a
    /// forged count cannot make the caller allocate more than the input justifies.
    pub fn count(&mut self, min_elem_size: usize) -> Result<usize> {
        let count = self.u32()? as usize;
        let need = count.saturating_mul(min_elem_size.max(1));
        if need > self.rest.len() {
            return Err(err!(
                InvalidParam,
                "{}: count {count} cannot fit in the {} bytes left",
                self.what,
                self.rest.len()
            ));
        }
        Ok(count)
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(err!(
                InvalidParam,
                "{}: {} trailing bytes",
                self.what,
                self.rest.len()
            ))
        }
    }
}
