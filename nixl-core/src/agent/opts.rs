//! Optional arguments accepted by most agent calls (`nixl_opt_args_t`).

use super::BackendHandle;
use crate::config::DEFAULT_COMM_PORT;

/// NIXL's optional arguments.
#[derive(Clone, Debug)]
pub struct OptArgs {
    /// Restrict (or hint) the backends to use.
    pub backends: Vec<BackendHandle>,
    /// A notification to deliver after the transfer; `Some` enables it even if empty.
    pub notif: Option<Vec<u8>>,
    /// Do not merge contiguous descriptors in `make_xfer_req`.
    pub skip_desc_merge: bool,
    /// Include connection info in partial metadata.
    pub include_conn_info: bool,
    /// Peer address for the peer-to-peer metadata calls.
    pub ip_addr: Option<String>,
    /// Peer port for the peer-to-peer metadata calls.
    pub port: u16,
    /// Label for partial metadata in a central store.
    pub metadata_label: Option<String>,
}

impl Default for OptArgs {
    fn default() -> Self {
        OptArgs {
            backends: Vec::new(),
            notif: None,
            skip_desc_merge: false,
            include_conn_info: false,
            ip_addr: None,
            port: DEFAULT_COMM_PORT,
            metadata_label: None,
        }
    }
}

impl OptArgs {
    /// Optional arguments carrying only a notification message.
    pub fn with_notif(msg: impl Into<Vec<u8>>) -> Self {
        OptArgs {
            notif: Some(msg.into()),
            ..OptArgs::default()
        }
    }
}
