//! Why a run failed after its settings were accepted: the frontend's own I/O, the metrics
//! endpoints, the worker fleet and the report.

use std::path::PathBuf;

/// A run that could not go on (the settings themselves are checked before, by
/// [`crate::cli::ConfigError`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A file, folder, socket or thread of the frontend's.
    #[error("{what}: {source}")]
    Io {
        /// What was being done (a path, or the thing made).
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// [`super::prom::LINGER_VAR`] holds no number of seconds.
    #[error(
        "{}={value:?} is not a number of seconds (0-3600)",
        super::prom::LINGER_VAR
    )]
    Linger {
        /// Its value.
        value: String,
    },
    /// The frontend's metrics endpoint did not start.
    #[error("frontend metrics: {0}")]
    Metrics(#[source] nixl_core::NixlError),
    /// The process connector could not start or stop a worker.
    #[error(transparent)]
    Connector(#[from] planner::ConnectorError),
    /// The planner's profile did not load.
    #[error(transparent)]
    Profile(#[from] planner::ProfileError),
    /// A worker exited while the fleet started.
    #[error("a worker exited during start-up: {last_words}")]
    WorkerExited {
        /// The log lines that say why, or where the logs are.
        last_words: String,
    },
    /// The fleet did not come up in time.
    #[error(
        "workers not ready after 60 s ({}P+{}D of {}P+{}D); see {}",
        .ready.0, .ready.1, .target.0, .target.1, .logs.display()
    )]
    NotReady {
        /// Ready (prefill, decode) workers.
        ready: (u32, u32),
        /// Wanted (prefill, decode) workers.
        target: (u32, u32),
        /// The worker logs' folder.
        logs: PathBuf,
    },
    /// Every sender of the frontend's event channel went away.
    #[error("event channel closed")]
    EventsClosed,
    /// The report or the metrics targets did not serialise.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The report's PNG could not be drawn.
    #[error(transparent)]
    Plot(#[from] plot_support::PlotError),
}

impl RunError {
    /// An I/O error while doing `what`.
    pub(crate) fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> RunError {
        let what = what.to_string();
        move |source| RunError::Io { what, source }
    }
}
