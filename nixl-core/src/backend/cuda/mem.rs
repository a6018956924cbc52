//! Device and pinned host allocations, for tests, benchmarks and examples: plain `cuMemAlloc`
//! buffers (shareable by legacy IPC), virtual-memory-management buffers made of several
//! physical chunks mapped back to back, and pinned host buffers.

use cudarc::driver::sys;

use super::driver::check;
use super::{context, vmm};
use crate::status::{Result, err};

/// A `cuMemAlloc` buffer on one GPU, freed on drop.
pub struct DeviceBuffer {
    ptr: u64,
    len: usize,
    dev: u64,
}

impl DeviceBuffer {
    /// Allocates `len` bytes on GPU `dev`.
    pub fn new(dev: u64, len: usize) -> Result<DeviceBuffer> {
        context::bind(dev)?;
        let mut ptr = 0;
        // SAFETY: a context is current; valid out-pointer.
        check(unsafe { sys::cuMemAlloc_v2(&mut ptr, len) }, "cuMemAlloc")?;
        Ok(DeviceBuffer { ptr, len, dev })
    }

    /// Device address.
    pub fn addr(&self) -> u64 {
        self.ptr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length buffer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// GPU ordinal.
    pub fn device(&self) -> u64 {
        self.dev
    }

    /// Copies `data` to the start of the buffer (synchronous).
    pub fn upload(&self, data: &[u8]) -> Result<()> {
        upload(self.dev, self.ptr, self.len, data)
    }

    /// Reads the first `out.len()` bytes (synchronous).
    pub fn download(&self, out: &mut [u8]) -> Result<()> {
        download(self.dev, self.ptr, self.len, out)
    }

    /// Sets every byte to `value`.
    pub fn fill(&self, value: u8) -> Result<()> {
        fill(self.dev, self.ptr, self.len, value)
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        if context::bind(self.dev).is_ok() {
            // SAFETY: allocated by cuMemAlloc and owned; no copy uses it any more.
            unsafe { sys::cuMemFree_v2(self.ptr) };
        }
    }
}

/// Waits for everything queued in the current context, legacy default stream included: the
/// plain `cuMemcpy`/`cuMemset` calls below may return before their DMA is done, and transfers
/// run on non-blocking streams that do not order themselves after the default stream.
fn settle() -> Result<()> {
    // SAFETY: a context is current (the callers bind one).
    check(unsafe { sys::cuCtxSynchronize() }, "cuCtxSynchronize")
}

/// Synchronous upload to device memory at `ptr` (capacity `cap`).
pub fn upload(dev: u64, ptr: u64, cap: usize, data: &[u8]) -> Result<()> {
    if data.len() > cap {
        return Err(err!(
            InvalidParam,
            "{} bytes do not fit in {cap}",
            data.len()
        ));
    }
    context::bind(dev)?;
    check(
        // SAFETY: `ptr..ptr+data.len()` is device memory we own (caller); `data` is a live slice.
        unsafe { sys::cuMemcpy(ptr, data.as_ptr() as u64, data.len()) },
        "cuMemcpy",
    )?;
    settle()
}

/// Synchronous download from device memory at `ptr` (capacity `cap`).
pub fn download(dev: u64, ptr: u64, cap: usize, out: &mut [u8]) -> Result<()> {
    if out.len() > cap {
        return Err(err!(InvalidParam, "{} bytes exceed {cap}", out.len()));
    }
    context::bind(dev)?;
    check(
        // SAFETY: as in `upload`; `out` is a live, exclusively borrowed slice.
        unsafe { sys::cuMemcpy(out.as_mut_ptr() as u64, ptr, out.len()) },
        "cuMemcpy",
    )
}

/// Sets `len` bytes of device memory at `ptr` to `value`.
pub fn fill(dev: u64, ptr: u64, len: usize, value: u8) -> Result<()> {
    context::bind(dev)?;
    // SAFETY: device memory we own (caller).
    check(unsafe { sys::cuMemsetD8_v2(ptr, value, len) }, "cuMemsetD8")?;
    settle()
}

/// A virtual-memory-management buffer: `chunks` physical allocations (`cuMemCreate`) of the
/// allocation granularity times `chunk_pages`, mapped back to back in one reserved range.
pub struct VmmBuffer {
    base: u64,
    len: usize,
    chunk: usize,
    handles: Vec<sys::CUmemGenericAllocationHandle>,
    dev: u64,
}

impl VmmBuffer {
    /// Allocates and maps `chunks` chunks of `chunk_pages` granules each on GPU `dev`.
    pub fn new(dev: u64, chunks: usize, chunk_pages: usize) -> Result<VmmBuffer> {
        Self::build(dev, chunks, chunk_pages, false)
    }

