//! The crate's error type and the exit codes it maps to (0 done, 1 diverged, 2 bad usage or
//! input, 130 interrupted): scripts rely on them, so every path reports through here.

use std::path::PathBuf;

use crate::data::DataError;

/// Everything that can end a run early.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or config value is wrong; the message names it and what was expected.
    #[error("{0}")]
    Usage(String),
    /// A data file is missing or malformed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Reading or writing a file the user named (config, output directory) failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A worker saw a non-finite loss or parameter.
    #[error("diverged: worker {worker} at step {step}: {what}")]
    Diverged {
        worker: usize,
        step: u64,
        what: String,
    },
    /// SIGINT/SIGTERM stopped the run.
    #[error("interrupted")]
    Interrupted,
    /// A tensor operation failed: a bug or an exhausted device, not a user mistake.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// A worker thread ended unexpectedly.
    #[error("{0}")]
    Internal(String),
}

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Data(_) | Error::Io { .. } => 2,
            Error::Diverged { .. } => 1,
            Error::Interrupted => 130,
            Error::Candle(_) | Error::Internal(_) => 1,
        }
    }

    /// An I/O error on a named path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A usage error with a message.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
}

/// The message a thread panicked with (`panic!` payloads are a `&str` or a `String`).
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
