//! Asynchronous metadata exchange (`sendLocalMD`, `fetchRemoteMD`, ...).

use super::{Agent, OptArgs};
use crate::desc::RegDescList;
use crate::status::{Result, err};

impl Agent {
    /// Publishes this agent's metadata to a peer's listener (`opts.ip_addr`/`opts.port`) or a
    /// central store (`sendLocalMD`). Returns once queued.
    pub fn send_local_md(&self, opts: Option<&OptArgs>) -> Result<()> {
        let _ = opts;
        Err(err!(
            NotSupported,
            "metadata exchange is not available in this build yet"
        ))
    }

    /// Publishes part of this agent's metadata (`sendLocalPartialMD`); empty `descs` sends
    /// connection info only.
    pub fn send_local_partial_md(&self, descs: &RegDescList, opts: Option<&OptArgs>) -> Result<()> {
        let _ = (descs, opts);
        Err(err!(
            NotSupported,
            "metadata exchange is not available in this build yet"
        ))
    }

    /// Asks a peer's listener or a central store for `name`'s metadata (`fetchRemoteMD`);
    /// `check_remote_md` tells when it has arrived.
    pub fn fetch_remote_md(&self, name: &str, opts: Option<&OptArgs>) -> Result<()> {
        let _ = (name, opts);
        Err(err!(
            NotSupported,
            "metadata exchange is not available in this build yet"
        ))
    }

    /// Tells a peer (or the central store) to forget this agent (`invalidateLocalMD`).
    pub fn invalidate_local_md(&self, opts: Option<&OptArgs>) -> Result<()> {
        let _ = opts;
        Err(err!(
            NotSupported,
            "metadata exchange is not available in this build yet"
        ))
    }
}
