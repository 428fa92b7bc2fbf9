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
//!
//! The rules that keep the GPUs' work in order are pure code, compiled in every build so CPU tests
//! check them: `ordering` (when a read of a buffer must fence its owner), `group` (an NCCL group's
//! order: writes recorded after it ends, every communicator aborted when a call fails),
//! `launch_args` (each launcher's argument list against the PTX's parameters). `bind` makes a
//! thread's current context its own GPU's (cuBLAS does not), and `loading` asks for eager kernel
//! loading in builds with NCCL (lazy loading can deadlock against a spinning collective).

pub mod bind;
#[cfg(feature = "cuda")]
pub mod block_pieces;
#[cfg(feature = "cuda")]
pub mod device;
#[cfg(feature = "cuda")]
mod error;
pub mod group;
#[cfg(feature = "cuda")]
pub mod kernels;
pub mod launch_args;
pub mod loading;
pub mod ordering;
#[cfg(feature = "cuda")]
pub mod ptx;
#[cfg(feature = "cuda")]
pub mod selftest;

pub use bind::bind_thread;
#[cfg(feature = "cuda")]
pub use candle_core::cuda_backend::cudarc;
#[cfg(feature = "cuda")]
pub use device::{copy, device_count, enable_peer_access, fence_read, peer_access_possible};
#[cfg(feature = "cuda")]
pub use kernels::{DeviceLayout, DeviceWeights, Kernels};
pub use launch_args::MAX_WORKERS;

#[cfg(feature = "cuda")]
pub(crate) use error::Context;
#[cfg(feature = "cuda")]
pub use error::{CudaError, Result};
