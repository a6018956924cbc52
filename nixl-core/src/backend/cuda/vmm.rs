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

/// The handle of the allocation mapped at `addr`, or None where nothing VMM is mapped. Only
/// compared, never used: the reference it takes is dropped at once. The driver returns the
/// same value for every address of one allocation (the handle it was mapped with).
fn handle_at(addr: u64) -> Option<sys::CUmemGenericAllocationHandle> {
    let mut handle: sys::CUmemGenericAllocationHandle = 0;
    // SAFETY: valid out-pointer; the driver only looks the address up.
    let r = unsafe { sys::cuMemRetainAllocationHandle(&mut handle, addr as *mut std::ffi::c_void) };
    if r != sys::CUresult::CUDA_SUCCESS {
        return None;
    }
    // SAFETY: drops the reference just taken; the mapping keeps its own.
    unsafe { sys::cuMemRelease(handle) };
    Some(handle)
}

/// Properties of a VMM allocation in GPU `ordinal`'s memory, exportable as a POSIX file
/// descriptor when `shareable`.
pub(super) fn device_prop(ordinal: i32, shareable: bool) -> sys::CUmemAllocationProp {
    // SAFETY: plain data; the fields the driver reads are set below, the rest is zero.
    let mut prop: sys::CUmemAllocationProp = unsafe { std::mem::zeroed() };
    prop.type_ = sys::CUmemAllocationType::CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type_ = sys::CUmemLocationType::CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = ordinal;
    if shareable {
        prop.requestedHandleTypes = POSIX_FD;
    }
    prop
}

/// The smallest granularity of allocations with `prop`: every mapping starts and ends on a
/// multiple of it.
pub(super) fn min_granularity(prop: &sys::CUmemAllocationProp) -> Result<u64> {
    let mut granularity = 0usize;
    check(
        // SAFETY: valid property struct and out-pointer.
        unsafe {
            sys::cuMemGetAllocationGranularity(
                &mut granularity,
                prop,
                sys::CUmemAllocationGranularity_flags::CU_MEM_ALLOC_GRANULARITY_MINIMUM,
            )
        },
        "cuMemGetAllocationGranularity",
    )?;
    if !granularity.is_power_of_two() {
        return Err(err!(
            Backend,
            "the driver reports an allocation granularity of {granularity} bytes"
        ));
    }
    Ok(granularity as u64)
}

/// The physical allocation (start, size) mapped at `addr`, found inside `[range_start,
/// range_end)`, the range the pointer attributes report: for VMM memory that is the whole run
/// of allocations mapped back to back, which peers in other processes must import one by one.
/// None when `addr` is not VMM memory. Costs O(log n) driver look-ups for n granules.
pub fn allocation_at(
    addr: u64,
    range_start: u64,
    range_end: u64,
    ordinal: i32,
) -> Result<Option<(u64, u64)>> {
    let g = min_granularity(&device_prop(ordinal, false))?;
    let at = addr & !(g - 1);
    let Some(handle) = handle_at(at) else {
        return Ok(None);
    };
    let same = |a: u64| handle_at(a) == Some(handle);
    let back = run_length(at.saturating_sub(range_start) / g, |i| same(at - i * g));
    let ahead = run_length(range_end.saturating_sub(at + g) / g, |i| same(at + i * g));
    let start = at - back * g;
    Ok(Some((start, (back + ahead + 1) * g)))
}

/// The largest `n <= limit` such that `same(i)` holds for every `i` in `1..=n`, given that
/// `same` holds up to some index and never after it: galloping, then a binary search, so
/// O(log limit) calls.
fn run_length(limit: u64, same: impl Fn(u64) -> bool) -> u64 {
    let (mut good, mut step) = (0u64, 1u64);
    let mut bad = loop {
        let probe = good.saturating_add(step);
        if probe > limit {
            break limit + 1;
        }
        if !same(probe) {
            break probe;
        }
        good = probe;
        step = step.saturating_mul(2);
    };
    while bad - good > 1 {
        let mid = good + (bad - good) / 2;
        if same(mid) {
            good = mid;
        } else {
            bad = mid;
        }
    }
    good
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

#[cfg(test)]
mod tests {
    use super::run_length;

    #[test]
    fn run_length_finds_the_end_of_a_run_in_few_probes() {
        for limit in [0u64, 1, 2, 3, 7, 8, 100, 1 << 20] {
            for run in [0u64, 1, 2, 5, 64, 99, 1 << 19, 1 << 20] {
                let probes = std::cell::Cell::new(0u32);
                let n = run_length(limit, |i| {
                    assert!((1..=limit).contains(&i), "probe {i} outside 1..={limit}");
                    probes.set(probes.get() + 1);
                    i <= run
                });
                assert_eq!(n, run.min(limit), "limit {limit}, run {run}");
                let log = u64::BITS - limit.leading_zeros();
                assert!(probes.get() <= 2 * log + 1, "{} probes", probes.get());
            }
        }
    }
}
