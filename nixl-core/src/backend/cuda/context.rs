//! One primary context per device, retained on first use and made current on the calling
//! thread before any driver call that needs it.

use parking_lot::Mutex;
use std::sync::OnceLock;

use cudarc::driver::sys;

use super::driver::{check, driver};
use crate::status::{Result, err};

/// A retained primary context.
#[derive(Clone, Copy)]
struct Ctx(sys::CUcontext);

// SAFETY: a CUDA context handle may be made current on, and used from, any thread.
unsafe impl Send for Ctx {}
// SAFETY: as above; the handle itself is never mutated after retaining.
unsafe impl Sync for Ctx {}

static CONTEXTS: OnceLock<Vec<OnceLock<Ctx>>> = OnceLock::new();
static PEERS: Mutex<Vec<(i32, i32, bool)>> = Mutex::new(Vec::new());

/// Checks that `dev_id` names a device of this process and returns it as an ordinal.
pub fn ordinal(dev_id: u64) -> Result<i32> {
    let devices = driver()?.devices;
    if dev_id >= devices as u64 {
        return Err(err!(
            InvalidParam,
            "GPU {dev_id} does not exist (this process sees {devices} CUDA device(s))"
        ));
    }
    Ok(dev_id as i32)
}

fn primary(dev: i32) -> Result<Ctx> {
    let slots = CONTEXTS.get_or_init(|| {
        let n = driver().map_or(0, |d| d.devices);
        (0..n).map(|_| OnceLock::new()).collect()
    });
    let slot = &slots[dev as usize];
    if let Some(ctx) = slot.get() {
        return Ok(*ctx);
    }
    let mut device: sys::CUdevice = 0;
    // SAFETY: the driver is initialized (`ordinal` succeeded) and the out-pointer is valid.
    check(unsafe { sys::cuDeviceGet(&mut device, dev) }, "cuDeviceGet")?;
    let mut ctx: sys::CUcontext = std::ptr::null_mut();
    check(
        // SAFETY: valid device and out-pointer; the primary context stays retained for the life
        // of the process (it is shared with every other CUDA user in it).
        unsafe { sys::cuDevicePrimaryCtxRetain(&mut ctx, device) },
        "cuDevicePrimaryCtxRetain",
    )?;
    // Another thread may have retained it too; both references stay valid, keep one.
    Ok(*slot.get_or_init(|| Ctx(ctx)))
}

/// Makes device `dev_id`'s primary context current on this thread; returns its ordinal.
pub fn bind(dev_id: u64) -> Result<i32> {
    let dev = ordinal(dev_id)?;
    let ctx = primary(dev)?;
    // SAFETY: `ctx` is a retained primary context.
    check(unsafe { sys::cuCtxSetCurrent(ctx.0) }, "cuCtxSetCurrent")?;
    Ok(dev)
}

/// Device `dev_id`'s primary context made current on this thread until dropped, when the
/// context current before (the application's, if any) is restored. For calls made on the
/// application's threads, whose current context is theirs to choose.
pub struct Scoped {
    /// The context to restore, where binding changed it.
    restore: Option<sys::CUcontext>,
}

impl Scoped {
    /// Binds GPU `dev_id` (see [`bind`]), remembering what was current.
    pub fn bind(dev_id: u64) -> Result<Scoped> {
        let ctx = primary(ordinal(dev_id)?)?;
        let mut previous: sys::CUcontext = std::ptr::null_mut();
        check(
            // SAFETY: the driver is loaded and initialized (`ordinal`); valid out-pointer.
            unsafe { sys::cuCtxGetCurrent(&mut previous) },
            "cuCtxGetCurrent",
        )?;
        if previous == ctx.0 {
            return Ok(Scoped { restore: None });
        }
        // SAFETY: `ctx` is a retained primary context.
        check(unsafe { sys::cuCtxSetCurrent(ctx.0) }, "cuCtxSetCurrent")?;
        Ok(Scoped {
            restore: Some(previous),
        })
    }
}

impl Drop for Scoped {
    fn drop(&mut self) {
        if let Some(previous) = self.restore {
            // SAFETY: `previous` was current on this thread (or null: none) when bound.
            unsafe { sys::cuCtxSetCurrent(previous) };
        }
    }
}

/// Lets device `from` access device `to`'s memory directly (NVLink/PCIe peer-to-peer) where
/// the hardware allows; remembered per pair. Returns whether peer access is on. Without it,
/// copies between the two still work, staged by the driver.
pub fn enable_peer(from: i32, to: i32) -> Result<bool> {
    if from == to {
        return Ok(true);
    }
    if let Some(&(_, _, on)) = PEERS.lock().iter().find(|(a, b, _)| (*a, *b) == (from, to)) {
        return Ok(on);
    }
    let mut can = 0i32;
    check(
        // SAFETY: both ordinals were checked by the callers; valid out-pointer.
        unsafe { sys::cuDeviceCanAccessPeer(&mut can, from, to) },
        "cuDeviceCanAccessPeer",
    )?;
    let mut on = false;
    if can != 0 {
        let peer_ctx = primary(to)?;
        bind(from as u64)?;
        // SAFETY: the current context is `from`'s primary context; `peer_ctx` is retained.
        let r = unsafe { sys::cuCtxEnablePeerAccess(peer_ctx.0, 0) };
        on = r == sys::CUresult::CUDA_SUCCESS
            || r == sys::CUresult::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED;
    }
    PEERS.lock().push((from, to, on));
    Ok(on)
}

/// The device's name as the driver reports it (e.g. "NVIDIA H100 80GB HBM3").
pub fn device_name(dev_id: u64) -> Result<String> {
    let dev = ordinal(dev_id)?;
    let mut device: sys::CUdevice = 0;
    // SAFETY: the driver is initialized and the out-pointer is valid.
    check(unsafe { sys::cuDeviceGet(&mut device, dev) }, "cuDeviceGet")?;
    let mut name = [0 as std::ffi::c_char; 256];
    check(
        // SAFETY: the buffer holds `name.len()` bytes; the driver NUL-terminates within it.
        unsafe { sys::cuDeviceGetName(name.as_mut_ptr(), name.len() as i32, device) },
        "cuDeviceGetName",
    )?;
    // SAFETY: NUL-terminated by the driver (and the buffer was zeroed).
    Ok(unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}
