//! What can go wrong in nixlbench, by kind. Errors cross process boundaries as text (a peer
//! answers `ERR <message>`), so [`BenchError::Peer`] carries the other side's message.

use std::path::PathBuf;

/// A nixlbench error.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A `nixl_capi_*` call failed.
    #[error(transparent)]
    Capi(#[from] nixl_capi_client::Error),
    /// A library could not be loaded.
    #[error(transparent)]
    Load(#[from] nixl_capi_client::LoadError),
    /// A library given on the command line does not exist.
    #[error("library {} not found", .0.display())]
    NoLibrary(PathBuf),
    /// A pipe, file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A peer process reported an error or broke the line protocol.
    #[error("{0}")]
    Peer(String),
    /// A point or a result did not (de)serialize.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A number in a peer's line did not parse.
    #[error("number: {0}")]
    Number(#[from] std::num::ParseIntError),
    /// `--workload` named no known workload.
    #[error("unknown workload {0}")]
    Workload(String),
    /// A `--variant` that names no library to measure.
    #[error("{0}")]
    Variant(String),
    /// The plot could not be drawn.
    #[error("plot: {0}")]
    Plot(#[from] plot_support::PlotError),
    /// A target found the data of a transfer wrong.
    #[error("slot {slot} of {n} ({block} B) holds wrong data")]
    WrongData {
        /// The slot.
        slot: usize,
        /// Slots checked.
        n: usize,
        /// Bytes per slot.
        block: usize,
    },
    /// Some points failed (their rows say why).
    #[error("some points failed (see ERROR/FAIL above)")]
    PointsFailed,
}

impl BenchError {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }

    /// A protocol error: the peer said something else than expected.
    pub fn peer(msg: impl Into<String>) -> BenchError {
        BenchError::Peer(msg.into())
    }
}

/// nixlbench's result.
pub type Result<T> = std::result::Result<T, BenchError>;
