//! `query_mem` for FILE descriptors: does the file exist, and how big is it.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use crate::backend::Params;
use crate::desc::RegDesc;

/// What is known about one FILE descriptor: `None` if the file does not exist (or the file
/// descriptor is not open); otherwise `size`, `mode` (octal), `mtime` (seconds since the
/// epoch) and `accessible`. The path in `metaInfo` is used if there is one, else `dev_id` as an
/// open file descriptor.
pub(super) fn file_info(desc: &RegDesc) -> Option<Params> {
    let meta = if desc.meta.is_empty() {
        let fd = super::fd::fd_of(desc.desc.dev_id).ok()?;
        // /proc/self/fd/N names the open file itself, so this is fstat without unsafe code.
        std::fs::metadata(format!("/proc/self/fd/{fd}")).ok()?
    } else {
        std::fs::metadata(std::ffi::OsStr::from_bytes(&desc.meta)).ok()?
    };
    let params = [
        ("accessible", "true".to_owned()),
        ("size", meta.size().to_string()),
        ("mode", format!("{:o}", meta.mode())),
        ("mtime", meta.mtime().to_string()),
    ];
    Some(params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}
