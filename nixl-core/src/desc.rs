//! Descriptors and descriptor lists.

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
}
