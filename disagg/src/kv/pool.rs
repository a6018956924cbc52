//! The KV pool's memory: one page-aligned allocation holding every layer's blocks.
//!
//! The transfer engine reads and writes this memory behind Rust's back (remote READs of our
//! blocks, remote WRITEs into them), so it is only ever touched through raw pointers. The
//! [`super::SlotTable`] guarantees that a block being filled or verified is not the target of
//! a transfer in flight.

use super::AllocError;
use super::content::{self, BlockKey};
use super::layout::KvLayout;
use std::alloc::{Layout, alloc_zeroed, dealloc};

const ALIGN: usize = 4096;

/// A worker's KV cache memory.
#[derive(Debug)]
pub struct KvPool {
    layout: KvLayout,
    base: *mut u8,
    alloc: Layout,
}

// SAFETY: the pool is a plain byte buffer; all access goes through raw pointers with the
// slot discipline described in the module docs.
unsafe impl Send for KvPool {}

impl KvPool {
    /// Allocates a zeroed pool for `layout`; panics when memory is short (see
    /// [`KvPool::try_new`]).
    pub fn new(layout: KvLayout) -> Self {
        Self::try_new(layout).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Allocates a zeroed pool for `layout`, or says why it cannot.
    pub fn try_new(layout: KvLayout) -> Result<Self, AllocError> {
        let size = layout.total_bytes().max(ALIGN);
        let alloc = Layout::from_size_align(size, ALIGN)
            .map_err(|source| AllocError::TooLarge { size, source })?;
        // SAFETY: `alloc` has a non-zero size.
        let base = unsafe { alloc_zeroed(alloc) };
        if base.is_null() {
            return Err(AllocError::OutOfMemory { mib: size >> 20 });
        }
        Ok(KvPool {
            layout,
            base,
            alloc,
        })
    }

    /// The pool's geometry.
    pub fn layout(&self) -> &KvLayout {
        &self.layout
    }

    /// Address of the pool's first byte (what gets registered for transfers).
    pub fn base_addr(&self) -> u64 {
        self.base as u64
    }

    /// Bytes in the pool.
    pub fn len(&self) -> usize {
        self.layout.total_bytes()
    }

    /// True for a pool without blocks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Address of block `slot` in layer `layer`.
    pub fn addr(&self, layer: usize, slot: usize) -> u64 {
        self.base_addr() + self.layout.offset(layer, slot) as u64
    }

    fn layer_block(&self, layer: usize, slot: usize) -> *mut u8 {
        assert!(layer < self.layout.layers && slot < self.layout.num_blocks);
        // SAFETY: the offset is inside the allocation (checked above).
        unsafe { self.base.add(self.layout.offset(layer, slot)) }
    }

    /// "Computes" block `slot`: writes the contents of `key` into every layer.
    pub fn fill(&mut self, slot: usize, key: BlockKey) {
        let n = self.layout.layer_block_bytes();
        for layer in 0..self.layout.layers {
            // SAFETY: in bounds (see `layer_block`); no transfer targets this slot while it
            // is being filled, and `&mut self` excludes other Rust access.
            let buf = unsafe { std::slice::from_raw_parts_mut(self.layer_block(layer, slot), n) };
            content::fill(buf, key, layer);
        }
    }

    /// Checks every layer of block `slot` against `key`.
    pub fn verify(&self, slot: usize, key: BlockKey) -> bool {
        let n = self.layout.layer_block_bytes();
        (0..self.layout.layers).all(|layer| {
            // SAFETY: in bounds; the transfer into this slot has completed.
            let buf = unsafe { std::slice::from_raw_parts(self.layer_block(layer, slot), n) };
            content::verify(buf, key, layer)
        })
    }

    /// Overwrites block `slot` with zeroes (used by tests to show verification bites).
    pub fn scrub(&mut self, slot: usize) {
        let n = self.layout.layer_block_bytes();
        for layer in 0..self.layout.layers {
            // SAFETY: as in `fill`.
            unsafe { std::ptr::write_bytes(self.layer_block(layer, slot), 0, n) };
        }
    }
}

impl Drop for KvPool {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout.
        unsafe { dealloc(self.base, self.alloc) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_verify_scrub() {
        let mut pool = KvPool::new(KvLayout::mock_model(4));
        let key = BlockKey {
            hash: 7,
            position: 0,
        };
        pool.fill(2, key);
        assert!(pool.verify(2, key));
        assert!(!pool.verify(1, key));
        pool.scrub(2);
        assert!(!pool.verify(2, key));
        assert_eq!(pool.base_addr() % 4096, 0);
    }
}
