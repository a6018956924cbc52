//! Status codes turned into a Rust error.

use crate::ffi::{self, Status};

/// A `nixl_capi_*` call that did not return success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    /// The C status code (`NIXL_CAPI_ERROR_*`, or the library's own negative code).
    pub code: Status,
    /// The C function (without `nixl_capi_`) that returned it.
    pub op: &'static str,
}

impl Error {
    /// Symbolic name of [`Error::code`].
    pub fn code_name(&self) -> &'static str {
        code_name(self.code)
    }

    /// True for `NIXL_CAPI_ERROR_NOT_FOUND`.
    pub fn is_not_found(&self) -> bool {
        self.code == ffi::ERROR_NOT_FOUND
    }
}

/// Symbolic name of a status code.
pub fn code_name(code: Status) -> &'static str {
    match code {
        ffi::SUCCESS => "SUCCESS",
        ffi::IN_PROG => "IN_PROG",
        ffi::ERROR_INVALID_PARAM => "ERROR_INVALID_PARAM",
        ffi::ERROR_BACKEND => "ERROR_BACKEND",
        ffi::ERROR_INVALID_STATE => "ERROR_INVALID_STATE",
        ffi::ERROR_EXCEPTION => "ERROR_EXCEPTION",
        ffi::ERROR_NO_TELEMETRY => "ERROR_NO_TELEMETRY",
        ffi::ERROR_NOT_FOUND => "ERROR_NOT_FOUND",
        _ => "ERROR_OTHER",
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "nixl_capi_{} failed: {} ({})",
            self.op,
            self.code_name(),
            self.code
        )
    }
}

impl std::error::Error for Error {}

/// Result of a binding call.
pub type Result<T> = std::result::Result<T, Error>;

/// Maps `SUCCESS` to `Ok(())`, anything else to an [`Error`].
pub(crate) fn check(op: &'static str, code: Status) -> Result<()> {
    if code == ffi::SUCCESS {
        Ok(())
    } else {
        Err(Error { code, op })
    }
}

/// Converts a Rust string into a C string, reporting interior NULs as
/// `ERROR_INVALID_PARAM` against `op`.
pub(crate) fn cstr(op: &'static str, s: &str) -> Result<std::ffi::CString> {
    std::ffi::CString::new(s).map_err(|_| Error {
        code: ffi::ERROR_INVALID_PARAM,
        op,
    })
}