    /// As [`VmmBuffer::new`], with every chunk exportable as a POSIX file descriptor, so that
    /// other processes can map it (CUDA IPC for VMM memory).
    pub fn shareable(dev: u64, chunks: usize, chunk_pages: usize) -> Result<VmmBuffer> {
        Self::build(dev, chunks, chunk_pages, true)
    }

    fn build(dev: u64, chunks: usize, chunk_pages: usize, shareable: bool) -> Result<VmmBuffer> {
        let ordinal = context::bind(dev)?;
        let prop = vmm::device_prop(ordinal, shareable);
        let granularity = vmm::min_granularity(&prop)? as usize;
        let chunk = granularity * chunk_pages.max(1);
        let len = chunk * chunks.max(1);
        let mut base = 0;
        check(
            // SAFETY: valid out-pointer; the range is released in Drop.
            unsafe { sys::cuMemAddressReserve(&mut base, len, 0, 0, 0) },
            "cuMemAddressReserve",
        )?;
        let mut buf = VmmBuffer {
            base,
            len,
            chunk,
            handles: Vec::new(),
            dev,
        };
        for i in 0..chunks.max(1) {
            let mut h = 0;
            check(
                // SAFETY: valid property struct and out-pointer.
                unsafe { sys::cuMemCreate(&mut h, chunk, &prop, 0) },
                "cuMemCreate",
            )?;
            buf.handles.push(h);
            check(
                // SAFETY: the target lies inside the reserved range and is not mapped yet.
                unsafe { sys::cuMemMap(base + (i * chunk) as u64, chunk, 0, h, 0) },
                "cuMemMap",
            )?;
        }
        let access = sys::CUmemAccessDesc {
            location: prop.location,
            flags: sys::CUmemAccess_flags::CU_MEM_ACCESS_FLAGS_PROT_READWRITE,
        };
        check(
            // SAFETY: the whole range is mapped; one valid access descriptor.
            unsafe { sys::cuMemSetAccess(base, len, &access, 1) },
            "cuMemSetAccess",
        )?;
        Ok(buf)
    }

    /// Base address.
    pub fn addr(&self) -> u64 {
        self.base
    }

    /// Total length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length buffer (never: at least one chunk is mapped).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Size of one physical chunk.
    pub fn chunk_len(&self) -> usize {
        self.chunk
    }

    /// Copies `data` to the start of the buffer.
    pub fn upload(&self, data: &[u8]) -> Result<()> {
        upload(self.dev, self.base, self.len, data)
    }

    /// Reads the first `out.len()` bytes.
    pub fn download(&self, out: &mut [u8]) -> Result<()> {
        download(self.dev, self.base, self.len, out)
    }
}

impl Drop for VmmBuffer {
    fn drop(&mut self) {
        if context::bind(self.dev).is_err() {
            return;
        }
        for (i, h) in self.handles.iter().enumerate() {
            // SAFETY: chunk `i` was mapped at this offset with handle `h`; nothing uses it now.
            unsafe {
                sys::cuMemUnmap(self.base + (i * self.chunk) as u64, self.chunk);
                sys::cuMemRelease(*h);
            }
        }
        // SAFETY: the range was reserved by us and is fully unmapped.
        unsafe { sys::cuMemAddressFree(self.base, self.len) };
    }
}

/// A pinned host buffer (`cuMemHostAlloc`), freed on drop.
pub struct HostPinned {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: plain host memory owned by this value.
unsafe impl Send for HostPinned {}

impl HostPinned {
    /// Allocates `len` pinned bytes (zeroed is not guaranteed).
    pub fn new(len: usize) -> Result<HostPinned> {
        context::bind(0)?;
        let mut p: *mut std::ffi::c_void = std::ptr::null_mut();
        check(
            // SAFETY: valid out-pointer.
            unsafe { sys::cuMemHostAlloc(&mut p, len, sys::CU_MEMHOSTALLOC_PORTABLE) },
            "cuMemHostAlloc",
        )?;
        Ok(HostPinned { ptr: p.cast(), len })
    }

    /// The bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `len` bytes allocated and exclusively owned.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// Host address.
    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }
}

impl Drop for HostPinned {
    fn drop(&mut self) {
        // SAFETY: allocated by cuMemHostAlloc and owned.
        unsafe { sys::cuMemFreeHost(self.ptr.cast()) };
    }
}
