//! What the driver knows about an address: memory type, device, and the allocation (chunk)
//! that contains it. Used to refuse host memory registered as VRAM and to find every
//! physical chunk under a registration (virtual-memory-management mappings may chain several).

use cudarc::driver::sys;

use super::driver::check;
use super::{context, vmm};
use crate::status::{Result, err};

/// One allocation under a registered range, as the driver reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// First address of the allocation (or VMM mapping).
    pub start: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Whether `cuIpcGetMemHandle` can share it (`cudaMalloc`-style memory).
    pub legacy_ipc: bool,
}

impl Chunk {
    /// One past its last byte.
    pub fn end(&self) -> u64 {
        self.start + self.size
    }
}

struct Attrs {
    mem_type: u32,
    ordinal: i32,
    chunk: Chunk,
}

fn query(addr: u64) -> Result<Attrs> {
    use sys::CUpointer_attribute as A;
    let mut attrs = [
        A::CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
        A::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
        A::CU_POINTER_ATTRIBUTE_RANGE_START_ADDR,
        A::CU_POINTER_ATTRIBUTE_RANGE_SIZE,
        A::CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE,
    ];
    // Every value is at most 8 bytes; zeroed slots read as "unknown" where the driver leaves
    // them (host pointers), and smaller values land in the low bytes (little-endian).
    let mut values = [0u64; 5];
    let mut slots: Vec<*mut std::ffi::c_void> = values
        .iter_mut()
        .map(|v| std::ptr::from_mut(v).cast())
        .collect();
    check(
        // SAFETY: `attrs` and `slots` have the same length, each slot points at 8 writable bytes,
        // and the driver only inspects `addr` (it never dereferences it on the host).
        unsafe {
            sys::cuPointerGetAttributes(
                attrs.len() as u32,
                attrs.as_mut_ptr(),
                slots.as_mut_ptr(),
                addr,
            )
        },
        "cuPointerGetAttributes",
    )?;
    Ok(Attrs {
        mem_type: values[0] as u32,
        ordinal: values[1] as u32 as i32,
        chunk: Chunk {
            start: values[2],
            size: values[3],
            legacy_ipc: values[4] as u8 != 0,
        },
    })
}

/// Checks that `[addr, addr+len)` is device memory of GPU `dev_id`, entirely mapped, and
/// returns the chunks it spans in address order. Host memory (a DRAM pointer registered as
/// VRAM) is INVALID_PARAM.
pub fn device_chunks(addr: u64, len: u64, dev_id: u64) -> Result<Vec<Chunk>> {
    // Called on the application's threads (registration): its current context is restored.
    let _ctx = context::Scoped::bind(dev_id)?;
    let dev = context::ordinal(dev_id)?;
    let end = addr
        .checked_add(len.max(1))
        .ok_or_else(|| err!(InvalidParam, "VRAM range {addr:#x}+{len} wraps around"))?;
    let mut chunks = Vec::new();
    let mut at = addr;
    while at < end {
        let a = query(at)?;
        if a.mem_type != sys::CUmemorytype::CU_MEMORYTYPE_DEVICE as u32 {
            return Err(err!(
                InvalidParam,
                "address {at:#x} is not GPU memory (memory type {}); host memory cannot be registered as VRAM",
                a.mem_type
            ));
        }
        if a.ordinal != dev {
            return Err(err!(
                InvalidParam,
                "address {at:#x} belongs to GPU {}, not to GPU {dev_id} named by the descriptor",
                a.ordinal
            ));
        }
        if a.chunk.size == 0 || a.chunk.start > at || a.chunk.end() <= at {
            return Err(err!(
                Backend,
                "the driver reports no allocation range for {at:#x}"
            ));
        }
        // For VMM memory the driver reports the whole run of allocations mapped back to back;
        // peers import them one at a time, so each becomes a chunk of its own.
        let chunk = match a.chunk.legacy_ipc {
            true => a.chunk,
            false => match vmm::allocation_at(at, a.chunk.start, a.chunk.end(), dev)? {
                Some((start, size)) => Chunk {
                    start,
                    size,
                    legacy_ipc: false,
                },
                None => a.chunk,
            },
        };
        at = chunk.end();
        chunks.push(chunk);
    }
    Ok(chunks)
}
