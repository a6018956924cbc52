//! Virtual-memory-management allocations (`cuMemCreate` + `cuMemMap`) across processes: the
//! owner exports each physical allocation as a POSIX file descriptor and keeps it open while
//! the memory is registered; a peer on the same host fetches a duplicate with `pidfd_getfd`
//! (the same permission as cross-memory attach), imports it and maps it into its own address
//! space. Allocations created without `CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR` cannot be
//! exported and are published as unshareable.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use cudarc::driver::sys;

use super::context;
use super::driver::check;
use crate::status::{Result, err};

const POSIX_FD: sys::CUmemAllocationHandleType =
    sys::CUmemAllocationHandleType::CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;

/// Exports the allocation that starts at `start` as a file descriptor; None if it is not a VMM
/// allocation or was created without POSIX file-descriptor sharing.
pub fn export_fd(start: u64) -> Option<OwnedFd> {
    let mut handle: sys::CUmemGenericAllocationHandle = 0;
    // SAFETY: valid out-pointer; the driver only looks the address up.
    let retained =
        unsafe { sys::cuMemRetainAllocationHandle(&mut handle, start as *mut std::ffi::c_void) };
    if retained != sys::CUresult::CUDA_SUCCESS {
        return None;
    }
    let mut fd: i32 = -1;
    // SAFETY: for POSIX_FD the out-parameter is an int; `handle` was just retained.
    let exported = unsafe {
        sys::cuMemExportToShareableHandle(std::ptr::from_mut(&mut fd).cast(), handle, POSIX_FD, 0)
    };
    // SAFETY: drops the reference taken by cuMemRetainAllocationHandle (the mapping keeps its own).
    unsafe { sys::cuMemRelease(handle) };
    if exported != sys::CUresult::CUDA_SUCCESS || fd < 0 {
        return None;
    }
    // SAFETY: the driver returned a new descriptor that we now own.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A peer's VMM allocation mapped into this process; unmapped on drop.
pub struct VmmMapping {
    ptr: u64,
    size: usize,
}

impl VmmMapping {
    /// Local address of the mapping.
    pub fn addr(&self) -> u64 {
        self.ptr
    }
}

impl Drop for VmmMapping {
    fn drop(&mut self) {
        // SAFETY: mapped and reserved by `import`; no transfer uses it any more (transfers hold
        // the registration that owns this mapping).
        unsafe {
            sys::cuMemUnmap(self.ptr, self.size);
            sys::cuMemAddressFree(self.ptr, self.size);
        }
    }
}

/// Fetches descriptor `remote_fd` of the process behind `pidfd`, imports it and maps `size`
/// bytes of it readable and writable by GPU `dev_id`. The driver refuses a size larger than
/// the allocation.
pub fn import(pidfd: RawFd, remote_fd: u32, size: u64, dev_id: u64) -> Result<VmmMapping> {
    // SAFETY: pidfd_getfd takes a pidfd, a descriptor number of that process and flags 0, and
    // returns a new descriptor of ours or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, remote_fd as i32, 0) } as i32;
    if fd < 0 {
        return Err(err!(
            NotAllowed,
            "cannot fetch the peer's VRAM allocation handle (its fd {remote_fd}): {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: a fresh descriptor we own; closed when this function returns (the driver keeps
    // its own reference once imported).
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let ordinal = context::bind(dev_id)?;
    let mut handle: sys::CUmemGenericAllocationHandle = 0;
    check(
        // SAFETY: for POSIX_FD the OS handle is the descriptor's value passed as a pointer.
        unsafe {
            sys::cuMemImportFromShareableHandle(
                &mut handle,
                std::os::fd::AsRawFd::as_raw_fd(&fd) as usize as *mut std::ffi::c_void,
                POSIX_FD,
            )
        },
        "cuMemImportFromShareableHandle",
    )?;
    let size = size as usize;
    let mut ptr = 0;
    let mapped = (|| {
        check(
            // SAFETY: valid out-pointer; the range is freed on failure or by the mapping's drop.
            unsafe { sys::cuMemAddressReserve(&mut ptr, size, 0, 0, 0) },
            "cuMemAddressReserve",
        )?;
        check(
            // SAFETY: `ptr..ptr+size` was just reserved; the driver checks `size` against the
            // allocation behind `handle`.
            unsafe { sys::cuMemMap(ptr, size, 0, handle, 0) },
            "cuMemMap",
        )
        .inspect_err(|_| {
            // SAFETY: reserved above, nothing mapped.
            unsafe { sys::cuMemAddressFree(ptr, size) };
        })
    })();
    // SAFETY: the mapping (if any) holds its own reference to the allocation.
    unsafe { sys::cuMemRelease(handle) };
    mapped?;
    let mapping = VmmMapping { ptr, size };
    let access = sys::CUmemAccessDesc {
        location: sys::CUmemLocation {
            type_: sys::CUmemLocationType::CU_MEM_LOCATION_TYPE_DEVICE,
            id: ordinal,
        },
        flags: sys::CUmemAccess_flags::CU_MEM_ACCESS_FLAGS_PROT_READWRITE,
    };
    check(
        // SAFETY: the whole range is mapped; one valid access descriptor.
        unsafe { sys::cuMemSetAccess(ptr, size, &access, 1) },
        "cuMemSetAccess",
    )?;
    Ok(mapping)
}
