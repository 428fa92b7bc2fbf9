//! Errors of the CUDA layer: a failed driver call says what was being done and where.

use super::cudarc::driver::DriverError;
use std::panic::Location;

/// An error of the CUDA layer. Driver failures say what was being done and where.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// A CUDA driver call failed.
    #[error("{what} failed at {file}:{line}: {code} ({text})")]
    Driver {
        what: String,
        code: String,
        text: String,
        file: &'static str,
        line: u32,
    },
    /// Arguments that do not fit together (lengths, worker count, buffers on another GPU).
    #[error("{0}")]
    Invalid(String),
}

/// Results of the CUDA layer.
pub type Result<T> = std::result::Result<T, CudaError>;

impl CudaError {
    /// The driver's name for the failure (`CUDA_ERROR_NO_DEVICE`), when it is a driver error.
    pub fn code(&self) -> Option<&str> {
        match self {
            CudaError::Driver { code, .. } => Some(code),
            CudaError::Invalid(_) => None,
        }
    }
}

/// Turns a cudarc `DriverError` into a [`CudaError`] naming what failed and the caller's line.
pub(crate) trait Context<T> {
    fn context(self, what: &str) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, DriverError> {
    #[track_caller]
    fn context(self, what: &str) -> Result<T> {
        let at = Location::caller();
        self.map_err(|e| CudaError::Driver {
            what: what.to_string(),
            // The driver's own name, not the enum's Debug: a newer driver may return a code this
            // cudarc does not list.
            code: e
                .error_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|_| format!("CUresult {}", e.0 as u32)),
            text: e
                .error_string()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "no description from the driver".to_string()),
            file: at.file(),
            line: at.line(),
        })
    }
}
