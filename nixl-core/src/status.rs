//! NIXL's status codes and the error type that carries them.

use std::fmt;

/// A NIXL status code, with exactly the values of upstream `nixl_status_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Status {
    /// The operation is still running.
    InProg = 1,
    /// The operation completed.
    Success = 0,
    /// The request was never posted.
    NotPosted = -1,
    /// An argument was invalid.
    InvalidParam = -2,
    /// The backend failed.
    Backend = -3,
    /// Something named (an agent, a registration, a plugin) does not exist.
    NotFound = -4,
    /// Two things that must agree do not.
    Mismatch = -5,
    /// The operation is refused in the current state.
    NotAllowed = -6,
    /// A request was reposted while a previous post is still running.
    RepostActive = -7,
    /// An unclassified failure.
    Unknown = -8,
    /// The feature is not supported by this build or machine.
    NotSupported = -9,
    /// The remote agent went away.
    RemoteDisconnect = -10,
    /// The operation was canceled.
    Canceled = -11,
    /// Telemetry was not enabled.
    NoTelemetry = -12,
}

impl Status {
    /// The raw `nixl_status_t` value.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// Converts a raw `nixl_status_t` value back, if it is one.
    pub const fn from_code(code: i32) -> Option<Status> {
        Some(match code {
            1 => Status::InProg,
            0 => Status::Success,
            -1 => Status::NotPosted,
            -2 => Status::InvalidParam,
            -3 => Status::Backend,
            -4 => Status::NotFound,
            -5 => Status::Mismatch,
            -6 => Status::NotAllowed,
            -7 => Status::RepostActive,
            -8 => Status::Unknown,
            -9 => Status::NotSupported,
            -10 => Status::RemoteDisconnect,
            -11 => Status::Canceled,
            -12 => Status::NoTelemetry,
            _ => return None,
        })
    }

    /// NIXL's name for the code (`NIXL_ERR_NOT_FOUND`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Status::InProg => "NIXL_IN_PROG",
            Status::Success => "NIXL_SUCCESS",
            Status::NotPosted => "NIXL_ERR_NOT_POSTED",
            Status::InvalidParam => "NIXL_ERR_INVALID_PARAM",
            Status::Backend => "NIXL_ERR_BACKEND",
            Status::NotFound => "NIXL_ERR_NOT_FOUND",
            Status::Mismatch => "NIXL_ERR_MISMATCH",
            Status::NotAllowed => "NIXL_ERR_NOT_ALLOWED",
            Status::RepostActive => "NIXL_ERR_REPOST_ACTIVE",
            Status::Unknown => "NIXL_ERR_UNKNOWN",
            Status::NotSupported => "NIXL_ERR_NOT_SUPPORTED",
            Status::RemoteDisconnect => "NIXL_ERR_REMOTE_DISCONNECT",
            Status::Canceled => "NIXL_ERR_CANCELED",
            Status::NoTelemetry => "NIXL_ERR_NO_TELEMETRY",
        }
    }

    /// True for the two non-error codes.
    pub const fn is_ok(self) -> bool {
        matches!(self, Status::Success | Status::InProg)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error: a NIXL status plus a message saying what went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NixlError {
    status: Status,
    message: String,
}

impl NixlError {
    /// Builds an error with `status` and a human-readable message.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        debug_assert!(!status.is_ok(), "an error needs an error status");
        NixlError {
            status,
            message: message.into(),
        }
    }

    /// The NIXL status code of the error.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for NixlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for NixlError {}

/// The result type of every fallible call in this crate.
pub type Result<T> = std::result::Result<T, NixlError>;

/// Shorthand constructors used throughout the crate.
macro_rules! err {
    ($status:ident, $($fmt:tt)+) => {
        $crate::status::NixlError::new($crate::status::Status::$status, format!($($fmt)+))
    };
}
pub(crate) use err;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_upstream_values() {
        assert_eq!(Status::RemoteDisconnect.code(), -10);
        assert_eq!(Status::NoTelemetry.code(), -12);
        for code in -12..=1 {
            assert_eq!(Status::from_code(code).unwrap().code(), code);
        }
        assert_eq!(Status::from_code(2), None);
        assert_eq!(Status::from_code(-13), None);
    }
}
