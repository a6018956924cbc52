//! Descriptors and descriptor lists.

use crate::codec::{Reader, Writer};
use crate::status::{Result, err};
use crate::types::MemType;

/// A basic descriptor (`nixlBasicDesc`): a range of `len` bytes at `addr` on device `dev_id`.
///
/// Laid out as three native-endian `u64`s (`repr(C)`), like a row of an N×3 `uint64` array, so
/// bindings may copy such arrays into descriptor lists wholesale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(C)]
pub struct Desc {
    /// Start address (or file offset).
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
    /// Device id (GPU ordinal, file descriptor, ...); 0 for DRAM.
    pub dev_id: u64,
}

impl Desc {
    /// Builds a descriptor.
    pub const fn new(addr: u64, len: u64, dev_id: u64) -> Self {
        Desc { addr, len, dev_id }
    }

    /// One past the last byte, or `None` if the range wraps around.
    pub fn end(&self) -> Option<u64> {
        self.addr.checked_add(self.len)
    }
}

/// A registration descriptor (`nixlBlobDesc`): a range plus opaque metadata (e.g. a file path).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RegDesc {
    /// The range.
    pub desc: Desc,
    /// Backend-specific metadata (`metaInfo`).
    pub meta: Vec<u8>,
}

impl RegDesc {
    /// A registration descriptor with no metadata.
    pub const fn new(addr: u64, len: u64, dev_id: u64) -> Self {
        RegDesc {
            desc: Desc::new(addr, len, dev_id),
            meta: Vec::new(),
        }
    }

    /// A registration descriptor with metadata.
    pub fn with_meta(addr: u64, len: u64, dev_id: u64, meta: impl Into<Vec<u8>>) -> Self {
        RegDesc {
            desc: Desc::new(addr, len, dev_id),
            meta: meta.into(),
        }
    }
}

/// A list of descriptors of one memory type (`nixlDescList<T>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescList<T> {
    mem_type: MemType,
    descs: Vec<T>,
}

/// A transfer descriptor list (`nixl_xfer_dlist_t`).
pub type XferDescList = DescList<Desc>;
/// A registration descriptor list (`nixl_reg_dlist_t`).
pub type RegDescList = DescList<RegDesc>;

impl<T> DescList<T> {
    /// An empty list of `mem_type`.
    pub fn new(mem_type: MemType) -> Self {
        DescList {
            mem_type,
            descs: Vec::new(),
        }
    }

    /// A list from descriptors.
    pub fn from_descs(mem_type: MemType, descs: Vec<T>) -> Self {
        DescList { mem_type, descs }
    }

    /// The memory type of every descriptor in the list.
    pub fn mem_type(&self) -> MemType {
        self.mem_type
    }

    /// Appends a descriptor.
    pub fn push(&mut self, desc: T) {
        self.descs.push(desc);
    }

    /// Number of descriptors.
    pub fn len(&self) -> usize {
        self.descs.len()
    }

    /// True if the list has no descriptor.
    pub fn is_empty(&self) -> bool {
        self.descs.is_empty()
    }

    /// The descriptors.
    pub fn descs(&self) -> &[T] {
        &self.descs
    }

    /// Mutable access to the descriptors (resize, remove, clear).
    pub fn descs_mut(&mut self) -> &mut Vec<T> {
        &mut self.descs
    }
}

impl DescList<RegDesc> {
    /// The ranges of the registration descriptors, without their metadata.
    pub fn to_xfer_list(&self) -> XferDescList {
        DescList::from_descs(self.mem_type, self.descs.iter().map(|d| d.desc).collect())
    }

    /// The list as portable bytes, to store it or send it to another process (nixl-py pickles
    /// descriptor lists with it). Format version 1, all little-endian: the version byte, the
    /// memory type's code (u32), the count (u32), then per descriptor `addr`, `len`, `dev_id`
    /// (u64 each) and the metadata's length (u32) and bytes. Stable: bytes written by one
    /// version of this crate read back in later ones.
    pub fn to_bytes(&self) -> Vec<u8> {
        list_to_bytes(self, |d, w| {
            put_desc(&d.desc, w);
            w.bytes(&d.meta);
        })
    }

