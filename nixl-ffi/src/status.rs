//! Status codes: upstream's `nixl_capi_status_t`, its mapping from NIXL statuses, and this
//! library's extension that reports the precise NIXL status of the last failed call.

use std::ffi::c_char;

use nixl_core::Status;

use crate::boundary::LAST_ERROR;

/// Status codes of the C API (values identical to upstream `wrapper.h`).
///
/// Upstream folds NIXL's NOT_POSTED, MISMATCH, NOT_ALLOWED, REPOST_ACTIVE, UNKNOWN,
/// NOT_SUPPORTED, REMOTE_DISCONNECT and CANCELED into `NIXL_CAPI_ERROR_BACKEND`; so does this
/// library. `nixl_capi_ext_last_status` tells which one it was.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nixl_capi_status_t {
    /// The call succeeded (for transfers: the transfer completed).
    NIXL_CAPI_SUCCESS = 0,
    /// An argument was NULL or invalid.
    NIXL_CAPI_ERROR_INVALID_PARAM = -1,
    /// The operation failed (every NIXL error without a code of its own here).
    NIXL_CAPI_ERROR_BACKEND = -2,
    /// A handle is in the wrong state (e.g. destroying a request that was not released).
    NIXL_CAPI_ERROR_INVALID_STATE = -3,
    /// An internal failure (a caught panic).
    NIXL_CAPI_ERROR_EXCEPTION = -4,
    /// The transfer is still in progress.
    NIXL_CAPI_IN_PROG = 1,
    /// Telemetry is not enabled.
    NIXL_CAPI_ERROR_NO_TELEMETRY = -5,
    /// Agent metadata not loaded, or no backend serves the request.
    NIXL_CAPI_ERROR_NOT_FOUND = -6,
}

/// What exported functions return: a [`nixl_capi_status_t`] value as a plain C `int`. The
/// header spells it `nixl_capi_status_t` (see `cbindgen.toml`); the wrapper only keeps
/// cbindgen from writing `enum nixl_capi_status_t`, which upstream's anonymous enum lacks.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapiStatus(pub std::ffi::c_int);

impl From<nixl_capi_status_t> for CapiStatus {
    fn from(s: nixl_capi_status_t) -> Self {
        CapiStatus(s as std::ffi::c_int)
    }
}

/// The C status upstream returns for a NIXL status.
pub fn capi_status_of(status: Status) -> nixl_capi_status_t {
    use nixl_capi_status_t::*;
    match status {
        Status::Success => NIXL_CAPI_SUCCESS,
        Status::InProg => NIXL_CAPI_IN_PROG,
        Status::NoTelemetry => NIXL_CAPI_ERROR_NO_TELEMETRY,
        Status::InvalidParam => NIXL_CAPI_ERROR_INVALID_PARAM,
        Status::NotFound => NIXL_CAPI_ERROR_NOT_FOUND,
        Status::NotPosted
        | Status::Backend
        | Status::Mismatch
        | Status::NotAllowed
        | Status::RepostActive
        | Status::Unknown
        | Status::NotSupported
        | Status::RemoteDisconnect
        | Status::Canceled => NIXL_CAPI_ERROR_BACKEND,
    }
}

/// NIXL's own status codes (`nixl_status_t`), as returned by
/// [`nixl_capi_ext_last_status`]. An extension of this library, not in upstream `wrapper.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nixl_capi_ext_nixl_status_t {
    /// `NIXL_IN_PROG`.
    NIXL_CAPI_EXT_IN_PROG = 1,
    /// `NIXL_SUCCESS`: also what is reported when no call failed on this thread yet.
    NIXL_CAPI_EXT_SUCCESS = 0,
    /// `NIXL_ERR_NOT_POSTED`.
    NIXL_CAPI_EXT_ERR_NOT_POSTED = -1,
    /// `NIXL_ERR_INVALID_PARAM`.
    NIXL_CAPI_EXT_ERR_INVALID_PARAM = -2,
    /// `NIXL_ERR_BACKEND`.
    NIXL_CAPI_EXT_ERR_BACKEND = -3,
    /// `NIXL_ERR_NOT_FOUND`.
    NIXL_CAPI_EXT_ERR_NOT_FOUND = -4,
    /// `NIXL_ERR_MISMATCH`.
    NIXL_CAPI_EXT_ERR_MISMATCH = -5,
    /// `NIXL_ERR_NOT_ALLOWED`.
    NIXL_CAPI_EXT_ERR_NOT_ALLOWED = -6,
    /// `NIXL_ERR_REPOST_ACTIVE`.
    NIXL_CAPI_EXT_ERR_REPOST_ACTIVE = -7,
    /// `NIXL_ERR_UNKNOWN` (also used for caught internal panics).
    NIXL_CAPI_EXT_ERR_UNKNOWN = -8,
    /// `NIXL_ERR_NOT_SUPPORTED`.
    NIXL_CAPI_EXT_ERR_NOT_SUPPORTED = -9,
    /// `NIXL_ERR_REMOTE_DISCONNECT`.
    NIXL_CAPI_EXT_ERR_REMOTE_DISCONNECT = -10,
    /// `NIXL_ERR_CANCELED`.
    NIXL_CAPI_EXT_ERR_CANCELED = -11,
    /// `NIXL_ERR_NO_TELEMETRY`.
    NIXL_CAPI_EXT_ERR_NO_TELEMETRY = -12,
}

