//! The crate's error type and the exit codes it maps to ([`EXIT_CODES`]): scripts rely on them,
//! so every path reports through here.

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
    /// Reading a file the user named, or making the output folder they named, failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Writing a run's outputs failed (a full disk, a folder gone read-only); `then` says what
    /// state the run folder is left in and what to do.
    #[error("{path}: cannot write: {why}{then}")]
    Write {
        path: PathBuf,
        why: String,
        then: String,
    },
    /// A worker sent nothing for `--watchdog` seconds while it was waited for.
    #[error("{0}")]
    Stalled(String),
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

/// Every exit code, as `--help` and the README list them.
pub const EXIT_CODES: &str = "Exit codes: 0 done; 1 diverged (a non-finite loss) or failed \
(a bug: the message says which); 2 bad usage or input (the message names the flag or file); \
3 a worker stalled (--watchdog); 4 an output could not be written (a full disk: the run folder \
is left resumable or re-runnable, as the message says); 130 interrupted (resumable with --resume).";

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Data(_) | Error::Io { .. } => 2,
            Error::Diverged { .. } => 1,
            Error::Stalled(_) => 3,
            Error::Write { .. } => 4,
            Error::Interrupted => 130,
            Error::Candle(_) | Error::Internal(_) => 1,
        }
    }

    /// A failed write of a run output.
    pub fn write(path: impl Into<PathBuf>, why: impl std::fmt::Display) -> Self {
        Error::Write {
            path: path.into(),
            why: why.to_string(),
            then: String::new(),
        }
    }

    /// The same error with what the run folder is left as (a write failure), else unchanged.
    pub fn then(self, note: impl std::fmt::Display) -> Self {
        match self {
            Error::Write { path, why, .. } => Error::Write {
                path,
                why,
                then: format!("; {note}"),
            },
            other => other,
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
