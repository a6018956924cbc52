//! Owned descriptor lists: [`RegList`] for registration, [`XferList`] for transfers.

use crate::error::{Result, check};
use crate::ffi::{RegDlistT, XferDlistT};
use crate::table::Api;
use std::sync::Arc;

/// NIXL memory segment type (`nixl_capi_mem_type_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemType {
    /// Host memory.
    Dram = 0,
    /// Device memory.
    Vram = 1,
    /// Block device.
    Block = 2,
    /// Object store.
    Object = 3,
    /// File.
    File = 4,
}

/// A registration descriptor list (`nixl_capi_reg_dlist_t`), destroyed on drop.
pub struct RegList {
    api: Arc<Api>,
    raw: RegDlistT,
}

// SAFETY: the list is a plain heap object owned by this value; the C ABI has
// no thread affinity for it, and `&self` methods only read it.
unsafe impl Send for RegList {}

impl RegList {
    /// Creates an empty list of `mem` segments.
    pub fn new(api: &Arc<Api>, mem: MemType) -> Result<RegList> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out pointer.
        check("create_reg_dlist", unsafe {
            (api.create_reg_dlist)(mem as i32, &mut raw)
        })?;
        Ok(RegList {
            api: api.clone(),
            raw,
        })
    }

    /// Appends a region `[addr, addr+len)` on device `dev_id` with optional
    /// backend metadata (copied).
    pub fn add(&mut self, addr: usize, len: usize, dev_id: u64, meta: &[u8]) -> Result<()> {
        // SAFETY: `self.raw` is live; `meta` is valid for `meta.len()` bytes.
        check("reg_dlist_add_desc", unsafe {
            (self.api.reg_dlist_add_desc)(
                self.raw,
                addr,
                len,
                dev_id,
                meta.as_ptr().cast(),
                meta.len(),
            )
        })
    }

    /// Number of descriptors.
    pub fn len(&self) -> Result<usize> {
        let mut n = 0;
        // SAFETY: `self.raw` is live; `n` is a valid out pointer.
        check("reg_dlist_desc_count", unsafe {
            (self.api.reg_dlist_desc_count)(self.raw, &mut n)
        })?;
        Ok(n)
    }

    /// True when the list holds no descriptor.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The raw handle, valid while `self` lives.
    pub fn as_raw(&self) -> RegDlistT {
        self.raw
    }
}

impl Drop for RegList {
    fn drop(&mut self) {
        // SAFETY: `self.raw` was created by create_reg_dlist and is dropped once.
        unsafe { (self.api.destroy_reg_dlist)(self.raw) };
    }
}

/// A transfer descriptor list (`nixl_capi_xfer_dlist_t`), destroyed on drop.
pub struct XferList {
    api: Arc<Api>,
    raw: XferDlistT,
}

// SAFETY: as for RegList.
unsafe impl Send for XferList {}

impl XferList {
    /// Creates an empty list of `mem` segments.
    pub fn new(api: &Arc<Api>, mem: MemType) -> Result<XferList> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out pointer.
        check("create_xfer_dlist", unsafe {
            (api.create_xfer_dlist)(mem as i32, &mut raw)
        })?;
        Ok(XferList {
            api: api.clone(),
            raw,
        })
    }

    /// Creates a list from `(addr, len, dev_id)` triples.
    pub fn from_descs(
        api: &Arc<Api>,
        mem: MemType,
        descs: impl IntoIterator<Item = (usize, usize, u64)>,
    ) -> Result<XferList> {
        let mut list = XferList::new(api, mem)?;
        for (addr, len, dev) in descs {
            list.add(addr, len, dev)?;
        }
        Ok(list)
    }

    /// Appends `[addr, addr+len)` on device `dev_id`.
    pub fn add(&mut self, addr: usize, len: usize, dev_id: u64) -> Result<()> {
        // SAFETY: `self.raw` is live.
        check("xfer_dlist_add_desc", unsafe {
            (self.api.xfer_dlist_add_desc)(self.raw, addr, len, dev_id)
        })
    }

    /// Number of descriptors.
    pub fn len(&self) -> Result<usize> {
        let mut n = 0;
        // SAFETY: `self.raw` is live; `n` is a valid out pointer.
        check("xfer_dlist_desc_count", unsafe {
            (self.api.xfer_dlist_desc_count)(self.raw, &mut n)
        })?;
        Ok(n)
    }

    /// True when the list holds no descriptor.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reserves room for `n` descriptors (`xfer_dlist_resize`).
    ///
    /// Note: NIXL's resize changes the descriptor count, filling with empty
    /// descriptors; call [`XferList::clear`] before adding if you only want capacity.
    pub fn resize(&mut self, n: usize) -> Result<()> {
        // SAFETY: `self.raw` is live.
        check("xfer_dlist_resize", unsafe {
            (self.api.xfer_dlist_resize)(self.raw, n)
        })
    }

    /// Removes every descriptor.
    pub fn clear(&mut self) -> Result<()> {
        // SAFETY: `self.raw` is live.
        check("xfer_dlist_clear", unsafe {
            (self.api.xfer_dlist_clear)(self.raw)
        })
    }

    /// The raw handle, valid while `self` lives.
    pub fn as_raw(&self) -> XferDlistT {
        self.raw
    }
}

impl Drop for XferList {
    fn drop(&mut self) {
        // SAFETY: `self.raw` was created by create_xfer_dlist and is dropped once.
        unsafe { (self.api.destroy_xfer_dlist)(self.raw) };
    }
}

/// Transfer direction (`nixl_capi_xfer_op_t`), seen from the initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XferOp {
    /// Remote → local.
    Read = 0,
    /// Local → remote.
    Write = 1,
}
