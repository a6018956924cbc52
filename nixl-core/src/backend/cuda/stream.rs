//! Dedicated copy streams (one small pool per device) and events; every copy of this backend
//! is asynchronous on such a stream and waited for before a transfer reports completion.

use std::sync::Mutex;

use cudarc::driver::sys;

use super::context;
use super::driver::check;
use crate::backend::lock;
use crate::status::Result;

/// Idle streams by device ordinal.
static IDLE: Mutex<Vec<(i32, Raw)>> = Mutex::new(Vec::new());
/// Streams kept idle per device at most.
const KEEP_PER_DEVICE: usize = 16;

#[derive(Clone, Copy)]
struct Raw(sys::CUstream);

// SAFETY: a stream handle may be used from any thread with its device's context current.
unsafe impl Send for Raw {}

/// A non-blocking stream of one device, returned to the pool when dropped.
pub struct Stream {
    raw: Raw,
    dev: i32,
}

impl Stream {
    /// A stream on GPU `dev_id`, whose context is made current on this thread.
    pub fn take(dev_id: u64) -> Result<Stream> {
        let dev = context::bind(dev_id)?;
        let pooled = {
            let mut idle = lock(&IDLE);
            idle.iter()
                .position(|(d, _)| *d == dev)
                .map(|i| idle.swap_remove(i).1)
        };
        let raw = match pooled {
            Some(raw) => raw,
            None => {
                let mut s: sys::CUstream = std::ptr::null_mut();
                check(
                    // SAFETY: the device's context is current; valid out-pointer.
                    unsafe {
                        sys::cuStreamCreate(
                            &mut s,
                            sys::CUstream_flags::CU_STREAM_NON_BLOCKING as u32,
                        )
                    },
                    "cuStreamCreate",
                )?;
                Raw(s)
            }
        };
        Ok(Stream { raw, dev })
    }

    /// The device ordinal.
    pub fn device(&self) -> i32 {
        self.dev
    }

    /// Queues a copy of `len` bytes; any mix of device, pinned and pageable host addresses
    /// (unified addressing tells the driver which is which).
    ///
    /// # Safety
    /// Both ranges must stay valid until the stream is synchronized, and `dst` must be
    /// writable by this transfer.
    pub unsafe fn copy(&self, dst: u64, src: u64, len: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        check(
            // SAFETY: validity of both ranges is the caller's promise; the stream is live.
            unsafe { sys::cuMemcpyAsync(dst, src, len as usize, self.raw.0) },
            "cuMemcpyAsync",
        )
    }

    /// Waits until every queued copy has completed on the device.
    pub fn sync(&self) -> Result<()> {
        check(
            // SAFETY: the stream is live.
            unsafe { sys::cuStreamSynchronize(self.raw.0) },
            "cuStreamSynchronize",
        )
    }

    /// Records `event` at the current end of the stream.
    pub fn record(&self, event: &Event) -> Result<()> {
        check(
            // SAFETY: both handles are live.
            unsafe { sys::cuEventRecord(event.0, self.raw.0) },
            "cuEventRecord",
        )
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Wait for queued work so a pooled stream never carries another transfer's copies.
        let _ = self.sync();
        let mut idle = lock(&IDLE);
        if idle.iter().filter(|(d, _)| *d == self.dev).count() < KEEP_PER_DEVICE {
            idle.push((self.dev, self.raw));
        } else {
            drop(idle);
            // SAFETY: the stream is idle (synchronized) and no longer referenced.
            unsafe { sys::cuStreamDestroy_v2(self.raw.0) };
        }
    }
}

/// A completion marker on a stream (timing disabled: cheapest kind).
pub struct Event(sys::CUevent);

// SAFETY: an event handle may be recorded and waited on from any thread.
unsafe impl Send for Event {}

impl Event {
    /// Creates an event in the current context (bind a device or take a [`Stream`] first).
    pub fn new() -> Result<Event> {
        let mut e: sys::CUevent = std::ptr::null_mut();
        check(
            // SAFETY: a context is current (the caller holds a stream); valid out-pointer.
            unsafe {
                sys::cuEventCreate(&mut e, sys::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32)
            },
            "cuEventCreate",
        )?;
        Ok(Event(e))
    }

    /// Blocks until the work before the last record has completed (at once if never recorded).
    pub fn sync(&self) -> Result<()> {
        check(
            // SAFETY: the event is live.
            unsafe { sys::cuEventSynchronize(self.0) },
            "cuEventSynchronize",
        )
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: the event is live and owned; destroying a pending event is allowed.
        unsafe { sys::cuEventDestroy_v2(self.0) };
    }
}
