//! The file descriptor a FILE descriptor's `dev_id` names, checked once at registration so a
//! bad one is refused there rather than failing every later transfer.

use crate::status::{Result, err};

/// `dev_id` as a file descriptor number; anything outside `0..=i32::MAX` (e.g. `-1` cast to
/// `u64`) cannot be one.
pub(crate) fn fd_of(dev_id: u64) -> Result<i32> {
    i32::try_from(dev_id).map_err(|_| {
        err!(
            InvalidParam,
            "FILE dev_id {dev_id} is not a file descriptor (descriptors are 0..={})",
            i32::MAX
        )
    })
}

/// Checks that `dev_id` names a descriptor open in this process that can be read or written.
/// Its access mode is not checked: a read-only file still serves READs into memory.
pub(super) fn check_open(dev_id: u64) -> Result<()> {
    let fd = fd_of(dev_id)?;
    // SAFETY: F_GETFL only reads the descriptor's status flags; any number is safe to ask about.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        let e = std::io::Error::last_os_error();
        return Err(err!(
            InvalidParam,
            "FILE dev_id {fd} is not an open file descriptor: {e}"
        ));
    }
    // An O_PATH descriptor is open but refuses pread/pwrite.
    if flags & libc::O_PATH != 0 {
        return Err(err!(
            InvalidParam,
            "FILE dev_id {fd} was opened with O_PATH and cannot be read or written"
        ));
    }
    Ok(())
}
