//! Dedicated copy streams (one small pool per device) and events; every copy of this backend
//! is asynchronous on such a stream and waited for before a transfer reports completion.

use parking_lot::Mutex;

use cudarc::driver::sys;

use super::context;
use super::driver::check;
use crate::status::Result;

/// Idle driver objects (streams, events) by device ordinal, at most `keep` per device: making
/// one costs a driver call, which every transfer would pay otherwise.
struct Pool<R> {
    idle: Mutex<Vec<(i32, R)>>,
    keep: usize,
}

impl<R> Pool<R> {
    const fn new(keep: usize) -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            keep,
        }
    }

    /// An idle object of device `dev`, if any.
    fn take(&self, dev: i32) -> Option<R> {
        let mut idle = self.idle.lock();
        let i = idle.iter().position(|(d, _)| *d == dev)?;
        Some(idle.swap_remove(i).1)
    }

    /// Keeps `raw` for reuse; hands it back (to be destroyed) when `dev` has enough.
    fn give(&self, dev: i32, raw: R) -> Option<R> {
        let mut idle = self.idle.lock();
        if idle.iter().filter(|(d, _)| *d == dev).count() < self.keep {
            idle.push((dev, raw));
            None
        } else {
            Some(raw)
        }
    }
}

static STREAMS: Pool<Raw> = Pool::new(16);
static EVENTS: Pool<RawEvent> = Pool::new(64);

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
        let raw = match STREAMS.take(dev) {
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
        if let Some(raw) = STREAMS.give(self.dev, self.raw) {
            // SAFETY: the stream is idle (synchronized) and no longer referenced.
            unsafe { sys::cuStreamDestroy_v2(raw.0) };
        }
    }
}

#[derive(Clone, Copy)]
struct RawEvent(sys::CUevent);

// SAFETY: an event handle may be recorded and waited on from any thread.
unsafe impl Send for RawEvent {}

/// A completion marker on a stream of one device (timing disabled: cheapest kind), returned
/// to a pool when dropped.
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
        let raw = match EVENTS.take(dev) {
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
        // Recording it again later moves it past whatever it still waits for.
        if let Some(raw) = EVENTS.give(self.dev, self.raw) {
            // SAFETY: the event is live and owned; destroying a pending event is allowed.
            unsafe { sys::cuEventDestroy_v2(raw.0) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pool;

    #[test]
    fn the_pool_keeps_a_bounded_number_per_device_and_hands_back_by_device() {
        let pool: Pool<u32> = Pool::new(2);
        assert_eq!(pool.take(0), None);
        assert_eq!(pool.give(0, 1), None);
        assert_eq!(pool.give(0, 2), None);
        assert_eq!(pool.give(0, 3), Some(3), "a third for device 0 is not kept");
        assert_eq!(pool.give(1, 4), None, "device 1 has its own share");
        assert_eq!(pool.take(1), Some(4));
        assert_eq!(pool.take(1), None);
        let mut got = [pool.take(0).unwrap(), pool.take(0).unwrap()];
        got.sort();
        assert_eq!(got, [1, 2]);
        assert_eq!(pool.take(0), None);
    }
}
