//! The one error type of the report tools. Every message is one line that names the file (and the
//! line of `metrics.jsonl`) and what is wrong, so the CLI can print it as is and exit 2.

use std::path::{Path, PathBuf};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A run file is missing or its contents are wrong; `line` is 1-based (JSON Lines files).
    #[error("{}: {}{msg}", .path.display(), line_prefix(*.line))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        msg: String,
    },
    /// Anything else: no runs given, a chart that could not be drawn.
    #[error("{0}")]
    Other(String),
}

fn line_prefix(line: Option<usize>) -> String {
    line.map(|l| format!("line {l}: ")).unwrap_or_default()
}

impl ReportError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Wrong contents in `path` (at 1-based `line` of a JSON Lines file, if given).
    pub fn invalid(path: &Path, line: Option<usize>, msg: impl Into<String>) -> Self {
        ReportError::Invalid {
            path: path.to_path_buf(),
            line,
            msg: msg.into(),
        }
    }

    /// The process exit code: always 2 (bad input), as for every other input error of the tool.
    pub fn exit_code(&self) -> u8 {
        2
    }
}

/// Report errors become usage/input errors of the crate (exit code 2).
impl From<ReportError> for crate::Error {
    fn from(e: ReportError) -> Self {
        crate::Error::Usage(e.to_string())
    }
}
