//! Loading the CUDA driver at run time, once, and turning its results into NIXL errors.
//!
//! cudarc panics when `libcuda` is absent or lacks a symbol it is asked for, so nothing in this
//! crate calls into cudarc before [`driver`] has succeeded: it checks that the library loads,
//! that `cuInit` succeeds, that every entry point this backend uses is exported, and that at
//! least one device exists. Every failure is a [`NixlError`] with a message, never a panic.

use std::sync::OnceLock;

use cudarc::driver::sys;

use crate::status::{NixlError, Result, err};

/// Every driver entry point this backend (and its tests) may call, checked once at load time
/// so that cudarc's lazy symbol lookup can never panic later.
pub const SYMBOLS: &[&str] = &[
    "cuDeviceGetCount",
    "cuDeviceGet",
    "cuDeviceGetName",
    "cuDevicePrimaryCtxRetain",
    "cuCtxSetCurrent",
    "cuCtxGetCurrent",
    "cuCtxSynchronize",
    "cuDeviceCanAccessPeer",
    "cuCtxEnablePeerAccess",
    "cuPointerGetAttributes",
    "cuIpcGetMemHandle",
    "cuIpcOpenMemHandle_v2",
    "cuIpcCloseMemHandle",
    "cuMemGetAddressRange_v2",
    "cuStreamCreate",
    "cuStreamDestroy_v2",
    "cuStreamSynchronize",
    "cuEventCreate",
    "cuEventRecord",
    "cuEventSynchronize",
    "cuEventQuery",
    "cuEventDestroy_v2",
    "cuMemcpyAsync",
    "cuMemHostAlloc",
    "cuMemFreeHost",
    "cuMemAlloc_v2",
    "cuMemFree_v2",
    "cuMemcpy",
    "cuMemsetD8_v2",
    "cuMemCreate",
    "cuMemRelease",
    "cuMemAddressReserve",
    "cuMemAddressFree",
    "cuMemMap",
    "cuMemUnmap",
    "cuMemSetAccess",
    "cuMemGetAllocationGranularity",
    "cuMemRetainAllocationHandle",
    "cuMemExportToShareableHandle",
    "cuMemImportFromShareableHandle",
];

/// What the loaded driver offers.
#[derive(Debug)]
pub struct Driver {
    /// Number of CUDA devices (at least one).
    pub devices: i32,
}

static DRIVER: OnceLock<std::result::Result<Driver, NixlError>> = OnceLock::new();

/// The driver, loaded and initialized on first use; a clear error where there is no driver
/// library, no device, or a driver too old for this backend.
pub fn driver() -> Result<&'static Driver> {
    DRIVER.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// Whether a usable CUDA device exists (loads the driver if needed).
pub fn available() -> bool {
    driver().is_ok()
}

fn load() -> Result<Driver> {
    // SAFETY: only tries to dlopen the candidate library names; nothing is called.
    if !unsafe { sys::is_culib_present() } {
        return Err(err!(
            NotSupported,
            "CUDA is not available: the driver library (libcuda.so.1) was not found"
        ));
    }
    require(&["cuInit"])?;
    // SAFETY: `cuInit` is exported (checked above); flags must be 0.
    check(unsafe { sys::cuInit(0) }, "cuInit").map_err(|e| {
        err!(
            NotSupported,
            "CUDA is not available: the driver is present but {}",
            e.message()
        )
    })?;
    require(SYMBOLS)?;
    let mut devices = 0i32;
    check(
        // SAFETY: the driver is initialized and the out-pointer is valid.
        unsafe { sys::cuDeviceGetCount(&mut devices) },
        "cuDeviceGetCount",
    )?;
    if devices <= 0 {
        return Err(err!(
            NotSupported,
            "CUDA is not available: the driver reports no device"
        ));
    }
    Ok(Driver { devices })
}

/// Fails unless the loaded driver library exports every name in `names`.
fn require(names: &[&str]) -> Result<()> {
    // SAFETY: `is_culib_present` succeeded, so `culib` finds a library instead of panicking.
    let lib = unsafe { sys::culib() };
    for name in names {
        // SAFETY: the symbol is only looked up here, never called through this type.
        let found = unsafe { lib.get::<unsafe extern "C" fn()>(name.as_bytes()) };
        if let Err(e) = found {
            return Err(err!(
                NotSupported,
                "CUDA is not available: the driver library lacks {name} ({e}); a CUDA 12 or newer driver is needed"
            ));
        }
    }
    Ok(())
}

/// Maps a driver result to a NIXL error naming the call: BACKEND, or NOT_SUPPORTED for "no
/// device"/"not supported" results.
pub fn check(result: sys::CUresult, what: &str) -> Result<()> {
    use sys::CUresult as R;
    match result {
        R::CUDA_SUCCESS => Ok(()),
        R::CUDA_ERROR_NO_DEVICE | R::CUDA_ERROR_NOT_SUPPORTED | R::CUDA_ERROR_NOT_INITIALIZED => {
            Err(err!(NotSupported, "{what} failed: {result:?}"))
        }
        R::CUDA_ERROR_INVALID_VALUE => Err(err!(InvalidParam, "{what} failed: {result:?}")),
        _ => Err(err!(Backend, "{what} failed: {result:?}")),
    }
}