    /// A list back from [`to_bytes`](Self::to_bytes)'s output. Anything else (truncated,
    /// trailing bytes, unknown version or memory type, metadata over 1 MiB) is
    /// `INVALID_PARAM`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        list_from_bytes(bytes, 4 + DESC_BYTES, |r| {
            let d = get_desc(r)?;
            Ok(RegDesc::with_meta(
                d.addr,
                d.len,
                d.dev_id,
                r.bytes(MAX_META_BYTES)?,
            ))
        })
    }
}

impl DescList<Desc> {
    /// The list as portable bytes: the format of [`RegDescList::to_bytes`] without the
    /// metadata fields.
    pub fn to_bytes(&self) -> Vec<u8> {
        list_to_bytes(self, put_desc)
    }

    /// A list back from [`to_bytes`](Self::to_bytes)'s output; anything else is
    /// `INVALID_PARAM`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        list_from_bytes(bytes, DESC_BYTES, get_desc)
    }
}

/// The most metadata bytes one registration descriptor may carry in the portable list format
/// ([`RegDescList::from_bytes`] refuses more).
pub const MAX_META_BYTES: usize = 1 << 20;

/// Version byte of the portable list format (`to_bytes`).
const LIST_FORMAT: u8 = 1;
/// Bytes of one descriptor in the portable format.
const DESC_BYTES: usize = 24;

fn put_desc(d: &Desc, w: &mut Writer) {
    w.u64(d.addr).u64(d.len).u64(d.dev_id);
}

fn get_desc(r: &mut Reader<'_>) -> Result<Desc> {
    Ok(Desc::new(r.u64()?, r.u64()?, r.u64()?))
}

fn list_to_bytes<T>(list: &DescList<T>, put: impl Fn(&T, &mut Writer)) -> Vec<u8> {
    let mut w = Writer::with_capacity(9 + list.len() * DESC_BYTES);
    let n = u32::try_from(list.len()).expect("more than 2^32 descriptors");
    w.u8(LIST_FORMAT).u32(list.mem_type().code()).u32(n);
    for d in list.descs() {
        put(d, &mut w);
    }
    w.finish()
}

fn list_from_bytes<T>(
    bytes: &[u8],
    min_elem: usize,
    get: impl Fn(&mut Reader<'_>) -> Result<T>,
) -> Result<DescList<T>> {
    let mut r = Reader::new(bytes, "a descriptor list's bytes");
    let version = r.u8()?;
    if version != LIST_FORMAT {
        return Err(err!(
            InvalidParam,
            "descriptor list bytes of unknown format version {version}"
        ));
    }
    let mem = MemType::from_code(r.u32()?)?;
    let n = r.count(min_elem)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(get(&mut r)?);
    }
    r.finish()?;
    Ok(DescList::from_descs(mem, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_through_bytes_and_garbage_is_refused() {
        let xfer = XferDescList::from_descs(
            MemType::Vram,
            vec![Desc::new(1, 2, 3), Desc::new(u64::MAX, 0, 7)],
        );
        let bytes = xfer.to_bytes();
        assert_eq!(bytes.len(), 9 + 2 * DESC_BYTES);
        assert_eq!(XferDescList::from_bytes(&bytes).unwrap(), xfer);

        let reg = RegDescList::from_descs(
            MemType::File,
            vec![
                RegDesc::with_meta(4, 5, 6, b"path".to_vec()),
                RegDesc::new(7, 8, 9),
            ],
        );
        let bytes = reg.to_bytes();
        assert_eq!(RegDescList::from_bytes(&bytes).unwrap(), reg);

        for bad in [
            &bytes[..bytes.len() - 1],
            &[bytes.as_slice(), &[0]].concat(),
            &[&[2], &bytes[1..]].concat(),
        ] {
            let e = RegDescList::from_bytes(bad).unwrap_err();
            assert_eq!(e.status(), crate::Status::InvalidParam, "{e}");
        }
        // A count that the bytes cannot hold is refused before anything is allocated.
        let mut forged = XferDescList::new(MemType::Dram).to_bytes();
        forged[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(XferDescList::from_bytes(&forged).is_err());
    }
}
