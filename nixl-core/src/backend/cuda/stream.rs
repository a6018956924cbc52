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
            unsafe { sys::cuEventRecord(event.raw.0, self.raw.0) },
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

/// Idle events by device ordinal.
static IDLE_EVENTS: Mutex<Vec<(i32, RawEvent)>> = Mutex::new(Vec::new());
/// Events kept idle per device at most.
const KEEP_EVENTS_PER_DEVICE: usize = 64;

#[derive(Clone, Copy)]
struct RawEvent(sys::CUevent);

// SAFETY: an event handle may be recorded and waited on from any thread.
unsafe impl Send for RawEvent {}

/// A completion marker on a stream of one device (timing disabled: cheapest kind), returned
/// to a pool when dropped: creating one costs a driver call on every transfer otherwise.
pub struct Event {
    raw: RawEvent,
    dev: i32,
}

// SAFETY: the driver API is thread-safe: one event may be queried and waited on from several
// threads at once; `&Event` allows nothing else.
unsafe impl Sync for Event {}

impl Event {
    /// An event of GPU `dev_id`, whose context is made current on this thread.
    pub fn take(dev_id: u64) -> Result<Event> {
        let dev = context::bind(dev_id)?;
        let pooled = {
            let mut idle = lock(&IDLE_EVENTS);
            idle.iter()
                .position(|(d, _)| *d == dev)
                .map(|i| idle.swap_remove(i).1)
        };
        let raw = match pooled {
            Some(raw) => raw,
            None => {
                let mut e: sys::CUevent = std::ptr::null_mut();
                check(
                    // SAFETY: the device's context is current; valid out-pointer.
                    unsafe {
                        sys::cuEventCreate(
                            &mut e,
                            sys::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32,
                        )
                    },
                    "cuEventCreate",
                )?;
                RawEvent(e)
            }
        };
        Ok(Event { raw, dev })
    }

    /// Whether the work before the last record has completed (true if never recorded); does
    /// not block.
    pub fn query(&self) -> Result<bool> {
        // SAFETY: the event is live.
        match unsafe { sys::cuEventQuery(self.raw.0) } {
            sys::CUresult::CUDA_ERROR_NOT_READY => Ok(false),
            r => check(r, "cuEventQuery").map(|()| true),
        }
    }

    /// Blocks until the work before the last record has completed (at once if never recorded).
    pub fn sync(&self) -> Result<()> {
        check(
            // SAFETY: the event is live.
            unsafe { sys::cuEventSynchronize(self.raw.0) },
            "cuEventSynchronize",
        )
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        let mut idle = lock(&IDLE_EVENTS);
        if idle.iter().filter(|(d, _)| *d == self.dev).count() < KEEP_EVENTS_PER_DEVICE {
            // Recording it again later moves it past whatever it still waits for.
            idle.push((self.dev, self.raw));
        } else {
            drop(idle);
            // SAFETY: the event is live and owned; destroying a pending event is allowed.
            unsafe { sys::cuEventDestroy_v2(self.raw.0) };
        }
    }
}