/// Extension: the precise NIXL status (`nixl_capi_ext_nixl_status_t`, NIXL's `nixl_status_t`
/// values) of the last call on the calling thread that returned an error, or
/// `NIXL_CAPI_EXT_SUCCESS` if none did (or after [`nixl_capi_ext_clear_last_error`]).
/// Successful calls leave it unchanged, like `errno`.
#[unsafe(no_mangle)]
pub extern "C" fn nixl_capi_ext_last_status() -> i32 {
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ref().map_or(0, |e| e.status.code()))
        .unwrap_or(0)
}

/// Extension: the message of the last failed call on the calling thread, or "" if none.
/// The string is borrowed: it stays valid until the next failing call on this thread or
/// [`nixl_capi_ext_clear_last_error`]. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nixl_capi_ext_last_error_message() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| {
            slot.borrow()
                .as_ref()
                .map_or(c"".as_ptr(), |e| e.message.as_ptr())
        })
        .unwrap_or(c"".as_ptr())
}

/// Extension: forgets the calling thread's last failure.
#[unsafe(no_mangle)]
pub extern "C" fn nixl_capi_ext_clear_last_error() {
    let _ = LAST_ERROR.try_with(|slot| slot.borrow_mut().take());
}

/// Extension: NIXL's name for a `nixl_status_t` value (`"NIXL_ERR_NOT_FOUND"`, ...), or
/// `"NIXL_ERR_UNKNOWN_CODE"` for a value that is none. Static storage; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nixl_capi_ext_status_name(status: i32) -> *const c_char {
    match Status::from_code(status) {
        Some(s) => status_cname(s).as_ptr(),
        None => c"NIXL_ERR_UNKNOWN_CODE".as_ptr(),
    }
}

fn status_cname(s: Status) -> &'static std::ffi::CStr {
    match s {
        Status::InProg => c"NIXL_IN_PROG",
        Status::Success => c"NIXL_SUCCESS",
        Status::NotPosted => c"NIXL_ERR_NOT_POSTED",
        Status::InvalidParam => c"NIXL_ERR_INVALID_PARAM",
        Status::Backend => c"NIXL_ERR_BACKEND",
        Status::NotFound => c"NIXL_ERR_NOT_FOUND",
        Status::Mismatch => c"NIXL_ERR_MISMATCH",
        Status::NotAllowed => c"NIXL_ERR_NOT_ALLOWED",
        Status::RepostActive => c"NIXL_ERR_REPOST_ACTIVE",
        Status::Unknown => c"NIXL_ERR_UNKNOWN",
        Status::NotSupported => c"NIXL_ERR_NOT_SUPPORTED",
        Status::RemoteDisconnect => c"NIXL_ERR_REMOTE_DISCONNECT",
        Status::Canceled => c"NIXL_ERR_CANCELED",
        Status::NoTelemetry => c"NIXL_ERR_NO_TELEMETRY",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_matches_upstream_wrapper() {
        use nixl_capi_status_t::*;
        assert_eq!(capi_status_of(Status::NotFound), NIXL_CAPI_ERROR_NOT_FOUND);
        assert_eq!(
            capi_status_of(Status::RemoteDisconnect),
            NIXL_CAPI_ERROR_BACKEND
        );
        assert_eq!(capi_status_of(Status::NotPosted), NIXL_CAPI_ERROR_BACKEND);
        assert_eq!(
            capi_status_of(Status::NoTelemetry),
            NIXL_CAPI_ERROR_NO_TELEMETRY
        );
        assert_eq!(
            capi_status_of(Status::InvalidParam),
            NIXL_CAPI_ERROR_INVALID_PARAM
        );
        for code in -12..=1 {
            let s = Status::from_code(code).unwrap();
            // SAFETY: status_name returns a static NUL-terminated string.
            let name = unsafe { std::ffi::CStr::from_ptr(nixl_capi_ext_status_name(code)) };
            assert_eq!(name.to_str().unwrap(), s.name());
        }
    }
}
