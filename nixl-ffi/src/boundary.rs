//! The panic boundary every exported function runs in, and the per-thread record of the last
//! failure.

use std::cell::RefCell;
use std::ffi::CString;
use std::panic::{AssertUnwindSafe, catch_unwind};

use nixl_core::{NixlError, Status};

use crate::status::{capi_status_of, nixl_capi_status_t};

/// Why an exported call failed: the code returned to the caller (upstream's lossy mapping) and
/// the precise NIXL status and message, kept for `nixl_capi_ext_last_status`.
#[derive(Debug)]
pub struct Failure {
    /// What the C caller receives.
    pub capi: nixl_capi_status_t,
    /// The precise NIXL status.
    pub status: Status,
    /// What went wrong.
    pub message: String,
}

/// What an exported function body returns.
pub type CapiResult = Result<nixl_capi_status_t, Failure>;

impl Failure {
    /// A bad argument: `NIXL_CAPI_ERROR_INVALID_PARAM` / `NIXL_ERR_INVALID_PARAM`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Failure {
            capi: nixl_capi_status_t::NIXL_CAPI_ERROR_INVALID_PARAM,
            status: Status::InvalidParam,
            message: message.into(),
        }
    }

    /// A handle in the wrong state: `NIXL_CAPI_ERROR_INVALID_STATE`.
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Failure {
            capi: nixl_capi_status_t::NIXL_CAPI_ERROR_INVALID_STATE,
            status: Status::NotAllowed,
            message: message.into(),
        }
    }

    /// Reports the failure as `NIXL_CAPI_ERROR_BACKEND`, as upstream does for calls that fold
    /// every error (e.g. `create_backend`, `create_xfer_req`); the precise status is kept.
    pub fn folded(mut self) -> Self {
        self.capi = nixl_capi_status_t::NIXL_CAPI_ERROR_BACKEND;
        self
    }
}

impl From<NixlError> for Failure {
    fn from(e: NixlError) -> Self {
        Failure {
            capi: capi_status_of(e.status()),
            status: e.status(),
            message: e.message().to_owned(),
        }
    }
}

/// The last failure on this thread.
pub(crate) struct LastError {
    pub(crate) status: Status,
    pub(crate) message: CString,
}

thread_local! {
    pub(crate) static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

fn record(status: Status, message: &str) {
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // `try_with`: during thread teardown the slot may be gone; the record is best effort.
    let _ = LAST_ERROR.try_with(|slot| {
        *slot.borrow_mut() = Some(LastError { status, message });
    });
}

/// Runs `body`, catching panics, and records any failure for the calling thread.
pub fn run(body: impl FnOnce() -> CapiResult) -> nixl_capi_status_t {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => status,
        Ok(Err(failure)) => {
            record(failure.status, &failure.message);
            failure.capi
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            record(Status::Unknown, &format!("internal panic: {what}"));
            nixl_capi_status_t::NIXL_CAPI_ERROR_EXCEPTION
        }
    }
}

/// Wraps an exported function's body: `ffi_boundary! { ...; Ok(status) }`. The body returns
/// [`CapiResult`] and may use `?` on [`Failure`] and [`nixl_core::NixlError`] results; panics
/// become `NIXL_CAPI_ERROR_EXCEPTION`.
macro_rules! ffi_boundary {
    ($($body:tt)*) => {
        $crate::status::CapiStatus::from($crate::boundary::run(
            move || -> $crate::boundary::CapiResult { $($body)* },
        ))
    };
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use crate::convert::SUCCESS;
    use crate::status::{
        CapiStatus, nixl_capi_ext_clear_last_error, nixl_capi_ext_last_error_message,
        nixl_capi_ext_last_status, nixl_capi_status_t,
    };

    /// Shaped as every export is (`extern "C"`, body in `ffi_boundary!`), with a body that
    /// panics the way a bug in any export would: with a message, or with a non-string payload.
    extern "C" fn buggy_export(how: u8) -> CapiStatus {
        ffi_boundary! {
            match how {
                0 => panic!("index {} out of range", 7),
                1 => std::panic::panic_any(42u32),
                _ => SUCCESS,
            }
        }
    }

    fn last() -> (i32, String) {
        let msg = nixl_capi_ext_last_error_message();
        // SAFETY: never NULL, NUL-terminated, valid until the next failing call here.
        let msg = unsafe { CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned();
        (nixl_capi_ext_last_status(), msg)
    }

    /// A panic never unwinds into C (that would abort the host process): it becomes
    /// `NIXL_CAPI_ERROR_EXCEPTION`, the thread's last error names it, and later calls work.
    #[test]
    fn a_panic_in_an_export_is_caught_and_reported() {
        let export: extern "C" fn(u8) -> CapiStatus = buggy_export;
        let exception = nixl_capi_status_t::NIXL_CAPI_ERROR_EXCEPTION as i32;
        nixl_capi_ext_clear_last_error();

        assert_eq!(export(0).0, exception);
        let (status, msg) = last();
        assert_eq!(status, nixl_core::Status::Unknown.code());
        assert_eq!(msg, "internal panic: index 7 out of range");

        assert_eq!(export(1).0, exception);
        assert_eq!(last().1, "internal panic: unknown panic");

        // The boundary is not poisoned: the next call on this thread succeeds.
        assert_eq!(export(2).0, nixl_capi_status_t::NIXL_CAPI_SUCCESS as i32);
    }
}
