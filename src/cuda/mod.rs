//! The CUDA layer (feature `cuda`): our kernels from `kernels/*.cu` and what moves bytes between
//! GPUs. Everything goes through candle's own cudarc (`candle_core::cuda_backend::cudarc`), so a
//! candle tensor's buffer (`Storage::Cuda(cs)` -> `cs.as_cuda_slice::<f32>()`) is a valid argument.
//!
//! - `ptx`: the PTX that build.rs compiled from `kernels/*.cu`, embedded in the binary.
//! - `block_pieces`: how a layered flat buffer is cut into layer-aligned pieces, one GPU block
//!   each, for the kernels (pure).
//! - `kernels`: [`Kernels`] (the functions loaded on one GPU) and their launchers, each taking the
//!   stream explicitly; [`DeviceLayout`] and [`DeviceWeights`], a layer table and weights on a GPU.
//! - `device`: enumeration, peer access, device-to-device and peer copies.
//! - `--round nccl`, the round's all-reduces over NCCL between the run's GPUs, is a transport:
//!   `comm::nccl`.
//! - `selftest`: the GPU side of `grawa-train selftest` (each kernel against its CPU twin, copy
//!   bandwidths); the report it fills lives in `crate::selftest::report`, printed by
//!   `crate::selftest`.
//!
//! Every kernel has a CPU twin in `crate::average::naive` or `crate::optim`, the reference it is
//! checked against.

pub mod block_pieces;
pub mod device;
pub mod kernels;
pub mod ptx;
pub mod selftest;

pub use candle_core::cuda_backend::cudarc;
pub use device::{copy, device_count, enable_peer_access, fence_read, peer_access_possible};
pub use kernels::{DeviceLayout, DeviceWeights, Kernels, MAX_WORKERS};

use cudarc::driver::DriverError;
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
